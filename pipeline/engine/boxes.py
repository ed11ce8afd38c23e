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


def box_iou(a, b) -> np.ndarray:
    """pairwise_iou (mode "union") for numpy arrays or nested lists: [N,4], [M,4] -> [N,M]
    float64 IoU. The evaluation and training code use it; the arithmetic is pairwise_iou's."""
    a = torch.as_tensor(np.asarray(a, np.float64).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, np.float64).reshape(-1, 4))
    return pairwise_iou(a, b).numpy()


def suppression_matrix(boxes: torch.Tensor, iou_threshold: float, mode: str = "union") -> torch.Tensor:
    """boxes [N,4] in rank order (best first) -> bool [N,N], True at [i,j] when i < j and box i
    would drop box j (overlap strictly greater than iou_threshold). Same arithmetic as
    pairwise_iou, without the [N,N,2] temporaries."""
    x1, y1, x2, y2 = boxes.unbind(1)
    w = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :])).clamp_(min=0)
    h = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :])).clamp_(min=0)
    inter = w.mul_(h)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    if mode == "min":
        denom = torch.minimum(area[:, None], area[None, :])
    else:
        denom = (area[:, None] + area[None, :]).sub_(inter)
    over = inter.div_(denom.clamp_(min=1e-9)) > iou_threshold
    return over.triu_(diagonal=1)


def greedy_keep(suppress: torch.Tensor, max_iter: int | None = None) -> torch.Tensor:
    """Resolve greedy NMS from a suppression_matrix: bool [N,N] -> bool [N] kept.

    A box is kept iff no kept, better-ranked box drops it. Solved as a fixed point (as in
    Cluster-NMS): start from "all kept" and re-apply the rule until nothing changes. The
    fixed point of this rule is unique and equals sequential greedy NMS; it is reached in
    (longest suppression chain + 1) rounds, usually 2-4, each one [N]x[N,N] product - no
    per-box Python loop. max_iter=None iterates to convergence (one host check per round).
    """
    n = suppress.shape[0]
    s = suppress.to(torch.float32)
    keep = torch.ones(n, dtype=torch.float32, device=suppress.device)
    for _ in range(n + 1 if max_iter is None else max_iter):
        new = (keep @ s == 0).to(torch.float32)
        if max_iter is None and torch.equal(new, keep):
            break
        keep = new
    return keep.bool()


def _overlap(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    """Row-wise overlap of paired boxes a[k], b[k] ([K,4] each) -> [K], as pairwise_iou."""
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_(min=0)
    inter = w.mul_(h)
    area_a, area_b = box_area(a), box_area(b)
    denom = torch.minimum(area_a, area_b) if mode == "min" else (area_a + area_b).sub_(inter)
    return inter.div_(denom.clamp_(min=1e-9))


def _sparse_keep(b: torch.Tensor, iou_threshold: float, mode: str) -> torch.Tensor:
    """Greedy NMS on boxes in rank order, considering only pairs whose x-ranges overlap
    (sweep over boxes sorted by x1), so the work grows with the number of overlapping pairs,
    not N^2. -> bool [N] kept. CPU path of nms()."""
    n = b.shape[0]
    xs = torch.argsort(b[:, 0], stable=True)
    bx = b[xs]
    pos = torch.arange(n)
    hi = torch.searchsorted(bx[:, 0].contiguous(), bx[:, 2].contiguous(), side="left")
    cnt = (hi - pos - 1).clamp_(min=0)
    total = int(cnt.sum())
    keep = torch.ones(n, dtype=torch.bool)
    if total == 0:
        return keep
    p = torch.repeat_interleave(pos, cnt)
    start = torch.cumsum(cnt, 0) - cnt
    q = p + 1 + (torch.arange(total) - torch.repeat_interleave(start, cnt))
    over = _overlap(bx[p], bx[q], mode) > iou_threshold
    ip, iq = xs[p[over]], xs[q[over]]
    src, dst = torch.minimum(ip, iq), torch.maximum(ip, iq)   # better rank drops worse rank
    if src.numel() == 0:
        return keep
    for _ in range(n + 1):
        hit = torch.zeros(n, dtype=torch.int32).index_add_(0, dst, keep[src].to(torch.int32))
        new = hit == 0
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression.

    boxes [N,4], scores [N] -> int64 [K] indices of kept boxes, highest score first. A box is
    dropped when its overlap (see pairwise_iou's mode) with a kept, higher-scored box is
    strictly greater than iou_threshold. No per-box Python work: the greedy rule is solved as
    a fixed point (greedy_keep). On CPU only pairs whose x-ranges overlap are examined (sweep
    over x-sorted boxes); on other devices one [N,N] overlap matrix.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    if n == 1:
        return order
    b = boxes[order]
    if boxes.device.type == "cpu" and n > 64:
        keep = _sparse_keep(b, iou_threshold, mode)
    else:
        keep = greedy_keep(suppression_matrix(b, iou_threshold, mode))
    return order[keep]


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
