"""Validation views that look like the held-out target (issue 13, lever 3).

The same ILC validation faces, three ways:
- standard: the photos as they are (training.classifier_data.exact_crops);
- small: every photo area-downscaled by one factor, so that the median face side (short side of
  the box) becomes TARGET_MEDIAN_PX (21 px, the held-out test set's), the boxes with it;
- degraded: the small photos through training.augment.camera_degrade (blur or motion blur,
  low light, colour cast, sensor noise, JPEG 20-60), seeded per photo.
Crops are then cut exactly as inference cuts them (pipeline.engine.classifier.face_crops on the whole
photo with all its boxes). Every view is also reported by face size in that view's pixels
(SIZE_BINS).
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.engine.classifier import face_crops
from pipeline.engine.config import ClassifierConfig
from training import classifier_data as cd
from training.augment import camera_degrade
from pipeline.records import CLASSES
from training.metrics import evaluate

VIEWS = ("standard", "small", "degraded")
TARGET_MEDIAN_PX = 21.0
"""Median face side of the held-out test set."""
SIZE_BINS = ((0, 20), (20, 32), (32, 64), (64, math.inf))
DEGRADE_SEED = 4242


def small_factor(sizes: np.ndarray, target: float = TARGET_MEDIAN_PX) -> float:
    """One downscale factor for all photos: median face side -> target (never enlarges)."""
    return min(1.0, target / float(np.median(sizes))) if len(sizes) else 1.0


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The size of a photo downscaled by `factor` for the small and degraded views."""
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def view_image(rgb: np.ndarray, view: str, factor: float, seed: int) -> tuple[np.ndarray, float, float]:
    """-> (the photo as `view` shows it, x scale, y scale of its boxes)."""
    if view == "standard":
        return rgb, 1.0, 1.0
    h, w = rgb.shape[:2]
    nw, nh = scaled_size(w, h, factor)
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    if view == "degraded":
        small = camera_degrade(small, np.random.default_rng([DEGRADE_SEED, seed]))
    elif view != "small":
        raise ValueError(f"unknown view {view!r}")
    return small, nw / w, nh / h


def view_crops(faces: cd.FaceSet, idx: np.ndarray, config: ClassifierConfig, view: str,
               factor: float) -> tuple[torch.Tensor, np.ndarray]:
    """Normalised crops [len(idx),3,S,S] of faces `idx` as `view` shows them, and their face
    short sides [len(idx)] in that view's pixels."""
    idx = np.asarray(idx)
    out = torch.zeros((len(idx), 3, config.crop_size, config.crop_size))
    size = faces.size[idx].astype(np.float64).copy()
    for im in np.unique(faces.image[idx]):
        sel = np.nonzero(faces.image[idx] == im)[0]
        rgb, sx, sy = view_image(cd.load_rgb(Path(faces.paths[im])), view, factor, int(im))
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        boxes = faces.boxes[idx[sel]] * np.array([sx, sy, sx, sy], np.float32)
        out[sel] = face_crops(t, torch.from_numpy(boxes.astype(np.float32)), config)
        wh = boxes[:, 2:] - boxes[:, :2]
        size[sel] = wh.min(1)
    return out, size


def all_views(faces: cd.FaceSet, idx: np.ndarray, config: ClassifierConfig) -> dict:
    """{view: (crops, face sizes)} for every view in VIEWS, and "factor"."""
    f = small_factor(faces.size[idx])
    out = {v: view_crops(faces, idx, config, v, f) for v in VIEWS}
    out["factor"] = f
    return out


def bin_name(lo, hi) -> str:
    return f"<{hi}px" if lo == 0 else (f">={lo}px" if hi == math.inf else f"{lo}-{hi}px")


def view_report(y_true: np.ndarray, y_pred: np.ndarray, size: np.ndarray) -> dict:
    """Metrics on all faces of a view and by face size (SIZE_BINS, in the view's pixels)."""
    out = {"metrics": evaluate(y_true, y_pred), "median_face_px": float(np.median(size)) if len(size) else 0.0,
           "by_face_size": {}}
    for lo, hi in SIZE_BINS:
        sel = (size >= lo) & (size < hi)
        out["by_face_size"][bin_name(lo, hi)] = {"n_faces": int(sel.sum()),
                                                  **({"metrics": evaluate(y_true[sel], y_pred[sel])}
                                                     if sel.any() else {})}
    return out


def write_voc(out: Path, views=VIEWS) -> dict:
    """Write each view of the ILC validation photos as a VOC folder (out/<view>/images/*.jpg at
    JPEG quality 95 + annotations/*.xml), for ../shared/tools/evaluate.py, which scores the
    project through its CLI. Only the validation faces are listed (whole photos are on one side
    of the split). -> {view: number of images}."""
    import xml.etree.ElementTree as ET

    from training.splits import validation_faces
    from training.classifier_data import LABEL_MAP

    names = {v: k for k, v in LABEL_MAP.items() if k in ("with_mask", "without_mask", "mask_weared_incorrect")}
    faces, idx = validation_faces(ClassifierConfig())
    f = small_factor(faces.size[idx])
    counts = {}
    for v in views:
        (Path(out) / v / "images").mkdir(parents=True, exist_ok=True)
        (Path(out) / v / "annotations").mkdir(parents=True, exist_ok=True)
        ims = np.unique(faces.image[idx])
        for im in ims:
            sel = idx[faces.image[idx] == im]
            rgb, sx, sy = view_image(cd.load_rgb(Path(faces.paths[im])), v, f, int(im))
            stem = Path(faces.paths[im]).stem
            cv2.imwrite(str(Path(out) / v / "images" / f"{stem}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            root = ET.Element("annotation")
            ET.SubElement(root, "filename").text = f"{stem}.jpg"
            size = ET.SubElement(root, "size")
            for k, val in (("width", rgb.shape[1]), ("height", rgb.shape[0]), ("depth", 3)):
                ET.SubElement(size, k).text = str(val)
            for i in sel:
                o = ET.SubElement(root, "object")
                ET.SubElement(o, "name").text = names[CLASSES[int(faces.labels[i])]]
                bb = ET.SubElement(o, "bndbox")
                b = faces.boxes[i] * np.array([sx, sy, sx, sy])
                for k, val in zip(("xmin", "ymin", "xmax", "ymax"), b):
                    ET.SubElement(bb, k).text = f"{float(val):.2f}"
            ET.ElementTree(root).write(Path(out) / v / "annotations" / f"{stem}.xml")
        counts[v] = int(len(ims))
    return counts


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description="write the validation views as VOC folders")
    ap.add_argument("out", type=Path)
    print(json.dumps(write_voc(ap.parse_args().out)))
