"""pipeline.streams.photo (the photo page's work), charts, and the bundled samples."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.support.media_util import GROUP3
from pipeline.settings import SAMPLES_DIR
from pipeline.ui import charts
from pipeline.streams import photo
from pipeline.media.images import ImageError


def test_analyze_render_rows_and_encode(engine):
    a = photo.analyze_bytes(engine, GROUP3.read_bytes(), GROUP3.name)
    assert len(a.detections) == 3 and sum(a.counts.values()) == 3 and a.seconds > 0
    plain = photo.render(a)
    blurred = photo.render(a, blur=True)
    marks = photo.render(a, show_landmarks=True)
    assert plain.shape == a.image.shape and not np.array_equal(plain, a.image)
    assert not np.array_equal(plain, blurred) and not np.array_equal(plain, marks)
    # blur hides the faces: inside each box the blurred image is much smoother
    x1, y1, x2, y2 = (int(v) for v in a.detections[0].box)
    inner = (slice(y1 + 5, y2 - 5), slice(x1 + 5, x2 - 5))
    assert np.abs(np.diff(blurred[inner].astype(int), axis=1)).mean() < \
        np.abs(np.diff(plain[inner].astype(int), axis=1)).mean()
    rows = photo.face_rows(a.detections)
    assert [r["face"] for r in rows] == [1, 2, 3]
    assert all(r["label"] in ("mask", "no mask", "incorrect") and 0 <= r["confidence"] <= 1 for r in rows)
    png, jpg = photo.encode_image(blurred, "PNG"), photo.encode_image(blurred, "jpeg")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and jpg[:3] == b"\xff\xd8\xff"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), blurred)   # the download is what is shown
    assert photo.download_name("x/holiday.webp", "JPEG") == "holiday_maskwatch.jpg"


def test_bad_bytes_raise_image_error(engine):
    with pytest.raises(ImageError, match="empty"):
        photo.analyze_bytes(engine, b"", "e.jpg")


def test_alert_text():
    assert photo.alert_text({"mask": 3, "no_mask": 0, "incorrect": 0}) is None
    assert photo.alert_text({"no_mask": 1}) == "1 person without a mask"
    assert photo.alert_text({"no_mask": 2, "incorrect": 1}) == \
        "2 people without a mask and 1 person wearing a mask incorrectly"


def test_counts_bar_has_every_class():
    fig = charts.counts_bar({"mask": 2})
    assert list(fig.data[0].y) == [2, 0, 0] and list(fig.data[0].x) == ["mask", "no mask", "incorrect"]


def test_bundled_samples_small_licensed_and_detectable(engine):
    samples = photo.sample_photos()
    assert len(samples) >= 3
    total = sum(p.stat().st_size for p in samples.values())
    assert total <= 1_000_000
    sources = (SAMPLES_DIR / "SOURCES.md").read_text()
    for p in samples.values():
        assert f"`{p.name}`" in sources
    parts = [line for line in sources.splitlines() if line.startswith("| `")]
    assert parts and not any("ilc2021" in line for line in parts)     # no unlicensed photos
    assert "CC BY-NC-SA 4.0" in sources and "Cabani" in sources and "MIT" in sources
    collage = next(p for p in samples.values() if "collage" in p.name)
    a = photo.analyze_bytes(engine, collage.read_bytes(), collage.name)
    assert len(a.detections) == 6
