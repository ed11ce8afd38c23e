"""The four networks: P-Net, R-Net, O-Net (MTCNN, Zhang et al. 2016) and the mask classifier.

Pure modules: no I/O in __init__. Inputs are float tensors [N, 3, H, W], RGB, normalised by
`normalize` as (pixel - 127.5) / 128. Dense layers take features flattened in (C, H, W) order;
the conversion script (training/convert_mtcnn.py) reorders the original Caffe-order weights.

Each MTCNN net is written once, as data (CascadeNet.TRUNK, DENSE, HEADS): its layers, its
forward (`forward_logits`, `forward`), its feature blocks for training (`blocks`) and its fast
inference form (`inference_form`: folded input normalisation, fused heads, oneDNN layout) all
come from that one description.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
import torch.nn.functional as F
import torch.utils.mkldnn as mkldnn_utils

from pipeline.engine.config import ClassifierConfig

PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
"""Input normalisation of every net: (raw pixel - PIXEL_MEAN) * PIXEL_SCALE (= / 128)."""


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Raw 0..255 pixels -> the nets' input range."""
    return (pixels - PIXEL_MEAN) * PIXEL_SCALE


def face_prob(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Face/non-face logits (2 along `dim`) -> the face probability (2-way softmax, as the
    reference, so thresholds compare the same numbers)."""
    return torch.softmax(logits, dim=dim).select(dim, 1)


class CascadeNet(nn.Module):
    """One MTCNN net, built from its description:

    TRUNK: per conv block k = 1, 2, ..: (in, out, kernel, max pool (kernel, stride) or None);
        block k is conv{k} -> prelu{k} [-> pool{k}].
    DENSE: (in, out) of the dense layer + PReLU after the trunk (dense{n+1}, prelu{n+1}), or
        None for a fully convolutional net.
    HEADS: (name, outputs) of the heads, in the order (face logits, box offsets[, landmarks]);
        1x1 convs on a fully convolutional net, linear layers otherwise.
    """

    TRUNK: tuple = ()
    DENSE: tuple[int, int] | None = None
    HEADS: tuple = ()

    def __init__(self):
        super().__init__()
        for k, (cin, cout, kernel, pool) in enumerate(self.TRUNK, 1):
            setattr(self, f"conv{k}", nn.Conv2d(cin, cout, kernel))
            setattr(self, f"prelu{k}", nn.PReLU(cout))
            if pool is not None:
                setattr(self, f"pool{k}", nn.MaxPool2d(*pool, ceil_mode=True))
        width = self.TRUNK[-1][1]
        if self.DENSE is not None:
            n = len(self.TRUNK) + 1
            setattr(self, f"dense{n}", nn.Linear(*self.DENSE))
            setattr(self, f"prelu{n}", nn.PReLU(self.DENSE[1]))
            width = self.DENSE[1]
        for name, outputs in self.HEADS:
            setattr(self, name, nn.Conv2d(width, outputs, 1) if self.DENSE is None else nn.Linear(width, outputs))

    def blocks(self) -> list:
        """The feature blocks, in order: one function per conv block (conv, PReLU, pool), then
        the dense layer + PReLU (flattening its input) if the net has one."""
        def conv_block(k):
            conv, prelu, pool = (getattr(self, f"{n}{k}", None) for n in ("conv", "prelu", "pool"))
            return lambda x: prelu(conv(x)) if pool is None else pool(prelu(conv(x)))
        out = [conv_block(k) for k in range(1, len(self.TRUNK) + 1)]
        if self.DENSE is not None:
            n = len(self.TRUNK) + 1
            dense, prelu = getattr(self, f"dense{n}"), getattr(self, f"prelu{n}")
            out.append(lambda x: prelu(dense(x.flatten(1))))
        return out

    def forward_logits(self, x: torch.Tensor, start: int = 0):
        """-> (face logits, box offsets, landmarks or None): [N,2], [N,4], [N,10] ([N,C,h,w]
        maps for a fully convolutional net). start: x is the output of the first `start`
        blocks (see blocks())."""
        for block in self.blocks()[start:]:
            x = block(x)
        heads = [getattr(self, name)(x) for name, _ in self.HEADS]
        return heads[0], heads[1], heads[2] if len(heads) > 2 else None

    def forward(self, x: torch.Tensor):
        """Normalised input -> (box offsets, [landmarks,] face probability)."""
        logits, offsets, landmarks = self.forward_logits(x)
        prob = face_prob(logits)
        return (offsets, prob) if landmarks is None else (offsets, landmarks, prob)


class PNet(CascadeNet):
    """Proposal net, fully convolutional. [N,3,H,W] -> (regression [N,4,h,w], face prob [N,h,w]),
    h = (H - 10) // 2 + 1 - 2 ... one output cell per 12x12 window at stride 2."""

    TRUNK = ((3, 10, 3, (2, 2)), (10, 16, 3, None), (16, 32, 3, None))
    HEADS = (("conv4_1", 2), ("conv4_2", 4))


class RNet(CascadeNet):
    """Refine net. [N,3,24,24] -> (regression [N,4], face prob [N])."""

    TRUNK = ((3, 28, 3, (3, 2)), (28, 48, 3, (3, 2)), (48, 64, 2, None))
    DENSE = (576, 128)
    HEADS = (("dense5_1", 2), ("dense5_2", 4))


class ONet(CascadeNet):
    """Output net. [N,3,48,48] -> (regression [N,4], landmarks [N,10] as x1..x5 y1..y5 relative
    to the box, face prob [N])."""

    TRUNK = ((3, 32, 3, (3, 2)), (32, 64, 3, (3, 2)), (64, 64, 3, (2, 2)), (64, 128, 2, None))
    DENSE = (1152, 256)
    HEADS = (("dense6_1", 2), ("dense6_2", 4), ("dense6_3", 10))


class InferenceNet:
    """The inference form of a CascadeNet (see inference_form): the same function, computed
    faster, on raw 0..255 pixels.

    __call__(x) -> the module's forward outputs ((offsets, [landmarks,] face prob));
    raw(x) -> all heads as one tensor [N, 4 (+10) + 2(, h, w)]: offsets, [landmarks,] logits.
    """

    def __init__(self, net: CascadeNet, device: torch.device, chunk: int | None = None):
        self.mkldnn = device.type == "cpu" and torch.backends.mkldnn.is_available()
        self.chunk = chunk
        self.conv_heads = net.DENSE is None
        # heads in output order: offsets, [landmarks,] logits
        order = [name for name, _ in net.HEADS[1:]] + [net.HEADS[0][0]]
        self.n_landmarks = net.HEADS[2][1] if len(net.HEADS) > 2 else 0
        with torch.no_grad():
            self.trunk = []
            for k, (_, _, _, pool) in enumerate(net.TRUNK, 1):
                conv = copy.deepcopy(getattr(net, f"conv{k}")).float()
                prelu = copy.deepcopy(getattr(net, f"prelu{k}")).float()
                if k == 1:
                    fold_normalisation(conv)
                if self.mkldnn:
                    conv = mkldnn_utils.MkldnnConv2d(conv, torch.float)
                    prelu = mkldnn_utils.MkldnnPrelu(prelu, torch.float)
                self.trunk.append((conv, prelu, pool))
            w = torch.cat([getattr(net, h).weight.detach().reshape(getattr(net, h).weight.shape[0], -1)
                           for h in order]).float().contiguous()
            b = torch.cat([getattr(net, h).bias.detach() for h in order]).float().contiguous()
            self.heads = (w, b)
            self.dense = None
            if net.DENSE is not None:
                n = len(net.TRUNK) + 1
                lin, prelu = getattr(net, f"dense{n}"), getattr(net, f"prelu{n}")
                self.dense = (lin.weight.detach().float().contiguous(), lin.bias.detach().float().contiguous(),
                              prelu.weight.detach().float().contiguous())
            elif self.mkldnn:     # heads as one 1x1 conv inside the blocked layout: 6 channels out, not 32
                conv = nn.Conv2d(w.shape[1], w.shape[0], 1)
                conv.weight.copy_(w[:, :, None, None])
                conv.bias.copy_(b)
                self.heads_conv = mkldnn_utils.MkldnnConv2d(conv.eval(), torch.float)

    def _trunk(self, x: torch.Tensor, dense: bool = True) -> torch.Tensor:
        """Raw pixels [N,3,H,W] -> last conv features, dense NCHW (dense=False: left in
        oneDNN's blocked layout when on it)."""
        x = x.to_mkldnn() if self.mkldnn else x.contiguous(memory_format=torch.channels_last)
        for conv, prelu, pool in self.trunk:
            x = prelu(conv(x))
            if pool is not None:
                x = F.max_pool2d(x, pool[0], pool[1], ceil_mode=True)
        if not dense:
            return x
        return x.to_dense() if self.mkldnn else x.contiguous()

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels -> every head's output in one tensor (offsets, [landmarks,] logits).
        Dense nets run in chunks of `chunk` inputs on CPU, so the wide first-layer
        activations stay in cache (measured)."""
        if self.conv_heads:
            if self.mkldnn:
                return self.heads_conv(self._trunk(x, dense=False)).to_dense()
            return F.conv2d(self._trunk(x), self.heads[0][:, :, None, None], self.heads[1])
        if self.mkldnn and self.chunk and x.shape[0] > self.chunk:
            return torch.cat([self.raw(x[i:i + self.chunk]) for i in range(0, x.shape[0], self.chunk)])
        w, b, a = self.dense
        f = F.prelu(F.linear(self._trunk(x).flatten(1), w, b), a)
        return F.linear(f, *self.heads)

    def split(self, out: torch.Tensor):
        """raw()'s output -> (offsets, [landmarks,] face prob), as the module's forward."""
        k = 4 + self.n_landmarks
        prob = face_prob(out[:, k:k + 2])
        return (out[:, :4], prob) if not self.n_landmarks else (out[:, :4], out[:, 4:k], prob)

    def __call__(self, x: torch.Tensor):
        return self.split(self.raw(x))


def fold_normalisation(conv: nn.Conv2d) -> None:
    """Make a first conv take raw 0..255 pixels: fold `normalize` into its weights, in place."""
    w = conv.weight * PIXEL_SCALE
    conv.bias.copy_(conv.bias - PIXEL_MEAN * w.sum((1, 2, 3)))
    conv.weight.copy_(w)


def inference_form(net: CascadeNet, device: torch.device | str, chunk: int | None = None) -> InferenceNet:
    """The inference-only form of a net, made from its current weights (make it again after
    changing them): input normalisation folded into the first conv (raw pixels in); on CPU
    the conv/PReLU/max-pool trunk on oneDNN's blocked layout (weights reordered once), which
    is markedly faster there than NCHW or channels_last for these few-channel layers,
    elsewhere (CUDA) channels_last; all heads as one matrix product (P-Net: one 1x1 conv).
    chunk: dense nets run at most this many inputs at a time on CPU."""
    return InferenceNet(net, torch.device(device), chunk)


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
