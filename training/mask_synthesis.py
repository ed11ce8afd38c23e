"""Draw face masks onto unmasked faces from 5 landmarks (MaskTheFace templates, MIT).

Each template (shared/data/masks/masktheface/templates, RGBA) has 6 anchor points in masks.cfg:
a (top left), b (top centre, on the nose bridge), c (top right), d (bottom left), e (bottom
centre, under the chin), f (bottom right). `face_anchors` puts the same 6 points on a face from
its 5 landmarks (eyes, nose tip, mouth corners: the O-Net / MTFL order
x-left eye, right eye, nose, left mouth, right mouth), and `draw_mask` warps the template
onto them with a perspective transform (least-squares homography of the 6 pairs), then shades,
optionally tints or textures it, and alpha-blends it into the image.

Worn correctly the mask's top edge crosses the nose bridge and its bottom edge the chin.
Worn incorrectly (`incorrect=True`) every anchor is shifted down the face so that the top edge
falls between the nose tip and the mouth: the nose is uncovered, the mouth and chin are not.

usage: python -m training.mask_synthesis OUT.png  (a contact sheet on MTFL faces, to eyeball)
"""
from __future__ import annotations

import configparser
import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.engine.image_quality import LUMA
from training.paths import DATA

MASKS = DATA / "masks" / "masktheface"
TEMPLATE_NAMES = ("surgical", "surgical_blue", "surgical_green", "cloth", "KN95", "N95")
"""Frontal templates drawn (the gas-mask respirator is left out: not street wear). Each has
_left / _right variants for faces turned to one side, picked by `pick_variant`."""
TEXTURED = ("surgical", "cloth")
"""Templates that may get a random colour tint or fabric texture."""

# Face geometry, in units of the eye-to-mouth vector u (eye midpoint -> mouth midpoint) and the
# nose's horizontal distance to each eye.
BRIDGE = 0.45          # b: from the eye midpoint towards the nose tip
CHIN = 0.7             # e: below the mouth midpoint, * |u|
HALF_WIDTH = 2.2       # top half-widths: * the nose's horizontal distance to that side's eye
BOTTOM_WIDTH = 0.8     # d, f: fraction of the top half-width
INCORRECT_TOP = 0.35   # incorrect: top edge this far from the nose tip towards the mouth
YAW_VARIANT = 0.25     # |yaw| beyond which the _left / _right template is used


@dataclass(frozen=True)
class MaskTemplate:
    name: str
    rgba: np.ndarray        # H x W x 4 uint8, RGB order
    anchors: np.ndarray     # [6, 2] float32, a..f in template pixels


def _read_cfg(root: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(root / "masks.cfg")
    return cfg


@functools.lru_cache(maxsize=None)
def load_template(name: str, root: Path = MASKS) -> MaskTemplate:
    sec = _read_cfg(root)[name]
    bgra = cv2.imread(str(root / "templates" / Path(sec["template"]).name), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.shape[2] != 4:
        raise FileNotFoundError(f"template {name} missing or not RGBA")
    rgba = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
    pts = np.array([[float(v) for v in sec[f"mask_{k}"].split(",")] for k in "abcdef"], np.float32)
    return MaskTemplate(name, rgba, pts)


@functools.lru_cache(maxsize=None)
def load_textures(root: Path = MASKS) -> tuple[np.ndarray, ...]:
    out = []
    for p in sorted((root / "textures").rglob("*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is not None:
                out.append(cv2.cvtColor(im, cv2.COLOR_BGR2RGB))
    return tuple(out)


def _frame(landmarks: np.ndarray):
    """5 landmarks -> (eye mid E, mouth mid M, nose N, unit right r, unit down d, |u|)."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    le, re, nose, lmo, rmo = lm
    E, M = (le + re) / 2, (lmo + rmo) / 2
    u = M - E
    h = max(np.linalg.norm(u), 1e-6)
    d = u / h
    r = np.array([-d[1], d[0]])          # perpendicular to d
    if np.dot(r, re - le) < 0:           # r points from the left eye to the right eye
        r = -r
    return E, M, nose, r, d, h, le, re


def yaw(landmarks: np.ndarray) -> float:
    """Signed head turn from the nose's place between the eyes: -1 (nose at the left eye,
    face turned to image-left) .. 0 (frontal) .. 1."""
    E, M, N, r, d, h, le, re = _frame(landmarks)
    half = max(np.dot(re - le, r) / 2, 1e-6)
    return float(np.clip(np.dot(N - E, r) / half, -1, 1))


def pick_variant(name: str, landmarks: np.ndarray, available=None) -> str:
    """The template's _left / _right variant for a turned face, else the frontal one."""
    y = yaw(landmarks)
    if abs(y) < YAW_VARIANT or name not in ("surgical", "surgical_blue", "surgical_green", "cloth",
                                             "KN95", "N95"):
        return name
    return f"{name}_left" if y < 0 else f"{name}_right"


def template_levels(template: MaskTemplate | None) -> tuple[float, float]:
    """How far down the mask its side anchors sit: (a/c level, d/f level) as fractions of the
    way from b (top centre) to e (bottom centre) in the template. (0.17, 0.6) without one."""
    if template is None:
        return 0.17, 0.6
    p = template.anchors
    span = max(p[4, 1] - p[1, 1], 1.0)
    return (float((p[0, 1] + p[2, 1]) / 2 - p[1, 1]) / span, float((p[3, 1] + p[5, 1]) / 2 - p[1, 1]) / span)


def face_anchors(landmarks: np.ndarray, incorrect: bool = False,
                 template: MaskTemplate | None = None) -> np.ndarray:
    """5 landmarks [5,2] -> the 6 anchor points a..f [6,2] (float32) where the template's
    anchors go. b (nose bridge) and e (under the chin) come from the face; the side anchors sit
    at the template's own levels between them, so the warp does not skew the template."""
    E, M, N, r, d, h, le, re = _frame(landmarks)
    b = E + BRIDGE * (N - E)
    e = M + CHIN * h * d
    left_w = HALF_WIDTH * max(np.dot(N - le, r), 0.15 * h)    # nose to left eye, horizontally
    right_w = HALF_WIDTH * max(np.dot(re - N, r), 0.15 * h)
    top_level, bottom_level = template_levels(template)
    top = b + top_level * np.dot(e - b, d) * d
    bottom = b + bottom_level * np.dot(e - b, d) * d
    a, c = top - left_w * r, top + right_w * r
    dd, f = bottom - BOTTOM_WIDTH * left_w * r, bottom + BOTTOM_WIDTH * right_w * r
    pts = np.stack([a, b, c, dd, e, f])
    if incorrect:
        drop = N + INCORRECT_TOP * (M - N)
        pts = pts + np.dot(drop - b, d) * d
    return pts.astype(np.float32)


def _shade(rgb: np.ndarray, face_luma: float) -> np.ndarray:
    """Scale a template's colours towards the face's lighting (dark photos get darker masks)."""
    gain = float(np.clip((face_luma / 140.0) ** 0.7, 0.35, 1.15))
    return np.clip(rgb.astype(np.float32) * gain, 0, 255)


def _tint(tpl_rgb: np.ndarray, rng: np.random.Generator, textures) -> np.ndarray:
    """Random colour or fabric texture, keeping the template's folds as shading."""
    shade = cv2.cvtColor(tpl_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    shade = np.clip(shade / max(np.percentile(shade, 90), 1e-3), 0, 1.2)[..., None]
    if textures and rng.random() < 0.4:
        tex = textures[int(rng.integers(len(textures)))]
        reps = (int(np.ceil(tpl_rgb.shape[0] / tex.shape[0])) + 1, int(np.ceil(tpl_rgb.shape[1] / tex.shape[1])) + 1, 1)
        base = np.tile(tex, reps)[: tpl_rgb.shape[0], : tpl_rgb.shape[1]].astype(np.float32)
    else:
        base = np.ones_like(tpl_rgb, np.float32) * rng.uniform(20, 235, size=3).astype(np.float32)
    return np.clip(base * shade, 0, 255).astype(np.uint8)


def draw_mask(image: np.ndarray, landmarks: np.ndarray, template: str | MaskTemplate = "surgical",
              incorrect: bool = False, rng: np.random.Generator | None = None,
              recolour: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one mask. image HxWx3 uint8 RGB (not modified); landmarks [5,2] in image pixels.

    Returns (new image, coverage HxW float32 in 0..1: the mask's alpha where it was drawn).
    recolour: tint/texture the template (default: at random for TEXTURED templates).
    """
    rng = rng or np.random.default_rng(0)
    if isinstance(template, str):
        template = load_template(pick_variant(template, landmarks))
    dst = face_anchors(landmarks, incorrect, template)
    # Pre-shrink the template to about twice its drawn size, so the warp does not alias.
    drawn = max(np.ptp(dst[:, 0]), np.ptp(dst[:, 1]), 4.0)
    tpl_side = max(template.rgba.shape[:2])
    s = min(1.0, 2.0 * drawn / tpl_side)
    rgba = template.rgba
    if s < 1.0:
        rgba = cv2.resize(rgba, (max(2, int(rgba.shape[1] * s)), max(2, int(rgba.shape[0] * s))),
                          interpolation=cv2.INTER_AREA)
    src = template.anchors * np.array([rgba.shape[1] / template.rgba.shape[1],
                                       rgba.shape[0] / template.rgba.shape[0]], np.float32)
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        return image.copy(), np.zeros(image.shape[:2], np.float32)
    rgb = rgba[..., :3]
    base = template.name.split("_")[0]
    if recolour is None:
        recolour = base in TEXTURED and rng.random() < 0.5
    if recolour:
        rgb = _tint(rgb, rng, load_textures())
    h, w = image.shape[:2]
    warped = cv2.warpPerspective(rgb, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = cv2.warpPerspective(rgba[..., 3], H, (w, h), flags=cv2.INTER_LINEAR,
                                borderValue=0).astype(np.float32) / 255.0
    if alpha.max() <= 0:
        return image.copy(), alpha
    ys, xs = np.nonzero(alpha > 0.5)
    region = image[ys, xs] if len(ys) else image.reshape(-1, 3)
    luma = float((region.astype(np.float32) @ LUMA).mean())
    warped = _shade(warped, luma)
    # soften the edge a touch at small sizes, as a real photo's optics would
    if drawn < 40:
        alpha = cv2.GaussianBlur(alpha, (3, 3), 0.6)
    out = image.astype(np.float32) * (1 - alpha[..., None]) + warped * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), alpha


def random_mask(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                p_incorrect: float = 0.3, names=TEMPLATE_NAMES) -> tuple[np.ndarray, np.ndarray, bool]:
    """A random template, worn correctly or (p_incorrect) incorrectly -> (image, coverage, incorrect)."""
    name = names[int(rng.integers(len(names)))]
    incorrect = bool(rng.random() < p_incorrect)
    out, cov = draw_mask(image, landmarks, name, incorrect, rng)
    return out, cov, incorrect


def _contact_sheet(out: Path, n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    root = DATA / "landmarks" / "mtfl"
    lines = [ln.split() for ln in (root / "new_training.txt").read_text().splitlines()]
    lines = [p for p in lines if len(p) == 11 and np.mean([float(v) for v in p[6:]]) >= 28]
    tiles = []
    for p in lines[:: max(1, len(lines) // n)][:n]:
        img = cv2.cvtColor(cv2.imread(str(root / p[0])), cv2.COLOR_BGR2RGB)
        v = np.array(p[1:], float)
        lm = np.stack([v[:5], v[5:]], 1)
        row = [img]
        for inc in (False, True):
            row.append(draw_mask(img, lm, TEMPLATE_NAMES[int(rng.integers(6))], inc, rng)[0])
        tiles.append(np.hstack([cv2.resize(t, (160, 160)) for t in row]))
    sheet = np.vstack([np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles) - 1, 2)])
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    import sys
    _contact_sheet(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/masks_sheet.png"))
