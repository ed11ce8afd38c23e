"""MTCNN face detection: image pyramid -> P-Net -> R-Net -> O-Net.

Stage 1 runs P-Net fully convolutionally over every pyramid level and keeps windows above the
first threshold (NMS within each level, then across levels). Stages 2 and 3 crop every
surviving candidate in one batched op (pipeline.crops), refine it with R-Net then O-Net, and
apply box regression, squaring and NMS. O-Net also gives 5 landmarks.

Boxes are float32 [N,4] x1,y1,x2,y2 in pixels of the input image.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .boxes import batched_nms, calibrate_boxes, square_boxes
from .config import DetectorConfig
from .crops import crop_and_resize
from .nets import ONet, PNet, RNet

PNET_STRIDE = 2
PNET_CELL = 12


@dataclass(frozen=True)
class FaceBoxes:
    """Faces found in one image. boxes float32 [N,4]; scores [N]; landmarks [N,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def pyramid_scales(height: int, width: int, config: DetectorConfig) -> list[float]:
    """Scales at which a min_face face becomes P-Net's 12 px window, shrinking by
    scale_factor until the image's short side falls below 12 px."""
    scale = 12.0 / config.min_face
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= config.scale_factor
        short *= config.scale_factor
    return scales


def build_pyramid(image_rgb: np.ndarray, scales: list[float]) -> list[np.ndarray]:
    """Resize the image to every scale (size int(side * scale + 1), as the original).

    Each level is made from the previous (larger) one with bilinear interpolation, so every
    step shrinks by at most ~0.71 and aliasing stays low at a fraction of area-resize's cost.
    A first step that shrinks by more than half uses area interpolation.
    """
    h, w = image_rgb.shape[:2]
    levels = []
    src = image_rgb
    for s in scales:
        size = (int(w * s + 1), int(h * s + 1))
        ratio = size[0] / src.shape[1]
        interp = cv2.INTER_AREA if ratio < 0.5 else cv2.INTER_LINEAR
        level = cv2.resize(src, size, interpolation=interp)
        levels.append(level)
        src = level
    return levels


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Raw 0..255 pixels -> the nets' input range."""
    return (pixels - 127.5) * 0.0078125


def _mtcnn_crop_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """The original's crop window for a box: integer corners, pixels x1-1 .. x2 (1-based)."""
    b = boxes.trunc()
    return torch.stack([b[:, 0] - 1, b[:, 1] - 1, b[:, 2], b[:, 3]], dim=1)


class FaceDetector:
    """Three-stage MTCNN over one or more RGB uint8 images. Holds the nets; no I/O."""

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, config: DetectorConfig | None = None,
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.pnet = pnet.to(self.device).eval()
        self.rnet = rnet.to(self.device).eval()
        self.onet = onet.to(self.device).eval()
        self.config = config or DetectorConfig()

    # -- stage 1 -------------------------------------------------------------------------------
    def propose(self, image_rgb: np.ndarray, config: DetectorConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over the pyramid -> (squared candidate boxes [N,4], scores [N])."""
        h, w = image_rgb.shape[:2]
        scales = pyramid_scales(h, w, config)
        all_boxes, all_scores, all_offsets = [], [], []
        for scale, level in zip(scales, build_pyramid(image_rgb, scales)):
            x = torch.from_numpy(level).to(self.device).permute(2, 0, 1).unsqueeze(0).float()
            offsets, prob = self.pnet(normalize(x))
            ys, xs = torch.nonzero(prob[0] >= config.thresholds[0], as_tuple=True)
            if ys.numel() == 0:
                continue
            scores = prob[0, ys, xs]
            cells = torch.stack([xs, ys], dim=1).float()
            top_left = torch.floor((PNET_STRIDE * cells + 1) / scale)
            bottom_right = torch.floor((PNET_STRIDE * cells + PNET_CELL) / scale)
            boxes = torch.cat([top_left, bottom_right], dim=1)
            keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long),
                               config.nms_thresholds[0])
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_offsets.append(offsets[0, :, ys[keep], xs[keep]].T)
        if not all_boxes:
            empty = torch.zeros((0, 4), device=self.device)
            return empty, torch.zeros(0, device=self.device)
        boxes, scores = torch.cat(all_boxes), torch.cat(all_scores)
        offsets = torch.cat(all_offsets)
        keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long),
                           config.nms_thresholds[1])
        keep = keep[: config.max_candidates]
        boxes = calibrate_boxes(boxes[keep], offsets[keep], plus_one=False)
        return square_boxes(boxes), scores[keep]

    # -- stages 2 and 3 ---------------------------------------------------------------------------
    def refine(self, image: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """R-Net: [N,4] candidates -> fewer, calibrated, squared boxes [M,4]."""
        if boxes.shape[0] == 0:
            return boxes
        crops = crop_and_resize(image, _mtcnn_crop_boxes(boxes), 24)
        offsets, scores = self.rnet(normalize(crops))
        ok = scores > config.thresholds[1]
        boxes, scores, offsets = boxes[ok], scores[ok], offsets[ok]
        keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long),
                           config.nms_thresholds[2])
        return square_boxes(calibrate_boxes(boxes[keep], offsets[keep]))

    def output(self, image: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """O-Net: [N,4] -> (final boxes [M,4], scores [M], landmarks [M,5,2])."""
        if boxes.shape[0] == 0:
            return boxes, boxes.new_zeros(0), boxes.new_zeros((0, 5, 2))
        crops = crop_and_resize(image, _mtcnn_crop_boxes(boxes), 48)
        offsets, points, scores = self.onet(normalize(crops))
        ok = scores > config.thresholds[2]
        boxes, scores, offsets, points = boxes[ok], scores[ok], offsets[ok], points[ok]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = w * points[:, :5] + boxes[:, 0:1] - 1
        ly = h * points[:, 5:] + boxes[:, 1:2] - 1
        landmarks = torch.stack([lx, ly], dim=2)
        boxes = calibrate_boxes(boxes, offsets)
        keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long),
                           config.nms_thresholds[3], mode="min")
        return boxes[keep], scores[keep], landmarks[keep]

    @torch.inference_mode()
    def detect(self, image_rgb: np.ndarray, config: DetectorConfig | None = None) -> FaceBoxes:
        """Find faces in one HxWx3 uint8 RGB image."""
        config = config or self.config
        image_rgb = np.ascontiguousarray(image_rgb)
        boxes, _ = self.propose(image_rgb, config)
        image = torch.from_numpy(image_rgb).to(self.device).permute(2, 0, 1).unsqueeze(0).float()
        boxes = self.refine(image, boxes, config)
        boxes, scores, landmarks = self.output(image, boxes, config)
        return FaceBoxes(boxes.float().cpu().numpy().astype(np.float32),
                         scores.float().cpu().numpy().astype(np.float32),
                         landmarks.float().cpu().numpy().astype(np.float32))
