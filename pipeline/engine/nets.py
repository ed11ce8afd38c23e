"""The four networks: P-Net, R-Net, O-Net (MTCNN, Zhang et al. 2016) and the mask classifier.

Pure modules: no I/O in __init__. Inputs are float tensors [N, 3, H, W], RGB, normalised as
(pixel - 127.5) / 128. Dense layers take features flattened in (C, H, W) order; the
conversion script (training/convert_mtcnn.py) reorders the original Caffe-order weights.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
import torch.nn.functional as F

from pipeline.engine.config import ClassifierConfig


class PNet(nn.Module):
    """Proposal net, fully convolutional. [N,3,H,W] -> (regression [N,4,h,w], face prob [N,h,w]),
    h = (H - 10) // 2 + 1 - 2 ... one output cell per 12x12 window at stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        return self.prelu3(self.conv3(x))

    def forward(self, x: torch.Tensor):
        x = self.features(x)
        logits = self.conv4_1(x)
        return self.conv4_2(x), torch.softmax(logits, dim=1)[:, 1]


class RNet(nn.Module):
    """Refine net. [N,3,24,24] -> (regression [N,4], face prob [N])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.flatten(1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net. [N,3,48,48] -> (regression [N,4], landmarks [N,10] as x1..x5 y1..y5 relative
    to the box, face prob [N])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


class MaskClassifier(nn.Module):
    """Mask classifier in the spirit of the report's 3 conv + 2 linear net, made smaller and
    sturdier: conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool after all but the last),
    a 2x2 adaptive average pool that keeps upper/lower face apart, then two linear layers.

    [N,3,S,S] (S = config.crop_size) -> logits [N, num_classes] in pipeline.records.CLASSES order.
    """

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = config or ClassifierConfig()
        c = self.config
        blocks: list[nn.Module] = []
        cin = 3
        for k, cout in enumerate(c.channels):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            if k < len(c.channels) - 1:
                blocks.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(cin * 4, c.hidden)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(c.hidden, c.num_classes)

    def reset_parameters(self) -> None:
        """Xavier-uniform init for every conv and linear weight (the report's choice)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))

    def config_dict(self) -> dict:
        d = dataclasses.asdict(self.config)
        d["channels"] = list(d["channels"])
        return d


NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet, "classifier": MaskClassifier}
"""Folder name in weights/ -> module class."""
