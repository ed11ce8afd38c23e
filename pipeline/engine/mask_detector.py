"""The two-stage MaskWatch engine: MTCNN faces -> mask classifier, as Detection objects."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from pipeline.engine.classifier import MaskClassifierRunner
from pipeline.engine.image_quality import jpeg_blockiness, luminance, noise_sigma
from pipeline.engine.config import AUTO_BLOCKINESS, AUTO_DETECTOR, AUTO_NOISE, DEFAULT_DETECTOR, DetectorConfig
from pipeline.engine.crops import image_to_tensor
from pipeline.engine.cascade import FaceDetector
from pipeline.engine.weights import HubSettings, WeightsSource, load_nets
from pipeline.records import CLASSES, Detection


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu. 'cuda' without a GPU raises ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def auto_weights(image_rgb: np.ndarray) -> str:
    """The weight set the "auto" detector (AUTO_DETECTOR) takes for this image: "camera" when its
    JPEG blockiness is at least AUTO_BLOCKINESS or its noise at least AUTO_NOISE, else "photo"."""
    y = luminance(image_rgb)
    if jpeg_blockiness(y) >= AUTO_BLOCKINESS or noise_sigma(y) >= AUTO_NOISE:
        return "camera"
    return "photo"


def to_detections(boxes, scores, landmarks, probs) -> list[Detection]:
    """Arrays of one image's faces (boxes [N,4], scores [N] or None, landmarks [N,5,2] or
    None, class probabilities [N,3] or None) -> Detection objects, in order."""
    out = []
    for k in range(len(boxes)):
        p = probs[k] if probs is not None else None
        label = CLASSES[int(np.argmax(p))] if p is not None else ""
        out.append(Detection(
            box=tuple(float(v) for v in boxes[k]),
            score=float(scores[k]) if scores is not None else 1.0,
            landmarks=tuple((float(x), float(y)) for x, y in landmarks[k]) if landmarks is not None else (),
            label=label,
            probs=tuple((c, float(p[i])) for i, c in enumerate(CLASSES)) if p is not None else ()))
    return out


class MaskDetector:
    """Faces and their mask labels for RGB uint8 images. Thread-safe for concurrent callers.
    lock: held while the nets run (other drivers of the same nets - pipeline.engine.batched,
    pipeline.engine.temporal - hold it too)."""

    def __init__(self, detector: FaceDetector, classifier: MaskClassifierRunner,
                 source: WeightsSource | None = None, detector_weights: str = DEFAULT_DETECTOR,
                 camera_detector: FaceDetector | None = None):
        """detector: the face detector (the "photo" one when detector_weights is "auto").
        camera_detector: with "auto" only, the "camera" one, taken for blocky or grainy images
        (detector_for)."""
        self.detector = detector
        self.camera_detector = camera_detector
        self.classifier = classifier
        self.source = source
        self.detector_weights = detector_weights
        self.device = detector.device
        self.lock = threading.Lock()

    @classmethod
    def load(cls, device: str = "auto", settings: HubSettings | None = None,
             config: DetectorConfig | None = None, detector: str = DEFAULT_DETECTOR) -> "MaskDetector":
        """detector: the face detector's weight set, "photo" (default) or "camera" (grainy,
        blurred frames; pipeline.engine.config.DETECTOR_WEIGHTS), or "auto": both, chosen per
        image (AUTO_DETECTOR)."""
        dev = pick_device(device)
        auto = detector == AUTO_DETECTOR
        nets, source = load_nets(settings, detector="photo" if auto else detector)
        camera = None
        if auto:
            cam, _ = load_nets(settings, nets=("pnet", "rnet", "onet"), detector="camera")
            camera = FaceDetector(cam["pnet"], cam["rnet"], cam["onet"], config, dev)
        return cls(FaceDetector(nets["pnet"], nets["rnet"], nets["onet"], config, dev),
                   MaskClassifierRunner(nets["classifier"], dev), source, detector, camera)

    @property
    def chooses_per_image(self) -> bool:
        """True for detector "auto": detect picks a face detector for each image (detector_for);
        drivers that run the nets themselves (pipeline.engine.batched) ask detector_for too."""
        return self.camera_detector is not None

    def detector_for(self, image_rgb: np.ndarray) -> FaceDetector:
        """The face detector for this image: the camera one when there is one (detector "auto")
        and auto_weights picks it for the image, else `detector`."""
        if self.chooses_per_image and auto_weights(image_rgb) == "camera":
            return self.camera_detector
        return self.detector

    def for_clip(self, frames: list[np.ndarray]) -> "MaskDetector":
        """The engine for one video clip, given its first frames (AUTO_CLIP_FRAMES of them): with
        "auto", an engine that runs one weight set on every frame of the clip, the one that more
        than half of these frames pick (auto_weights), so that people are tracked on one
        detector's boxes; otherwise this engine. It shares this engine's nets and lock."""
        if not self.chooses_per_image or not frames:
            return self
        camera = 2 * sum(auto_weights(f) == "camera" for f in frames) > len(frames)
        clip = MaskDetector(self.camera_detector if camera else self.detector, self.classifier,
                            self.source, "camera" if camera else "photo")
        clip.lock = self.lock
        return clip

    def _image_tensor(self, image_rgb: np.ndarray) -> torch.Tensor:
        return image_to_tensor(image_rgb, self.device)

    def detect(self, image_rgb: np.ndarray, config: DetectorConfig | None = None,
               classify: bool = True) -> list[Detection]:
        """All faces in the image, with labels (unless classify=False), highest score first."""
        detector = self.detector_for(image_rgb)
        with self.lock, torch.inference_mode():
            faces = detector.detect(image_rgb, config)
            probs = None
            if classify and len(faces):
                probs = self.classifier.probabilities(self._image_tensor(image_rgb),
                                                      torch.from_numpy(faces.boxes))
        return to_detections(faces.boxes, faces.scores, faces.landmarks, probs)

    def classify(self, image_rgb: np.ndarray, boxes) -> list[Detection]:
        """Label given face boxes ([N,4] pixels), one Detection per box, in order."""
        b = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        with self.lock, torch.inference_mode():
            probs = self.classifier.probabilities(self._image_tensor(image_rgb), b)
        return to_detections(b.numpy(), None, None, probs)

    def with_config(self, onet_threshold: float | None = None, **changes) -> DetectorConfig:
        """The detector's config with some fields changed (e.g. min_face=15); onet_threshold,
        if given, replaces only the last (O-Net) stage's threshold."""
        if onet_threshold is not None:
            changes["thresholds"] = (*self.detector.config.thresholds[:2], float(onet_threshold))
        return replace(self.detector.config, **changes)
