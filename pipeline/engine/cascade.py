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

Boxes are float32 [N,4] x1,y1,x2,y2 in pixels of the input image.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.mkldnn as mkldnn_utils

from pipeline.engine.boxes import calibrate_boxes, nms, square_boxes
from pipeline.engine.config import DetectorConfig
from pipeline.engine.crops import area_crops, area_pyramid, integral_image
from pipeline.engine.nets import ONet, PNet, RNet

PNET_STRIDE = 2
PNET_CELL = 12


@dataclass(frozen=True)
class FaceBoxes:
    """Faces found in one image. boxes float32 [N,4]; scores [N]; landmarks [N,5,2]."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def pyramid_scales(height: int, width: int, config: DetectorConfig) -> list[float]:
    """Scales at which a min_face face becomes P-Net's 12 px window, shrinking by
    scale_factor until the image's short side falls below 12 px."""
    scale = 12.0 / config.min_face
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= config.scale_factor
        short *= config.scale_factor
    return scales


def pyramid_sizes(height: int, width: int, scales: list[float]) -> list[tuple[int, int]]:
    """(h, w) of every level: int(side * scale + 1), as the original."""
    return [(int(height * s + 1), int(width * s + 1)) for s in scales]


def build_pyramid(image_rgb: np.ndarray, scales: list[float]) -> list[np.ndarray]:
    """Resize the image to every scale (size int(side * scale + 1), as the original).

    Every level is area-averaged from the full image exactly as the reference's
    F.interpolate(mode="area") (see pipeline.engine.crops.area_pyramid), returned as float32 HxWx3
    raw pixel values.
    """
    h, w = image_rgb.shape[:2]
    levels = area_pyramid(np.ascontiguousarray(image_rgb), pyramid_sizes(h, w, scales))
    return [lv[0].permute(1, 2, 0).numpy() for lv in levels]


def cross_level_nms_is_noop(config: DetectorConfig) -> bool:
    """True when NMS across pyramid levels can remove nothing, so it may be skipped.

    Within a level, NMS at nms_thresholds[0] already left no pair above it. Across levels, two
    P-Net windows are squares whose sides differ by at least the scale step (side = 11/scale
    px, +-1 px from flooring), so their IoU is at most (smaller side / larger side)^2, however
    they sit. With the defaults (0.709 step, first scale 0.6) that bound is 0.61 < 0.7.
    """
    if config.nms_thresholds[0] > config.nms_thresholds[1]:
        return False
    s = 12.0 / config.min_face
    ratio = (11.0 / s + 1.0) / (11.0 / (s * config.scale_factor) - 1.0)
    return 0 < ratio < 1 and ratio ** 2 < config.nms_thresholds[1]


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Raw 0..255 pixels -> the nets' input range."""
    return (pixels - 127.5) * 0.0078125


class _FastNets:
    """Inference-only forms of P-Net, R-Net and O-Net: the same functions, computed faster.

    * input normalisation (x - 127.5) / 128 folded into the first conv (raw pixels in);
    * on CPU the conv/PReLU/max-pool trunk runs on oneDNN's blocked layout (mkldnn tensors,
      weights reordered once), which is markedly faster there than NCHW or channels_last for
      these few-channel layers; elsewhere (CUDA) channels_last;
    * P-Net's two 1x1 heads as one [32 -> 6] matrix product; R-Net/O-Net's heads merged into
      one matrix product;
    * 2-way softmax kept as softmax (thresholds compare the same numbers as the reference).
    Built from the modules' current weights; build again after changing them.
    """

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, device: torch.device):
        self.mkldnn = device.type == "cpu" and torch.backends.mkldnn.is_available()
        with torch.no_grad():
            self.p_trunk = self._trunk(pnet, 3, ((2, 2), None, None))
            self.r_trunk = self._trunk(rnet, 3, ((3, 2), (3, 2), None))
            self.o_trunk = self._trunk(onet, 4, ((3, 2), (3, 2), (2, 2), None))
            self.p_heads = self._heads(pnet, ("conv4_2", "conv4_1"))
            if self.mkldnn:
                heads = torch.nn.Conv2d(32, 6, 1)
                heads.weight.copy_(self.p_heads[0][:, :, None, None])
                heads.bias.copy_(self.p_heads[1])
                self.p_heads_conv = mkldnn_utils.MkldnnConv2d(heads.eval(), torch.float)
            self.r_heads = self._heads(rnet, ("dense5_2", "dense5_1"))
            self.o_heads = self._heads(onet, ("dense6_2", "dense6_3", "dense6_1"))
            self.r_dense = self._dense(rnet, "dense4", "prelu4")
            self.o_dense = self._dense(onet, "dense5", "prelu5")

    def _trunk(self, net, n_convs, pools):
        layers = []
        for k in range(1, n_convs + 1):
            conv = copy.deepcopy(getattr(net, f"conv{k}")).float()
            prelu = copy.deepcopy(getattr(net, f"prelu{k}")).float()
            if k == 1:                                   # fold the input normalisation
                w = conv.weight * 0.0078125
                conv.bias.copy_(conv.bias - 127.5 * w.sum((1, 2, 3)))
                conv.weight.copy_(w)
            if self.mkldnn:
                conv = mkldnn_utils.MkldnnConv2d(conv, torch.float)
                prelu = mkldnn_utils.MkldnnPrelu(prelu, torch.float)
            layers.append((conv, prelu, pools[k - 1]))
        return layers

    @staticmethod
    def _heads(net, names):
        w = torch.cat([getattr(net, h).weight.detach().reshape(getattr(net, h).weight.shape[0], -1)
                       for h in names])
        b = torch.cat([getattr(net, h).bias.detach() for h in names])
        return w.float().contiguous(), b.float().contiguous()

    @staticmethod
    def _dense(net, name, prelu):
        lin = getattr(net, name)
        return (lin.weight.detach().float().contiguous(), lin.bias.detach().float().contiguous(),
                getattr(net, prelu).weight.detach().float().contiguous())

    def _run_trunk(self, layers, x: torch.Tensor, dense: bool = True) -> torch.Tensor:
        """Raw pixels [N,3,H,W] -> last conv features, dense NCHW (dense=False: left in
        oneDNN's blocked layout when on it)."""
        x = x.to_mkldnn() if self.mkldnn else x.contiguous(memory_format=torch.channels_last)
        for conv, prelu, pool in layers:
            x = prelu(conv(x))
            if pool is not None:
                x = F.max_pool2d(x, pool[0], pool[1], ceil_mode=True)
        if not dense:
            return x
        return x.to_dense() if self.mkldnn else x.contiguous()

    def pnet(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels [N,3,H,W] -> [N,6,h,w]: 4 box offsets, 2 face logits."""
        if self.mkldnn:   # heads as one 1x1 conv before leaving the blocked layout: 6 channels, not 32
            return self.p_heads_conv(self._run_trunk(self.p_trunk, x, dense=False)).to_dense()
        f = self._run_trunk(self.p_trunk, x)
        return F.conv2d(f, self.p_heads[0][:, :, None, None], self.p_heads[1])

    def _dense_head(self, x, dense, heads):
        w, b, a = dense
        x = F.prelu(F.linear(x.flatten(1), w, b), a)
        return F.linear(x, *heads)

    def rnet(self, x: torch.Tensor, chunk: int = 64):
        """Raw pixel crops [N,3,24,24] -> (offsets [N,4], face prob [N]). Runs in chunks of
        `chunk` crops on CPU so the wide first-layer activations stay in cache (measured)."""
        if self.mkldnn and x.shape[0] > chunk:
            parts = [self.rnet(x[i:i + chunk], chunk) for i in range(0, x.shape[0], chunk)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        out = self._dense_head(self._run_trunk(self.r_trunk, x), self.r_dense, self.r_heads)
        return out[:, :4], torch.softmax(out[:, 4:6], dim=1)[:, 1]

    def onet(self, x: torch.Tensor):
        """Raw pixel crops [N,3,48,48] -> (offsets [N,4], landmarks [N,10], face prob [N])."""
        out = self._dense_head(self._run_trunk(self.o_trunk, x), self.o_dense, self.o_heads)
        return out[:, :4], out[:, 4:14], torch.softmax(out[:, 14:16], dim=1)[:, 1]


def _as_integral(image: torch.Tensor) -> torch.Tensor:
    """A refine/output `image` argument -> its summed-area table. Accepts the float
    [1,3,H,W] raw-pixel image (float64 sums: exact for whole-number pixels) or an integral
    already made by pipeline.engine.crops.integral_image ([H+1,W+1,3])."""
    if image.dim() == 3:
        return image
    x = image[0].permute(1, 2, 0).to(torch.float64)
    out = torch.zeros((x.shape[0] + 1, x.shape[1] + 1, 3), dtype=torch.float64, device=x.device)
    out[1:, 1:] = x.cumsum(0).cumsum(1)
    return out


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
    def fast(self) -> _FastNets:
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
            self._fast, self._fast_key = _FastNets(self.pnet, self.rnet, self.onet, self.device), key
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
        prob = torch.softmax(out[4:6, ys, xs], dim=0)[1]
        ok = prob >= threshold
        ys, xs, prob = ys[ok], xs[ok], prob[ok]
        cells = torch.stack([xs, ys + row0], dim=1).to(out.dtype)
        top_left = torch.floor((PNET_STRIDE * cells + 1) / scale)
        bottom_right = torch.floor((PNET_STRIDE * cells + PNET_CELL) / scale)
        return torch.cat([top_left, bottom_right], dim=1), prob, out[:4, ys, xs].T

    def level_candidates(self, level: torch.Tensor, scale: float, config: DetectorConfig, row0: int = 0):
        """P-Net on one pyramid level [1,3,h,w] (raw pixels) -> NMS within the level ->
        (boxes [K,4], scores [K], offsets [K,4]). `level` may be a horizontal strip of the
        level, starting at level row 2 * row0 (row0 in output cells): P-Net is local, so a
        strip with PNET_CELL - PNET_STRIDE extra rows gives exactly the whole level's outputs."""
        out = self.fast.pnet(level)[0]
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
        boxes = calibrate_boxes(boxes[keep], offsets[keep], plus_one=False)
        return square_boxes(boxes), scores[keep]

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
    def refine(self, image: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """R-Net: [N,4] candidates -> fewer, calibrated, squared boxes [M,4].
        image: float [1,3,H,W] raw pixels, or its integral_image [H+1,W+1,3]."""
        if boxes.shape[0] == 0:
            return boxes
        integral = _as_integral(image)
        parts = self._parallel(lambda sl: self.fast.rnet(area_crops(integral, boxes[sl], 24)),
                               self._splits(boxes.shape[0], 64))
        offsets, scores = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        ok = scores > config.thresholds[1]
        boxes, scores, offsets = boxes[ok], scores[ok], offsets[ok]
        keep = nms(boxes, scores, config.nms_thresholds[2])
        return square_boxes(calibrate_boxes(boxes[keep], offsets[keep]))

    def output(self, image: torch.Tensor, boxes: torch.Tensor, config: DetectorConfig):
        """O-Net: [N,4] -> (final boxes [M,4], scores [M], landmarks [M,5,2]).
        image: float [1,3,H,W] raw pixels, or its integral_image [H+1,W+1,3]."""
        if boxes.shape[0] == 0:
            return boxes, boxes.new_zeros(0), boxes.new_zeros((0, 5, 2))
        integral = _as_integral(image)
        parts = self._parallel(lambda sl: self.fast.onet(area_crops(integral, boxes[sl], 48)),
                               self._splits(boxes.shape[0], 8))
        offsets, points, scores = (torch.cat([p[k] for p in parts]) for k in range(3))
        ok = scores > config.thresholds[2]
        boxes, scores, offsets, points = boxes[ok], scores[ok], offsets[ok], points[ok]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = w * points[:, :5] + boxes[:, 0:1] - 1
        ly = h * points[:, 5:] + boxes[:, 1:2] - 1
        landmarks = torch.stack([lx, ly], dim=2)
        boxes = calibrate_boxes(boxes, offsets)
        # the reference's "Min" NMS measures boxes inclusively (+1 px on each side's length)
        inclusive = boxes + boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
        keep = nms(inclusive, scores, config.nms_thresholds[3], mode="min")
        return boxes[keep], scores[keep], landmarks[keep]

    @torch.inference_mode()
    def detect(self, image_rgb: np.ndarray, config: DetectorConfig | None = None) -> FaceBoxes:
        """Find faces in one HxWx3 uint8 RGB image."""
        config = config or self.config
        image_rgb = np.ascontiguousarray(image_rgb)
        integral = integral_image(image_rgb, self.device)
        boxes, _ = self.propose(image_rgb, config, integral=integral)
        boxes = self.refine(integral, boxes, config)
        boxes, scores, landmarks = self.output(integral, boxes, config)
        return FaceBoxes(boxes.float().cpu().numpy().astype(np.float32),
                         scores.float().cpu().numpy().astype(np.float32),
                         landmarks.float().cpu().numpy().astype(np.float32))
