"""The released classifier's mistakes on the ILC validation faces, for looking at by eye.

Runs the classifier in weights/ on the validation faces of training.train_classifier's split
(the faces weights/metrics.json is computed on) and writes, into runs/ (not committed: the
crops come from the data set):
- error_sheet.jpg: every wrong face with context, captioned "<n> gt<T> p<P> <size>px"
  (M mask, N no_mask, I incorrect);
- error_sheet.json: the same faces: image file, box, true and predicted class, probabilities.

The model card's label-noise count comes from looking at this sheet.

usage: python -m training.error_sheet [--binary] [--weights weights] [--out runs/error_sheet]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.records import CLASSES, MASK_INDEX
from training.paths import ROOT, WEIGHTS

TILE = 128
CAPTION = 22
COLS = 10
CONTEXT = 0.8
"""Half-side of the shown window, in face box sides (1.6 box sides in all)."""
SHORT = {"mask": "M", "no_mask": "N", "incorrect": "I"}


def wrong(y_true: np.ndarray, probs: np.ndarray, binary: bool = False) -> np.ndarray:
    """Indices of the faces the classifier gets wrong: y_true [N] class indices, probs [N,3].
    binary: only mistakes of mask against not-mask (no_mask and incorrect count as one)."""
    pred = np.asarray(probs).argmax(1)
    y = np.asarray(y_true)
    if binary:
        return np.nonzero((y == MASK_INDEX) != (pred == MASK_INDEX))[0]
    return np.nonzero(y != pred)[0]


def face_window(image_bgr: np.ndarray, box, context: float = CONTEXT) -> np.ndarray:
    """The square window of side 2*context*max(w, h) around the face box, clipped to the image."""
    h, w = image_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    s, cx, cy = max(x2 - x1, y2 - y1, 1.0), (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(max(0, cx - context * s)), int(max(0, cy - context * s))
    c, d = int(min(w, cx + context * s)), int(min(h, cy + context * s))
    return image_bgr[b:max(d, b + 1), a:max(c, a + 1)]


def contact_sheet(tiles: list[np.ndarray], captions: list[str], cols: int = COLS) -> np.ndarray:
    """BGR crops (any size) + one caption each -> one BGR image, `cols` tiles a row, each
    TILE x TILE with a CAPTION-pixel caption strip below; empty cells are white."""
    cells = []
    for t, text in zip(tiles, captions):
        cell = cv2.resize(t, (TILE, TILE), interpolation=cv2.INTER_CUBIC)
        cell = cv2.copyMakeBorder(cell, 0, CAPTION, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(cell, text, (2, TILE + CAPTION - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
        cells.append(cell)
    blank = np.full((TILE + CAPTION, TILE, 3), 255, np.uint8)
    while not cells or len(cells) % cols:
        cells.append(blank)
    return np.vstack([np.hstack(cells[k:k + cols]) for k in range(0, len(cells), cols)])


def build(weights: Path = WEIGHTS, out: Path = ROOT / "runs" / "error_sheet", binary: bool = False) -> dict:
    from training import classifier_data as cd
    from training.evaluate import validation_run

    faces, idx, probs = validation_run(weights)
    y = faces.labels[idx]
    bad = wrong(y, probs, binary)
    rows, tiles, captions = [], [], []
    for n, k in enumerate(bad):
        i = idx[k]
        path = Path(faces.paths[faces.image[i]])
        p = int(probs[k].argmax())
        rows.append({"n": n, "image": path.name, "box": [round(float(v), 1) for v in faces.boxes[i]],
                     "size_px": round(float(faces.size[i]), 1), "true": CLASSES[int(y[k])],
                     "predicted": CLASSES[p], "probs": [round(float(v), 3) for v in probs[k]]})
        tiles.append(face_window(cd.load_rgb(path)[:, :, ::-1], faces.boxes[i]))
        captions.append(f"{n} gt{SHORT[CLASSES[int(y[k])]]} p{SHORT[CLASSES[p]]} {int(faces.size[i])}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out.with_suffix(".jpg")), contact_sheet(tiles, captions))
    summary = {"faces": int(len(y)), "wrong": int(len(bad)), "binary_only": binary, "errors": rows}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(bad)} of {len(y)} validation faces wrong{' (mask vs not)' if binary else ''}: "
          f"{out.with_suffix('.jpg')}")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "error_sheet")
    ap.add_argument("--binary", action="store_true", help="only mask-vs-not mistakes")
    a = ap.parse_args(argv)
    build(a.weights, a.out, a.binary)


if __name__ == "__main__":
    main()
