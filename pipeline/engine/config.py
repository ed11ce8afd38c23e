"""Frozen settings for both stages. Every field has a documented default."""
from __future__ import annotations

from dataclasses import dataclass


DETECTOR_WEIGHTS = {"photo": "", "camera": "camera/"}
"""The face detector's weight sets -> the prefix of their pnet/, rnet/, onet/ folders in a
weights folder (pipeline.engine.weights). "photo": the default, for photos and uploaded videos.
"camera": R-Net and O-Net fine-tuned with camera copies of the training scenes as well
(training.train_detector --camera-share; JPEG, blur, noise, low light), for grainy, blurred
frames: `watch` and the webcam use it. Face AP >= 20 px, photo against camera: ILC split 0.758 /
0.748, its small view 0.812 / 0.807, degraded view 0.693 / 0.770, adityap27 crowds 0.729 / 0.665
(weights/metrics.json), so photos keep "photo".
Both sets merged (P-Net is the same; every "photo" face, plus each "camera" face scoring >= 0.8
that overlaps none at IoU 0.5, its score x 0.8) was measured and not taken (2026-12-03, min_face
20): face AP >= 20 px 0.765 / 0.814 / 0.742 / 0.734 on the four sets above, but against "photo"
it finds 6 / 1 / 22 / 1 more faces for 31 / 18 / 27 / 13 more false boxes (camera faces >= 0.7:
0.766 / 0.814 / 0.750 / 0.734, 7 / 1 / 26 / 1 more faces for 47 / 30 / 53 / 16 more false
boxes), at about 1.5x the detector time: more false alerts than faces on photos, and less than
"camera" alone on degraded frames (0.770)."""
DEFAULT_DETECTOR = "photo"

REFERENCE_THRESHOLDS = (0.6, 0.7, 0.7)
"""P-Net, R-Net, O-Net cut-offs of the original MTCNN (and facenet-pytorch's defaults)."""


@dataclass(frozen=True)
class DetectorConfig:
    """MTCNN settings.

    min_face: smallest face side, in pixels, that the pyramid looks for (the first scale is
        12 / min_face). Smaller finds smaller faces and costs more time. 20 stays the default
        (measured on the ILC split seen small, median face 21 px, and on the adityap27
        crowds): 12 raises face AP over all sizes by 0.06 on the small view but lowers AP
        >= 20 px on the crowds by 0.04, at 1.3-1.8x the time; the min_face-20 pyramid plus two
        finer levels (scales 1.0 and 0.775) gains 0.06 (small view) and 0.03 (crowds) over all
        sizes but loses 0.017 and 0.008 at >= 20 px (ILC as it is: -0.016 at >= 20 px, -0.013
        over all sizes), at 2-3x the time. Pages and the CLI let users choose 12.
    scale_factor: ratio between pyramid levels (0.709 = 1/sqrt(2), as in the paper).
    thresholds: face-probability cut-offs of P-Net, R-Net and O-Net. R-Net's is 0.5, not
        the original 0.7: our fine-tuned R-Net scores some masked faces (a mask pulled down
        to the chin) between the two, and O-Net then accepts them. On the held-out ILC split
        (faces >= 20 px) face AP is 0.758 at 0.5 against 0.754 at 0.7 (adityap27 crowds:
        0.729 against 0.714), and the original weights get 0.674 against 0.666
        (training.evaluate_detector); O-Net sees a few more crops per frame. O-Net's 0.7
        stays: 0.5 (0.3) raises face AP (it only adds to the tail of the ranking) by 0.004
        (0.009) on ILC, 0.021 (0.028) on its degraded view, 0.005 on the crowds, but finds 4
        (9) more of ILC's 683 faces >= 20 px for 52 (115) more false boxes: more false alerts
        than faces gained. P-Net and R-Net at 0.5 and 0.4 (O-Net 0.7): +0.013 ILC, +0.018
        degraded, -0.015 crowds, 1.5x the time; not taken.
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
