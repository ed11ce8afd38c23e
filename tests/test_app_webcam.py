"""AppTest: the webcam page with streamlit_webrtc.webrtc_streamer patched (AppTest cannot run
the real component). The fake calls the page's frame callback with real frames, as the WebRTC
worker would, and reports 'playing' for a couple of refreshes."""
from __future__ import annotations

import time

import av
import numpy as np
import pytest
import streamlit_webrtc

from tests.support.app_util import app_at, metrics, no_exception, plotly_specs, texts
from tests.support.media_util import GROUP3, read_rgb
from pipeline.streams.webcam import FrameResult


class _State:
    def __init__(self, reads: int):
        self.reads = reads

    @property
    def playing(self) -> bool:
        self.reads -= 1
        return self.reads >= 0


class _Ctx:
    def __init__(self, reads: int):
        self.state = _State(reads)


@pytest.fixture
def fake_webrtc(monkeypatch):
    """Patch webrtc_streamer; returns a dict with the captured kwargs and frame outputs."""
    box = {"calls": [], "outputs": [], "frames": 3, "playing_reads": 3, "inject": []}
    img = read_rgb(GROUP3, (640, 480))

    def fake(**kwargs):
        box["calls"].append(kwargs)
        cb = kwargs["video_frame_callback"]
        for _ in range(box["frames"]):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            box["outputs"].append(cb(frame).to_ndarray(format="rgb24"))
        for counts in box["inject"]:
            cb.results.put(FrameResult(time.time(), counts, sum(counts.values()), 5.0, 0))
        return _Ctx(box["playing_reads"])

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
    box["input"] = img
    return box


def test_webcam_page_runs_callback_and_shows_live_counts(fake_webrtc):
    at = app_at("3_Webcam.py")
    at.run()
    no_exception(at)
    kw = fake_webrtc["calls"][-1]
    assert kw["mode"] == streamlit_webrtc.WebRtcMode.SENDRECV and kw["async_processing"] is True
    assert kw["rtc_configuration"] == {"iceServers": []}          # local by default
    assert kw["media_stream_constraints"]["audio"] is False
    out = fake_webrtc["outputs"][0]
    assert out.shape == fake_webrtc["input"].shape and not np.array_equal(out, fake_webrtc["input"])
    m = metrics(at)
    assert int(m["mask"]) + int(m["no mask"]) + int(m["incorrect"]) == 3
    assert int(m["frames"]) == 3 and float(m["processed fps"]) > 0
    assert "people" in m and m["logged"] == "off"                 # logging off by default
    assert float(m["detections/s"]) > 0 and float(m["detector ms"]) > 0
    assert int(m["no mask"]) >= 2                                 # nobody in the photo wears a mask
    assert any("without a mask" in e for e in texts(at.error))     # banner
    assert len(at.get("audio")) == 1                               # and the alert sound
    chart = plotly_specs(at)[-1]
    assert {t["name"] for t in chart["data"]} == {"mask", "no mask", "incorrect"}
    assert max(max(t["y"]) for t in chart["data"]) >= 1


def test_webcam_settings_reach_the_callback(fake_webrtc):
    at = app_at("3_Webcam.py")
    at.run()
    at.toggle(key="webcam_blur").set_value(True)
    at.select_slider(key="webcam_side").set_value(480)
    first = fake_webrtc["calls"][-1]["video_frame_callback"]
    import torch
    assert first.settings.realtime                                          # the defaults
    assert first.settings.detect_every == (1 if torch.cuda.is_available() else 2)
    at.toggle(key="webcam_realtime").set_value(False)
    at.number_input(key="webcam_every").set_value(3)
    at.slider(key="webcam_min_face").set_value(80).run()
    no_exception(at)
    cb = fake_webrtc["calls"][-1]["video_frame_callback"]
    assert cb.settings.blur and cb.settings.detect_side == 480 and cb.settings.min_face == 80
    assert cb.settings.detect_every == 3 and not cb.settings.realtime
    assert cb is fake_webrtc["calls"][0]["video_frame_callback"]   # same callback across reruns


def test_webcam_alert_sound_banner_and_rate_limit(fake_webrtc):
    fake_webrtc["frames"] = 0
    fake_webrtc["inject"] = [{"mask": 0, "no_mask": 1, "incorrect": 0}]
    at = app_at("3_Webcam.py")
    at.run()
    no_exception(at)
    assert any("without a mask" in e for e in texts(at.error))
    assert len(at.get("audio")) == 1
    at.run()                      # again within 10 s: banner yes, sound no (rate-limited)
    assert any("without a mask" in e for e in texts(at.error))
    assert len(at.get("audio")) == 0


def test_webcam_alerts_switch_off(fake_webrtc):
    fake_webrtc["frames"] = 0
    fake_webrtc["inject"] = [{"mask": 0, "no_mask": 0, "incorrect": 2}]
    at = app_at("3_Webcam.py")
    at.session_state["webcam_sound"] = False
    at.session_state["webcam_banner"] = False
    at.run()
    no_exception(at)
    assert not at.get("audio") and not at.error
    assert metrics(at)["incorrect"] == "2"


def test_webcam_page_idle_says_how_to_start(fake_webrtc):
    fake_webrtc["frames"] = 0
    fake_webrtc["playing_reads"] = 0
    at = app_at("3_Webcam.py")
    at.run()
    no_exception(at)
    assert any("Press START" in i for i in texts(at.info))
    assert metrics(at)["frames"] == "0"


def _lenient_tracker(at):
    """Live frames are timed by the clock, and one detection on a busy CI core can take longer
    than the tracker's 0.5 s for a face not yet confirmed: let this session's tracker wait."""
    from pipeline.people.tracker import TrackerConfig
    sess = at.session_state["_maskwatch_webcam"]
    sess.people.tracker.config = TrackerConfig(tentative_max_age_s=30, max_age_s=30)
    return sess


@pytest.mark.parametrize("log", [False, True])
def test_webcam_people_counter_and_logging_toggle(fake_webrtc, tmp_path, monkeypatch, log):
    from pipeline.store import open_store
    data = tmp_path / "data"
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(data))
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    fake_webrtc["frames"] = 0
    fake_webrtc["playing_reads"] = 0
    at = app_at("3_Webcam.py")
    at.run()                                   # camera off: a session, nobody counted
    no_exception(at)
    assert at.toggle(key="webcam_log").value is False
    assert metrics(at)["people"] == "0" and metrics(at)["logged"] == "off"
    sess = _lenient_tracker(at)
    fake_webrtc["frames"] = 6                  # detect every 2nd frame: 3 detections -> confirmed
    fake_webrtc["playing_reads"] = 3
    at.number_input(key="webcam_every").set_value(2)
    at.toggle(key="webcam_log").set_value(log).run()
    no_exception(at)
    m = metrics(at)
    assert m["people"] == "3" and sess.people.total == 3
    assert sess.stats.latest.people == 3       # the callback pushes the people total
    assert sess.people.logging is log and not sess.streaming
    assert len(sess.people.events) == 3        # the stream stopped: the three were closed
    if not log:
        assert not data.exists()               # nothing written anywhere
        return
    store = open_store()
    try:
        got = store.events()
        assert len(got) == 3 and {e.source for e in got} == {"webcam"}
    finally:
        store.close()
    at.run()                                   # next refresh shows what was written
    assert metrics(at)["logged"] == "3"
