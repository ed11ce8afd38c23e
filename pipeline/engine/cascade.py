"""MTCNN face detection: image pyramid -> P-Net -> R-Net -> O-Net.

Stage 1 runs P-Net fully convolutionally over every pyramid level and keeps windows above the
first threshold (NMS within each level, then across levels). Stages 2 and 3 crop every
surviving candidate in one batched op (pipeline.engine.crops), refine it with R-Net then O-Net, and
apply box regression, squaring and NMS. O-Net also gives 5 landmarks.

The arithmetic is the reference's (facenet-pytorch 2.6.0's MTCNN, which most people run):
area-averaged pyramid levels made from the full image, crops cut from the image clamped to
its edges and area-averaged, the same thresholds, NMS rules and box updates - so it finds the
same faces. The speed comes from how it is computed (see docs/PERFORMANCE.md): exact area
averaging from cumulative sums instead of adaptive pooling, all crops of a stage in one
gather, channels-last convolutions with the input normalisation folded into the first layer,
both P-Net heads as one matrix product, and NMS without a per-box Python loop.

One cascade, three drivers: the module-level functions here are the cascade's arithmetic
(pyramid, P-Net windows and strips, box regression + squaring per stage, landmarks, the final
NMS's inclusive boxes) and pipeline.engine.nets.inference_form its nets; FaceDetector drives them
one image at a time (compacting candidates by index), pipeline.engine.batched many same-size frames at
once (fixed-size masked tensors, no host sync), pipeline.engine.temporal a stream (FaceDetector's
stages on predicted boxes and pieces of the pyramid).

Boxes are float32 [N,4] x1,y1,x2,y2 in pixels of the input image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from pipeline.engine.boxes import calibrate_boxes, nms, pairwise_iou, square_boxes
from pipeline.engine.config import DetectorConfig
from pipeline.engine.crops import area_crops, area_pyramid, integral_image
from pipeline.engine.nets import InferenceNet, ONet, PNet, RNet, face_prob, inference_form

PNET_STRIDE = 2
PNET_CELL = 12
RNET_CHUNK = 64
"""R-Net's inference form runs at most this many crops at a time on CPU (measured)."""


@dataclass(frozen=True)
class FaceBoxes:
    """Faces found in one image. boxes float32 [N,4]; scores [N]; landmarks [N,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


# -- the cascade's arithmetic, shared by the per-frame (FaceDetector), batched (pipeline.engine.batched)
# -- and webcam (pipeline.engine.temporal) drivers. Boxes may carry leading batch dimensions [...,4].

def main_min_face(config: DetectorConfig) -> float:
    """The smallest face of the main pyramid: min_face, or small_face_below when the
    small-face pass covers the faces under it (DetectorConfig.small_face_below)."""
    return max(config.min_face, config.small_face_below)


def pyramid_scales(height: int, width: int, config: DetectorConfig) -> list[float]:
    """The main pyramid: scales at which a main_min_face face becomes P-Net's 12 px window,
    shrinking by scale_factor until the image's short side falls below 12 px."""
    scale = 12.0 / main_min_face(config)
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= config.scale_factor
        short *= config.scale_factor
    return scales


SMALL_FACE_OVERLAP = 0.3
"""A small-face pass face is dropped when it overlaps a main-pass face by more than this, as
IoU or as the share of its own area inside that face (a part of a found face). The rule is not
sensitive: 0.2 or 0.5 here, or a size cap of 24 or 28 px in place of small_face_below, move face
AP >= 20 px and over all sizes by at most 0.001 on the four validation sets, with either weight
set (2026-12-03)."""


def main_pass_config(config: DetectorConfig, min_face: float | None = None) -> DetectorConfig:
    """The same detector without the small-face pass: a plain pyramid from main_min_face, or
    from min_face when one is given (a stream's own smallest face, in pixels of the image the
    detector runs on). Real-time streams (webcam, `watch`) and the release checks use it."""
    return replace(config, min_face=main_min_face(config) if min_face is None else float(min_face),
                   small_face_below=0.0)


def small_face_config(config: DetectorConfig) -> DetectorConfig | None:
    """The config of the small-face pass (a plain pyramid from min_face), or None when there
    is no pass (min_face >= small_face_below)."""
    if config.min_face >= config.small_face_below:
        return None
    return replace(config, small_face_below=0.0)


def small_face_scales(height: int, width: int, config: DetectorConfig) -> list[float]:
    """The pyramid levels of the small-face pass: those of a plain min_face pyramid at least
    one step (scale_factor) finer than the main pyramid's first level (12 / main_min_face);
    [] when there is no pass. The main pass already reaches faces about one step smaller than
    its first level through box regression: with the defaults the pass is the one level 1.0
    (12 px faces). Adding 0.709 as well gained 0.002-0.005 face AP over all sizes, at 1.65-2.0x
    the main pass's time in all against 1.3-1.6x (DetectorConfig.small_face_below)."""
    small = small_face_config(config)
    if small is None:
        return []
    one_step_finer = 12.0 / main_min_face(config) / config.scale_factor
    return [s for s in pyramid_scales(height, width, small) if s >= one_step_finer * (1 - 1e-6)]


def add_small_faces(main, small, config: DetectorConfig):
    """(boxes [N,4], scores [N], landmarks [N,5,2]) of the main pass and of the small-face
    pass -> the main faces, then each small-pass face whose short side is under
    small_face_below and that overlaps no main face (SMALL_FACE_OVERLAP), its score times
    O-Net's threshold, so that it ranks after every main face (whose scores are above it)."""
    boxes, scores, landmarks = small
    side = torch.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    ok = side < config.small_face_below
    if len(main[0]) and len(boxes):
        iou = pairwise_iou(boxes, main[0]).amax(dim=1)
        inside = pairwise_iou(boxes, main[0], "min").amax(dim=1)
        ok &= (iou <= SMALL_FACE_OVERLAP) & (inside <= SMALL_FACE_OVERLAP)
    return (torch.cat([main[0], boxes[ok]]), torch.cat([main[1], scores[ok] * config.thresholds[2]]),
            torch.cat([main[2], landmarks[ok]]))


def pyramid_sizes(height: int, width: int, scales: list[float]) -> list[tuple[int, int]]:
    """(h, w) of every level: int(side * scale + 1), as the original."""
    return [(int(height * s + 1), int(width * s + 1)) for s in scales]


def pnet_output_rows(level_height: int) -> int:
    """Rows of P-Net's output on a level of this height (one per 12 px window at stride 2)."""
    return (level_height - PNET_CELL) // PNET_STRIDE + 1


def pnet_strip(first: int, end: int, level_height: int) -> tuple[int, int]:
    """Level rows (first, end) that give exactly P-Net's output rows first .. end - 1: P-Net
    is local, so a strip with PNET_CELL - PNET_STRIDE extra rows is enough."""
    return PNET_STRIDE * first, min(level_height, PNET_STRIDE * end + PNET_CELL - PNET_STRIDE)


def pnet_windows(cells: torch.Tensor, scale: float) -> torch.Tensor:
    """P-Net output cells [...,2] as (column, row) -> their 12 px windows in image pixels
    [...,4], in the reference's arithmetic."""
    top_left = torch.floor((PNET_STRIDE * cells + 1) / scale)
    bottom_right = torch.floor((PNET_STRIDE * cells + PNET_CELL) / scale)
    return torch.cat([top_left, bottom_right], dim=-1)


def cross_level_nms_is_noop(config: DetectorConfig) -> bool:
    """True when NMS across pyramid levels can remove nothing, so it may be skipped.

    Within a level, NMS at nms_thresholds[0] already left no pair above it. Across levels, two
    P-Net windows are squares whose sides differ by at least the scale step (side = 11/scale
    px, +-1 px from flooring), so their IoU is at most (smaller side / larger side)^2, however
    they sit. With the defaults (0.709 step, first scale 0.6) that bound is 0.61 < 0.7.
    """
    if config.nms_thresholds[0] > config.nms_thresholds[1]:
        return False
    s = 12.0 / main_min_face(config)
    ratio = (11.0 / s + 1.0) / (11.0 / (s * config.scale_factor) - 1.0)
    return 0 < ratio < 1 and ratio ** 2 < config.nms_thresholds[1]


def proposal_boxes(windows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """P-Net windows + their box regression -> R-Net's square candidates (stage 1's end)."""
    return square_boxes(calibrate_boxes(windows, offsets, plus_one=False))


def refined_boxes(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """R-Net candidates + their box regression -> O-Net's square candidates (stage 2's end)."""
    return square_boxes(calibrate_boxes(boxes, offsets))


def onet_landmarks(boxes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """O-Net input boxes [...,4] + its landmark outputs [...,10] (x1..x5, y1..y5 as fractions
    of the box, measured inclusively) -> landmarks [...,5,2] in image pixels."""
    w = (boxes[..., 2] - boxes[..., 0] + 1)[..., None]
    h = (boxes[..., 3] - boxes[..., 1] + 1)[..., None]
    lx = w * points[..., :5] + boxes[..., 0:1] - 1
    ly = h * points[..., 5:] + boxes[..., 1:2] - 1
    return torch.stack([lx, ly], dim=-1)


def inclusive_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes measured inclusively (+1 px on each side's length), as the reference's final
    "Min" NMS measures them."""
    return boxes + boxes.new_tensor([0.0, 0.0, 1.0, 1.0])


@dataclass(frozen=True)
class FastNets:
    """The inference forms (pipeline.engine.nets.inference_form) of P-Net, R-Net and O-Net, made
    from the modules' current weights."""

    pnet: InferenceNet
    rnet: InferenceNet
    onet: InferenceNet

    @classmethod
    def of(cls, pnet: PNet, rnet: RNet, onet: ONet, device: torch.device) -> "FastNets":
        return cls(inference_form(pnet, device), inference_form(rnet, device, chunk=RNET_CHUNK),
                   inference_form(onet, device))


class FaceDetector:
    """Three-stage MTCNN over one or more RGB uint8 images. Holds the nets; no I/O.

    workers: CPU only - split each stage across this many threads (pyramid levels into groups
    of equal work, R-Net and O-Net crops into equal parts), each running torch ops
    single-threaded. Meant for torch.set_num_threads(1) on a 2-core machine: both cores work,
    with none of OpenMP's spin-waiting, which is what slowed 2 intra-op threads ~3x when the
    other core was busy. Same results (each part is computed exactly as before). Default 1.
    """

    workers: int = 1

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, config: DetectorConfig | None = None,
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.pnet = pnet.to(self.device).eval()
        self.rnet = rnet.to(self.device).eval()
        self.onet = onet.to(self.device).eval()
        self.config = config or DetectorConfig()
        self._fast, self._fast_key, self._fast_nets, self._fast_params = None, None, None, []
        self._pool, self._pool_size = None, 0

    def _parallel(self, fn, parts: list) -> list:
        """[fn(p) for p in parts], the first in this thread, the others on the worker threads
        (under inference mode there too: it is per thread)."""
        if len(parts) <= 1:
            return [fn(p) for p in parts]
        if self._pool is None or self._pool_size != len(parts) - 1:
            from concurrent.futures import ThreadPoolExecutor
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="maskwatch-det")
            self._pool_size = len(parts) - 1

        def run(p):
            with torch.inference_mode():
                return fn(p)
        futures = [self._pool.submit(run, p) for p in parts[1:]]
        return [fn(parts[0])] + [f.result() for f in futures]

    @property
    def _worker_count(self) -> int:
        """Threads a stage is split across: self.workers on CPU, 1 on GPU."""
        return self.workers if self.device.type == "cpu" else 1

    def _splits(self, n: int, minimum: int) -> list[slice]:
        """n items -> self.workers contiguous slices (just one when n is small or on GPU)."""
        k = max(1, min(self._worker_count, n // max(1, minimum)))
        edges = [round(i * n / k) for i in range(k + 1)]
        return [slice(edges[i], edges[i + 1]) for i in range(k)]

    @property
    def fast(self) -> FastNets:
        """The inference forms of the nets, rebuilt whenever a weight has changed in place
        (e.g. by fine-tuning: every in-place update bumps the tensor's version) or a net or
        parameter has been replaced."""
        nets = (self.pnet, self.rnet, self.onet)
        if self._fast is None or self._fast_nets != tuple(map(id, nets)):
            self._fast_params = [p for net in nets for p in net.parameters()]
            self._fast_nets = tuple(map(id, nets))
            self._fast_key = None
        key = tuple(p._version for p in self._fast_params)
        if key != self._fast_key:
            self._fast, self._fast_key = FastNets.of(self.pnet, self.rnet, self.onet, self.device), key
        return self._fast

    # -- stage 1 -------------------------------------------------------------------------------
    def pnet_candidates(self, out: torch.Tensor, scale: float, threshold: float, row0: int = 0):
        """One level's P-Net output [6,h,w] -> (boxes [K,4], scores [K], offsets [K,4]) of the
        windows with face prob >= threshold, in the reference's arithmetic. row0: the level
        row (in output cells) where `out` starts, when P-Net ran on a strip of the level."""
        # cheap pre-filter on the logit margin (prob >= t  <=>  l1 - l0 >= log(t / (1 - t))),
        # with slack; the reference's softmax test is then applied exactly to the survivors
        t = min(max(threshold, 1e-6), 1 - 1e-6)
        margin = math.log(t / (1 - t)) - 1e-3
        ys, xs = torch.nonzero(out[5] - out[4] >= margin, as_tuple=True)
        prob = face_prob(out[4:6, ys, xs], dim=0)
        ok = prob >= threshold
        ys, xs, prob = ys[ok], xs[ok], prob[ok]
        cells = torch.stack([xs, ys + row0], dim=1).to(out.dtype)
        return pnet_windows(cells, scale), prob, out[:4, ys, xs].T

    def level_candidates(self, level: torch.Tensor, scale: float, config: DetectorConfig, row0: int = 0):
        """P-Net on one pyramid level [1,3,h,w] (raw pixels) -> NMS within the level ->
        (boxes [K,4], scores [K], offsets [K,4]). `level` may be a horizontal strip of the
        level, starting at level row 2 * row0 (row0 in output cells): P-Net is local, so a
        strip (pnet_strip) gives exactly the whole level's outputs."""
        out = self.fast.pnet.raw(level)[0]
        boxes, scores, offsets = self.pnet_candidates(out, scale, config.thresholds[0], row0)
        if scores.numel() == 0:
            return boxes, scores, offsets
        keep = nms(boxes, scores, config.nms_thresholds[0])
        return boxes[keep], scores[keep], offsets[keep]

    def merge_candidates(self, boxes: list, scores: list, offsets: list, config: DetectorConfig):
        """Per-level candidates -> NMS across levels, P-Net box regression, squaring ->
        (squared candidate boxes [N,4], scores [N])."""
        boxes = [b for b in boxes if len(b)]
        if not boxes:
            empty = torch.zeros((0, 4), device=self.device)
            return empty, torch.zeros(0, device=self.device)
        boxes = torch.cat(boxes)
        scores = torch.cat([s for s in scores if len(s)])
        offsets = torch.cat([o for o in offsets if len(o)])
        if cross_level_nms_is_noop(config):   # provably removes nothing: just rank by score
            keep = torch.argsort(scores, descending=True, stable=True)
        else:
            keep = nms(boxes, scores, config.nms_thresholds[1])
        keep = keep[: config.max_candidates]
        return proposal_boxes(boxes[keep], offsets[keep]), scores[keep]

    def propose(self, image_rgb: np.ndarray, config: DetectorConfig,
                scales: list[float] | None = None,
                integral: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over the pyramid -> (squared candidate boxes [N,4], scores [N]).
        scales: a subset of pyramid_scales to run (default all); integral: the image's
        integral_image when already made."""
        h, w = image_rgb.shape[:2]
        scales = pyramid_scales(h, w, config) if scales is None else scales
        sizes = pyramid_sizes(h, w, scales)
        if integral is None and self.device.type == "cpu":
            integral = integral_image(image_rgb)

        def levels(ids):
            made = area_pyramid(image_rgb, [sizes[i] for i in ids], self.device, integral)
            return [self.level_candidates(lv, scales[i], config) for i, lv in zip(ids, made)]

        found = [c for part in self._parallel(levels, self._level_groups(sizes)) for c in part]
        return self.merge_candidates(*zip(*found), config) if found else self.merge_candidates([], [], [], config)

    def _level_groups(self, sizes: list[tuple[int, int]]) -> list[list[int]]:
        """Level indices in self.workers groups of near-equal pixel count (P-Net work)."""
        k = self._worker_count
        if k <= 1 or len(sizes) < 2:
            return [list(range(len(sizes)))]
        groups, load = [[] for _ in range(k)], [0] * k
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i][0] * sizes[i][1]):
            g = load.index(min(load))
            groups[g].append(i)
            load[g] += sizes[i][0] * sizes[i][1]
        return [sorted(g) for g in groups if g]

    # -- stages 2 and 3 ---------------------------------------------------------------------------
    def refine(self, integral: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """R-Net: [N,4] candidates -> fewer, calibrated, squared boxes [M,4].
        integral: the image's integral_image [H+1,W+1,3]."""
        if boxes.shape[0] == 0:
            return boxes
        parts = self._parallel(lambda sl: self.fast.rnet(area_crops(integral, boxes[sl], 24)),
                               self._splits(boxes.shape[0], 64))
        offsets, scores = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        ok = scores > config.thresholds[1]
        boxes, scores, offsets = boxes[ok], scores[ok], offsets[ok]
        keep = nms(boxes, scores, config.nms_thresholds[2])
        return refined_boxes(boxes[keep], offsets[keep])

    def output(self, integral: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """O-Net: [N,4] -> (final boxes [M,4], scores [M], landmarks [M,5,2]).
        integral: the image's integral_image [H+1,W+1,3]."""
        if boxes.shape[0] == 0:
            return boxes, boxes.new_zeros(0), boxes.new_zeros((0, 5, 2))
        parts = self._parallel(lambda sl: self.fast.onet(area_crops(integral, boxes[sl], 48)),
                               self._splits(boxes.shape[0], 8))
        offsets, points, scores = (torch.cat([p[k] for p in parts]) for k in range(3))
        ok = scores > config.thresholds[2]
        boxes, scores, offsets, points = boxes[ok], scores[ok], offsets[ok], points[ok]
        landmarks = onet_landmarks(boxes, points)
        boxes = calibrate_boxes(boxes, offsets)
        keep = nms(inclusive_boxes(boxes), scores, config.nms_thresholds[3], mode="min")
        return boxes[keep], scores[keep], landmarks[keep]

    def cascade(self, image_rgb: np.ndarray, config: DetectorConfig, integral: torch.Tensor | None = None,
                scales: list[float] | None = None):
        """All three stages on one HxWx3 uint8 RGB image -> (boxes [M,4], scores [M],
        landmarks [M,5,2]) tensors. integral: its integral_image when already made; scales: a
        subset of pyramid_scales (default all, plus the small-face pass when the config has
        one: DetectorConfig.small_face_below)."""
        integral = integral_image(image_rgb, self.device) if integral is None else integral
        found = self.stages(image_rgb, config, integral, scales)
        fine = small_face_scales(*image_rgb.shape[:2], config) if scales is None else []
        if fine:
            found = add_small_faces(found, self.small_faces(image_rgb, config, integral, fine), config)
        return found

    def stages(self, image_rgb: np.ndarray, config: DetectorConfig, integral: torch.Tensor,
               scales: list[float] | None = None):
        """P-Net over `scales` (default: all of config's pyramid), then R-Net and O-Net."""
        boxes, _ = self.propose(image_rgb, config, scales=scales, integral=integral)
        boxes = self.refine(integral, boxes, config)
        return self.output(integral, boxes, config)

    def small_faces(self, image_rgb: np.ndarray, config: DetectorConfig, integral: torch.Tensor | None = None,
                    scales: list[float] | None = None):
        """The small-face pass alone (before add_small_faces): the three stages over its levels
        (scales: small_face_scales, derived when not given), with the small-face config; no
        faces when the config has no such level."""
        integral = integral_image(image_rgb, self.device) if integral is None else integral
        scales = small_face_scales(*image_rgb.shape[:2], config) if scales is None else scales
        if not scales:
            empty = torch.zeros((0, 4), device=self.device)
            return empty, empty.new_zeros(0), empty.new_zeros((0, 5, 2))
        return self.stages(image_rgb, small_face_config(config), integral, scales)

    @torch.inference_mode()
    def detect(self, image_rgb: np.ndarray, config: DetectorConfig | None = None) -> FaceBoxes:
        """Find faces in one HxWx3 uint8 RGB image."""
        boxes, scores, landmarks = self.cascade(np.ascontiguousarray(image_rgb), config or self.config)
        return FaceBoxes(boxes.float().cpu().numpy().astype(np.float32),
                         scores.float().cpu().numpy().astype(np.float32),
                         landmarks.float().cpu().numpy().astype(np.float32))
