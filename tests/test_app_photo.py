"""AppTest: landing page and photo page, with real photos from ../shared/data."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support.app_util import app_at, metrics, no_exception, plotly_specs, texts, upload
from tests.support.media_util import GROUP3, NO_FACES

CLASS_TILES = ("mask", "no mask", "incorrect")


def _class_total(at) -> int:
    m = metrics(at)
    return sum(int(m[c]) for c in CLASS_TILES)


def test_landing_shows_annotated_sample_device_and_weights():
    at = app_at()
    at.run()
    no_exception(at)
    assert not at.error
    assert "MaskWatch finds every face" in at.markdown[0].value
    assert len(at.image) == 1                                   # the annotated sample
    assert "Sample:" in at.image[0].proto.imgs[0].caption
    assert _class_total(at) == 6                                # the collage's six faces
    md = " ".join(texts(at.markdown))
    assert "**Device:** CPU" in md or "**Device:** GPU" in md
    assert "**Weights:**" in md and ("local" in md or "hub" in md)


def test_photo_page_upload_counts_table_chart_download():
    at = app_at("1_Photo.py")
    at.run()
    no_exception(at)
    assert "Choose a photo" in texts(at.info)[0]
    upload(at, GROUP3.name, GROUP3.read_bytes(), "image/jpeg").run()
    no_exception(at)
    assert not at.error or "Alert" in at.error[0].value
    assert _class_total(at) == 3                                # dlib's XML: 3 faces
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 3
    table = at.dataframe[0].value
    assert set(table["label"]) <= {"mask", "no mask", "incorrect"}
    assert table["confidence"].between(0, 1).all()
    bar = plotly_specs(at)[0]["data"][0]
    assert bar["type"] == "bar" and sum(bar["y"]) == 3
    assert int(metrics(at)["no mask"]) >= 2                     # nobody in the photo wears a mask
    assert any("Alert" in e and "without a mask" in e for e in texts(at.error))
    assert len(at.image) == 1 and "3 faces" in at.image[0].proto.imgs[0].caption
    assert at.download_button[0].label.startswith("Download annotated image (PNG)")


def test_photo_page_settings_blur_landmarks_jpeg_and_min_face():
    at = app_at("1_Photo.py")
    at.run()
    upload(at, GROUP3.name, GROUP3.read_bytes(), "image/jpeg").run()
    at.toggle(key="photo_landmarks").set_value(True)
    at.toggle(key="photo_blur").set_value(True)
    at.radio(key="photo_format").set_value("JPEG").run()
    no_exception(at)
    assert _class_total(at) == 3
    assert at.download_button[0].label.endswith("(JPEG)")
    at.slider(key="photo_min_face").set_value(200).run()   # settings reach the detector
    at.slider(key="photo_onet").set_value(0.99).run()
    no_exception(at)
    n = _class_total(at)
    assert n <= 3 and f"{n} faces" in at.image[0].proto.imgs[0].caption
    assert (len(at.dataframe[0].value) if at.dataframe else 0) == n


def test_photo_page_bundled_sample():
    at = app_at("1_Photo.py")
    at.run()
    at.radio(key="photo_source").set_value("Sample").run()
    no_exception(at)
    assert _class_total(at) == 6                                # the six-face collage
    assert len(at.dataframe[0].value) == 6
    m = metrics(at)
    assert all(int(m[c]) >= 1 for c in CLASS_TILES)             # all three classes shown
    assert set(at.dataframe[0].value["label"]) == {"mask", "no mask", "incorrect"}


def _png_bytes(size=(640, 480), color=(120, 140, 160)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,data,kind,needle", [
    ("broken.jpg", GROUP3.read_bytes()[:3000] + b"\x00" * 10, "error", "corrupt"),
    ("empty.jpg", b"", "error", "empty"),
    ("notes.jpg", b"just some text, not a photo\n" * 20, "error", "not a supported image"),
    ("huge.png", b"\x89PNG" + b"\x00" * (51 * 1024 * 1024), "error", "limit is"),
    ("dogs.jpg", NO_FACES.read_bytes(), "warning", "No faces found"),
    ("blank.png", _png_bytes(), "warning", "No faces found"),
])
def test_photo_page_bad_inputs_give_clear_messages(name, data, kind, needle):
    at = app_at("1_Photo.py")
    at.run()
    upload(at, name, data, "image/png" if name.endswith("png") else "image/jpeg").run()
    no_exception(at)
    msgs = texts(at.error if kind == "error" else at.warning)
    assert any(needle in m for m in msgs), (msgs, texts(at.error), texts(at.warning))
    if kind == "error":
        assert not at.dataframe and not at.image


def test_an_unexpected_failure_shows_a_plain_sentence_and_logs_the_details(monkeypatch, caplog):
    """No exception text on the page (it may name paths or secrets); the traceback is logged."""
    from pipeline.ui import session

    def broken(*args, **kwargs):
        raise RuntimeError("postgresql://user:hunter2@db/x /srv/private/path")

    monkeypatch.setattr(session, "analyze_photo", broken)
    at = app_at("1_Photo.py")
    at.run()
    with caplog.at_level("ERROR", logger="maskwatch.ui"):
        upload(at, GROUP3.name, GROUP3.read_bytes(), "image/jpeg").run()
    no_exception(at)
    shown = " ".join(texts(at.error))
    assert "Analysing the photo failed unexpectedly" in shown, shown
    assert "hunter2" not in shown and "RuntimeError" not in shown and "/srv/private" not in shown
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records), caplog.text


@pytest.mark.parametrize("page", ["1_Photo.py", "2_Video.py"])
def test_uploaders_refuse_in_the_browser_the_size_their_label_states(page):
    """Each uploader's label states its limit, and the browser enforces that same limit (the
    widget's max_upload_size; Streamlit's "MB" is 2**20 bytes), not the server-wide 200 MB."""
    import re

    from pipeline.streams import video
    from pipeline.media.images import MAX_FILE_BYTES
    at = app_at(page)
    at.run()
    no_exception(at)
    proto = at.file_uploader[0].proto
    stated = int(re.search(r"up to (\d+) MiB", proto.label).group(1))
    want = (MAX_FILE_BYTES if page.startswith("1") else video.MAX_VIDEO_BYTES) // 2**20
    assert stated == want and proto.max_upload_size_mb == want


def test_photo_page_face_detector_select_switches_to_the_camera_weights():
    """The sidebar's "Face detector" select loads the camera detector weights and says so; the
    photo is analysed again with them (the scores change). The default is "Auto", which on a
    sharp photo gives the photo weights' faces."""
    at = app_at("1_Photo.py")
    at.run()
    assert at.selectbox(key="photo_detector").value == "auto"
    upload(at, GROUP3.name, GROUP3.read_bytes(), "image/jpeg").run()
    assert "Face detector: Auto" in " ".join(texts(at.sidebar.caption))
    auto_scores = list(at.dataframe[0].value.iloc[:, 1:].astype(str).itertuples(index=False))
    at.selectbox(key="photo_detector").set_value("photo").run()
    no_exception(at)
    assert "Face detector: Photos" in " ".join(texts(at.sidebar.caption))
    photo_scores = list(at.dataframe[0].value.iloc[:, 1:].astype(str).itertuples(index=False))
    assert photo_scores == auto_scores                                 # a sharp photo: the photo weights
    at.selectbox(key="photo_detector").set_value("camera").run()
    no_exception(at)
    assert "Face detector: Camera frames" in " ".join(texts(at.sidebar.caption))
    assert _class_total(at) == 3
    assert list(at.dataframe[0].value.iloc[:, 1:].astype(str).itertuples(index=False)) != photo_scores
    from pipeline.engine.config import DETECTOR_CHOICES
    from pipeline.ui.session import DETECTOR_LABELS
    assert set(DETECTOR_LABELS) == set(DETECTOR_CHOICES)              # every choice has its page name
