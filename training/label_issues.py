"""Likely wrong labels among ILC's training faces (issue 13, lever 5): cleanlab on
out-of-fold probabilities.

The ILC training faces (training.train_classifier's split; the validation faces are never
touched) go to K stratified, duplicate-grouped folds (training.cross_validate.
stratified_group_kfold). For each fold a classifier is trained from scratch on the other folds
(ILC only, the release's augmentation, a short budget: EPOCHS) and gives probabilities for the
fold's faces, cut exactly as inference cuts them. cleanlab.filter.find_label_issues ranks the
faces whose given label disagrees most with those probabilities. The candidates are drawn on a
contact sheet (training.error_sheet.contact_sheet) to be looked at by eye; the verdicts go into
training/label_fixes.json (training.label_fixes), which training reads.

Writes runs/label_issues.json (every candidate: image, box, given label, out-of-fold
probabilities, rank) and runs/label_issues.jpg.

usage: python -m training.label_issues [--folds 4] [--epochs 6]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.engine.config import ClassifierConfig
from pipeline.records import CLASSES
from training import classifier_data as cd
from training.paths import DATA, ROOT

FOLDS = 4
EPOCHS = 6
SEED = 1234
OUT = ROOT / "runs" / "label_issues"


def subset(faces: cd.FaceSet, idx: np.ndarray) -> cd.FaceSet:
    """The faces `idx` of a FaceSet (paths kept whole: `image` still indexes them)."""
    from dataclasses import replace
    return replace(faces, **{k: getattr(faces, k)[idx] for k in
                             ("source", "image", "labels", "boxes", "size", "group", "context", "ctx_boxes")})


def out_of_fold_probs(faces: cd.FaceSet, folds: int = FOLDS, epochs: int = EPOCHS, seed: int = SEED,
                      threads: int = 1, progress: bool = False) -> np.ndarray:
    """-> probs [len(faces), 3]: each face's from the model that did not train on it."""
    from training import train_classifier as tc
    from training.cross_validate import stratified_group_kfold
    from training.evaluate import face_probs

    fold = stratified_group_kfold(faces.labels, faces.group, folds, seed)
    probs = np.zeros((len(faces), len(CLASSES)), np.float32)
    for j in range(folds):
        res = tc.train(epochs=epochs, out=None, report=None, seed=seed + 100 * (j + 1), faces=faces,
                       val_mask=fold == j, log_dir=None, progress=progress, threads=threads,
                       repeat={"ilc": 1}, patience=epochs)
        idx = np.nonzero(fold == j)[0]
        probs[idx] = face_probs(res["net"], faces, idx)
        print(f"fold {j + 1}/{folds}: done", flush=True)
    return probs


def find_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab: indices of likely label issues, most likely first (self-confidence)."""
    from cleanlab.filter import find_label_issues
    return np.asarray(find_label_issues(labels, probs, return_indices_ranked_by="self_confidence"))


def main(argv=None):
    from training.error_sheet import SHORT, contact_sheet, face_window
    from training.label_fixes import face_key
    from training.splits import split_faces

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=FOLDS)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--probs", type=Path, default=None, help="reuse saved out-of-fold probabilities (.npy)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    all_ilc = cd.cached_faceset(cd.list_all(DATA, ("ilc",)), ClassifierConfig(), progress=False)
    train_idx = np.nonzero(~split_faces(all_ilc))[0]
    faces = subset(all_ilc, train_idx)
    if a.probs and a.probs.exists():
        probs = np.load(a.probs)
    else:
        probs = out_of_fold_probs(faces, a.folds, a.epochs, threads=a.threads)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        np.save(a.out.with_suffix(".probs.npy"), probs)
    issues = find_issues(faces.labels, probs)
    acc = float((probs.argmax(1) == faces.labels).mean())
    rows, tiles, captions = [], [], []
    for rank, i in enumerate(issues):
        path = Path(faces.paths[faces.image[i]])
        p = int(probs[i].argmax())
        rows.append({"rank": rank, "key": face_key(str(path), faces.boxes[i]),
                     "given": CLASSES[int(faces.labels[i])], "oof_predicted": CLASSES[p],
                     "oof_probs": [round(float(v), 3) for v in probs[i]],
                     "size_px": round(float(faces.size[i]), 1)})
        tiles.append(face_window(cd.load_rgb(path)[:, :, ::-1], faces.boxes[i]))
        captions.append(f"{rank} g{SHORT[CLASSES[int(faces.labels[i])]]} p{SHORT[CLASSES[p]]} {int(faces.size[i])}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if tiles:
        cv2.imwrite(str(a.out.with_suffix(".jpg")), contact_sheet(tiles, captions))
    a.out.with_suffix(".json").write_text(json.dumps(
        {"n_train_faces": int(len(faces)), "oof_accuracy": acc, "n_issues": int(len(issues)),
         "folds": a.folds, "epochs": a.epochs, "issues": rows}, indent=1) + "\n")
    print(f"{len(issues)} likely label issues among {len(faces)} ILC training faces "
          f"(out-of-fold accuracy {acc:.3f}): {a.out.with_suffix('.jpg')}")


if __name__ == "__main__":
    main()
