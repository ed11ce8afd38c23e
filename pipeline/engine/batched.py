"""Batched detection for video files (GPU first; also runs, and is tested, on CPU).

detect_batch(engine, frames) runs many same-size frames through the whole two-stage pipeline
together, and gives the same detections as engine.detect on each frame:

* pyramid levels are made for all frames at once (one area-resize per level on GPU) and each
  level is one P-Net call over the whole batch;
* candidates are held in fixed-size, score-sorted [frames, K] tensors with a validity mask, so
  there is no nonzero(), no per-frame or per-box Python loop and no host sync inside the
  cascade. NMS is a batched greedy NMS on the GPU: one [frames, K, K] overlap matrix per stage
  and a fixed number of Cluster-NMS rounds (pipeline.engine.boxes.greedy_keep), whose fixed point is
  exactly sequential greedy NMS; a round that still changed anything is flagged;
* all crops of a stage (every frame's candidates) go through R-Net, then O-Net, in one call;
  all faces of the batch through the mask classifier in one call;
* the small-face pass (DetectorConfig.small_face_below) is a second batched cascade over its
  levels, merged per frame by the same add_small_faces as FaceDetector.cascade.

Sizes: the candidate tensors of a batch are sized from what the previous batch of the same
video needed (+25%, rounded up to 64; at most `BatchLimits`), so padding stays small without
a sync inside the cascade. Exactness: a frame that needs more than its batch's size (more
P-Net windows, R-Net or O-Net candidates) or whose NMS had not converged is flagged on the
device; after the batch (one host sync) each flagged pass of a frame (the main one or the
small-face one) is redone with the per-frame path, and its other pass's batched result kept.
So the results are always the per-frame path's. The same goes for a DetectorConfig for which
NMS across pyramid levels could remove anything (with the defaults it provably cannot - see
cross_level_nms_is_noop - so the batched path skips it).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.engine.boxes import batched_greedy_nms, calibrate_boxes
from pipeline.engine.classifier import calibrated_probs, classifier_windows
from pipeline.engine.config import DetectorConfig
from pipeline.engine.crops import area_crops, area_pyramid, crop_and_resize_batch, image_to_tensor, integral_image, supersampling
from pipeline.engine.cascade import (add_small_faces, cross_level_nms_is_noop, inclusive_boxes, main_pass_config,
                                     onet_landmarks, pnet_windows, proposal_boxes, pyramid_scales, pyramid_sizes,
                                     refined_boxes, small_face_config, small_face_scales)
from pipeline.engine.mask_detector import to_detections
from pipeline.engine.nets import face_prob, normalize
from pipeline.records import Detection


@dataclass(frozen=True)
class BatchLimits:
    """Fixed tensor sizes of the batched cascade (per frame). Larger costs memory, never
    correctness: a frame that exceeds one is redone by the per-frame path.

    level_cap: P-Net windows kept per pyramid level (best scores first) for NMS.
    rnet_cap: candidates into R-Net. onet_cap: candidates into O-Net.
    nms_rounds: Cluster-NMS rounds per NMS (greedy suppression chains longer than this are
        flagged and redone per frame).
    """

    level_cap: int = 2048
    rnet_cap: int = 2048
    onet_cap: int = 256
    nms_rounds: int = 12


def _stable_desc(key: torch.Tensor) -> torch.Tensor:
    """Indices sorting each row of key [B,N] descending, ties in index order."""
    return torch.sort(key, dim=1, descending=True, stable=True).indices


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per-row gather: x [B,N,...], idx [B,K] -> [B,K,...]."""
    shape = idx.shape + x.shape[2:]
    return torch.gather(x, 1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(shape))


def _compact(mask: torch.Tensor, cap: int):
    """Order putting the rows' True entries first (in their order) -> (idx [B,cap], valid
    [B,cap], overflow [B])."""
    n = mask.shape[1]
    order = _stable_desc(mask.to(torch.float32))
    k = min(cap, n)
    idx = order[:, :k]
    return idx, _take(mask, idx), mask.sum(dim=1) > k


class _Cascade:
    """The batched MTCNN cascade on one batch of same-size frames (all on one device).

    caps: the tensor sizes for this batch (<= limits): {"levels": [per level], "rnet", "onet"};
    self.counts records (on the device) what each frame actually needed, so the next batch
    of the same video can be sized to fit (see detect_batch) - no host sync in here."""

    def __init__(self, detector, config: DetectorConfig, limits: BatchLimits, caps: dict | None = None):
        self.det, self.cfg, self.lim = detector, config, limits
        self.fast = detector.fast
        self.caps = caps or {}
        self.counts: dict[str, list | torch.Tensor] = {"levels": []}

    def _cap(self, key: str, default: int, level: int | None = None) -> int:
        got = self.caps.get(key)
        if level is not None:
            got = got[level] if got and level < len(got) else None
        return int(min(default, got)) if got else default

    def stage1(self, levels, scales):
        """P-Net on every level; per-level NMS -> candidates [B,N,4] squared, valid, flags."""
        cfg, lim = self.cfg, self.lim
        all_boxes, all_scores, all_off, all_keep = [], [], [], []
        bad = None
        for li, (level, scale) in enumerate(zip(levels, scales)):
            out = self.fast.pnet.raw(level)                     # [B,6,h,w]
            b, _, h, w = out.shape
            prob = face_prob(out[:, 4:6]).reshape(b, h * w)
            hit = prob >= cfg.thresholds[0]
            self.counts["levels"].append(hit.sum(dim=1))
            # best windows first, ties in raster order (as nonzero + stable sort per frame)
            key = torch.where(hit, prob, torch.full_like(prob, -1.0))
            idx = _stable_desc(key)[:, : min(self._cap("levels", lim.level_cap, li), h * w)]
            score = torch.gather(prob, 1, idx)
            valid = torch.gather(hit, 1, idx)
            over = hit.sum(dim=1) > idx.shape[1]
            boxes = pnet_windows(torch.stack([idx % w, idx // w], dim=-1).to(prob.dtype), scale)
            reg = out[:, :4].reshape(b, 4, h * w).transpose(1, 2)
            offsets = _take(reg, idx)
            keep, conv = batched_greedy_nms(boxes, valid, cfg.nms_thresholds[0], lim.nms_rounds)
            flag = over | ~conv
            bad = flag if bad is None else bad | flag
            all_boxes.append(boxes), all_scores.append(score), all_off.append(offsets), all_keep.append(keep)
        boxes, scores = torch.cat(all_boxes, 1), torch.cat(all_scores, 1)
        offsets, keep = torch.cat(all_off, 1), torch.cat(all_keep, 1)
        # across levels: (provably) nothing to suppress; order by score, ties in level order
        order = _stable_desc(torch.where(keep, scores, torch.full_like(scores, -1.0)))
        cap = min(self._cap("rnet", self.lim.rnet_cap), cfg.max_candidates)
        order = order[:, : min(cap, order.shape[1])]
        valid = torch.gather(keep, 1, order)
        self.counts["rnet"] = keep.sum(dim=1)
        over = self.counts["rnet"] > order.shape[1]
        if cap == cfg.max_candidates:          # the per-frame path cuts here too
            over = torch.zeros_like(over)
        return proposal_boxes(_take(boxes, order), _take(offsets, order)), valid, bad | over

    def crops(self, integrals, boxes, size):
        b, n = boxes.shape[:2]
        image_index = torch.arange(b, device=boxes.device).repeat_interleave(n)
        return area_crops(integrals, boxes.reshape(-1, 4), size, image_index=image_index)

    def stage2(self, integrals, boxes, valid):
        cfg, lim = self.cfg, self.lim
        b, n = valid.shape
        offsets, scores = self.fast.rnet(self.crops(integrals, boxes, 24))
        offsets, scores = offsets.view(b, n, 4), scores.view(b, n)
        ok = valid & (scores > cfg.thresholds[1])
        order = _stable_desc(torch.where(ok, scores, torch.full_like(scores, -1.0)))
        boxes, offsets, ok = _take(boxes, order), _take(offsets, order), torch.gather(ok, 1, order)
        keep, conv = batched_greedy_nms(boxes, ok, cfg.nms_thresholds[2], lim.nms_rounds)
        self.counts["onet"] = keep.sum(dim=1)
        idx, valid, over = _compact(keep, self._cap("onet", lim.onet_cap))
        return refined_boxes(_take(boxes, idx), _take(offsets, idx)), valid, over | ~conv

    def stage3(self, integrals, boxes, valid):
        cfg, lim = self.cfg, self.lim
        b, n = valid.shape
        offsets, points, scores = self.fast.onet(self.crops(integrals, boxes, 48))
        offsets, points, scores = offsets.view(b, n, 4), points.view(b, n, 10), scores.view(b, n)
        ok = valid & (scores > cfg.thresholds[2])
        landmarks = onet_landmarks(boxes, points)
        boxes = calibrate_boxes(boxes, offsets)
        order = _stable_desc(torch.where(ok, scores, torch.full_like(scores, -1.0)))
        boxes, scores = _take(boxes, order), torch.gather(scores, 1, order)
        landmarks, ok = _take(landmarks, order), torch.gather(ok, 1, order)
        keep, conv = batched_greedy_nms(inclusive_boxes(boxes), ok, cfg.nms_thresholds[3], lim.nms_rounds, mode="min")
        return boxes, scores, landmarks, keep, ~conv

    def run(self, frames: torch.Tensor, scales: list[float] | None = None):
        """frames uint8 [B,H,W,3] on the device -> (boxes, scores, landmarks, keep, bad),
        all on the device, no host sync. scales: a subset of the pyramid (default all)."""
        b, h, w = frames.shape[:3]
        scales = pyramid_scales(h, w, self.cfg) if scales is None else scales
        sizes = pyramid_sizes(h, w, scales)
        integrals = integral_image(frames, frames.device)
        levels = area_pyramid(frames, sizes, frames.device, integrals)
        boxes, valid, bad = self.stage1(levels, scales)
        boxes, valid, bad2 = self.stage2(integrals, boxes, valid)
        boxes, scores, landmarks, keep, bad3 = self.stage3(integrals, boxes, valid)
        return boxes, scores, landmarks, keep, bad | bad2 | bad3


@torch.inference_mode()
def detect_batch(engine, frames_rgb: list[np.ndarray], config: DetectorConfig | None = None,
                 classify: bool = True, batch_size: int = 32,
                 limits: BatchLimits | None = None, amp: torch.dtype | None = None) -> list[list[Detection]]:
    """Faces (and mask labels) in many frames -> one list of Detections per frame, the same as
    [engine.detect(f, config, classify) for f in frames_rgb].

    Frames of one size and one face detector (engine.detector_for: with the "auto" detector,
    each frame's own weight set) are run batch_size at a time through the batched cascade on
    the engine's device (a GPU when there is one); other frames are grouped likewise.
    amp: torch.float16 / torch.bfloat16 runs the nets under CUDA autocast (faster, not
    bit-equal to the fp32 path; measured in benchmarks/speed.py). Ignored on CPU.
    """
    det = engine.detector
    config = config or det.config
    limits = limits or BatchLimits()
    out: list[list[Detection] | None] = [None] * len(frames_rgb)
    small = small_face_config(config)
    if not cross_level_nms_is_noop(config) or (small is not None and not cross_level_nms_is_noop(small)):
        return [engine.detect(f, config, classify) for f in frames_rgb]
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames_rgb):
        groups.setdefault((f.shape, engine.detector_for(f)), []).append(i)
    lock = getattr(engine, "lock", None) or contextlib.nullcontext()
    for (_, detector), idxs in groups.items():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start:start + batch_size]
            with lock:
                res = _run_chunk(engine, detector, [frames_rgb[i] for i in chunk], config, classify, limits, amp)
            for i, r in zip(chunk, res):
                out[i] = r
    return out  # type: ignore[return-value]


def _autocast(device: torch.device, amp):
    if amp is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=amp)


def _next_caps(counts: dict, limits: BatchLimits) -> dict:
    """Tensor sizes for the next batch from what this one needed: the largest count seen,
    +25% and a margin, rounded up to 64, never above the limits."""
    def fit(n, cap):
        return int(min(cap, 64 * math.ceil((1.25 * float(n) + 32) / 64)))
    return {"levels": [fit(c.max(), limits.level_cap) for c in counts["levels"]],
            "rnet": fit(counts["rnet"].max(), limits.rnet_cap),
            "onet": fit(counts["onet"].max(), limits.onet_cap)}


_CAPS: dict[tuple, dict] = {}
"""(frame shape, config, device, limits) -> caps learned from the last batch of that kind."""


def _run_cascade(det, batch: torch.Tensor, config, limits, key: tuple, amp, scales=None):
    """One batched cascade over `scales` (default the whole pyramid) -> per frame (boxes,
    scores, landmarks) CPU tensors of its kept faces, or None where the frame was flagged
    (it needs the per-frame path). The one host sync; learns the caps for the next batch."""
    cascade = _Cascade(det, config, limits, _CAPS.get(key))
    with _autocast(batch.device, amp):
        boxes, scores, landmarks, keep, bad = cascade.run(batch, scales)
    boxes, scores, landmarks = boxes.float().cpu(), scores.float().cpu(), landmarks.float().cpu()
    keep, bad = keep.cpu(), bad.cpu()
    counts = {"levels": [c.cpu() for c in cascade.counts["levels"]],
              "rnet": cascade.counts["rnet"].cpu(), "onet": cascade.counts["onet"].cpu()}
    if len(_CAPS) > 64:
        _CAPS.clear()
    _CAPS[key] = _next_caps(counts, limits)
    return [None if bool(bad[i]) else (boxes[i][keep[i]], scores[i][keep[i]], landmarks[i][keep[i]])
            for i in range(batch.shape[0])]


@torch.inference_mode()
def _per_frame(stage, frame: np.ndarray, config: DetectorConfig):
    """FaceDetector.cascade or .small_faces on one frame -> (boxes, scores, landmarks) float
    CPU tensors, as _run_cascade gives them."""
    return tuple(t.float().cpu() for t in stage(np.ascontiguousarray(frame), config))


def _run_chunk(engine, det, frames: list[np.ndarray], config, classify, limits,
               amp=None) -> list[list[Detection]]:
    """One batch of same-size frames through face detector `det`, then engine's classifier."""
    dev = det.device
    batch = torch.from_numpy(np.stack([np.ascontiguousarray(f) for f in frames])).to(dev, non_blocking=True)
    key = (frames[0].shape, config, str(dev), limits, amp)
    main = _run_cascade(det, batch, config, limits, key, amp)
    small_scales = small_face_scales(*frames[0].shape[:2], config)
    small = (_run_cascade(det, batch, small_face_config(config), limits, key + ("small",), amp, small_scales)
             if small_scales else [None] * len(frames))
    faces = []
    for i, frame in enumerate(frames):
        # a flagged frame redoes only the flagged pass, per frame (exact fallback, rare)
        found = main[i] if main[i] is not None else _per_frame(det.cascade, frame, main_pass_config(config))
        if small_scales:                                  # the small-face pass, as FaceDetector.cascade
            extra = small[i] if small[i] is not None else _per_frame(det.small_faces, frame, config)
            found = add_small_faces(found, extra, config)
        faces.append(tuple(t.numpy() for t in found))
    probs = [None] * len(frames)
    if classify:
        n_per = [len(f[0]) for f in faces]
        if sum(n_per):
            runner = engine.classifier
            cfg = runner.config
            all_boxes = torch.from_numpy(np.concatenate([f[0] for f in faces]).astype(np.float32))
            image_index = torch.arange(len(frames)).repeat_interleave(torch.tensor(n_per))
            windows = classifier_windows(all_boxes, cfg)
            side = torch.maximum(windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1])
            # crop_and_resize picks its supersampling from the largest window of each image
            largest = torch.zeros(len(frames)).scatter_reduce(0, image_index, side, "amax")
            k_per_image = [supersampling(m, cfg.crop_size) for m in largest]
            crops = crop_and_resize_batch(image_to_tensor(batch, runner.device), windows.to(runner.device),
                                          image_index.to(runner.device), cfg.crop_size, k_per_image)
            with _autocast(runner.device, amp):
                logits = runner.net(normalize(crops))
            p = calibrated_probs(logits, cfg).cpu().numpy()
            splits = np.cumsum(n_per)[:-1]
            probs = [q if len(q) else None for q in np.split(p, splits)]
    return [to_detections(b, s, lm, p) for (b, s, lm), p in zip(faces, probs)]
