"""Per-batch box jitter and photometric augmentation, from the stored context crops.

For each face: jitter its box the way a detector or a person would draw it (scale, shift,
aspect), turn the jittered box into the classifier window exactly as inference does
(square about the centre, grow by `margin`), and sample that window (optionally rotated and
mirrored) from the context crop to crop_size px. Then imitate small, poor faces: lower the
effective resolution (area-downscale to r px and bilinear back up, as crop_and_resize enlarges
a small face), JPEG at that resolution, blur, and colour jitter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.85, 1.25)   # face box side multiplier
    shift: float = 0.10                          # max centre shift, fraction of the box side
    aspect: float = 0.15                         # log aspect-ratio change, +-
    rotate_deg: float = 15.0
    flip_p: float = 0.5
    rotate_p: float = 0.7
    lowres_p: float = 0.6                        # chance of a lower effective resolution
    lowres_px: tuple[int, int] = (12, 64)        # effective window side, log-uniform
    jpeg_p: float = 0.6
    jpeg_quality: tuple[int, int] = (30, 95)
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.4, 1.3)
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    gray_p: float = 0.05


NO_AUGMENT = AugmentConfig(scale=(1.0, 1.0), shift=0.0, aspect=0.0, rotate_deg=0.0, flip_p=0.0,
                           rotate_p=0.0, lowres_p=0.0, jpeg_p=0.0, blur_p=0.0, brightness=0.0,
                           contrast=0.0, saturation=0.0, gray_p=0.0)


def window_from_box(box: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Face box (x1,y1,x2,y2) -> classifier window (cx, cy, side): pipeline.engine.boxes.square_boxes
    then expand_boxes(margin)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] + w / 2, box[1] + h / 2, max(w, h) * (1 + 2 * margin))


def jitter_box(box: np.ndarray, rng: np.random.Generator, a: AugmentConfig) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = box[0] + w / 2, box[1] + h / 2
    s = rng.uniform(*a.scale)
    r = math.exp(rng.uniform(-a.aspect, a.aspect)) if a.aspect else 1.0
    side = math.sqrt(w * h)
    cx += rng.uniform(-a.shift, a.shift) * side
    cy += rng.uniform(-a.shift, a.shift) * side
    w, h = w * s * r, h * s / r
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def sample_window(ctx: np.ndarray, cx: float, cy: float, side: float, size: int,
                  angle_deg: float = 0.0, flip: bool = False) -> np.ndarray:
    """Bilinear-sample the square window (centre, side, rotated by angle, mirrored if flip) of
    ctx (HxWx3 uint8) at size x size; pixel j spans [j, j+1) as in crop_and_resize."""
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lin = rot @ np.diag([-1.0 if flip else 1.0, 1.0]) * (side / size)
    # src = c + lin @ (dst + 0.5 - size/2) in continuous coords; cv2 pixel centres are at ints
    off = np.array([cx, cy]) - 0.5 + lin @ np.array([0.5 - size / 2, 0.5 - size / 2])
    m = np.hstack([lin, off[:, None]]).astype(np.float64)
    return cv2.warpAffine(ctx, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def augment_one(ctx: np.ndarray, box: np.ndarray, size: int, margin: float,
                rng: np.random.Generator, a: AugmentConfig) -> np.ndarray:
    """Context crop + face box in its pixels -> augmented uint8 crop [size, size, 3]."""
    cx, cy, side = window_from_box(jitter_box(box, rng, a), margin)
    angle = rng.uniform(-a.rotate_deg, a.rotate_deg) if rng.random() < a.rotate_p else 0.0
    img = sample_window(ctx, cx, cy, side, size, angle, rng.random() < a.flip_p)
    small = rng.random() < a.lowres_p
    if small:
        lo, hi = a.lowres_px
        r = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
        if r < size:
            img = cv2.resize(img, (r, r), interpolation=cv2.INTER_AREA)
        else:
            small = False
    if rng.random() < a.jpeg_p:
        q = int(rng.integers(a.jpeg_quality[0], a.jpeg_quality[1] + 1))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    if small:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < a.blur_p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*a.blur_sigma))
    return img


def colour_jitter(x: torch.Tensor, rng: np.random.Generator, a: AugmentConfig) -> torch.Tensor:
    """x float [B,3,H,W] raw 0..255 RGB -> jittered, clamped to 0..255."""
    b = x.shape[0]
    if a.gray_p or a.saturation:
        gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        sat = torch.from_numpy(rng.uniform(1 - a.saturation, 1 + a.saturation, b)).float()
        sat[torch.from_numpy(rng.random(b) < a.gray_p)] = 0.0
        x = gray + (x - gray) * sat.view(b, 1, 1, 1)
    if a.contrast:
        c = torch.from_numpy(rng.uniform(1 - a.contrast, 1 + a.contrast, b)).float().view(b, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * c
    if a.brightness:
        x = x * torch.from_numpy(rng.uniform(1 - a.brightness, 1 + a.brightness, b)).float().view(b, 1, 1, 1)
    return x.clamp(0, 255)


def make_batch(context: np.ndarray, ctx_boxes: np.ndarray, idx: np.ndarray, size: int, margin: float,
               rng: np.random.Generator, a: AugmentConfig) -> torch.Tensor:
    """-> normalised float [len(idx), 3, size, size], as pipeline.engine.classifier.face_crops."""
    imgs = np.stack([augment_one(context[i], ctx_boxes[i], size, margin, rng, a) for i in idx])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    x = colour_jitter(x, rng, a)
    return (x - 127.5) * 0.0078125
