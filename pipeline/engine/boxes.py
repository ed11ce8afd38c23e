"""Pure box functions. Boxes are float32 [N, 4] as (x1, y1, x2, y2) in pixels, torch tensors.

The arithmetic follows the original MTCNN (width = x2 - x1 for squaring, x2 - x1 + 1 for
regression offsets), so converted weights reproduce the original detector.
"""
from __future__ import annotations

import numpy as np
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """[...,4] -> [...] area, zero for degenerate boxes."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def overlap(a: torch.Tensor, b: torch.Tensor, mode: str = "union") -> torch.Tensor:
    """Overlap of boxes a[..., 4] and b[..., 4], broadcast against each other -> [...].
    mode "union": IoU; "min": intersection over the smaller box. The one IoU arithmetic of
    MaskWatch (pairwise_iou, NMS and the batched cascade's NMS all use it)."""
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_(min=0)
    h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_(min=0)
    inter = w.mul_(h)
    del h
    area_a, area_b = box_area(a), box_area(b)
    denom = torch.minimum(area_a, area_b) if mode == "min" else (area_a + area_b).sub_(inter)
    return inter.div_(denom.clamp_(min=1e-9))


def pairwise_iou(a: torch.Tensor, b: torch.Tensor, mode: str = "union") -> torch.Tensor:
    """[...,N,4], [...,M,4] -> [...,N,M] overlap (see overlap's mode)."""
    return overlap(a[..., :, None, :], b[..., None, :, :], mode)


def box_iou(a, b) -> np.ndarray:
    """pairwise_iou (mode "union") for numpy arrays or nested lists: [N,4], [M,4] -> [N,M]
    float64 IoU. The evaluation, training and tracking code use it; the arithmetic is overlap's."""
    a = torch.as_tensor(np.asarray(a, np.float64).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, np.float64).reshape(-1, 4))
    return pairwise_iou(a, b).numpy()


def suppression_matrix(boxes: torch.Tensor, iou_threshold: float, mode: str = "union",
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """boxes [...,N,4] in rank order (best first) -> bool [...,N,N], True at [i,j] when i < j
    and box i would drop box j (overlap strictly greater than iou_threshold). valid [...,N]:
    only pairs of valid boxes count."""
    over = pairwise_iou(boxes, boxes, mode) > iou_threshold
    if valid is not None:
        over &= valid[..., :, None] & valid[..., None, :]
    return over.triu_(diagonal=1)


def greedy_keep(suppress: torch.Tensor, valid: torch.Tensor | None = None,
                rounds: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Resolve greedy NMS from a suppression_matrix: bool [...,N,N] -> (kept bool [...,N],
    converged bool [...]).

    A box is kept iff it is valid and no kept, better-ranked box drops it. Solved as a fixed
    point (as in Cluster-NMS): start from "all valid kept" and re-apply the rule until nothing
    changes. The fixed point of this rule is unique and equals sequential greedy NMS; it is
    reached in (longest suppression chain + 1) rounds, usually 2-4, each one [N]x[N,N] product
    - no per-box Python loop. rounds=None iterates to convergence (one host check per round);
    a number runs that many rounds with no host sync, and `converged` says whether the last
    one changed nothing (then the result is exact).
    """
    s = suppress.to(torch.float32)
    keep = (torch.ones(suppress.shape[:-1], device=suppress.device) if valid is None
            else valid.to(torch.float32))
    prev = keep
    for _ in range(suppress.shape[-1] + 1 if rounds is None else rounds):
        prev = keep
        new = (prev @ s if s.dim() == 2 else (prev.unsqueeze(-2) @ s).squeeze(-2)) == 0
        keep = (new if valid is None else new.logical_and_(valid)).to(torch.float32)
        if rounds is None and torch.equal(keep, prev):
            break
    return keep.bool(), (keep == prev).all(dim=-1)


def batched_greedy_nms(boxes: torch.Tensor, valid: torch.Tensor, iou_threshold: float,
                       rounds: int, mode: str = "union") -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy NMS of many rows (e.g. frames) at once, without host syncs.

    boxes [B,N,4] sorted best first, valid [B,N] -> (keep [B,N] bool, converged [B] bool):
    `rounds` Cluster-NMS rounds of greedy_keep; converged says the last round changed nothing
    (then keep is exactly sequential greedy NMS)."""
    if boxes.shape[-2] == 0:
        return valid.clone(), torch.ones(boxes.shape[:-2], dtype=torch.bool, device=boxes.device)
    return greedy_keep(suppression_matrix(boxes, iou_threshold, mode, valid), valid, rounds)


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
    over = overlap(bx[p], bx[q], mode) > iou_threshold
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
    dropped when its overlap (see overlap's mode) with a kept, higher-scored box is strictly
    greater than iou_threshold. No per-box Python work: the greedy rule is solved as a fixed
    point (greedy_keep). On CPU only pairs whose x-ranges overlap are examined (sweep over
    x-sorted boxes); on other devices one [N,N] overlap matrix.
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
        keep, _ = greedy_keep(suppression_matrix(b, iou_threshold, mode))
    return order[keep]


def calibrate_boxes(boxes: torch.Tensor, offsets: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Apply MTCNN box regression. boxes [...,4], offsets [...,4] (fractions of the box size)
    -> [...,4]. The size is x2 - x1 + 1 (plus_one, R-Net/O-Net) or x2 - x1 (P-Net stage)."""
    extra = 1.0 if plus_one else 0.0
    w = boxes[..., 2] - boxes[..., 0] + extra
    h = boxes[..., 3] - boxes[..., 1] + extra
    size = torch.stack([w, h, w, h], dim=-1)
    return boxes + offsets * size


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of side max(w, h) about its centre. [...,4] -> [...,4]."""
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    side = torch.maximum(w, h)
    x1 = boxes[..., 0] + w * 0.5 - side * 0.5
    y1 = boxes[..., 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=-1)


def expand_boxes(boxes: torch.Tensor, margin: float) -> torch.Tensor:
    """Grow each box by margin * its size on every side. [...,4] -> [...,4]."""
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    d = torch.stack([-w, -h, w, h], dim=-1) * margin
    return boxes + d
