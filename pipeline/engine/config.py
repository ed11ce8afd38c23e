"""Frozen settings for both stages. Every field has a documented default."""
from __future__ import annotations

from dataclasses import dataclass


REFERENCE_THRESHOLDS = (0.6, 0.7, 0.7)
"""P-Net, R-Net, O-Net cut-offs of the original MTCNN (and facenet-pytorch's defaults)."""


@dataclass(frozen=True)
class DetectorConfig:
    """MTCNN settings.

    min_face: smallest face side, in pixels, that the pyramid looks for (the first scale is
        12 / min_face). Smaller finds smaller faces and costs more time.
    scale_factor: ratio between pyramid levels (0.709 = 1/sqrt(2), as in the paper).
    thresholds: face-probability cut-offs of P-Net, R-Net and O-Net. R-Net's is 0.5, not
        the original 0.7: our fine-tuned R-Net scores some masked faces (a mask pulled down
        to the chin) between the two, and O-Net then accepts them. On the held-out ILC split
        (faces >= 20 px) face AP is 0.758 at 0.5 against 0.754 at 0.7 (adityap27 crowds:
        0.729 against 0.714), and the original weights get 0.674 against 0.666
        (training.evaluate_detector); O-Net sees a few more crops per frame.
        REFERENCE_THRESHOLDS are the original MTCNN's.
    nms_thresholds: IoU for NMS within one pyramid scale, across scales, after R-Net, and
        after O-Net (the last uses intersection over the smaller box, as the original).
    max_candidates: cap on P-Net candidates passed to R-Net (highest scores kept), so a
        pathological image cannot blow up memory or time.
    """

    min_face: float = 20.0
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.5, 0.7)
    nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7)
    max_candidates: int = 4000


@dataclass(frozen=True)
class ClassifierConfig:
    """Mask classifier settings (also stored in the classifier's config.json).

    crop_size: side of the square input crop, in pixels.
    margin: the face box is first made square (side = max(w, h)), then grown by this fraction
        of the side on every edge, so that chin, nose and the mask's edges are in view whether
        the box came from our detector (tight) or from a person (often looser or tighter).
    channels: output channels of the conv blocks.
    hidden: width of the first linear layer.
    temperature: the logits are divided by this before the softmax (fitted on validation,
        training.calibrate); 1.0: as trained.
    logit_bias: added to logits / temperature, per class (CLASSES order), before the softmax:
        the decision rule for the target's class mix (few `incorrect` faces), chosen on
        validation (training.calibrate). The label is the argmax of the result.
    """

    crop_size: int = 64
    margin: float = 0.15
    channels: tuple[int, ...] = (24, 48, 96, 128)
    hidden: int = 64
    num_classes: int = 3
    temperature: float = 1.0
    logit_bias: tuple[float, ...] = (0.0, 0.0, 0.0)
