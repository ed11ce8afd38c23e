"""JPEG blockiness of an image: how much larger the luminance steps across the 8 px block edges
of JPEG are than the steps anywhere. About 1.0 for a sharp or well-compressed photo; heavy
compression (JPEG quality 20-60, the camera frames the "camera" detector weights are tuned for)
gives 1.3-1.8. The "auto" detector (pipeline.engine.config.AUTO_DETECTOR) chooses its weight set
per image by it."""
from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""RGB -> luminance weights (ITU-R BT.601, as JPEG)."""
BLOCK = 8
"""JPEG's block side, in pixels."""


def jpeg_blockiness(image_rgb: np.ndarray) -> float:
    """HxWx3 uint8 RGB -> the mean absolute luminance step across block edges (between columns,
    and rows, 7|8, 15|16, ...) over the mean step between all neighbouring columns (rows); the
    two directions averaged. 1.0 for an image too small to have a block edge or with no steps."""
    y = np.asarray(image_rgb, np.float32) @ LUMA
    ratios = []
    for axis in (1, 0):
        step = np.abs(np.diff(y, axis=axis))
        if step.shape[axis] < BLOCK:
            continue
        edges = step[:, BLOCK - 1::BLOCK] if axis == 1 else step[BLOCK - 1::BLOCK, :]
        ratios.append(float(edges.mean() / step.mean()) if step.mean() > 0 else 1.0)
    return float(np.mean(ratios)) if ratios else 1.0
