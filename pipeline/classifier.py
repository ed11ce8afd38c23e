"""Stage 2: label face crops `mask`, `no_mask` or `incorrect`.

Crop rule (shared by training and inference, see ClassifierConfig): make the face box square
about its centre (side = max(w, h)), grow it by `margin` (0.15) of the side on every edge,
then resample that window to crop_size x crop_size (64 px) with area averaging; parts outside
the image read black. Input normalisation is the same as the detector's.
"""
from __future__ import annotations

import numpy as np
import torch

from .boxes import expand_boxes, square_boxes
from .config import ClassifierConfig
from .crops import crop_and_resize
from .nets import MaskClassifier
from .types import CLASSES


def classifier_windows(boxes: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """Face boxes [N,4] -> the square, margin-grown windows the classifier sees [N,4]."""
    return expand_boxes(square_boxes(boxes), config.margin)


def face_crops(image: torch.Tensor, boxes: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """image float [1,3,H,W] raw pixels, boxes [N,4] -> normalised crops [N,3,S,S]."""
    crops = crop_and_resize(image, classifier_windows(boxes, config), config.crop_size)
    return (crops - 127.5) * 0.0078125


def calibrated_probs(logits: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """Logits [N, C] -> probabilities [N, C]: softmax(logits / temperature + logit_bias), the
    classifier's calibration and decision rule (its config.json); argmax is the label."""
    z = logits.float() / config.temperature
    if any(config.logit_bias):
        z = z + torch.tensor(config.logit_bias, dtype=z.dtype, device=z.device)
    return torch.softmax(z, dim=1)


class MaskClassifierRunner:
    """Runs a MaskClassifier on the faces of an image, batched."""

    def __init__(self, net: MaskClassifier, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config

    @torch.inference_mode()
    def probabilities(self, image: torch.Tensor, boxes: torch.Tensor) -> np.ndarray:
        """image float [1,3,H,W] raw pixels on self.device, boxes [N,4] -> probs [N, 3]
        in CLASSES order (calibrated_probs: the config's temperature and decision rule)."""
        if boxes.shape[0] == 0:
            return np.zeros((0, len(CLASSES)), np.float32)
        logits = self.net(face_crops(image, boxes.to(self.device).float(), self.config))
        return calibrated_probs(logits, self.config).cpu().numpy()
