"""AppTest: the video page, with short clips made here from a real photo."""
from __future__ import annotations

import pytest

from tests.support.app_util import app_at, metrics, no_exception, plotly_specs, texts, upload
from tests.support.media_util import (corrupt_packets, make_test_video, moving_crop_frames, no_stream_mp4,
                        write_video, zero_frame_video)
from pipeline.streams.video import probe_mp4


def _video_page():
    at = app_at("2_Video.py")
    at.run()
    no_exception(at)
    at.slider(key="video_min_face").set_value(40)      # faces here are ~60 px; faster
    return at


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The event store's default SQLite folder, in tmp (MASKWATCH_DB_URL unset)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(folder))
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    return folder


def test_video_page_processes_upload(tmp_path, data_dir):
    clip = make_test_video(tmp_path / "clip.mp4", n=20)
    at = _video_page()
    assert at.toggle(key="video_log").value is False           # logging off for uploads
    upload(at, "clip.mp4", clip.read_bytes(), "video/mp4").run()
    no_exception(at)
    assert any("Process video" in i for i in texts(at.info))
    at.button(key="video_go").click().run()
    no_exception(at)
    assert not at.error or "Someone without a mask" in at.error[0].value
    # progress bar: finished, with frames done
    assert at.progress and at.progress[0].value == 100
    assert "20/20 frames" in at.progress[0].proto.text
    # the output video: a valid H.264 mp4 with every frame
    result = at.session_state["video_result"]
    out = tmp_path / "out.mp4"
    out.write_bytes(result.video_bytes)
    info = probe_mp4(out)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 20
    assert result.video_bytes[4:8] == b"ftyp"
    assert len(at.get("video")) == 1
    # summary and chart data
    m = metrics(at)
    assert m["frames"] == "20" and m["most faces at once"] == "3"
    assert m["people"] == "3" and m["logged"] == "off"         # tracked people, not faces
    assert result.summary.people == 3 and sum(result.summary.people_counts.values()) == 3
    assert any(c.startswith("People by label:") for c in texts(at.caption))
    assert not data_dir.exists()                               # logging off: nothing written
    lines = [t for t in plotly_specs(at)[0]["data"] if t["type"] == "scatter"]
    assert {t["name"] for t in lines} == {"mask", "no mask", "incorrect"}
    totals = [sum(v) for v in zip(*(t["y"] for t in lines))]
    assert len(totals) == 20 and max(totals) == 3 and min(totals) >= 2
    csv_text = result.summary.csv().splitlines()
    assert csv_text[0].startswith("frame,time_s,faces") and len(csv_text) == 21
    labels = [b.label for b in at.download_button]
    assert any("mp4" in b for b in labels) and any("CSV" in b for b in labels)
    # a rerun (e.g. after a download click) reuses the result instead of processing again
    at.run()
    assert metrics(at)["frames"] == "20" and not at.progress


def test_video_page_every_n_setting(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", n=12, size=(240, 180))
    at = _video_page()
    at.number_input(key="video_every_n").set_value(4)
    upload(at, "clip.mp4", clip.read_bytes(), "video/mp4").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    s = at.session_state["video_result"].summary
    assert s.frames_written == 12 and s.frames_detected == 3


def test_video_page_warns_about_skipped_frames(tmp_path):
    good = write_video(tmp_path / "m.avi", moving_crop_frames(n=10, size=(160, 120)), codec="mjpeg", fmt="avi")
    bad = corrupt_packets(good, tmp_path / "bad.avi", bad=(3,))
    at = _video_page()
    upload(at, "bad.avi", bad.read_bytes(), "video/x-msvideo").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    assert any("could not be decoded and were skipped" in w for w in texts(at.warning))
    assert metrics(at)["frames"] == "9"


@pytest.mark.parametrize("kind,needle", [
    ("zero_frames", "no frames"),
    ("no_stream", "no video stream"),
    ("garbage", "not a video"),
    ("empty", "empty"),
    ("text", "not a video"),
])
def test_video_page_bad_inputs(tmp_path, kind, needle):
    p = tmp_path / "bad.mp4"
    if kind == "zero_frames":
        zero_frame_video(p)
    elif kind == "no_stream":
        no_stream_mp4(p)
    elif kind == "garbage":
        p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000)
    elif kind == "empty":
        p.write_bytes(b"")
    else:
        p.write_text("not a video at all\n" * 100)
    at = _video_page()
    upload(at, "bad.mp4", p.read_bytes(), "video/mp4").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    errs = texts(at.error)
    assert any(needle in e for e in errs), errs
    assert "video_result" not in at.session_state
    assert not at.get("video")


def test_video_page_too_large_file(tmp_path, monkeypatch):
    from pipeline.streams import video
    clip = make_test_video(tmp_path / "clip.mp4", n=5, size=(160, 120))
    monkeypatch.setattr(video, "MAX_VIDEO_BYTES", 1000)       # a tiny limit instead of a 200 MB file
    at = _video_page()
    upload(at, "clip.mp4", clip.read_bytes(), "video/mp4").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    assert any("the limit is" in e for e in texts(at.error)), texts(at.error)
    assert "video_result" not in at.session_state


def test_video_page_logs_people_when_asked(tmp_path, data_dir):
    from pipeline.store import open_store
    clip = make_test_video(tmp_path / "clip.mp4", n=10)
    at = _video_page()
    at.toggle(key="video_log").set_value(True)
    upload(at, "clip.mp4", clip.read_bytes(), "video/mp4").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    m = metrics(at)
    assert m["people"] == "3" and m["logged"] == "3"
    store = open_store()                                       # the default store in data_dir
    try:
        got = store.events()
        assert len(got) == 3 and {e.source for e in got} == {"video"}
    finally:
        store.close()


def test_video_page_warns_when_the_database_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_DB_URL", "postgresql://mw:secret@127.0.0.1:1/nope")
    clip = make_test_video(tmp_path / "clip.mp4", n=6, size=(240, 180))
    at = _video_page()
    at.toggle(key="video_log").set_value(True)
    upload(at, "clip.mp4", clip.read_bytes(), "video/mp4").run()
    at.button(key="video_go").click().run()
    no_exception(at)
    warnings = texts(at.warning)
    assert any("not logged" in w for w in warnings), warnings
    assert not any("secret" in w for w in warnings)
    assert metrics(at)["frames"] == "6" and metrics(at)["logged"] == "off"


def test_video_page_sample_clip_runs_like_an_upload(data_dir):
    """A visitor without a file: choosing the bundled sample clip and pressing Process gives
    annotated results with people of more than one class."""
    from pipeline.streams.video import sample_clip
    at = _video_page()
    at.radio(key="video_source").set_value("Sample clip").run()
    no_exception(at)
    assert not at.file_uploader                                # no upload needed
    assert len(at.get("video")) == 1                           # the clip, before processing
    assert any("sample_clip.mp4" in i and "Process video" in i for i in texts(at.info))
    at.button(key="video_go").click().run()
    no_exception(at)
    result = at.session_state["video_result"]
    s = result.summary
    frames = probe_mp4(sample_clip())["frames"]
    assert s.frames_written == frames and metrics(at)["frames"] == str(frames)
    people = {c for c, n in s.people_counts.items() if n}
    faces = {c for f in s.frames for c, n in f.counts.items() if n}
    assert len(people) >= 2 and len(faces) >= 2, (s.people_counts, faces)
    assert s.people >= 3 and s.max_faces >= 2
    # "auto" by default (the Home and Photo pages' engine); the sample clip takes the photo weights
    assert at.selectbox(key="video_detector").value == "auto" and s.detector == "photo"
    assert any("face detector: Photos;" in c for c in texts(at.caption))
    assert any("Someone without a mask" in e for e in texts(at.error))
    assert result.name == "sample_clip_maskwatch.mp4" and result.video_bytes[4:8] == b"ftyp"
    assert len(at.get("video")) == 1                           # now the annotated result
    assert not data_dir.exists()                               # logging stays off
