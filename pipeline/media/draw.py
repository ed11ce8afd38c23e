"""Drawing detections onto images (RGB uint8 in, new RGB uint8 out; the input is not changed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

from pipeline.records import Detection

COLORS = {"mask": (46, 204, 64), "no_mask": (231, 60, 60), "incorrect": (255, 165, 0), "": (80, 160, 255)}
"""Box colour per label, RGB."""
LABEL_TEXT = {"mask": "mask", "no_mask": "no mask", "incorrect": "incorrect", "": "face"}
FONT = cv2.FONT_HERSHEY_SIMPLEX


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
    style = TagStyle.for_image(w, h)
    for k, d in enumerate(detections):
        color = COLORS.get(d.label, COLORS[""])
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, style.line, cv2.LINE_AA)
        if show_landmarks:
            for x, y in d.landmarks:
                cv2.circle(out, (int(round(x)), int(round(y))), style.line, (0, 220, 255), -1, cv2.LINE_AA)
        if show_labels:
            text = LABEL_TEXT.get(d.label, d.label)
            if d.label:
                text += f" {d.confidence:.0%}"
            if track_ids and k in track_ids:
                text = f"#{track_ids[k]} " + text
            _draw_tag(out, text, (x1, y1, x2, y2), color, style)
    return out


TAG_HEIGHT = 0.018
"""Tag text height as a share of the image's longer side: a 4000 px photo shown 700 px wide
still gets text about 12 px high on screen (and a 640 px webcam frame 12 px text)."""
MIN_TAG_PX = 12
"""Smallest tag text height in image pixels (small frames stay legible)."""


@dataclass(frozen=True)
class TagStyle:
    """Sizes for one image: OpenCV font scale and stroke, box line width, gaps (pixels)."""

    font_scale: float
    stroke: int
    line: int
    pad: int

    @classmethod
    def for_image(cls, width: int, height: int) -> "TagStyle":
        text_px = max(MIN_TAG_PX, TAG_HEIGHT * max(width, height))
        (_, unit_h), _ = cv2.getTextSize("Ag", FONT, 1.0, 1)   # text height at font scale 1
        font_scale = text_px / unit_h
        return cls(font_scale=font_scale, stroke=max(1, round(text_px / 12)),
                   line=max(1, round(text_px / 7)), pad=max(2, round(text_px / 5)))


def _draw_tag(out: np.ndarray, text: str, box: tuple[int, int, int, int], color, style: TagStyle) -> None:
    """A filled 'label 97%' tag on the box's top edge (below it when there is no room above),
    shifted left to stay inside the image."""
    h, w = out.shape[:2]
    x1, y1, _, y2 = box
    (tw, th), base = cv2.getTextSize(text, FONT, style.font_scale, style.stroke)
    tag_w, tag_h = tw + 2 * style.pad, th + base + 2 * style.pad
    left = max(0, min(x1, w - tag_w))
    top = y1 - tag_h if y1 - tag_h >= 0 else min(y2, h - tag_h)
    cv2.rectangle(out, (left, top), (left + tag_w, top + tag_h), color, -1)
    cv2.putText(out, text, (left + style.pad, top + style.pad + th), FONT, style.font_scale,
                (255, 255, 255), style.stroke, cv2.LINE_AA)
