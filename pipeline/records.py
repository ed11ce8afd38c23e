"""The records every layer exchanges: Detection (one face in one frame), PersonEvent (one person
counted), the class names and the violation rule."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

CLASSES: tuple[str, ...] = ("mask", "no_mask", "incorrect")
"""Classifier outputs, in logit order. `incorrect` means nose or mouth uncovered."""
MASK_INDEX, NO_MASK_INDEX, INCORRECT_INDEX = (CLASSES.index(c) for c in ("mask", "no_mask", "incorrect"))
"""Each class's index in CLASSES: its logit, probability column and confusion-matrix row."""
LABEL_NAMES: dict[str, str] = {"mask": "mask", "no_mask": "no mask", "incorrect": "incorrect"}
"""How each class is written for people (tables, charts, drawn tags, status lines)."""
VIOLATIONS: tuple[str, ...] = ("no_mask", "incorrect")
"""The classes that break the rule (no mask, or nose or mouth uncovered): alerts and counts of
unmasked people use these, in this order."""


def is_violation(label: str) -> bool:
    """The violation rule: True for a face without a mask or with it worn incorrectly."""
    return label in VIOLATIONS


def violation_count(counts: Mapping[str, int] | None) -> int:
    """Faces breaking the rule, from per-class counts."""
    return sum(int((counts or {}).get(c, 0)) for c in VIOLATIONS)


@dataclass(frozen=True)
class Detection:
    """One face: where it is, how sure the detector is, and what it wears.

    box: (x1, y1, x2, y2) in pixels of the image as stored (EXIF orientation applied).
    score: face probability from O-Net, in [0, 1].
    landmarks: five (x, y) points: left eye, right eye, nose, left and right mouth corner.
    label: one of CLASSES, or "" when the face was not classified.
    probs: class probabilities, keyed by CLASSES (empty when not classified).
    """

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] = ()
    label: str = ""
    probs: tuple[tuple[str, float], ...] = field(default=())

    @property
    def prob_dict(self) -> dict[str, float]:
        return dict(self.probs)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def confidence(self) -> float:
        """Probability of the chosen label (0 when unclassified)."""
        return self.prob_dict.get(self.label, 0.0)

    @property
    def is_violation(self) -> bool:
        return is_violation(self.label)

    def to_json(self, with_landmarks: bool = True) -> dict:
        out = {"box": [round(float(v), 2) for v in self.box]}
        if with_landmarks:
            out["score"] = round(float(self.score), 5)
        if self.label:
            out["label"] = self.label
            out["probs"] = {k: round(float(v), 5) for k, v in self.probs}
        if with_landmarks:
            out["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]
        return out


def count_labels(detections) -> dict[str, int]:
    """Counts per class, every class present (zero when absent)."""
    counts = {c: 0 for c in CLASSES}
    for d in detections:
        if d.label in counts:
            counts[d.label] += 1
    return counts


@dataclass(frozen=True)
class PersonEvent:
    """One person: a closed, confirmed track. Times are seconds on the tracker's clock."""

    first_seen: float
    last_seen: float
    label: str
    confidence: float
    frames: int
    source: str = ""
    track_id: int = 0

    @property
    def duration_s(self) -> float:
        return self.last_seen - self.first_seen

    def first_seen_utc(self) -> datetime:
        """first_seen read as UNIX time, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.first_seen, tz=timezone.utc)

    def last_seen_utc(self) -> datetime:
        return datetime.fromtimestamp(self.last_seen, tz=timezone.utc)
