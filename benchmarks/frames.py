"""Benchmark frames: real photos of several people from the shared data, fitted to video sizes.

* dlib's example scene photos (scenes/dlib_faces, all but dogs.jpg) and
* crowd photos from scenes/ilc2021 with at least 3 boxed faces, picked evenly over the sorted
  file list (deterministic),

each scaled to cover the target size and centre-cropped (area interpolation when shrinking,
bilinear when enlarging). `moving_clip` makes a pan/zoom "webcam" clip across a group photo, in
which the faces move and change size from frame to frame.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from training.paths import DATA  # noqa: E402
DLIB = DATA / "scenes" / "dlib_faces"
ILC = DATA / "scenes" / "ilc2021"


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fit(image_rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height, then centre-crop to exactly that size."""
    h, w = image_rgb.shape[:2]
    s = max(width / w, height / h)
    size = (max(width, round(w * s)), max(height, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.resize(image_rgb, size, interpolation=interp)
    y0, x0 = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return np.ascontiguousarray(img[y0:y0 + height, x0:x0 + width])


def _ilc_face_count(xml: Path) -> int:
    return sum(1 for _ in ET.parse(xml).getroot().iter("object"))


def photo_paths(n_crowd: int = 21, min_faces: int = 3) -> list[Path]:
    """The source photos: dlib's scenes (minus dogs.jpg) + n_crowd ilc2021 crowd photos."""
    paths = sorted(p for p in DLIB.glob("*.jpg") if p.name != "dogs.jpg")
    crowd = sorted(x for x in (ILC / "annotations").glob("*.xml") if _ilc_face_count(x) >= min_faces)
    if n_crowd and crowd:
        idx = np.linspace(0, len(crowd) - 1, min(n_crowd, len(crowd))).round().astype(int)
        paths += [ILC / "images" / (crowd[i].stem + ".jpg") for i in idx]
    return paths


def group_photos(width: int = 640, height: int = 480, n_crowd: int = 21) -> list[tuple[str, np.ndarray]]:
    """[(name, HxWx3 uint8 RGB)] fitted to width x height."""
    return [(p.name, fit(read_rgb(p), width, height)) for p in photo_paths(n_crowd)]


def dlib_faces(name: str) -> np.ndarray:
    """Face boxes [N,4] x1,y1,x2,y2 of one dlib example photo (training.xml + testing.xml)."""
    out = []
    for xml in ("training.xml", "testing.xml"):
        for img in ET.parse(DLIB / xml).getroot().iter("image"):
            if img.get("file") != name:
                continue
            for b in img.iter("box"):
                if b.get("ignore") == "1":
                    continue
                x, y, w, h = (float(b.get(k)) for k in ("left", "top", "width", "height"))
                out.append([x, y, x + w, y + h])
    return np.asarray(out, np.float32).reshape(-1, 4)


def moving_clip(photo: Path | None = None, n_frames: int = 90, width: int = 640,
                height: int = 480, seed: int = 0, with_boxes: bool = False):
    """A smooth pan + zoom across a group photo: a virtual camera whose window drifts and
    breathes (zoom 1.0 -> 1.5 -> 1.0) with a little hand shake, so faces move several pixels
    and change size every frame, and some leave and re-enter the picture.

    -> n_frames HxWx3 uint8 RGB frames; with_boxes=True -> (frames, boxes) where boxes[i] are
    the photo's annotated faces (dlib photos only) mapped into frame i, float32 [K,4], keeping
    those with at least half their area inside the frame.
    """
    path = Path(photo) if photo else DLIB / "2007_007763.jpg"
    src = read_rgb(path)
    gt = dlib_faces(path.name) if with_boxes else np.zeros((0, 4), np.float32)
    sh, sw = src.shape[:2]
    tw, th = int(width * 1.5), int(height * 1.5)
    s0 = max(tw / sw, th / sh)
    base = fit(src, tw, th)                                  # room to pan
    ox, oy = (round(sw * s0) - tw) // 2, (round(sh * s0) - th) // 2
    gt_base = gt * np.float32(s0) - np.array([ox, oy, ox, oy], np.float32)
    bh, bw = base.shape[:2]
    rng = np.random.default_rng(seed)
    shake = rng.normal(0, 1.5, size=(n_frames, 2))
    frames, boxes = [], []
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        zoom = 1.0 + 0.5 * np.sin(np.pi * t)                 # 1 -> 1.5 -> 1
        ww, wh = width * 1.25 / zoom, height * 1.25 / zoom   # camera window in base pixels
        cx = bw / 2 + (bw - ww) / 2 * 0.9 * np.sin(2 * np.pi * t) + shake[i, 0]
        cy = bh / 2 + (bh - wh) / 2 * 0.7 * np.sin(np.pi * t + 0.5) + shake[i, 1]
        x0 = float(np.clip(cx - ww / 2, 0, bw - ww))
        y0 = float(np.clip(cy - wh / 2, 0, bh - wh))
        m = np.array([[ww / width, 0, x0], [0, wh / height, y0]], np.float32)
        frames.append(cv2.warpAffine(base, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT))
        b = (gt_base - np.array([x0, y0, x0, y0], np.float32)) * np.array(
            [width / ww, height / wh, width / ww, height / wh], np.float32)
        inside = (np.clip(b[:, 2], 0, width) - np.clip(b[:, 0], 0, width)) * \
                 (np.clip(b[:, 3], 0, height) - np.clip(b[:, 1], 0, height))
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        boxes.append(b[inside >= 0.5 * area])
    return (frames, boxes) if with_boxes else frames


def export_bundle(target: Path) -> Path:
    """Copy what the benchmark reads from the shared data (the chosen photos, all ilc2021
    annotations so the same photos are chosen, dlib's XMLs) to `target`, mirroring the data
    folder's layout, for a machine without the shared data: MASKWATCH_DATA=target."""
    import shutil
    target = Path(target)
    for p in photo_paths():
        dst = target / p.relative_to(DATA)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
    for xml in list(DLIB.glob("*.xml")) + list((ILC / "annotations").glob("*.xml")):
        dst = target / xml.relative_to(DATA)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(xml, dst)
    return target


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="benchmark frames")
    ap.add_argument("--export", type=Path, help="copy the benchmark's photos + annotations here")
    a = ap.parse_args()
    if a.export:
        print(export_bundle(a.export))
