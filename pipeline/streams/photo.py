"""The photo page's work: detect, draw, tabulate, encode. No streamlit here."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.engine.config import DetectorConfig
from pipeline.media.draw import LABEL_TEXT, annotate
from pipeline.media.images import decode_image
from pipeline.records import CLASSES, Detection, count_labels
from pipeline.settings import SAMPLES_DIR

SAMPLE_TITLES = {
    "three_classes_collage.jpg": "Collage: mask, incorrect, no mask",
    "group_no_masks.jpg": "Group photo, no masks",
    "masks_two_ways.jpg": "A mask worn right and one worn wrong",
}
PHOTO_TYPES = ["jpg", "jpeg", "png", "webp"]


def sample_photos() -> dict[str, Path]:
    """Bundled samples, {title: path}, in a fixed order (only those present)."""
    return {title: SAMPLES_DIR / name for name, title in SAMPLE_TITLES.items()
            if (SAMPLES_DIR / name).is_file()}


@dataclass
class PhotoAnalysis:
    """Decoded image plus its detections (what is worth caching between reruns)."""

    image: np.ndarray
    detections: list[Detection]
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.counts:
            self.counts = count_labels(self.detections)

    @property
    def violations(self) -> int:
        return sum(1 for d in self.detections if d.is_violation)


def analyze(engine, image: np.ndarray, config: DetectorConfig | None = None) -> PhotoAnalysis:
    t0 = time.perf_counter()
    dets = engine.detect(image, config)
    return PhotoAnalysis(image, dets, time.perf_counter() - t0)


def analyze_bytes(engine, data: bytes, name: str, config: DetectorConfig | None = None) -> PhotoAnalysis:
    """Encoded bytes -> analysis. Raises pipeline.media.images.ImageError for bad input."""
    return analyze(engine, decode_image(data, name), config)


def render(analysis: PhotoAnalysis, show_landmarks: bool = False, blur: bool = False) -> np.ndarray:
    """The annotated image that is shown and downloaded (blurred faces when blur is on)."""
    return annotate(analysis.image, analysis.detections, show_landmarks=show_landmarks, blur=blur)


def face_rows(detections: list[Detection]) -> list[dict]:
    """One row per face for the table."""
    rows = []
    for k, d in enumerate(detections, 1):
        x1, y1, x2, y2 = d.box
        row = {"face": k, "label": LABEL_TEXT.get(d.label, d.label),
               "confidence": round(d.confidence, 3), "face score": round(d.score, 3),
               "x": int(round(x1)), "y": int(round(y1)),
               "width": int(round(x2 - x1)), "height": int(round(y2 - y1))}
        for c in CLASSES:
            row[f"p({c})"] = round(d.prob_dict.get(c, 0.0), 3)
        rows.append(row)
    return rows


def alert_text(counts: dict[str, int]) -> str | None:
    """A one-line alert when anyone is unmasked or wears the mask wrong, else None."""
    parts = []
    if counts.get("no_mask"):
        n = counts["no_mask"]
        parts.append(f"{n} {'person' if n == 1 else 'people'} without a mask")
    if counts.get("incorrect"):
        n = counts["incorrect"]
        parts.append(f"{n} {'person' if n == 1 else 'people'} wearing a mask incorrectly")
    return " and ".join(parts) if parts else None


def encode_image(image: np.ndarray, fmt: str = "PNG", quality: int = 92) -> bytes:
    """RGB array -> PNG or JPEG bytes."""
    fmt = fmt.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in ("PNG", "JPEG"):
        raise ValueError(f"unsupported format {fmt}")
    buf = io.BytesIO()
    img = Image.fromarray(image)
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality, optimize=True)
    else:
        img.save(buf, "PNG", compress_level=1)   # fast; size matters less than latency
    return buf.getvalue()


def download_name(source_name: str, fmt: str) -> str:
    stem = Path(source_name or "photo").stem or "photo"
    return f"{stem}_maskwatch.{'png' if fmt.upper() == 'PNG' else 'jpg'}"
