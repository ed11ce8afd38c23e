"""Write weights/metrics.json, the one file the Metrics page and the model card read.

It gathers, for the released weights:
- classifier: the validation report of training.train_classifier (confusion matrices,
  per-class precision/recall/F1, accuracy, macro-F1, binary accuracy, majority baseline, by
  source and by face size), plus one-vs-rest ROC and PR curve points computed here by running
  the released classifier on the same group-aware validation faces;
- cv_folds: cross-validation folds, if a CV run left weights/classifier_cv.json;
- detector: AP and recall by face-size bucket and class, original MTCNN vs ours
  (weights/detector_metrics.json from training.evaluate_detector);
- classifier_views: the classifier on the standard, small (median face 21 px) and degraded views
  of the same faces, by face size, with argmax and with its released decision rule
  (training.evaluate_views), and classifier_views_previous, the same for the previous release;
- model sizes (weights/manifest.json), data-set counts, the training config and the git commit.

The layout is pipeline.engine.metrics_schema.MetricsDoc (with "schema_version"); the document is
checked against it before it is written.

usage: python -m training.evaluate [--weights weights] [--no-curves]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.engine import metrics_schema
from pipeline.engine.metrics_schema import (SCHEMA_VERSION, ClassifierReport, DetectorReport, MetricsDoc,
                                            ReportFigures)
from pipeline.records import CLASSES, MASK_INDEX
from training.paths import ROOT, WEIGHTS
from training.splits import validation_faces

PREVIOUS_VIEWS = "classifier_views_previous.json"
"""training.evaluate_views' report of the previous release's classifier (kept for comparison)."""
CURVE_POINTS = 101
"""Curve points kept per class (thresholds spread evenly over the score ranks)."""
REPORT: ReportFigures = {"accuracy": 0.9315, "precision": 0.9193, "recall": 0.946, "weights_mb": 8.8,
                          "source": "the published report MaskWatch's design comes from (3-conv + 2-linear "
                                    "classifier, MTCNN fine-tuned on WIDER FACE; masked/unmasked test faces "
                                    "from different sources)"}


def roc_curve(y: np.ndarray, score: np.ndarray) -> dict:
    """Binary labels y [N] (1 = positive), scores [N] -> {"fpr", "tpr", "auc"} (trapezoid AUC).
    Ties in score are taken together."""
    order = np.argsort(-score, kind="stable")
    y, s = y[order].astype(np.float64), score[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps, fps = np.cumsum(y)[distinct], np.cumsum(1 - y)[distinct]
    P, N = max(y.sum(), 1e-12), max((1 - y).sum(), 1e-12)
    tpr, fpr = np.r_[0, tps / P], np.r_[0, fps / N]
    return {"fpr": fpr, "tpr": tpr, "auc": float(np.trapezoid(tpr, fpr))}


def pr_curve(y: np.ndarray, score: np.ndarray) -> dict:
    """-> {"recall", "precision", "ap"}; AP is the step-wise sum of precision x recall gain."""
    order = np.argsort(-score, kind="stable")
    y, s = y[order].astype(np.float64), score[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = np.cumsum(1 - y)[distinct]
    precision = tps / np.maximum(tps + fps, 1e-12)
    recall = tps / max(y.sum(), 1e-12)
    ap = float(np.sum(np.diff(np.r_[0, recall]) * precision))
    return {"recall": np.r_[0, recall], "precision": np.r_[1, precision], "ap": ap}


def thin(curve: dict, keys: tuple[str, str], points: int = CURVE_POINTS) -> dict:
    """Keep about `points` evenly spaced points (always the first and last), rounded."""
    n = len(curve[keys[0]])
    idx = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    out = {k: [round(float(v), 5) for v in np.asarray(curve[k])[idx]] for k in keys}
    out.update({k: round(float(v), 5) for k, v in curve.items() if k not in keys})
    return out


def curves(y_true: np.ndarray, probs: np.ndarray) -> tuple[dict, dict]:
    """One-vs-rest ROC and PR per class, plus the binary 'not masked' view."""
    roc, pr = {}, {}
    views = {c: (y_true == k, probs[:, k]) for k, c in enumerate(CLASSES)}
    views["not_masked"] = (y_true != MASK_INDEX, 1 - probs[:, MASK_INDEX])
    for name, (y, s) in views.items():
        if y.all() or not y.any():
            continue
        roc[name] = thin(roc_curve(y, s), ("fpr", "tpr"))
        pr[name] = thin(pr_curve(y, s), ("recall", "precision"))
    return roc, pr


def face_probs(net, faces, idx: np.ndarray) -> np.ndarray:
    """Class probabilities [len(idx), 3] of the classifier `net` on faces `idx`, cut exactly as
    inference cuts them."""
    from training import classifier_data as cd

    x = cd.exact_crops(faces, idx, net.config)
    with torch.inference_mode():
        return torch.cat([torch.softmax(net(x[i:i + 512]), 1) for i in range(0, len(x), 512)]).numpy()


def validation_run(weights: Path = WEIGHTS):
    """Run the classifier in `weights` on the ILC validation faces of training.train_classifier's
    split -> (FaceSet, indices [N] of those faces, probs [N,3])."""
    from pipeline.engine.weights import load_net

    net = load_net("classifier", weights)
    faces, idx = validation_faces(net.config)
    return faces, idx, face_probs(net, faces, idx)


def validation_probs(weights: Path = WEIGHTS):
    """validation_run -> (y_true [N], probs [N,3])."""
    faces, idx, probs = validation_run(weights)
    return faces.labels[idx], probs


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_metrics(weights: Path = WEIGHTS, with_curves: bool = True) -> MetricsDoc:
    """weights/metrics.json from the reports in `weights` (and, with_curves, a run of the
    released classifier). A report that is absent leaves its optional section out."""
    cls: ClassifierReport | None = _read(weights / "classifier_validation.json")
    det: DetectorReport | None = _read(weights / "detector_metrics.json")
    cv = _read(weights / "classifier_cv.json") or {}
    manifest = _read(weights / "manifest.json") or {"files": {}}
    sizes: dict[str, int] = {}
    for rel, info in manifest["files"].items():
        sizes[rel.split("/")[0]] = sizes.get(rel.split("/")[0], 0) + int(info["size"])
    out = MetricsDoc(
        schema_version=SCHEMA_VERSION,
        generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        git_commit=git_commit(),
        classes=list(CLASSES),
        report=REPORT,
        model_sizes_bytes=sizes,
        total_weight_bytes=sum(v["size"] for k, v in manifest["files"].items() if k.endswith(".safetensors")),
    )
    if cls:
        out["classifier"] = cls
    if det:
        out["detector"] = det
    if cv.get("folds"):
        out["cv_folds"] = cv["folds"]
    if cv.get("summary"):
        out["cv_summary"] = cv["summary"]
    if cv.get("protocol"):
        out["cv_protocol"] = cv["protocol"]
    out["datasets"] = {
        "scenes/ilc2021": "real photos, 3953 boxed faces (mask 1969, no_mask 1515, incorrect 469); "
                          "group-aware split, held-out images for both stages; no licence file (not redistributed)",
        "crops/fmd": "face crops, mask 2156 / no_mask 1930; MIT",
        "synthetic/maskedfacenet": "1054 FFHQ faces with drawn masks (289 correct, 765 incorrect); "
                                   "CC BY-NC-SA 4.0, weighted below real data",
        "landmarks/mtfl + masks/masktheface (syn)": "1500 MTFL faces, each bare (no_mask), with a MaskTheFace "
                                                    "mask (mask) and with it below the nose (incorrect), drawn by "
                                                    "training.mask_synthesis; classifier training, weighted below real data",
        "landmarks/mtfl, masks/masktheface, scenes/dlib_faces": "detector fine-tuning samples and checks",
        "pretrained/mtcnn_original": "original MTCNN weights (facenet-pytorch 2.6.0, MIT), the detector baseline",
        "scenes/adityap27": "244 real news and street photos, 1004 faces (with_mask 648, without_mask 356); "
                            "two classes (with_mask = mask or incorrect); classifier training; MIT",
        "scenes/macwin": "459 web and stock photos, 1086 faces (with_mask 497, without_mask 589); two "
                         "classes; classifier training; no licence file (not redistributed)",
    }
    if cls:
        out["training_config"] = {k: cls.get(k) for k in ("split_seed", "val_frac", "class_weights", "source_weights",
                                                          "source_repeat", "init", "lr", "batch",
                                                          "label_smoothing", "augment", "train_seconds",
                                                          "best_epoch", "epochs_run")}
    if with_curves:
        y, probs = validation_probs(weights)
        out["roc"], out["pr"] = curves(y, probs)
        out["curves_on"] = f"ILC validation faces (n={len(y)}), released classifier"
        from training.evaluate_views import evaluate_views
        out["classifier_views"] = evaluate_views(weights, cross=True)
    previous = _read(weights / PREVIOUS_VIEWS)
    if previous:
        out["classifier_views_previous"] = previous
    return out


def write_metrics(m: MetricsDoc, path: Path) -> None:
    """Write `m` to `path` (indent 1), after checking it against the schema: a report that does
    not fit (a missing key, a wrong type) stops here, not on the Metrics page."""
    metrics_schema.parse(m, str(path))
    path.write_text(json.dumps(m, indent=1) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    ap.add_argument("--no-curves", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    m = build_metrics(a.weights, not a.no_curves)
    write_metrics(m, a.weights / metrics_schema.FILENAME)
    print(f"wrote {a.weights / 'metrics.json'}")


if __name__ == "__main__":
    main()
