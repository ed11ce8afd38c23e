"""Label fixes for training faces (issue 13, lever 5), read by training.train_classifier
(label_fixes=True) and so by training.rebuild.

training/label_fixes.json lists faces by their image (path relative to the data folder) and box
(x1, y1, x2, y2 as in the annotation), each with an action: "relabel" to a class of
pipeline.records.CLASSES, "drop" (left out of training), or "keep" (the label was looked at and
holds). Only training faces are touched: the validation split keeps its labels as published, so
figures stay comparable. How the list was made (cleanlab on out-of-fold probabilities, then
looked at by eye) is in the file's "how".

A relabelled or kept face counts as checked: a with_mask face of a two-class source
(training.classifier_data.TWO_CLASS_SOURCES) is trained as "mask or incorrect" unless it was
checked, when its label is the plain class.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.records import CLASSES
from training.paths import DATA

FIXES = Path(__file__).with_name("label_fixes.json")


def face_key(path: str, box, data: Path = DATA) -> str:
    try:
        rel = Path(path).resolve().relative_to(Path(data).resolve())
    except ValueError:
        rel = Path(path)
    return f"{rel.as_posix()}|" + ",".join(f"{float(v):.1f}" for v in box)


def load(path: Path = FIXES) -> list[dict]:
    """The fixes listed in `path`; a file that is not there is an error, not an empty list (a
    mistyped path would otherwise train without its fixes)."""
    return json.loads(Path(path).read_text())["faces"]


def apply(faces, path: Path = FIXES, only: np.ndarray | None = None, data: Path = DATA,
          min_p_incorrect: float = 0.0):
    """-> (FaceSet with the relabels, bool [N] faces to drop, bool [N] faces checked: relabelled
    or kept). only: bool [N], faces that may be changed (the training side); the others are
    left as they are. min_p_incorrect: only the fixes whose "p_incorrect" (what an earlier
    classifier gave the face, where the file records it) is at least this count: the checked
    faces it took for `incorrect`, not those it already got right."""
    fixes = {f["key"]: f for f in load(path) if f.get("p_incorrect", 1.0) >= min_p_incorrect}
    labels = faces.labels.copy()
    drop = np.zeros(len(faces), bool)
    checked = np.zeros(len(faces), bool)
    if not fixes:
        return faces, drop, checked
    for i in range(len(faces)):
        if only is not None and not only[i]:
            continue
        f = fixes.get(face_key(faces.paths[faces.image[i]], faces.boxes[i], data))
        if f is None:
            continue
        if f["action"] == "drop":
            drop[i] = True
        elif f["action"] == "relabel":
            labels[i] = CLASSES.index(f["label"])
            checked[i] = True
        elif f["action"] == "keep":
            checked[i] = True
        else:
            raise ValueError(f"unknown action {f['action']!r} in {path}")
    return replace(faces, labels=labels), drop, checked
