"""Two measures of how a camera degraded an image, by which the "auto" detector
(pipeline.engine.config.AUTO_DETECTOR) chooses its weight set per image:

- JPEG blockiness: how much larger the luminance steps across the 8 px block edges of JPEG are
  than the steps anywhere. About 1.0 for a sharp or well-compressed photo; heavy compression
  (JPEG quality 20-60, or H.264 at CRF 32 and above) gives 1.3-1.8.
- Sensor noise: the standard deviation of the luminance noise, estimated by Immerkaer's method
  (a 3x3 Laplacian-difference filter that cancels image structure). About 1-3 grey levels for a
  photo; grainy frames give 6-15 (before compression smooths it away)."""
from __future__ import annotations

import math

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""RGB -> luminance weights (ITU-R BT.601, as JPEG)."""
BLOCK = 8
"""JPEG's block side, in pixels."""


def luminance(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxW float32 luminance (0-255); an HxW luminance image is returned as
    float32, so the measures below take either (auto_weights converts once for both)."""
    image = np.asarray(image)
    return image.astype(np.float32, copy=False) if image.ndim == 2 else image.astype(np.float32) @ LUMA


def jpeg_blockiness(image_rgb: np.ndarray) -> float:
    """HxWx3 uint8 RGB (or its luminance) -> the mean absolute luminance step across block edges
    (between columns, and rows, 7|8, 15|16, ...) over the mean step between all neighbouring
    columns (rows); the two directions averaged. 1.0 for an image too small to have a block edge or with no steps."""
    y = luminance(image_rgb)
    ratios = []
    for axis in (1, 0):
        step = np.abs(np.diff(y, axis=axis))
        if step.shape[axis] < BLOCK:
            continue
        edges = step[:, BLOCK - 1::BLOCK] if axis == 1 else step[BLOCK - 1::BLOCK, :]
        ratios.append(float(edges.mean() / step.mean()) if step.mean() > 0 else 1.0)
    return float(np.mean(ratios)) if ratios else 1.0


def noise_sigma(image_rgb: np.ndarray) -> float:
    """HxWx3 uint8 RGB (or its luminance) -> the luminance noise's standard deviation in grey
    levels (J. Immerkaer, "Fast noise variance estimation", CVIU 1996): the mean absolute response to the mask
    [[1,-2,1],[-2,4,-2],[1,-2,1]] (the second difference across columns, then across rows)
    times sqrt(pi/2) / 6. 0.0 for an image under 3x3 pixels."""
    y = luminance(image_rgb)
    if min(y.shape[:2]) < 3:
        return 0.0
    across = y[:, :-2] - 2 * y[:, 1:-1] + y[:, 2:]
    both = across[:-2] - 2 * across[1:-1] + across[2:]
    return float(math.sqrt(math.pi / 2) * np.abs(both).mean() / 6)
