"""Per-batch box jitter and photometric augmentation, from the stored context crops.

For each face: jitter its box the way a detector or a person would draw it (scale, shift,
aspect), turn the jittered box into the classifier window exactly as inference does
(square about the centre, grow by `margin`), and sample that window (optionally rotated and
mirrored) from the context crop to crop_size px. Then imitate small, poor faces: lower the
effective resolution (area-downscale to r px and bilinear back up, as crop_and_resize enlarges
a small face), JPEG at that resolution, blur, and colour jitter.

Small and camera faces (off in the default config, on in the release recipe, see
training.rebuild.CLASSIFIER_STAGES): with chance `small_face_p` the face is first made
`small_face_px` px (face side, log-uniform), by area-downscaling the whole context crop, and
the classifier window is then sampled (bilinear, as crop_and_resize enlarges a small
detection) from that small image. With chance `camera_p` the (small or full) context crop
first goes through `camera_degrade` at its own resolution, as a camera would: Gaussian or
motion blur, low light, a colour cast, sensor noise and strong JPEG. The same
`camera_degrade` makes the degraded validation view (training.views).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pipeline.engine.crops import image_to_tensor
from pipeline.engine.nets import normalize


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
    small_face_p: float = 0.0                    # chance of rendering the face small first
    small_face_px: tuple[float, float] = (12.0, 40.0)  # face side then, px, log-uniform
    camera_p: float = 0.0                        # chance of camera_degrade on the context crop
    camera: "CameraConfig | None" = None         # None: CameraConfig()


@dataclass(frozen=True)
class CameraConfig:
    """Camera degradations (camera_degrade), applied in this order, each with its chance."""
    blur_p: float = 0.35                          # Gaussian blur (defocus)
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    motion_p: float = 0.25                        # linear motion blur, random direction
    motion_px: tuple[int, int] = (3, 7)
    low_light_p: float = 0.3                      # darken (gain, then gamma > 1)
    low_light_gain: tuple[float, float] = (0.35, 0.8)
    cast_p: float = 0.4                           # per-channel gains (white balance off)
    cast: float = 0.18
    noise_p: float = 0.7                          # Gaussian sensor noise, luma + some chroma
    noise_sigma: tuple[float, float] = (3.0, 14.0)
    jpeg_quality: tuple[int, int] = (20, 60)      # always


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """Normalised line kernel of `length` px at `angle_deg`."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    t = math.radians(angle_deg)
    for s in np.linspace(-c, c, 2 * length):
        x, y = int(round(c + s * math.cos(t))), int(round(c + s * math.sin(t)))
        k[y, x] = 1.0
    return k / k.sum()


def camera_degrade(img: np.ndarray, rng: np.random.Generator, c: "CameraConfig | None" = None) -> np.ndarray:
    """uint8 HxWx3 RGB -> the same as a cheap, grainy camera would give it: optional Gaussian or
    motion blur, low light, colour cast and sensor noise, then JPEG at quality 20-60."""
    c = c or CameraConfig()
    out = img
    if rng.random() < c.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*c.blur_sigma))
    elif rng.random() < c.motion_p:
        k = motion_kernel(int(rng.integers(c.motion_px[0], c.motion_px[1] + 1)), rng.uniform(0, 180))
        out = cv2.filter2D(out, -1, k, borderType=cv2.BORDER_REFLECT)
    x = out.astype(np.float32)
    if rng.random() < c.low_light_p:
        x = 255.0 * (x * rng.uniform(*c.low_light_gain) / 255.0) ** rng.uniform(1.0, 1.4)
    if rng.random() < c.cast_p:
        x = x * rng.uniform(1 - c.cast, 1 + c.cast, 3).astype(np.float32)
    if rng.random() < c.noise_p:
        sigma = rng.uniform(*c.noise_sigma)
        h, w = x.shape[:2]
        x = x + rng.normal(0, sigma, (h, w, 1)).astype(np.float32) \
              + rng.normal(0, sigma * 0.4, (h, w, 3)).astype(np.float32)
    out = np.clip(x, 0, 255).round().astype(np.uint8)
    q = int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1))
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)


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
    flip = rng.random() < a.flip_p
    # small / camera faces (no random draw at all when both chances are 0: the old recipe's
    # random stream, hence its weights, stay as they were)
    k = 1.0
    if a.small_face_p and rng.random() < a.small_face_p:
        lo, hi = a.small_face_px
        face = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        k = min(1.0, face / float(max(box[2] - box[0], box[3] - box[1])))
    camera = bool(a.camera_p) and rng.random() < a.camera_p
    if k < 1.0 or camera:
        src = ctx
        if k < 1.0:
            h, w = ctx.shape[:2]
            nw, nh = max(2, int(round(w * k))), max(2, int(round(h * k)))
            src = cv2.resize(ctx, (nw, nh), interpolation=cv2.INTER_AREA)
            kx, ky = nw / w, nh / h
            cx, cy, side = cx * kx, cy * ky, side * (kx + ky) / 2
        if camera:
            src = camera_degrade(src, rng, a.camera)
        return sample_window(src, cx, cy, side, size, angle, flip)
    img = sample_window(ctx, cx, cy, side, size, angle, flip)
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
    return normalize(colour_jitter(image_to_tensor(imgs), rng, a))
