"""Training samples for the three MTCNN nets, following the MTCNN report's recipe.

Crops of 12 (P-Net), 24 (R-Net) and 48 (O-Net) px, each labelled by its IoU with the nearest
ground-truth face: positive (IoU >= 0.65, label 1), part face (0.4 <= IoU < 0.65, label -1:
box regression only), negative (IoU < 0.3, label 0; 0.3..0.4 is dropped), and landmark samples
(label -2: landmark regression only, O-Net) from MTFL's 80x80 face crops.

Sources (training images only):
* scenes/ilc2021, the training side of training.splits.ilc_split (never its validation images);
* scenes/dlib_faces (imglab XML; boxes marked ignore="1" are ignore regions);
* synthetic masks: copies of those scenes in which every unmasked face (ILC `no_mask`, all
  dlib faces) gets a MaskTheFace mask drawn on its O-Net landmarks (training.mask_synthesis),
  worn correctly or, with P_INCORRECT, pulled down under the nose;
* landmarks/mtfl (entries with broken coordinates dropped), half of them with a drawn mask.

ILC boxes are not exhaustive in crowds: faces that the original MTCNN finds confidently
(score >= IGNORE_SCORE) where no box is become ignore regions, which no negative may overlap
(IoU >= NEG_IOU), so unlabelled faces are not taught as background.

Box and landmark targets use exactly the detector's conventions (pipeline.engine.cascade), so that
the fine-tuned nets stay compatible with the original weights' regression:
* P-Net: a window [x, x+s) seen as a 12 px cell gives the box (x + s/12, y + s/12, x + s, y + s)
  and offsets are (gt - box) / (11 s / 12), as `FaceDetector.propose` decodes them;
* R-Net / O-Net: a box b is cut out as the reference MTCNN (facenet-pytorch's detect_face) does:
  pixels trunc(x1) - 1 .. trunc(x2) - 1 (inclusive, 0-based), clamped to the image, then area
  resized (adaptive average pooling); offsets are (gt - b) / (b_w + 1); landmarks are
  ((p - b_x1 + 1) / (b_w + 1), ...), as `FaceDetector.output` decodes them.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.engine.boxes import box_iou
from pipeline.media.images import read_image
from pipeline.records import NO_MASK_INDEX
from training import mask_synthesis as ms
from training.augment import camera_degrade
from training.paths import DATA

SIZES = {"pnet": 12, "rnet": 24, "onet": 48}
POS_IOU, PART_IOU, NEG_IOU = 0.65, 0.4, 0.3
POS, NEG, PART, LANDMARK = 1, 0, -1, -2
IGNORE_SCORE = 0.95
"""Original-MTCNN detections at least this confident, matching no GT box, become ignore regions."""
P_INCORRECT = 0.3
"""Share of synthetic masks drawn worn incorrectly (nose uncovered)."""
MIN_MASK_FACE = 12.0
"""Faces with a shorter side get no synthetic mask (too small to place one sensibly)."""
MTFL = DATA / "landmarks" / "mtfl"
DLIB = DATA / "scenes" / "dlib_faces"

# per-scene random sampling, per net (MTCNN's gen_*_data: ~50 random negatives per image,
# a few near-face negatives and ~20 jitter tries for positives/part faces per face)
RANDOM = {
    "pnet": dict(neg=40, near_neg=4, tries=24, max_pos=6, max_part=5),
    "rnet": dict(neg=12, near_neg=2, tries=16, max_pos=4, max_part=3),
    "onet": dict(neg=8, near_neg=2, tries=16, max_pos=4, max_part=3),
}
MINED = {"pnet": dict(max_neg=40, max_pos=4, max_part=4),
         "rnet": dict(max_neg=30, max_pos=8, max_part=8), "onet": dict(max_neg=20, max_pos=8, max_part=8)}
"""Caps on samples kept per scene from the original cascade's proposals (hard negatives first):
P-Net learns from its own false proposals on crowd backgrounds, R-Net from P-Net's, O-Net from
R-Net's."""
CAMERA_SHARE = 0.0
"""Share of the training scenes that also get a camera copy (camera_variants). 0 in the release:
0.35 raised face AP on the degraded view but cost it on real photos and crowds and made the
nets take a dog's eye for a face (train_detector.TRAIN_NETS has the figures)."""
CAMERA_SCALE = (0.3, 0.8)
"""Downscale factors of the camera copies..."""
CAMERA_MIN_FACE = 12.0
"""...never making the scene's median face smaller than this (P-Net's window)."""


# ---------------------------------------------------------------- scenes


@dataclass
class Scene:
    """One training photo. boxes [K,4] GT faces; labels [K] class index (-1 unknown); ignore
    [J,4] regions no negative may overlap; landmarks [K,5,2] (NaN where unknown); masks: GT
    face indices that get a drawn mask, with (template, incorrect) each; flip: mirror it; scale:
    area-downscale the photo (and its boxes) by this factor; degrade: then pass it through
    training.augment.camera_degrade (seeded by `seed`)."""

    key: str
    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    source: str
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    landmarks: np.ndarray | None = None
    masks: list = field(default_factory=list)
    flip: bool = False
    seed: int = 0
    scale: float = 1.0
    degrade: bool = False


def render(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (RGB image with the scene's synthetic masks drawn, rescaled and degraded as the scene
    says, mirrored if flip; boxes; ignore)."""
    rgb = read_image(scene.path)
    rng = np.random.default_rng(scene.seed)
    for k, template, incorrect in scene.masks:
        rgb, _ = ms.draw_mask(rgb, scene.landmarks[k], template, incorrect, rng)
    boxes, ignore = scene.boxes.astype(np.float32), scene.ignore.astype(np.float32)
    if scene.scale != 1.0:
        h, w = rgb.shape[:2]
        nw, nh = max(1, round(w * scene.scale)), max(1, round(h * scene.scale))
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        f = np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
        boxes, ignore = boxes.reshape(-1, 4) * f, ignore.reshape(-1, 4) * f
    if scene.degrade:
        rgb = camera_degrade(rgb, np.random.default_rng([scene.seed, 7]))
    if scene.flip:
        w = rgb.shape[1]
        rgb = np.ascontiguousarray(rgb[:, ::-1])
        boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1) if len(boxes) else boxes
        ignore = np.stack([w - ignore[:, 2], ignore[:, 1], w - ignore[:, 0], ignore[:, 3]], 1) if len(ignore) else ignore
    return rgb, boxes.reshape(-1, 4), ignore.reshape(-1, 4)


BOX_CONVENTION = {"adi": (1.171, 1.269, -0.007, 0.024), "mac": (1.315, 1.238, -0.003, -0.052)}
"""How a scene source draws its face boxes, against the detector's convention (the original
MTCNN's, which ILC's boxes follow: median width and height ratios 0.985 and 0.974): per source,
median (GT width / detector width, GT height / detector height, GT centre x offset in detector
widths, GT centre y offset in detector heights) over its training faces matched (IoU >= 0.3) by
the original MTCNN (measure_box_convention on train_detector's mining pass; 613 adityap27 and
810 macwin faces). adityap27's boxes take in hair and forehead, macwin's whole heads: on 40
macwin training photos, 77% of the faces the previous release found overlapped its box below
IoU 0.5, so taken as they are these boxes would teach the nets to call a face part of a face.
to_detector_boxes maps them."""


def to_detector_boxes(boxes: np.ndarray, source: str) -> np.ndarray:
    """A source's GT boxes [N,4] -> the box the detector's convention would draw (BOX_CONVENTION;
    unchanged for sources not listed)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    conv = BOX_CONVENTION.get(source)
    if conv is None or not len(b):
        return b
    rw, rh, ox, oy = conv
    w, h = (b[:, 2] - b[:, 0]) / rw, (b[:, 3] - b[:, 1]) / rh
    cx, cy = (b[:, 0] + b[:, 2]) / 2 - ox * w, (b[:, 1] + b[:, 3]) / 2 - oy * h
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def measure_box_convention(gt: list[np.ndarray], detected: list[np.ndarray], min_iou: float = 0.3) -> tuple:
    """Per image GT boxes and detector boxes -> the BOX_CONVENTION tuple (medians over GT faces
    whose best detection has IoU >= min_iou) and the number of faces it rests on."""
    rows = []
    for g, d in zip(gt, detected):
        g, d = np.asarray(g, np.float64).reshape(-1, 4), np.asarray(d, np.float64).reshape(-1, 4)
        if not len(g) or not len(d):
            continue
        iou = box_iou(d, g)
        j = iou.argmax(0)
        ok = iou[j, np.arange(len(g))] >= min_iou
        dd, gg = d[j[ok]], g[ok]
        dw, dh = dd[:, 2] - dd[:, 0], dd[:, 3] - dd[:, 1]
        rows.append(np.stack([(gg[:, 2] - gg[:, 0]) / dw, (gg[:, 3] - gg[:, 1]) / dh,
                              ((gg[:, 0] + gg[:, 2]) - (dd[:, 0] + dd[:, 2])) / 2 / dw,
                              ((gg[:, 1] + gg[:, 3]) - (dd[:, 1] + dd[:, 3])) / 2 / dh], 1))
    r = np.concatenate(rows) if rows else np.zeros((0, 4))
    return tuple(round(float(v), 3) for v in np.median(r, 0)) if len(r) else None, len(r)


def ilc_scenes(records) -> list[Scene]:
    return scene_records(records, "ilc")


def scene_records(records, source: str) -> list[Scene]:
    """classifier_data image records of a scene source (ILC, adityap27, macwin) -> scenes."""
    return [Scene(f"{source}/{r.path.name}", r.path, r.boxes.astype(np.float32), r.labels.copy(), source)
            for r in records]


def dlib_scenes(root: Path = DLIB) -> list[Scene]:
    """dlib's example photos (training.xml + testing.xml): faces, and ignore="1" boxes as ignore."""
    faces: dict[str, list] = {}
    ign: dict[str, list] = {}
    for xml in ("training.xml", "testing.xml"):
        for img in ET.parse(root / xml).getroot().iter("image"):
            f = img.get("file")
            faces.setdefault(f, []); ign.setdefault(f, [])
            for b in img.iter("box"):
                x, y, w, h = (float(b.get(k)) for k in ("left", "top", "width", "height"))
                (ign if b.get("ignore") == "1" else faces)[f].append([x, y, x + w, y + h])
    out = []
    for f in sorted(faces):
        b = np.array(faces[f], np.float32).reshape(-1, 4)
        out.append(Scene(f"dlib/{f}", root / f, b, np.full(len(b), -1), "dlib",
                         ignore=np.array(ign[f], np.float32).reshape(-1, 4)))
    return out


def plausible_landmarks(lm: np.ndarray, box: np.ndarray) -> bool:
    """Eyes above the mouth, a sensible eye distance, all points in (or near) the box."""
    if lm is None or not np.all(np.isfinite(lm)):
        return False
    w, h = box[2] - box[0], box[3] - box[1]
    inside = np.all((lm[:, 0] > box[0] - 0.1 * w) & (lm[:, 0] < box[2] + 0.1 * w)
                    & (lm[:, 1] > box[1] - 0.1 * h) & (lm[:, 1] < box[3] + 0.1 * h))
    eyes_y, mouth_y = lm[:2, 1].mean(), lm[3:, 1].mean()
    eye_d = np.linalg.norm(lm[1] - lm[0])
    return bool(inside and mouth_y - eyes_y > 0.15 * h and eye_d > 0.15 * w)


def masked_variants(scenes: list[Scene], seed: int, names=ms.TEMPLATE_NAMES) -> list[Scene]:
    """For every scene with an unmasked face (labels no_mask, or unknown for dlib) whose landmarks
    are plausible: a copy with masks drawn on all such faces."""
    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        if s.landmarks is None:
            continue
        sizes = np.minimum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])
        masks = [(k, names[int(rng.integers(len(names)))], bool(rng.random() < P_INCORRECT))
                 for k in range(len(s.boxes))
                 if s.labels[k] in (NO_MASK_INDEX, -1) and sizes[k] >= MIN_MASK_FACE
                 and plausible_landmarks(s.landmarks[k], s.boxes[k])]
        if masks:
            out.append(Scene(s.key + "#mask", s.path, s.boxes, s.labels, s.source + "_mask", s.ignore,
                             s.landmarks, masks, bool(rng.random() < 0.5), int(rng.integers(1 << 31))))
    return out


def camera_variants(scenes: list[Scene], seed: int, share: float = CAMERA_SHARE,
                    scale: tuple[float, float] = CAMERA_SCALE, min_face: float = CAMERA_MIN_FACE) -> list[Scene]:
    """Copies of a random `share` of the scenes as a cheap camera far from the faces would see
    them: area-downscaled by a factor in `scale` (never below `min_face` px for the scene's
    median face), then blurred, darkened, tinted, noisy and JPEG-compressed
    (training.augment.camera_degrade), like the held-out camera frames."""
    rng = np.random.default_rng([seed, 99])
    out = []
    for s in scenes:
        if rng.random() >= share or not len(s.boxes):
            continue
        side = float(np.median(np.minimum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])))
        lo = min(1.0, max(scale[0], min_face / max(side, 1e-6)))
        f = float(rng.uniform(lo, max(lo, scale[1])))
        out.append(Scene(s.key + "#cam", s.path, s.boxes, s.labels, s.source + "_cam", s.ignore,
                         s.landmarks, s.masks, bool(rng.random() < 0.5), int(rng.integers(1 << 31)),
                         scale=f, degrade=True))
    return out


# ---------------------------------------------------------------- geometry


def window_to_box(windows: np.ndarray, net: str) -> tuple[np.ndarray, np.ndarray]:
    """Square pixel windows [N,4] (x, y, x+s, y+s) -> (the box the detector reports for that
    window [N,4], the regression's size unit [N])."""
    w = np.asarray(windows, np.float64).reshape(-1, 4)
    s = w[:, 2] - w[:, 0]
    if net == "pnet":
        box = w + np.stack([s / 12, s / 12, 0 * s, 0 * s], 1)
        return box, s * 11 / 12
    box = w + np.array([1.0, 1.0, 0.0, 0.0])
    return box, s


def box_to_window(boxes: np.ndarray) -> np.ndarray:
    """R/O-Net: a detector box [N,4] -> the pixel window [x0, y0, x1, y1) (half-open, before
    clamping to the image) that the reference cuts for it: trunc(x1) - 1 .. trunc(x2) - 1."""
    b = np.trunc(np.asarray(boxes, np.float64).reshape(-1, 4))
    return b - np.array([1.0, 1.0, 0.0, 0.0])


def regression_targets(boxes: np.ndarray, unit: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(gt - box) / unit, [N,4]."""
    return ((np.asarray(gt, np.float64) - boxes) / unit[:, None]).astype(np.float32)


def landmark_targets(boxes: np.ndarray, unit: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Landmarks [N,5,2] in image pixels -> O-Net targets [N,10] (x1..x5, y1..y5), relative to
    the box as FaceDetector.output decodes them: p = (x - (b_x1 - 1)) / unit."""
    lm = np.asarray(lm, np.float64).reshape(-1, 5, 2)
    x = (lm[..., 0] - (boxes[:, 0:1] - 1)) / unit[:, None]
    y = (lm[..., 1] - (boxes[:, 1:2] - 1)) / unit[:, None]
    return np.concatenate([x, y], 1).astype(np.float32)


def categorize(iou: np.ndarray) -> np.ndarray:
    """Max IoU with the GT -> POS / PART / NEG, or 99 (0.3 <= IoU < 0.4: not used)."""
    iou = np.asarray(iou, float)
    return np.where(iou >= POS_IOU, POS, np.where(iou >= PART_IOU, PART, np.where(iou < NEG_IOU, NEG, 99)))


def label_boxes(boxes: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None):
    """-> (category per box, index of its best GT box). Boxes that would be negatives but overlap
    an ignore region (IoU >= NEG_IOU) are dropped (99)."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    if len(gt):
        o = box_iou(boxes, gt)
        j = o.argmax(1)
        cat = categorize(o[np.arange(len(boxes)), j])
    else:
        j = np.zeros(len(boxes), int)
        cat = np.full(len(boxes), NEG)
    if ignore is not None and len(ignore) and len(boxes):
        near = box_iou(boxes, ignore).max(1) >= NEG_IOU
        cat = np.where((cat == NEG) & near, 99, cat)
    return cat, j


def random_windows(gt: np.ndarray, ignore: np.ndarray, width: int, height: int, rng: np.random.Generator,
                   neg: int = 40, near_neg: int = 4, tries: int = 24, max_pos: int = 6,
                   max_part: int = 5, min_size: int = 12):
    """MTCNN-style random square windows (integer x, y, s). -> (windows [N,4], category [N],
    GT index [N]).

    * `neg` windows of side in [min_size, short side / 2] anywhere (kept when negative);
    * per GT face: `near_neg` windows of side in [min_size, 1.25 * max side] shifted by up to a
      side (kept when negative); `tries` windows of side 0.8 min .. 1.25 max side and centre
      shifted by up to 0.2 of the face's size, kept as positives / part faces up to the caps.
    """
    gt = np.asarray(gt, float).reshape(-1, 4)
    cand, max_cat = [], {POS: max_pos, PART: max_part}
    lim = min(width, height)
    if lim > min_size:
        s = rng.integers(min_size, max(min_size + 1, lim // 2 + 1), size=neg)
        x = (rng.random(neg) * (width - s)).astype(int)
        y = (rng.random(neg) * (height - s)).astype(int)
        cand.append((np.stack([x, y, x + s, y + s], 1), "neg"))
    out_w, out_c, out_j = [], [], []
    for k, (x1, y1, x2, y2) in enumerate(gt):
        w, h = x2 - x1, y2 - y1
        if min(w, h) < 4:
            continue
        s = rng.integers(min_size, max(min_size + 1, int(1.25 * max(w, h)) + 1), size=near_neg)
        dx = rng.uniform(-1, 1, near_neg) * np.maximum(s, w)
        dy = rng.uniform(-1, 1, near_neg) * np.maximum(s, h)
        nx = np.floor(x1 + dx).astype(int)
        ny = np.floor(y1 + dy).astype(int)
        cand.append((np.stack([nx, ny, nx + s, ny + s], 1), "neg"))
        lo, hi = max(min_size, int(np.ceil(0.8 * min(w, h)))), int(1.25 * max(w, h))
        if hi < lo:
            continue
        s = rng.integers(lo, hi + 1, size=tries)
        cx = x1 + w / 2 + rng.uniform(-0.2, 0.2, tries) * w
        cy = y1 + h / 2 + rng.uniform(-0.2, 0.2, tries) * h
        px = np.floor(cx - s / 2).astype(int)
        py = np.floor(cy - s / 2).astype(int)
        win = np.stack([px, py, px + s, py + s], 1)
        cat, j = label_boxes(win, gt, ignore)
        for c in (POS, PART):
            sel = np.nonzero((cat == c) & (j == k))[0][: max_cat[c]]
            out_w.append(win[sel]); out_c.append(np.full(len(sel), c)); out_j.append(j[sel])
    for win, _ in cand:
        inside = (win[:, 0] >= 0) & (win[:, 1] >= 0) & (win[:, 2] <= width) & (win[:, 3] <= height)
        win = win[inside]
        cat, j = label_boxes(win, gt, ignore)
        sel = cat == NEG
        out_w.append(win[sel]); out_c.append(cat[sel]); out_j.append(j[sel])
    if not out_w:
        return np.zeros((0, 4), int), np.zeros(0, int), np.zeros(0, int)
    return (np.concatenate(out_w).astype(int).reshape(-1, 4), np.concatenate(out_c).astype(int),
            np.concatenate(out_j).astype(int))


# ---------------------------------------------------------------- sample sets


@dataclass
class SampleSet:
    """images uint8 [N,S,S,3] RGB; cls int8 [N] (POS/NEG/PART/LANDMARK); reg float32 [N,4];
    lmk float32 [N,10]; masked bool [N] (drawn mask); mined bool [N] (from a proposal)."""

    images: np.ndarray
    cls: np.ndarray
    reg: np.ndarray
    lmk: np.ndarray
    masked: np.ndarray
    mined: np.ndarray

    def __len__(self):
        return len(self.cls)

    @staticmethod
    def empty(size: int) -> "SampleSet":
        return SampleSet(np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int8),
                         np.zeros((0, 4), np.float32), np.zeros((0, 10), np.float32),
                         np.zeros(0, bool), np.zeros(0, bool))

    @staticmethod
    def concat(sets: list["SampleSet"], size: int) -> "SampleSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            return SampleSet.empty(size)
        return SampleSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in
                           ("images", "cls", "reg", "lmk", "masked", "mined")))

    def counts(self) -> dict:
        return {n: int((self.cls == v).sum()) for n, v in
                (("pos", POS), ("part", PART), ("neg", NEG), ("landmark", LANDMARK))}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.__dict__)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> "SampleSet":
        z = np.load(path)
        return SampleSet(**{k: z[k] for k in z.files})


def lowres(images: np.ndarray, rng: np.random.Generator, prob: float, min_side: int = 10) -> np.ndarray:
    """Low-resolution augmentation: a random `prob` share of the crops (uint8 [N,S,S,3]) is
    area-downscaled to a random side in [min_side, S) and enlarged back to S the way the
    detector enlarges a small face's crop (adaptive average pooling), so the nets see crowds'
    15-30 px faces as blurry as they are at inference. Returns a new array."""
    out = images.copy()
    n, size = len(images), images.shape[1]
    if n == 0 or prob <= 0 or size <= min_side:
        return out
    pick = np.nonzero(rng.random(n) < prob)[0]
    sides = rng.integers(min_side, size, len(pick))
    for s in np.unique(sides):
        idx = pick[sides == s]
        x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float()
        x = F.adaptive_avg_pool2d(F.adaptive_avg_pool2d(x, int(s)), size)
        out[idx] = (x + 0.5).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def cut(rgb: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Integer pixel windows [N,4] (x0, y0, x1, y1 half-open) -> uint8 crops [N,size,size,3]: the
    window clamped to the image, then area-resized (adaptive average pooling, torch's "area"
    interpolation), as the reference MTCNN cuts R-Net / O-Net inputs and makes pyramid levels.
    A window entirely outside the image gives a black crop."""
    n = len(windows)
    out = np.zeros((n, size, size, 3), np.uint8)
    if n == 0:
        return out
    h, w = rgb.shape[:2]
    img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    win = np.round(np.asarray(windows, np.float64)).astype(np.int64)
    x0, y0 = np.clip(win[:, 0], 0, w), np.clip(win[:, 1], 0, h)
    x1, y1 = np.clip(win[:, 2], 0, w), np.clip(win[:, 3], 0, h)
    for i in range(n):
        if x1[i] <= x0[i] or y1[i] <= y0[i]:
            continue
        c = F.adaptive_avg_pool2d(img[:, y0[i]:y1[i], x0[i]:x1[i]], size)
        out[i] = (c + 0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return out


def scene_samples(rgb: np.ndarray, gt: np.ndarray, ignore: np.ndarray, net: str, rng: np.random.Generator,
                  proposals: np.ndarray | None = None, masked: bool = False) -> SampleSet:
    """Random (and, given `proposals` [M,4] detector boxes of the earlier stages, mined)
    samples of one scene for `net`."""
    size = SIZES[net]
    h, w = rgb.shape[:2]
    win, cat, j = random_windows(gt, ignore, w, h, rng, **RANDOM[net])
    box, unit = window_to_box(win, net)
    mined = np.zeros(len(win), bool)
    if proposals is not None and len(proposals):
        pb = np.asarray(proposals, np.float64).reshape(-1, 4)
        pb = pb[(pb[:, 2] - pb[:, 0] >= 6)]
        if net == "pnet":   # P-Net sees square windows: its own false proposals, as hard negatives
            side = np.maximum(pb[:, 2] - pb[:, 0], pb[:, 3] - pb[:, 1])
            x0 = np.floor((pb[:, 0] + pb[:, 2] - side) / 2)
            y0 = np.floor((pb[:, 1] + pb[:, 3] - side) / 2)
            pw = np.stack([x0, y0, x0 + np.round(side), y0 + np.round(side)], 1)
            pw = pw[(pw[:, 0] >= 0) & (pw[:, 1] >= 0) & (pw[:, 2] <= w) & (pw[:, 3] <= h)]
            pb, punit = window_to_box(pw, net)
        pc, pj = label_boxes(pb, gt, ignore)
        keep = []
        caps = MINED[net]
        for c, cap in ((NEG, caps["max_neg"]), (POS, caps["max_pos"]), (PART, caps["max_part"])):
            idx = np.nonzero(pc == c)[0]
            keep.append(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))
        keep = np.concatenate(keep).astype(int)
        if net == "pnet":
            pwin, punit = pw[keep], punit[keep]
        else:
            pwin, punit = box_to_window(pb[keep]), pb[keep, 2] - pb[keep, 0] + 1
        win = np.concatenate([win, pwin]).astype(np.float64)
        box = np.concatenate([box, pb[keep]])
        unit = np.concatenate([unit, punit])
        cat = np.concatenate([cat, pc[keep]])
        j = np.concatenate([j, pj[keep]])
        mined = np.concatenate([mined, np.ones(len(keep), bool)])
    reg = np.zeros((len(win), 4), np.float32)
    face = cat != NEG
    if face.any():
        reg[face] = regression_targets(box[face], unit[face], np.asarray(gt)[j[face]])
    return SampleSet(cut(rgb, win, size), cat.astype(np.int8), reg, np.zeros((len(win), 10), np.float32),
                     np.full(len(win), masked), mined)


# ---------------------------------------------------------------- landmark faces (MTFL)


# Where the original MTCNN puts a face box around its 5 landmarks, in units of the eye-mouth
# distance d from the eye-mouth centre. Measured once with the original detector on 300 MTFL
# crops (median final box: centre (+0.02, -0.14) d, size 2.02 d wide x 2.65 d high); O-Net's
# input is that box squared, so landmark samples use a square of side 2.65 d.
LM_BOX = {"cx": 0.0, "cy": -0.14, "side": 2.65}


def mtfl_entries(root: Path = MTFL, split: str = "new_training.txt") -> list[tuple[Path, np.ndarray]]:
    """(image path, landmarks [5,2]) per usable line. Lines whose points do not sit on the
    centred face of the 80x80 crop (a few thousand AFLW entries with shifted y) are dropped."""
    out = []
    for line in (root / split).read_text().splitlines():
        p = line.split()
        if len(p) != 11:
            continue
        v = np.array(p[1:], float)
        lm = np.stack([v[:5], v[5:]], 1)
        if not (28 <= lm[:, 1].mean() <= 55 and 28 <= lm[:, 0].mean() <= 52):
            continue
        if not (lm[3:, 1].mean() - lm[:2, 1].mean() > 8 and lm[1, 0] - lm[0, 0] > 8):
            continue
        out.append((root / p[0], lm))
    return out


def landmark_box(lm: np.ndarray) -> np.ndarray:
    """5 landmarks -> a square face box [4] like the original MTCNN's (LM_BOX)."""
    lm = np.asarray(lm, float).reshape(5, 2)
    eye, mouth = lm[:2].mean(0), lm[3:].mean(0)
    d = np.linalg.norm(mouth - eye)
    c = (eye + mouth) / 2 + np.array([LM_BOX["cx"], LM_BOX["cy"]]) * d
    s = LM_BOX["side"] * d
    return np.array([c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2])


def landmark_samples(entries, net: str, rng: np.random.Generator, per_face: int = 1,
                     mask_prob: float = 0.5) -> SampleSet:
    """Jittered windows (IoU >= POS_IOU with the face's landmark box) around MTFL faces, half
    with a drawn mask; targets: the 5 landmarks (LANDMARK samples)."""
    size = SIZES[net]
    sets = []
    for path, lm in entries:
        rgb = read_image(path)
        masked = bool(rng.random() < mask_prob)
        if masked:
            name = ms.TEMPLATE_NAMES[int(rng.integers(len(ms.TEMPLATE_NAMES)))]
            rgb, _ = ms.draw_mask(rgb, lm, name, bool(rng.random() < P_INCORRECT), rng)
        if rng.random() < 0.5:  # mirror: x -> w - x, and left/right points swap
            w = rgb.shape[1]
            rgb = np.ascontiguousarray(rgb[:, ::-1])
            lm = lm[[1, 0, 2, 4, 3]] * np.array([-1, 1]) + np.array([w, 0])
        fb = landmark_box(lm)
        side = fb[2] - fb[0]
        wins = []
        for _ in range(12 * per_face):
            s = int(round(side * rng.uniform(0.9, 1.1)))
            x = int(np.floor(fb[0] + side / 2 - s / 2 + rng.uniform(-0.1, 0.1) * side))
            y = int(np.floor(fb[1] + side / 2 - s / 2 + rng.uniform(-0.1, 0.1) * side))
            win = np.array([x, y, x + s, y + s])
            if box_iou([win], [fb])[0, 0] >= POS_IOU:
                wins.append(win)
            if len(wins) == per_face:
                break
        if not wins:
            continue
        wins = np.array(wins)
        box, unit = window_to_box(wins, net)
        lmk = landmark_targets(box, unit, np.repeat(lm[None], len(wins), 0))
        sets.append(SampleSet(cut(rgb, wins, size), np.full(len(wins), LANDMARK, np.int8),
                              np.zeros((len(wins), 4), np.float32), lmk, np.full(len(wins), masked),
                              np.zeros(len(wins), bool)))
    return SampleSet.concat(sets, size)
