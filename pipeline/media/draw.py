"""Drawing detections onto images (RGB uint8 in, new RGB uint8 out; the input is not changed)."""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from pipeline.records import Detection

COLORS = {"mask": (46, 204, 64), "no_mask": (231, 60, 60), "incorrect": (255, 165, 0), "": (80, 160, 255)}
"""Box colour per label, RGB."""
LABEL_TEXT = {"mask": "mask", "no_mask": "no mask", "incorrect": "incorrect", "": "face"}


def blur_faces(image: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    """Strongly pixelate + blur each face box (privacy). Returns a new image."""
    out = image.copy()
    h, w = out.shape[:2]
    for d in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = out[y1:y2, x1:x2]
        small = cv2.resize(roi, (max(1, (x2 - x1) // 8), max(1, (y2 - y1) // 8)), interpolation=cv2.INTER_AREA)
        roi[:] = cv2.GaussianBlur(cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST), (0, 0), 3)
    return out


def annotate(image: np.ndarray, detections: Iterable[Detection], show_landmarks: bool = False,
             show_labels: bool = True, blur: bool = False, track_ids: dict | None = None) -> np.ndarray:
    """Draw boxes coloured by class, 'label 97%' tags, and optionally landmarks, on a copy.

    image: HxWx3 uint8 RGB. track_ids: optional {index in detections: id} shown as '#id'.
    blur: pixelate faces first (privacy), then draw boxes and tags over them.
    """
    detections = list(detections)
    out = blur_faces(image, detections) if blur else image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(1.2, max(h, w) / 1400))
    thick = max(1, int(round(2 * scale)))
    for k, d in enumerate(detections):
        color = COLORS.get(d.label, COLORS[""])
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
        if show_landmarks:
            for x, y in d.landmarks:
                cv2.circle(out, (int(round(x)), int(round(y))), max(1, thick), (0, 220, 255), -1, cv2.LINE_AA)
        if show_labels:
            text = LABEL_TEXT.get(d.label, d.label)
            if d.label:
                text += f" {d.confidence:.0%}"
            if track_ids and k in track_ids:
                text = f"#{track_ids[k]} " + text
            fs = 0.45 * scale
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
            ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(h - 1, y2 + th + base + 3)
            cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + 1), color, -1)
            cv2.putText(out, text, (x1 + 2, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, fs,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return out
