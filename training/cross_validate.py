"""K-fold cross-validation of the mask classifier's training recipe.

Every face (ILC, FMD, MaskedFace-Net, our synthetic masks) goes to one of K folds, stratified by
class and grouped by near-duplicate group (training.classifier_data.duplicate_groups: a group
never straddles two folds), separately within each source so that each fold holds each source's
share. Fold k is validation for a model trained from scratch on the other K-1 folds with the
released recipe (training.train_classifier.train: same augmentation, class and source weights,
source repeats, optimiser, schedule and early stopping on ILC macro-F1) but a smaller epoch
budget (EPOCHS: ten full trainings would take many hours on this 2-core machine). The figures
are the ILC faces' (real photos) of each validation fold, as the headline of the released
weights; the mean and standard deviation over folds estimate how much the recipe's result
depends on the split. They describe the recipe at this budget, not the released weights
themselves (which were trained longer, on one split).

Writes weights/classifier_cv.json ({"folds": [...], "summary": {...}, "protocol": {...}}),
which training.evaluate merges into weights/metrics.json ("cv_folds", "cv_summary") for the
Metrics page and the model card, and runs/classifier_cv_<time>.csv (one row per fold).

usage: python -m training.cross_validate [--folds 10] [--epochs 4] [--only 0,1]
       python -m training.cross_validate --only 1,3,5,7,9 --out runs/cv_odd.json   # in parallel
       python -m training.cross_validate --merge runs/cv_odd.json                  # join them
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from pipeline.engine.config import ClassifierConfig
from pipeline.records import CLASSES
from training import classifier_data as cd
from training import train_classifier as tc
from training.metrics import majority_baseline, summary
from training.paths import DATA, ROOT, WEIGHTS
from training.splits import SEED

FOLDS = 10
EPOCHS = 4
"""Epochs per fold (the released weights: see weights/classifier_validation.json)."""
THREADS = 1
"""torch threads (one thread trains faster than two on a busy 2-core machine)."""
OUT = WEIGHTS / "classifier_cv.json"
RUNS = ROOT / "runs"
KEYS = ("binary_accuracy", "macro_f1", "accuracy")


def stratified_group_kfold(labels: np.ndarray, groups: np.ndarray, k: int, seed: int,
                           num_classes: int = len(CLASSES)) -> np.ndarray:
    """Faces -> int64 [N] fold index in [0, k). Whole groups go to one fold. Groups, largest
    first (ties in seeded random order), each go to the fold where they leave the per-class
    counts closest to an even share (least sum of squared fill ratios)."""
    labels = np.asarray(labels, np.int64)
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.zeros((len(uniq), num_classes), np.int64)
    np.add.at(counts, (inv, labels), 1)
    target = np.maximum(counts.sum(0) / k, 1e-9)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-counts[order].sum(1), kind="stable")]
    fill = np.zeros((k, num_classes))
    fold_of_group = np.zeros(len(uniq), np.int64)
    for g in order:
        after = (fill + counts[g]) / target
        cost = (after ** 2).sum(1) - ((fill / target) ** 2).sum(1)
        f = int(np.argmin(cost + 1e-9 * rng.random(k)))
        fold_of_group[g] = f
        fill[f] += counts[g]
    return fold_of_group[inv]


def assign_folds(faces: cd.FaceSet, k: int = FOLDS, seed: int = SEED) -> np.ndarray:
    """-> int64 [N] fold per face: stratified group folds within each source."""
    fold = np.zeros(len(faces), np.int64)
    for j, s in enumerate(cd.SOURCES):
        sel = np.nonzero(faces.source == s)[0]
        if len(sel):
            fold[sel] = stratified_group_kfold(faces.labels[sel], faces.group[sel], k, seed + j)
    return fold


def fold_row(k: int, res: dict) -> dict:
    """One fold's ILC validation figures (and all sources' macro-F1) from a train() result."""
    v = res["validation"]["ilc"]["metrics"]
    return {"fold": k, "n": v["n"], **{key: v[key] for key in KEYS},
            **{f"recall_{c}": v["per_class"][c]["recall"] for c in CLASSES},
            **{f"f1_{c}": v["per_class"][c]["f1"] for c in CLASSES},
            "majority_macro_f1": res["validation"]["ilc"]["majority_baseline"]["macro_f1"],
            "all_sources_macro_f1": res["validation"]["all_sources"]["metrics"]["macro_f1"],
            "best_epoch": res["best_epoch"], "seconds": res["train_seconds"]}


def summarize(rows: list[dict]) -> dict:
    """{metric: {"mean", "std", "min", "max"}} over folds (std: sample standard deviation)."""
    out = {}
    for key in (*KEYS, *(f"recall_{c}" for c in CLASSES), "all_sources_macro_f1", "majority_macro_f1"):
        v = np.array([r[key] for r in rows], float)
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max())}
    return out


def cross_validate(k: int = FOLDS, epochs: int = EPOCHS, seed: int = SEED, out: Path | None = OUT,
                   data: Path = DATA, only=None, faces: cd.FaceSet | None = None,
                   progress: bool = True, log_dir: Path | None = RUNS, threads: int = THREADS,
                   limit: int | None = None, repeat: dict | None = None, merge=()) -> dict:
    """Train and validate on each fold (or the folds in `only`) -> result dict (written to
    `out`; folds already in `out`, or in the result files `merge`, from the same protocol are
    kept, so a run can be resumed fold by fold or split over processes).
    repeat: draws per training face per epoch by source; default the released recipe's
    (training.rebuild.CLASSIFIER_STAGES, last stage)."""
    if repeat is None:
        from training.rebuild import CLASSIFIER_STAGES
        repeat = CLASSIFIER_STAGES[-1]["repeat"]
    t0 = time.time()
    config = ClassifierConfig()
    if faces is None:
        faces = cd.cached_faceset(cd.list_all(data, cd.SOURCES, limit), config, progress=progress)
    fold = assign_folds(faces, k, seed)
    protocol = {"folds": k, "epochs": epochs, "seed": seed, "batch": tc.BATCH, "lr": tc.LR,
                "patience": tc.PATIENCE, "source_repeat": dict(repeat), "n_faces": int(len(faces)),
                "faces_per_source": {s: int((faces.source == s).sum()) for s in cd.SOURCES}}
    kept = {}
    for f in ([out] if out is not None and Path(out).exists() else []) + list(merge):
        old = json.loads(Path(f).read_text())
        if old.get("protocol") == protocol:
            kept |= {r["fold"]: r for r in old.get("folds", [])}
        elif f != out:
            raise ValueError(f"{f}: another protocol than this run's, not merged")
    rows = [kept[j] for j in sorted(kept)]
    done = {r["fold"] for r in rows}

    def save():
        if out is not None:
            Path(out).write_text(json.dumps(_result(rows, protocol, faces, fold, t0), indent=2) + "\n")

    log_path = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_dir) / f"classifier_cv_{time.strftime('%Y%m%d_%H%M%S')}.csv"
    for j in range(k):
        if j in done or (only is not None and j not in only):
            continue
        print(f"fold {j + 1}/{k}: {int((fold == j).sum())} validation faces "
              f"({int(((fold == j) & (faces.source == 'ilc')).sum())} ILC)", flush=True)
        res = tc.train(epochs=epochs, out=None, report=None, seed=seed + 100 * (j + 1),
                       patience=tc.PATIENCE, faces=faces, log_dir=None, progress=progress,
                       val_mask=fold == j, threads=threads, repeat=repeat)
        row = fold_row(j, res)
        rows.append(row)
        rows.sort(key=lambda r: r["fold"])
        print(f"fold {j + 1}: {summary(res['validation']['ilc']['metrics'])}", flush=True)
        if log_path:
            new = not log_path.exists()
            with open(log_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(row))
                if new:
                    w.writeheader()
                w.writerow(row)
        save()
    save()       # also when every fold was already done (a --merge)
    return _result(rows, protocol, faces, fold, t0)


def _result(rows, protocol, faces, fold, t0) -> dict:
    ilc = faces.source == "ilc"
    return {"what": "k-fold cross-validation of the classifier recipe (training.cross_validate); "
                    "per fold, the ILC faces of the validation fold",
            "protocol": protocol,
            "complete": len(rows) == protocol["folds"],
            "fold_sizes_ilc": [int((ilc & (fold == j)).sum()) for j in range(protocol["folds"])],
            "majority_baseline_all_ilc": majority_baseline(faces.labels[ilc]) if ilc.any() else None,
            "folds": rows, "summary": summarize(rows) if rows else None,
            "seconds_this_run": round(time.time() - t0, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=FOLDS)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--only", default=None, help="comma-separated fold indices (resume / split work)")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--merge", nargs="*", type=Path, default=(),
                    help="result files of other processes (same protocol) whose folds to keep")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    only = {int(v) for v in a.only.split(",")} if a.only else None
    r = cross_validate(a.folds, a.epochs, a.seed, a.out, a.data, only, progress=not a.no_progress,
                       threads=a.threads, merge=a.merge)
    if r["summary"]:
        s = r["summary"]
        print(f"{len(r['folds'])}/{a.folds} folds: " + ", ".join(
            f"{key} {s[key]['mean']:.4f} ± {s[key]['std']:.4f}" for key in (*KEYS, "recall_incorrect")))


if __name__ == "__main__":
    main()
