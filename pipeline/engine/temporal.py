"""Webcam mode: MTCNN with temporal reuse, and label smoothing, for a stream of frames.

The whole cascade (pyramid -> P-Net -> R-Net -> O-Net) runs on the first frame. After that,
every frame:

* each face found in the previous frame is *refined*: its box, moved by the face's recent
  velocity and made square, goes straight to O-Net (box regression, landmarks and face score,
  exactly the detector's last stage), one batch for all faces. A face O-Net no longer accepts
  gets a second, local chance - the cascade on a small window around it, at the few pyramid
  scales near its size - before it is dropped;
* new faces are searched for with one piece of the full cascade: the P-Net pyramid is cut
  into `discovery_pieces` pieces of equal work, one piece per frame, and only its candidates
  away from tracked faces go on to R-Net and O-Net. So a new face is found at most
  `discovery_pieces` frames late, and no frame pays for a whole pyramid.

Optionally (`full_every`, `redetect_on_loss`) the whole detector also runs periodically or
after a face was lost.

Labels: the mask classifier runs on each face every `classify_every` frames (staggered, all new
faces at once), and each face's class probabilities are an exponential moving average
(`ema` = weight of the newest) of its classifications, so labels do not flicker. Faces are
associated from frame to frame by IoU.

Drop-in for the webcam page (pipeline/streams/webcam.py): build one per stream and call
`process(frame_rgb, timestamp)`; see `realtime_frame_detector` for the exact replacement of
`detect_frame(engine, img, settings)`.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from pipeline.engine.boxes import nms, pairwise_iou, square_boxes
from pipeline.engine.config import DetectorConfig
from pipeline.engine.crops import area_pyramid, image_to_tensor, integral_image
from pipeline.engine.cascade import main_pass_config, pnet_output_rows, pnet_strip, pyramid_scales, pyramid_sizes
from pipeline.records import CLASSES, Detection


@dataclass(frozen=True)
class RealtimeConfig:
    """Temporal-reuse settings.

    discovery_pieces: new faces are searched for by the full cascade spread over this many
        frames: the P-Net pyramid is cut into this many pieces of equal work (whole levels,
        or strips of the large ones) and each frame runs one piece; its candidates that do
        not overlap a tracked face go through R-Net and O-Net. A new face is found at most
        this many frames late, and no frame pays for a whole pyramid.
    full_every: also run the whole detector every this many frames (0 = only on the first
        frame and after reset()).
    redetect_on_loss: run the whole detector on the next frame when a tracked face was lost.
    local_search: before dropping a face O-Net rejects, run the cascade on a window of
        (1 + 2 * local_margin) x its size around it, at the pyramid scales for faces from
        local_min to local_max times its size. (R-Net + O-Net on a grid of boxes around it
        instead was measured: no cheaper overall, 3% less recall on the clip.)
    edge_local: a face whose square box reaches further than this fraction of its side out of
        the picture is refreshed by the local search instead of O-Net alone (0 = never).
    classify_every: re-classify each face every this many frames (new faces at once).
    ema: weight of the newest classification in a face's smoothed class probabilities.
    match_iou: IoU for matching a new box to a tracked face.
    velocity: how much of the last frame-to-frame motion to add to the predicted box (0..1).
    detect_side: frames whose longer side exceeds this are detected on a downscaled copy
        (0 = never), as the webcam page does; boxes come back in full-frame pixels.
    threads: torch intra-op threads while processing (0 = leave as is).
    """

    discovery_pieces: int = 4
    full_every: int = 0
    redetect_on_loss: bool = False
    local_search: bool = True
    local_margin: float = 0.8
    local_min: float = 0.5
    local_max: float = 2.0
    edge_local: float = 0.15
    classify_every: int = 5
    ema: float = 0.4
    match_iou: float = 0.3
    velocity: float = 0.8
    detect_side: int = 0
    threads: int = 1


@dataclass
class _Track:
    box: np.ndarray                 # [4] final (O-Net) box, detection-image pixels
    score: float
    landmarks: np.ndarray           # [5,2]
    velocity: np.ndarray            # [4] last per-frame change of box
    probs: np.ndarray | None = None  # smoothed class probabilities
    last_classified: int = -10 ** 9
    age: int = 0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32)


def _match(prev: np.ndarray, new: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Greedy IoU matching, best pairs first -> [(prev index, new index)]."""
    if len(prev) == 0 or len(new) == 0:
        return []
    iou = pairwise_iou(torch.from_numpy(prev), torch.from_numpy(new)).numpy()
    pairs = []
    used_p, used_n = set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i in used_p or j in used_n:
            continue
        used_p.add(i)
        used_n.add(j)
        pairs.append((i, j))
    return pairs


class RealtimeMaskDetector:
    """Faces and smoothed mask labels for a stream of frames (one instance per stream).

    engine: a pipeline.engine.mask_detector.MaskDetector. detector_config: the DetectorConfig to use (default
    the engine's; may be changed per call). Not for concurrent calls on one instance; different
    instances may share one engine (the engine's lock is held while the nets run).
    """

    def __init__(self, engine, config: RealtimeConfig | None = None,
                 detector_config: DetectorConfig | None = None):
        self.engine = engine
        self.detector = engine.detector
        self.config = config or RealtimeConfig()
        self.detector_config = detector_config or engine.detector.config
        self.reset()

    def reset(self) -> None:
        """Forget all faces; the next frame gets a full detection."""
        self.tracks: list[_Track] = []
        self.frame_no = 0
        self.last_full = -10 ** 9
        self.lost = False
        self.piece = 0
        self._plan_key, self._plan = None, []
        self.stats = {"frames": 0, "full": 0, "local": 0, "classified": 0, "discovered": 0}

    # -- the three ways to find faces -------------------------------------------------------
    def _refine(self, integral: torch.Tensor, cfg: DetectorConfig):
        """O-Net on every track's predicted, squared box (one batch) -> per track (box, score,
        landmarks) or None."""
        pred = np.stack([t.box + self.config.velocity * t.velocity for t in self.tracks]).astype(np.float32)
        cand = square_boxes(torch.from_numpy(pred)).to(self.detector.device)
        boxes, scores, lms = self.detector.output(integral, cand, cfg)
        boxes, scores, lms = _np(boxes), _np(scores), _np(lms)
        out: list = [None] * len(self.tracks)
        for i, j in _match(pred, boxes, self.config.match_iou):
            out[i] = (boxes[j], float(scores[j]), lms[j])
        if self.config.edge_local:
            # a face partly out of the picture: O-Net on a squeezed crop drifts; search locally
            h, w = integral.shape[0] - 1, integral.shape[1] - 1
            sq = _np(cand)
            side = sq[:, 2] - sq[:, 0]
            out_px = np.maximum.reduce([-sq[:, 0], -sq[:, 1], sq[:, 2] - w, sq[:, 3] - h])
            for i in np.nonzero(out_px > self.config.edge_local * side)[0]:
                out[i] = None
        return out

    def _local(self, img: np.ndarray, box: np.ndarray, cfg: DetectorConfig):
        """The full cascade on a window around `box`, at the scales for faces local_min ..
        local_max times its size -> (boxes, scores, landmarks) in image pixels."""
        c = self.config
        h, w = img.shape[:2]
        side = float(max(box[2] - box[0], box[3] - box[1]))
        m = side * c.local_margin
        x0, y0 = int(max(0, box[0] - m)), int(max(0, box[1] - m))
        x1, y1 = int(min(w, box[2] + m + 1)), int(min(h, box[3] + m + 1))
        if x1 - x0 < 12 or y1 - y0 < 12:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        roi = np.ascontiguousarray(img[y0:y1, x0:x1])
        lo = max(cfg.min_face, side * c.local_min)
        local_cfg = replace(cfg, min_face=lo)
        # keep only the scales whose 12 px window is a face of at most local_max * side
        scales = [s for s in pyramid_scales(*roi.shape[:2], local_cfg) if 12.0 / s <= side * c.local_max]
        b, s, lm = (_np(t) for t in self.detector.cascade(roi, local_cfg, scales=scales))
        return (b + np.array([x0, y0, x0, y0], np.float32), s, lm + np.array([x0, y0], np.float32))

    def _pieces(self, h: int, w: int, cfg: DetectorConfig) -> list[list[tuple[int, int, int]]]:
        """Cut the pyramid into discovery_pieces pieces of near-equal pixel count, each a list
        of (level index, first output-cell row, end row)."""
        key = (h, w, cfg.min_face, cfg.scale_factor, self.config.discovery_pieces)
        if key == self._plan_key:
            return self._plan
        scales = pyramid_scales(h, w, cfg)
        sizes = pyramid_sizes(h, w, scales)
        cells = [(pnet_output_rows(lh), lw) for lh, lw in sizes]     # output rows, level width
        n = max(1, self.config.discovery_pieces)
        target = sum(r * lw for r, lw in cells) / n
        plan, cur, load = [], [], 0.0
        for i, (r, lw) in enumerate(cells):
            row = 0
            while row < r:
                take = max(1, min(r - row, int(np.ceil((target - load) / lw))))
                cur.append((i, row, row + take))
                load += take * lw
                row += take
                if load >= target * 0.999 and len(plan) < n - 1:
                    plan.append(cur)
                    cur, load = [], 0.0
        if cur:
            plan.append(cur)
        self._plan_key, self._plan = key, plan
        return plan

    def _discover(self, img: np.ndarray, integral: torch.Tensor, cfg: DetectorConfig):
        """One piece of the cascade, skipping candidates on tracked faces -> new faces."""
        h, w = img.shape[:2]
        plan = self._pieces(h, w, cfg)
        piece = plan[self.piece % len(plan)]
        self.piece += 1
        det = self.detector
        scales = pyramid_scales(h, w, cfg)
        sizes = pyramid_sizes(h, w, scales)
        strips = [(i, r0, pnet_strip(r0, r1, sizes[i][0])) for i, r0, r1 in piece]
        made = area_pyramid(img, [sizes[i] for i, _, _ in strips], det.device, integral,
                            rows=[rows for _, _, rows in strips])
        found = [det.level_candidates(level, scales[i], cfg, row0=r0) for (i, r0, _), level in zip(strips, made)]
        boxes, _ = det.merge_candidates(*zip(*found), cfg)
        if len(boxes) and self.tracks:
            tracked = torch.from_numpy(np.stack([t.box for t in self.tracks]).astype(np.float32)).to(boxes.device)
            boxes = boxes[pairwise_iou(boxes, tracked, mode="min").max(dim=1).values <= 0.5]
        boxes = det.refine(integral, boxes, cfg)
        return det.output(integral, boxes, cfg)

    # -- the frame step ---------------------------------------------------------------------
    def _update(self, boxes: np.ndarray, scores: np.ndarray, lms: np.ndarray) -> None:
        """A full detection's faces become the tracks: each keeps the identity (velocity,
        smoothed labels) of the tracked face it overlaps; faces it did not find are dropped."""
        c = self.config
        pred = (np.stack([t.box + c.velocity * t.velocity for t in self.tracks]).astype(np.float32)
                if self.tracks else np.zeros((0, 4), np.float32))
        owner = {j: i for i, j in _match(pred, boxes, c.match_iou)}
        tracks = []
        for j in range(len(boxes)):
            if j in owner:
                t = self.tracks[owner[j]]
                t.velocity = (boxes[j] - t.box).astype(np.float32)
                t.box, t.score, t.landmarks = boxes[j].copy(), float(scores[j]), lms[j].copy()
                t.age += 1
            else:
                t = _Track(boxes[j].copy(), float(scores[j]), lms[j].copy(), np.zeros(4, np.float32))
            tracks.append(t)
        self.tracks = tracks

    def _classify(self, image_rgb: np.ndarray, scale: float) -> None:
        c = self.config
        due = [t for t in self.tracks if self.frame_no - t.last_classified >= c.classify_every]
        if not due:
            return
        # stagger: at most ceil(n / classify_every) faces per frame, plus every new face
        new = [t for t in due if t.probs is None]
        old = sorted((t for t in due if t.probs is not None), key=lambda t: t.last_classified)
        quota = max(1, -(-len(self.tracks) // c.classify_every))
        due = new + old[:max(0, quota - len(new))]
        if not due:
            return
        boxes = torch.from_numpy(np.stack([t.box for t in due]).astype(np.float32) * scale)
        runner = self.engine.classifier
        probs = runner.probabilities(image_to_tensor(image_rgb, runner.device), boxes)
        for t, p in zip(due, probs):
            t.probs = p.astype(np.float32) if t.probs is None else (c.ema * p + (1 - c.ema) * t.probs).astype(np.float32)
            t.last_classified = self.frame_no
        self.stats["classified"] += len(due)

    @torch.inference_mode()
    def process(self, frame_rgb: np.ndarray, timestamp: float | None = None,
                detector_config: DetectorConfig | None = None, classify: bool = True) -> list[Detection]:
        """One frame (HxWx3 uint8 RGB) -> its faces, labelled with smoothed probabilities.
        timestamp is informational (frame order is what counts)."""
        c = self.config
        # the main pass only (DetectorConfig.small_face_below): the small-face pass's
        # full-size pyramid levels do not fit the real-time budget
        cfg = main_pass_config(detector_config or self.detector_config)
        threads = torch.get_num_threads()
        if c.threads and threads != c.threads:
            torch.set_num_threads(c.threads)
        lock = getattr(self.engine, "lock", None) or contextlib.nullcontext()
        try:
            with lock:
                dets = self._step(np.ascontiguousarray(frame_rgb), cfg, classify)
        finally:
            if c.threads and threads != c.threads:
                torch.set_num_threads(threads)
        return dets

    def _step(self, frame: np.ndarray, cfg: DetectorConfig, classify: bool) -> list[Detection]:
        c = self.config
        img, scale = frame, 1.0
        h, w = frame.shape[:2]
        if c.detect_side and max(h, w) > c.detect_side:
            import cv2
            scale = max(h, w) / c.detect_side
            img = cv2.resize(frame, (max(12, round(w / scale)), max(12, round(h / scale))),
                             interpolation=cv2.INTER_AREA)
            scale = w / img.shape[1]
            cfg = replace(cfg, min_face=max(6.0, cfg.min_face / scale))
        integral = integral_image(img, self.detector.device)
        full = (self.frame_no == 0 or (c.full_every and self.frame_no - self.last_full >= c.full_every)
                or (self.lost and c.redetect_on_loss))
        if full:
            b, s, lm = self.detector.cascade(img, cfg, integral)
            self._update(_np(b), _np(s), _np(lm))
            self.last_full, self.lost = self.frame_no, False
            self.stats["full"] += 1
        else:
            found = self._refine(integral, cfg) if self.tracks else []
            alive = []
            for t, f in zip(self.tracks, found):
                if f is None and c.local_search:
                    b, s, lm = self._local(img, t.box + c.velocity * t.velocity, cfg)
                    self.stats["local"] += 1
                    k = _match(t.box[None], b, c.match_iou)
                    f = (b[k[0][1]], float(s[k[0][1]]), lm[k[0][1]]) if k else None
                if f is None:
                    self.lost = True
                    continue
                t.velocity = (f[0] - t.box).astype(np.float32)
                t.box, t.score, t.landmarks = f[0].astype(np.float32), f[1], f[2].astype(np.float32)
                t.age += 1
                alive.append(t)
            if len(alive) > 1:   # two tracks converged on one face: keep the better (min-overlap NMS)
                keep = nms(torch.from_numpy(np.stack([t.box for t in alive])),
                           torch.tensor([t.score for t in alive]), 0.7, mode="min")
                alive = [alive[int(k)] for k in keep]
            self.tracks = alive
            b, s, lm = self._discover(img, integral, cfg)
            if len(b):
                b, s, lm = _np(b), _np(s), _np(lm)
                new = np.ones(len(b), bool)
                if self.tracks:
                    known = torch.from_numpy(np.stack([t.box for t in self.tracks]).astype(np.float32))
                    new = (pairwise_iou(torch.from_numpy(b), known, "min").max(dim=1).values <= 0.5).numpy()
                for j in np.nonzero(new)[0]:
                    self.tracks.append(_Track(b[j].copy(), float(s[j]), lm[j].copy(), np.zeros(4, np.float32)))
                    self.stats["discovered"] += 1
        if classify and self.tracks:
            self._classify(frame, scale)
        self.frame_no += 1
        self.stats["frames"] += 1
        out = []
        for t in sorted(self.tracks, key=lambda t: -t.score):
            box = tuple(float(v) * scale for v in t.box)
            lms = tuple((float(x) * scale, float(y) * scale) for x, y in t.landmarks)
            if classify and t.probs is not None:
                p = t.probs / max(float(t.probs.sum()), 1e-9)
                out.append(Detection(box=box, score=t.score, landmarks=lms,
                                     label=CLASSES[int(np.argmax(p))],
                                     probs=tuple((k, float(p[i])) for i, k in enumerate(CLASSES))))
            else:
                out.append(Detection(box=box, score=t.score, landmarks=lms))
        return out


def realtime_frame_detector(engine, settings=None, config: RealtimeConfig | None = None):
    """Drop-in for the webcam page's `detect_frame(engine, img, settings)`.

    -> detect(img_rgb) -> list[Detection], holding one RealtimeMaskDetector (per-stream state:
    build one per stream, i.e. inside make_frame_callback). Like detect_frame it reads the
    WebcamSettings-like `settings` (min_face, onet_threshold, detect_side, classify, threads;
    any missing attribute keeps its default) on every call, so the page can change them live;
    a changed min_face or threshold starts the tracking afresh (full detection), and so does a
    gap of more than settings.stream_gap_s seconds since the last call (a new stream, a stall).
    detect.realtime is the RealtimeMaskDetector (stats, reset()).
    """
    rt = RealtimeMaskDetector(engine, config)
    last = {"cfg": None, "t": None}

    def detect(img: np.ndarray) -> list[Detection]:
        if settings is None:
            return rt.process(img, time.monotonic())
        side = int(getattr(settings, "detect_side", rt.config.detect_side) or 0)
        threads = int(getattr(settings, "threads", rt.config.threads) or 0)
        if (side, threads) != (rt.config.detect_side, rt.config.threads):
            rt.config = replace(rt.config, detect_side=side, threads=threads)
        base = engine.detector.config
        cfg = engine.with_config(min_face=float(getattr(settings, "min_face", base.min_face)),
                                 onet_threshold=getattr(settings, "onet_threshold", None))
        now = time.monotonic()
        gap = getattr(settings, "stream_gap_s", None)
        if last["cfg"] is not None and (cfg != last["cfg"] or (gap is not None and now - last["t"] > gap)):
            rt.reset()      # new face size or threshold, or a new stream: start afresh
        last["cfg"], last["t"] = cfg, now
        return rt.process(img, now, detector_config=cfg,
                          classify=bool(getattr(settings, "classify", True)))

    detect.realtime = rt
    return detect
