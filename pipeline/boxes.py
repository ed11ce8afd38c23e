"""Pure box functions. Boxes are float32 [N, 4] as (x1, y1, x2, y2) in pixels, torch tensors.

The arithmetic follows the original MTCNN (width = x2 - x1 for squaring, x2 - x1 + 1 for
regression offsets), so converted weights reproduce the original detector.
"""
from __future__ import annotations

import numpy as np
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """[N,4] -> [N] area, zero for degenerate boxes."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor, mode: str = "union") -> torch.Tensor:
    """[N,4], [M,4] -> [N,M] overlap. mode "union": IoU; "min": intersection over the smaller."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a, area_b = box_area(a), box_area(b)
    if mode == "min":
        denom = torch.minimum(area_a[:, None], area_b[None, :])
    else:
        denom = area_a[:, None] + area_b[None, :] - inter
    return inter / denom.clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression.

    boxes [N,4], scores [N] -> int64 [K] indices of kept boxes, highest score first. A box is
    dropped when its overlap (see pairwise_iou's mode) with a kept, higher-scored box is
    strictly greater than iou_threshold. Runs on the boxes' device with one [N,N] overlap
    matrix and a short loop over kept boxes, no per-pair Python work.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    suppress = (pairwise_iou(b, b, mode) > iou_threshold).cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= suppress[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                iou_threshold: float, mode: str = "union") -> torch.Tensor:
    """NMS independently within each group id (e.g. image index in a batch).

    boxes [N,4], scores [N], groups int [N] -> kept indices [K], by descending score. Groups are
    kept apart by offsetting each group's boxes beyond every other's extent.
    """
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = groups.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset, scores, iou_threshold, mode)


def calibrate_boxes(boxes: torch.Tensor, offsets: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Apply MTCNN box regression. boxes [N,4], offsets [N,4] (fractions of the box size)
    -> [N,4]. The size is x2 - x1 + 1 (plus_one, R-Net/O-Net) or x2 - x1 (P-Net stage)."""
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    size = torch.stack([w, h, w, h], dim=1)
    return boxes + offsets * size


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of side max(w, h) about its centre. [N,4] -> [N,4]."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def expand_boxes(boxes: torch.Tensor, margin: float) -> torch.Tensor:
    """Grow each box by margin * its size on every side. [N,4] -> [N,4]."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    d = torch.stack([-w, -h, w, h], dim=1) * margin
    return boxes + d


def clip_boxes(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Clamp coordinates into the image [0, width] x [0, height]. [N,4] -> [N,4]."""
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out
