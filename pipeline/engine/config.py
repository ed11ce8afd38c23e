"""Frozen settings for both stages. Every field has a documented default."""
from __future__ import annotations

from dataclasses import dataclass


DETECTOR_WEIGHTS = {"photo": "", "camera": "camera/"}
"""The face detector's weight sets -> the prefix of their pnet/, rnet/, onet/ folders in a
weights folder (pipeline.engine.weights). "photo": for sharp photos, the weight set that loads by
default.
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
"camera" alone on degraded frames (0.770).
With the small-face pass (DetectorConfig.small_face_below), "camera" finds one 15 px face on
dlib's faceless dogs photo ("photo" none): `watch` and the webcam, which use "camera", run the
main pass only.
A choice per image is AUTO_DETECTOR (below)."""
DEFAULT_DETECTOR = "photo"
AUTO_DETECTOR = "auto"
"""Not a weight set: each image gets "camera" when its JPEG blockiness
(pipeline.engine.image_quality.jpeg_blockiness) is at least AUTO_BLOCKINESS or its sensor noise
(noise_sigma) at least AUTO_NOISE, else "photo" (pipeline.engine.mask_detector.auto_weights).
The default for photos and video files (DEFAULT_MEDIA_DETECTOR; a video clip takes one set for
all its frames, AUTO_CLIP_FRAMES); the weight set that loads by default elsewhere stays
DEFAULT_DETECTOR.
Scored on the four sets above in weights/metrics.json ("detector" -> "auto") and the model card;
with blockiness alone (2026-12-03, min_face 12) it was about the better of "photo" and "camera"
on each. Blockiness finds JPEG and strong H.264 compression, not blur or noise as such. Measured
(2026-12-03, face AP >= 20 px, min_face 12) on the degraded view made again with its last step
changed, "photo" / "camera" / blockiness alone / with the noise arm:
  no compression (JPEG 100)      0.693 / 0.753 / 0.693 / 0.720 (camera for 0 / 147 of 295)
  H.264 CRF 26 (PyAV, libx264)   0.667 / 0.709 / 0.669 / 0.669
  H.264 CRF 32                   0.570 / 0.640 / 0.624 / 0.624
  H.264 CRF 38                   0.409 / 0.496 / 0.496 / 0.496
and the noise arm changed nothing for the worse on the four sets (small view: 4 more images
take "camera", AP the same). Mildly compressed blurred or noisy frames stay with "photo"
(noise estimates below 6 after compression), where "camera" would gain; noise (Immerkaer),
sharpness and gradient measures did not separate them from sharp photos. Against it: on
compressed copies of a faceless photo "camera" finds false faces that "photo" does not (JPEG
30: 3 against 0), though AP, which counts false boxes, favours "camera" on every degraded set.
The choice costs 1.5 / 13 / 141 ms on a 640x480 / 1920x1080 / 4000x3000 image (both measures,
2-core CPU; docs/PERFORMANCE.md, benchmarks.auto_detector), and "auto" loads the camera R-Net
and O-Net beside the photo ones."""
AUTO_BLOCKINESS = 1.25
"""jpeg_blockiness from which AUTO_DETECTOR takes "camera" (1.2-1.3 did about as well above)."""
AUTO_NOISE = 6.0
"""noise_sigma (grey levels) from which AUTO_DETECTOR takes "camera"."""
AUTO_CLIP_FRAMES = 24
"""A video clip with "auto" runs one weight set throughout: the one that more than half of its
first AUTO_CLIP_FRAMES frames pick (MaskDetector.for_clip; 1-2 s of video). Per frame, the
choice flipped 14 times in the sample clip's 72 frames and 26 times in its H.264 CRF 38 copy
(blockiness differs from frame to frame of one clip), and the tracker would follow people on
two detectors' boxes."""
DEFAULT_MEDIA_DETECTOR = AUTO_DETECTOR
"""The face detector for photos and video files unless told otherwise: `detect`, `batch` (every
range of a video runs the set the file's first frames pick) and the Home, Photo and Video pages
(one cached engine for the three). The face AP >= 20 px of "auto" is never below that of "photo"
on the sets measured above. Live cameras (the webcam, `watch`) use "camera". The batched video
path (pipeline.engine.batched) serves "auto" too, batching frames by choice."""
DETECTOR_CHOICES = (*DETECTOR_WEIGHTS, AUTO_DETECTOR)
"""What `--detector` and the pages' "Face detector" accept."""

REFERENCE_THRESHOLDS = (0.6, 0.7, 0.7)
"""P-Net, R-Net, O-Net cut-offs of the original MTCNN (and facenet-pytorch's defaults)."""


@dataclass(frozen=True)
class DetectorConfig:
    """MTCNN settings.

    min_face: smallest face side, in pixels, looked for. The main pyramid starts at faces of
        max(min_face, small_face_below) (its first scale is 12 / that); faces below
        small_face_below, down to min_face, come from the small-face pass. Smaller costs more
        time; 12 (P-Net's own window) is the default. Pages and the CLI let users raise it.
        Below 12 the pass's levels upsample the photo; the nets were not trained on upsampled
        faces and find few under 12 px. Measured (2026-12-03, photo weights; face AP over all
        sizes on the small view / degraded view / crowds, 0.681 / 0.449 / 0.681 at 12; AP >= 20
        px unchanged by construction): 9 gives 0.676 / 0.445 / 0.690 at 1.2 / 1.5 / 1.9x the
        detector time, 8 gives 0.670 / - / 0.686, 7 gives 0.682 / 0.451 / 0.694 at 1.7 / 2.1 /
        2.6x. Only the crowds gain (+0.013 at 7, 27 of their 185 faces are under 12 px; 176 of
        the small view's 728), so 12 stays the default; --min-face accepts down to 6.
    scale_factor: ratio between pyramid levels (0.709 = 1/sqrt(2), as in the paper). A denser
        pyramid does not pay (2026-12-03, photo weights, main pass, face AP >= 20 px on the ILC
        split / small view / degraded view / crowds): 0.709 0.758 / 0.812 / 0.693 / 0.729;
        0.75 0.735 / 0.806 / 0.714 / 0.726 at 1.1x the time; 0.8 0.759 / 0.801 / 0.713 /
        0.662 at 1.3-1.4x. Neither gains on the small view or the crowds.
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
        REFERENCE_THRESHOLDS are the original MTCNN's. A face's score is O-Net's probability:
        ranking by O-Net's logit margin plus R-Net's (and P-Net's) moved face AP by -0.018 to
        +0.005 on the four sets (2026-12-03), not taken.
    nms_thresholds: IoU for NMS within one pyramid scale, across scales, after R-Net, and
        after O-Net (the last uses intersection over the smaller box, as the original).
        The original's values stay. Swept on the main pass (2026-12-03, photo weights, face
        AP >= 20 px on the ILC split / small view / degraded view / crowds; 0.758 / 0.812 /
        0.693 / 0.729 now): after R-Net 0.85 (0.8-0.9 alike) 0.767 / 0.809 / 0.700 / 0.730,
        0.6 0.749 / 0.815 / 0.668 / 0.715; after O-Net 0.6 0.759 / 0.812 / 0.693 / 0.724, 0.8
        0.756 / 0.811 / 0.695 / 0.729; within a scale 0.4 0.758 / 0.826 / 0.664 / 0.716, 0.6
        0.751 / 0.817 / 0.699 / 0.707. None gains on both the small view and the crowds, the
        two sets most like the held-out photos (median face 21 px, crowds).
    max_candidates: cap on P-Net candidates passed to R-Net (highest scores kept), so a
        pathological image cannot blow up memory or time.
    small_face_below: the small-face pass. When min_face is below it, the main pyramid
        stops at faces of this side, and a second pass runs the three stages over the finer
        levels of a min_face pyramid (pipeline.engine.cascade.small_face_scales). Each face it
        finds whose short side is under small_face_below and that overlaps no main-pass face
        is added, ranked after all of them (its score times O-Net's threshold;
        pipeline.engine.cascade.add_small_faces). So faces of 12-20 px are found without what
        a plain min_face-12 pyramid costs the larger faces (its finer levels' candidates
        compete with theirs in NMS). 0: no pass, a plain pyramid from min_face.
        Measured (2026-12-03, training.evaluate_detector; face AP >= 20 px / over all sizes),
        the main pass alone (a plain pyramid from 20 px, the previous default) -> with the
        pass: photo weights, ILC split 0.758 / 0.740 -> 0.758 / 0.741; its small view (median
        face 21 px) 0.812 / 0.622 -> 0.812 / 0.681; degraded view 0.693 / 0.434 -> 0.693 /
        0.449; adityap27 crowds 0.729 / 0.664 -> 0.729 / 0.681. Camera weights: 0.748 / 0.728
        -> 0.748 / 0.733, 0.807 / 0.619 -> 0.807 / 0.681, 0.770 / 0.504 -> 0.772 / 0.523,
        0.665 / 0.608 -> 0.670 / 0.631. A plain min_face-12 pyramid instead (photo): 0.758 /
        0.740, 0.791 / 0.680, 0.677 / 0.442, 0.691 / 0.668. Small-pass faces must pass O-Net's
        threshold like any other; a higher cut-off for them (0.8-0.95) only lost AP over all
        sizes (small view 0.676-0.648). Detector time x1.3-1.6 on those sets, x1.8 on 640x480
        group photos (benchmarks.small_faces, docs/PERFORMANCE.md). Most of it is P-Net over
        the full-resolution level (47 ms of the pass's 59 ms per ILC photo, one thread); a
        P-Net cut-off of 0.7 (0.8) for the pass saves 4 (6) ms of R-Net and O-Net but loses
        0.006 (0.008) AP over all sizes on the small view, and dropping pass candidates
        mostly inside a main face before R-Net saves 1.5-3 ms with the same AP; neither is
        taken. The stream drivers (the webcam's pipeline.engine.temporal and
        pipeline.streams.webcam, `watch`) run the main pass only: the real-time budget.
    """

    min_face: float = 12.0
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.5, 0.7)
    nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7)
    max_candidates: int = 4000
    small_face_below: float = 20.0


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
