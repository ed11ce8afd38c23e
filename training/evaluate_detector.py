"""Evaluate the face detector (P/R/O-Net) on the held-out ILC images (training.splits).

Face AP (VOC all-point interpolation, matching exactly as /work/shared/tools/evaluate.py: each
detection, best score first, is compared with its highest-IoU ground-truth box) and recall at
IoU 0.5. Headline: faces with a short side >= 20 px, smaller ones "ignored" (they neither count
as misses nor make a detection that hits them false). Broken down by

* face size (short side of the GT box): 12-20 (recall), 20-32, 32-64, >= 64 px. Within a
  bucket, GT faces of other sizes are ignored, and an unmatched detection counts as a false
  positive only when its own short side falls in the bucket (COCO's area-range rule);
* GT class (mask / no_mask / incorrect) and group (masked = mask + incorrect, unmasked =
  no_mask): the other classes' GT faces are ignored, every unmatched detection is a false
  positive (the detector is class-agnostic);

for the original MTCNN weights (converted afresh from shared/data/pretrained/mtcnn_original by
training.convert_mtcnn.convert into runs/, the baseline) and for other weights (by default
weights/), at several pyramid min_face settings, with seconds per image: during the run, and
measured again on every 7th image with the settings interleaved and the fastest of 3 repeats
kept (`timing`; the machine is shared, so that is the figure to compare).

Writes weights/detector_metrics.json (merged into weights/metrics.json by the release step)
and runs/detector_eval_<time>.csv (one row per weights x min_face).

usage: python -m training.evaluate_detector [--weights DIR] [--min-faces 20,15,12] [--out FILE]
       [--baseline-only] [--limit N]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.engine.boxes import box_iou
from pipeline.engine.config import AUTO_BLOCKINESS, AUTO_DETECTOR, AUTO_NOISE, DETECTOR_WEIGHTS, DetectorConfig
from pipeline.engine.cascade import FaceDetector
from pipeline.engine.mask_detector import auto_weights
from pipeline.engine.weights import load_net
from pipeline.media.images import image_size, read_image
from pipeline.records import CLASSES
from training import classifier_data as cd
from training.detector_samples import to_detector_boxes
from training.paths import DATA, ROOT, WEIGHTS, repo_relative
from training.splits import ilc_split, scene_split
from training.views import scaled_size, small_factor, view_image

IOU = 0.5
MIN_FACE_GT = 20.0
"""Headline: GT faces with a shorter side are ignored (as evaluate.py's 'min' figures)."""
MIN_FACES = (20.0, 15.0, 12.0)
"""Detector pyramid min_face settings compared."""
BUCKETS = {"12-20": (12.0, 20.0), "20-32": (20.0, 32.0), "32-64": (32.0, 64.0), ">=64": (64.0, math.inf)}
GROUPS = {"masked": ("mask", "incorrect"), "unmasked": ("no_mask",)}
"""Class groups: faces wearing a mask (rightly or not) and bare faces."""
PREVIOUS = WEIGHTS / "detector_previous.json"
"""The previous release's detector on the same sets (write_previous), shown next to the new one."""
VIEW_MIN_FACES = (20.0, 12.0)
"""min_face settings compared on the validation views (evaluate_views)."""
OUT = WEIGHTS / "detector_metrics.json"
RUNS = ROOT / "runs"
BASELINE_DIR = RUNS / "baseline_mtcnn"
CACHE = RUNS / "cache"
DETS_VERSION = 2
"""Bump when run_detector changes, to invalidate cached detections."""
THREADS = 1
"""torch threads for evaluation (one is faster than two on a busy 2-core machine)."""


# ---------------------------------------------------------------- the metric


def voc_ap(dets, gts, thr: float = IOU, ignore=None, det_ignore=None) -> dict:
    """VOC all-point AP, as evaluate.py.

    dets: list of (image key, score, box); gts: {image key: [boxes]}; ignore: {image key: [bool]}
    per GT box (ignored GT neither counts as a miss nor makes a matching detection false: that
    detection is dropped); det_ignore: optional [bool] per detection, dropped when it matches no
    GT at IoU >= thr (unmatched detections outside a size bucket). -> {ap, recall, precision,
    npos, tp, fp}.
    """
    npos = sum(sum(1 for k in range(len(b)) if not (ignore and ignore[i][k])) for i, b in gts.items())
    used = {i: np.zeros(len(b), bool) for i, b in gts.items()}
    order = sorted(range(len(dets)), key=lambda n: -dets[n][1])
    tp = np.zeros(len(order)); fp = np.zeros(len(order)); keep = np.ones(len(order), bool)
    for r, n in enumerate(order):
        img, _, box = dets[n]
        g = gts.get(img, [])
        o = box_iou([box], g)[0] if len(g) else np.zeros(0)
        j = int(o.argmax()) if len(o) else -1
        if j >= 0 and o[j] >= thr:
            if ignore and ignore[img][j]:
                keep[r] = False
            elif not used[img][j]:
                used[img][j] = True
                tp[r] = 1
            else:
                fp[r] = 1
        elif det_ignore is not None and det_ignore[n]:
            keep[r] = False
        else:
            fp[r] = 1
    tp, fp = tp[keep], fp[keep]
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / max(npos, 1)
    prec = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[0], prec, [0]])
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    ap = float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    return {"ap": ap, "recall": float(rec[-1]) if len(rec) else 0.0,
            "precision": float(prec[-1]) if len(prec) else 0.0, "npos": int(npos),
            "tp": int(tp.sum()), "fp": int(fp.sum())}


def short_side(boxes) -> np.ndarray:
    b = np.asarray(boxes, float).reshape(-1, 4)
    return np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def face_metrics(dets, gts, labels, min_gt: float = MIN_FACE_GT, thr: float = IOU) -> dict:
    """All the figures for one detector run.

    dets: list of (key, score, box); gts: {key: [K,4] GT boxes}; labels: {key: [K] class names}.
    """
    size = {k: short_side(v) for k, v in gts.items()}
    det_size = short_side([d[2] for d in dets]) if dets else np.zeros(0)
    out = {"headline": voc_ap(dets, gts, thr, {k: s < min_gt for k, s in size.items()}),
           "all_faces": voc_ap(dets, gts, thr),
           "by_size": {}, "by_class": {}}
    for name, (lo, hi) in BUCKETS.items():
        ign = {k: (s < lo) | (s >= hi) for k, s in size.items()}
        out["by_size"][name] = voc_ap(dets, gts, thr, ign, (det_size < lo) | (det_size >= hi))
    for c in CLASSES:
        ign = {k: (size[k] < min_gt) | (np.asarray(labels[k]) != c) for k in gts}
        out["by_class"][c] = voc_ap(dets, gts, thr, ign)
    out["by_group"] = {}
    for g, members in GROUPS.items():
        ign = {k: (size[k] < min_gt) | ~np.isin(np.asarray(labels[k]), members) for k in gts}
        out["by_group"][g] = voc_ap(dets, gts, thr, ign)
    return out


# ---------------------------------------------------------------- validation views


@dataclass(frozen=True)
class ViewImage:
    """A held-out photo as a validation view shows it (training.views.view_image: "small" is
    area-downscaled so the split's median face side is 21 px, "degraded" is that through
    camera_degrade); boxes are in the view's pixels."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    view: str
    factor: float
    seed: int

    @property
    def key(self) -> str:
        return f"{self.path}#{self.view}"


def record_key(r) -> str:
    return r.key if isinstance(r, ViewImage) else str(r.path)


def image_of(r) -> np.ndarray:
    """The RGB image of a record (a view's image for a ViewImage)."""
    rgb = read_image(r.path)
    return view_image(rgb, r.view, r.factor, r.seed)[0] if isinstance(r, ViewImage) else rgb


def view_sets(data: Path = DATA, limit: int | None = None) -> dict[str, tuple[str, list]]:
    """The detector's validation sets besides the standard ILC split -> {name: (description,
    records)}: the ILC validation photos seen small and degraded (the classifier's views, same
    factor and seeds), and the adityap27 validation photos (news and street crowds, many small
    faces; scene_split, the classifier's)."""
    _, val = ilc_split(data)
    index = {r.path: i for i, r in enumerate(cd.list_ilc(data))}
    f = small_factor(np.concatenate([short_side(r.boxes) for r in val]))
    out = {}
    for view in ("small", "degraded"):
        recs = []
        for r in val[:limit]:
            w, h = image_size(r.path)
            nw, nh = scaled_size(w, h, f)
            b = r.boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
            recs.append(ViewImage(r.path, b, r.labels, view, f, index[r.path]))
        out[f"ilc_{view}"] = (f"the ILC validation photos downscaled by {f:.3f} (median face 21 px)"
                              + (", then camera-degraded (training.augment.camera_degrade)" if view == "degraded" else ""),
                              recs)
    crowds = [replace(r, boxes=to_detector_boxes(r.boxes, "adi")) for r in scene_split("adi", data)[1][:limit]]
    out["crowds"] = ("scenes/adityap27 validation photos (training.splits.scene_split: the classifier's), "
                     "their boxes mapped to the detector's convention (training.detector_samples.BOX_CONVENTION: "
                     "adityap27 draws them about 1.2x larger, taking in hair)", crowds)
    return out


def split_info(source: str, records) -> dict:
    sizes = np.concatenate([short_side(r.boxes) for r in records]) if records else np.zeros(0)
    return {"source": source, "images": len(records), "faces": int(len(sizes)),
            "faces_ge_20px": int((sizes >= 20).sum()),
            "faces_by_class": {c: int(sum((r.labels == k).sum() for r in records)) for k, c in enumerate(CLASSES)}}


def evaluate_views(weights: dict[str, Path], data: Path = DATA, min_faces=VIEW_MIN_FACES,
                   progress: bool = True, limit: int | None = None) -> dict:
    """{view name: {"split": ..., <weights name>: {min_face_<N>: run}}} for each view_sets set and
    each named weights folder (e.g. {"baseline": original, "weights": ours})."""
    out = {}
    for name, (desc, recs) in view_sets(data, limit).items():
        out[name] = {"split": split_info(desc, recs)}
        for wname, folder in weights.items():
            out[name][wname] = evaluate_weights(Path(folder), recs, min_faces, progress, f"{name} {wname}")
    return out


# ---------------------------------------------------------------- running the detector


def baseline_weights(folder: Path = BASELINE_DIR) -> Path:
    """The original MTCNN weights, converted afresh (training.convert_mtcnn) into `folder`."""
    from training.convert_mtcnn import convert
    if not all((folder / n / "model.safetensors").exists() for n in ("pnet", "rnet", "onet")):
        convert(out=folder)
    return folder


def load_detector(folder: Path, config: DetectorConfig | None = None, device=None) -> FaceDetector:
    nets = {n: load_net(n, Path(folder)) for n in ("pnet", "rnet", "onet")}
    return FaceDetector(nets["pnet"], nets["rnet"], nets["onet"], config or DetectorConfig(), device or "cpu")


def ground_truth(records) -> tuple[dict, dict]:
    gts = {record_key(r): r.boxes.astype(float) for r in records}
    labels = {record_key(r): [CLASSES[int(l)] for l in r.labels] for r in records}
    return gts, labels


def run_detector(detector: FaceDetector, records, config: DetectorConfig,
                 progress: bool = True, desc: str = "detect") -> tuple[list, float]:
    """-> (detections [(key, score, box)], seconds per image, excluding decoding)."""
    dets, secs = [], 0.0
    for r in tqdm(records, desc=desc, disable=not progress, mininterval=2, leave=False):
        img = image_of(r)
        t = time.perf_counter()
        faces = detector.detect(img, config)
        secs += time.perf_counter() - t
        dets += [(record_key(r), float(s), [float(v) for v in b]) for b, s in zip(faces.boxes, faces.scores)]
    return dets, secs / max(len(records), 1)


def _cache_file(folder: Path, records, m: float) -> Path:
    from pipeline.engine.weights import sha256_file
    code = [sha256_file(ROOT / "pipeline" / "engine" / f) for f in ("cascade.py", "crops.py", "boxes.py", "config.py", "nets.py")]
    key = json.dumps([record_key(r) for r in records] + [m, DETS_VERSION]
                     + [sha256_file(Path(folder) / n / "model.safetensors") for n in ("pnet", "rnet", "onet")]
                     + code)
    return CACHE / f"detector_dets_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def detections(folder: Path, records, min_face: float, progress: bool = True, name: str = "",
               cache: bool = True) -> tuple[list, float]:
    """The detector's faces on `records` at `min_face` -> (detections [(key, score, box)],
    seconds per image). cache: reuse (and store) them for these exact weights, images and
    detector code in runs/cache, so metrics can be recomputed without rerunning the detector."""
    f = _cache_file(folder, records, float(min_face)) if cache else None
    if f is not None and f.exists():
        d = json.loads(f.read_text())
        return [tuple(x) for x in d["dets"]], d["seconds_per_image"]
    det = load_detector(folder)
    cfg = replace(DetectorConfig(), min_face=float(min_face))
    dets, spi = run_detector(det, records, cfg, progress, f"{name} min_face {min_face:g}")
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"dets": dets, "seconds_per_image": spi}))
    return dets, spi


def evaluate_weights(folder: Path, records, min_faces=MIN_FACES, progress: bool = True,
                     name: str = "", cache: bool = True) -> dict:
    """{f"min_face_{m:g}": metrics + seconds_per_image} for each min_face setting."""
    torch.set_num_threads(THREADS)
    gts, labels = ground_truth(records)
    res = {}
    for m in min_faces:
        dets, spi = detections(folder, records, m, progress, name, cache)
        r = face_metrics(dets, gts, labels)
        r.update(min_face=float(m), seconds_per_image=round(spi, 4), detections=len(dets))
        res[f"min_face_{m:g}"] = r
    return res


def _choice_file(records) -> Path:
    from pipeline.engine.weights import sha256_file
    key = json.dumps([record_key(r) for r in records] + [AUTO_BLOCKINESS, AUTO_NOISE]
                     + [sha256_file(ROOT / "pipeline" / "engine" / f) for f in ("image_quality.py", "mask_detector.py")])
    return CACHE / f"auto_choice_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def auto_choices(records, cache: bool = True, progress: bool = True) -> dict:
    """{"choice": {record key: "photo" | "camera"}, "seconds_per_image": the choice's own time}:
    the "auto" detector's weight set for each image (pipeline.engine.mask_detector.auto_weights,
    the engine's own rule), cached in runs/cache like the detections."""
    f = _choice_file(records) if cache else None
    if f is not None and f.exists():
        return json.loads(f.read_text())
    choice, secs = {}, 0.0
    for r in tqdm(records, desc="auto choice", disable=not progress, mininterval=2, leave=False):
        img = image_of(r)
        t = time.perf_counter()
        choice[record_key(r)] = auto_weights(img)
        secs += time.perf_counter() - t
    out = {"choice": choice, "seconds_per_image": secs / max(len(records), 1)}
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(out))
    return out


def evaluate_auto(weights: Path, camera: Path, records, min_faces=MIN_FACES, progress: bool = True,
                  name: str = "", cache: bool = True) -> dict:
    """The "auto" detector (AUTO_DETECTOR): on each image, the faces of the weight set
    auto_weights picks for it, from the two sets' own runs -> {f"min_face_{m:g}": metrics +
    seconds_per_image + camera_images}. Its seconds_per_image is the choice's measured time plus
    the two sets' times weighted by how many images each got (each set's is its mean over all
    images, so this is an estimate)."""
    torch.set_num_threads(THREADS)
    gts, labels = ground_truth(records)
    picked = auto_choices(records, cache, progress)
    use_camera = {k for k, v in picked["choice"].items() if v == "camera"}
    share = len(use_camera) / max(len(records), 1)
    res = {}
    for m in min_faces:
        photo, photo_spi = detections(weights, records, m, progress, f"{name} photo", cache)
        cam, cam_spi = detections(camera, records, m, progress, f"{name} camera", cache)
        dets = [d for d in photo if d[0] not in use_camera] + [d for d in cam if d[0] in use_camera]
        r = face_metrics(dets, gts, labels)
        spi = picked["seconds_per_image"] + (1 - share) * photo_spi + share * cam_spi
        r.update(min_face=float(m), seconds_per_image=round(spi, 4), detections=len(dets),
                 camera_images=len(use_camera))
        res[f"min_face_{m:g}"] = r
    return res


def time_min_faces(folders: dict, records, min_faces=MIN_FACES, every: int = 7, repeats: int = 3) -> dict:
    """Detector seconds per image (1 thread, decoding excluded) for each weights folder and
    min_face, on every `every`-th record, settings interleaved and repeated, fastest repeat kept
    (the machine is shared, so the minimum is the least disturbed figure)."""
    torch.set_num_threads(THREADS)
    imgs = [image_of(r) for r in records[::every]]
    dets = {k: load_detector(Path(f)) for k, f in folders.items()}
    best = {k: {f"{m:g}": math.inf for m in min_faces} for k in folders}
    for _ in range(repeats):
        for k, det in dets.items():
            for m in min_faces:
                cfg = replace(DetectorConfig(), min_face=float(m))
                t = time.perf_counter()
                for im in imgs:
                    det.detect(im, cfg)
                best[k][f"{m:g}"] = min(best[k][f"{m:g}"], round((time.perf_counter() - t) / len(imgs), 4))
    return {"images": len(imgs), "mean_size_hw": np.mean([i.shape[:2] for i in imgs], 0).round().tolist(),
            "threads": THREADS, "seconds_per_image": best}


def summary_rows(name: str, res: dict) -> list[dict]:
    rows = []
    for key, r in res.items():
        row = {"weights": name, "min_face": r["min_face"], "s_per_img": r["seconds_per_image"],
               "AP>=20": r["headline"]["ap"], "R>=20": r["headline"]["recall"],
               "P>=20": r["headline"]["precision"], "AP_all": r["all_faces"]["ap"],
               "R_all": r["all_faces"]["recall"]}
        for b, v in r["by_size"].items():
            row[f"AP_{b}"] = v["ap"]
            row[f"R_{b}"] = v["recall"]
        for c, v in list(r["by_class"].items()) + list(r.get("by_group", {}).items()):
            row[f"AP_{c}"] = v["ap"]
            row[f"R_{c}"] = v["recall"]
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = [" | ".join(cols)]
    for r in rows:
        lines.append(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    return "\n".join(lines)


def evaluate(weights: Path | None = WEIGHTS, out: Path | None = OUT, min_faces=MIN_FACES,
             data: Path = DATA, limit: int | None = None, progress: bool = True,
             log_dir: Path | None = RUNS, timing: bool = True, fine_tuning: dict | None = None,
             views: bool = True) -> dict:
    """Baseline (original weights) vs `weights` on the held-out ILC split -> result dict; with
    the "camera" detector weights (weights/camera/) when `weights` holds them, and the "auto"
    detector that picks one of the two per image, on the same sets.
    fine_tuning: train_detector's verdict to store with it; by default the one already in `out`
    is kept when `out` describes the same weights folder."""
    t0 = time.time()
    _, val = ilc_split(data)
    if limit:
        val = val[:limit]
    sizes = np.concatenate([short_side(r.boxes) for r in val])
    result = {
        "split": {"source": "scenes/ilc2021 held-out images (training.splits.ilc_split: the "
                            "classifier's validation images)",
                  "images": len(val), "faces": int(len(sizes)),
                  "faces_ge_20px": int((sizes >= 20).sum()),
                  "faces_by_class": {c: int(sum((r.labels == k).sum() for r in val)) for k, c in enumerate(CLASSES)}},
        "metric": "VOC all-point AP and recall at IoU 0.5 (as shared/tools/evaluate.py); headline "
                  "over GT faces >= 20 px, smaller ignored",
        "detector_config": {k: v for k, v in asdict(DetectorConfig()).items() if k != "min_face"},
        "baseline": evaluate_weights(baseline_weights(), val, min_faces, progress, "baseline"),
    }
    rows = summary_rows("original", result["baseline"])
    if weights is not None:
        result["weights_dir"] = repo_relative(weights)
        result["weights"] = evaluate_weights(Path(weights), val, min_faces, progress, "weights")
        rows += summary_rows(str(Path(weights).name), result["weights"])
    if views:
        named = {"baseline": baseline_weights()} | ({"weights": Path(weights)} if weights is not None else {})
        result["views"] = evaluate_views(named, data, progress=progress, limit=limit)
        for vname, v in result["views"].items():
            for wname in named:
                rows += summary_rows(f"{vname}:{'original' if wname == 'baseline' else Path(weights).name}", v[wname])
    camera = Path(weights) / DETECTOR_WEIGHTS["camera"] if weights is not None else None
    if camera is not None and all((camera / n / "model.safetensors").exists() for n in ("pnet", "rnet", "onet")):
        result["camera"] = {"weights_dir": repo_relative(camera),
                            **score_weights(camera, data, progress, "camera", limit)}
        rows += summary_rows("camera", result["camera"]["weights"])
        for vname, runs in result["camera"]["views"].items():
            rows += summary_rows(f"{vname}:camera", runs)
        result["auto"] = score_auto(Path(weights), camera, data, progress, limit)
        rows += summary_rows(AUTO_DETECTOR, result["auto"]["weights"])
        for vname, runs in result["auto"]["views"].items():
            rows += summary_rows(f"{vname}:{AUTO_DETECTOR}", runs)
    if PREVIOUS.exists():
        result["previous"] = json.loads(PREVIOUS.read_text())
    if timing:
        folders = {"original": baseline_weights()}
        if weights is not None:
            folders["weights"] = Path(weights)
        if "camera" in result:
            folders["camera"] = camera
        result["timing"] = time_min_faces(folders, val, min_faces)
        print("seconds per image (min_face: s):", json.dumps(result["timing"]["seconds_per_image"]))
    if fine_tuning is None and out and Path(out).exists() and weights is not None:
        old = json.loads(Path(out).read_text())
        if old.get("weights_dir") in (str(weights), repo_relative(weights)):
            fine_tuning = old.get("fine_tuning")
    if fine_tuning is not None:
        result["fine_tuning"] = fine_tuning
    result["seconds"] = round(time.time() - t0, 1)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(log_dir) / f"detector_eval_{time.strftime('%Y%m%d_%H%M%S')}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    print(format_table(rows))
    return result


def score_weights(weights: Path, data: Path = DATA, progress: bool = True, name: str = "weights",
                  limit: int | None = None) -> dict:
    """The detector in `weights` on the standard split and every view -> {"weights": {min_face_<N>:
    run}, "views": {name: {min_face_<N>: run}}}."""
    _, val = ilc_split(data)
    return {"weights": evaluate_weights(Path(weights), val[:limit] if limit else val, MIN_FACES, progress, name),
            "views": {k: v[name] for k, v in evaluate_views({name: Path(weights)}, data, progress=progress,
                                                            limit=limit).items()}}


def score_auto(weights: Path, camera: Path, data: Path = DATA, progress: bool = True,
               limit: int | None = None) -> dict:
    """The "auto" detector (the photo weights in `weights`, the camera ones in `camera`, chosen
    per image) on the standard split and every view -> {"rule", "weights": {min_face_<N>: run},
    "views": {name: {min_face_<N>: run}}}; each run says how many images took "camera"."""
    _, val = ilc_split(data)
    views = view_sets(data, limit)
    return {"rule": f"its JPEG blockiness is at least {AUTO_BLOCKINESS:g} or its sensor noise at least "
                    f"{AUTO_NOISE:g} grey levels (pipeline.engine.mask_detector.auto_weights)",
            "weights": evaluate_auto(weights, camera, val[:limit] if limit else val, MIN_FACES, progress, "auto"),
            "views": {k: evaluate_auto(weights, camera, recs, VIEW_MIN_FACES, progress, f"{k} auto")
                      for k, (_, recs) in views.items()}}


def write_previous(weights: Path = WEIGHTS, out: Path = PREVIOUS, data: Path = DATA,
                   release: str = "", progress: bool = True) -> dict:
    """Score the detector in `weights` (the release about to be replaced) on the standard split
    and every view -> out: {"release", "weights": {min_face_<N>: run}, "views": {name: {min_face_<N>: run}}}."""
    doc = {"release": release or "the previous release", **score_weights(Path(weights), data, progress, "previous")}
    Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS, help="weights folder to compare with the original")
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--min-faces", default=",".join(f"{m:g}" for m in MIN_FACES))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--no-timing", action="store_true", help="skip the separate speed measurement")
    a = ap.parse_args(argv)
    evaluate(None if a.baseline_only else a.weights, a.out,
             [float(v) for v in a.min_faces.split(",")], limit=a.limit, progress=not a.no_progress,
             timing=not a.no_timing)


if __name__ == "__main__":
    main()
