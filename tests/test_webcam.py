"""pipeline.streams.webcam: the frame callback on real frames, live stats, alert limiter, ICE setting."""
from __future__ import annotations

import base64
import io
import json
import queue
import re
import wave

import av
import numpy as np
import pytest
import torch

from tests.support.media_util import GROUP3, read_rgb
from pipeline.streams import webcam
from pipeline.engine.boxes import pairwise_iou
from pipeline.streams.webcam import FrameResult, WebcamSettings, make_frame_callback
from pipeline.ui.live import AlertLimiter, LiveStats, alert_wav
from pipeline.ui import ice, live
from pipeline.ui.ice import ice_configuration, ice_mode


def _frame(img):
    f = av.VideoFrame.from_ndarray(img, format="rgb24")
    f.pts = 0
    return f


def test_callback_annotates_real_frames_and_pushes_counts(engine, tmp_path):
    img = read_rgb(GROUP3, (640, 480))
    q = queue.Queue()
    log = tmp_path / "frames.jsonl"
    cb = make_frame_callback(engine, q, WebcamSettings(detect_every=2, realtime=False), frame_log=str(log))
    for k in range(3):
        out = cb(_frame(img))
        assert isinstance(out, av.VideoFrame)
        arr = out.to_ndarray(format="rgb24")
        assert arr.shape == img.shape
        assert np.abs(arr.astype(int) - img).sum() > 1000      # boxes were drawn
    results = [q.get_nowait() for _ in range(3)]
    assert q.empty()
    for r in results:
        assert isinstance(r, FrameResult)
        assert r.faces == 3 and sum(r.counts.values()) == 3 and r.ms > 0
    assert [r.frame_no for r in results] == [1, 2, 3]
    assert [r.detected for r in results] == [True, False, True]      # detect_every=2
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recs) == 3 and recs[-1]["faces"] == 3 and recs[-1]["w"] == 640
    assert [r["det"] for r in recs] == [1, 0, 1]


def test_detect_every_n_reuses_boxes_between_detections(engine):
    img = read_rgb(GROUP3, (640, 480))
    q = queue.Queue()
    cb = make_frame_callback(engine, q, WebcamSettings(detect_every=3, realtime=False), frame_log="")
    outs = [cb(_frame(img)).to_ndarray(format="rgb24") for _ in range(7)]
    res = [q.get_nowait() for _ in range(7)]
    assert [r.detected for r in res] == [True, False, False, True, False, False, True]
    assert all(r.faces == 3 for r in res)
    assert np.array_equal(outs[0], outs[1])                 # same frame, same boxes drawn
    assert res[1].ms < res[0].ms


def test_callback_settings_apply_live(engine):
    img = read_rgb(GROUP3, (640, 480))
    q = queue.Queue()
    s = WebcamSettings(detect_every=1)
    cb = make_frame_callback(engine, q, s, frame_log="")
    plain = cb(_frame(img)).to_ndarray(format="rgb24")
    s.blur = True
    s.show_landmarks = True
    blurred = cb(_frame(img)).to_ndarray(format="rgb24")
    assert np.abs(plain.astype(int) - blurred).sum() > 10000
    s.min_face = 400            # larger than any face: nothing found, frame passes unchanged
    out = cb(_frame(img)).to_ndarray(format="rgb24")
    assert np.array_equal(out, img)
    assert [q.get_nowait().faces for _ in range(3)] == [3, 3, 0]


def test_realtime_mode_is_the_default_and_tracks_between_frames(engine):
    img = read_rgb(GROUP3, (640, 480))
    q = queue.Queue()
    s = WebcamSettings()
    assert s.realtime and s.detect_every == 1
    s.stream_gap_s = 60.0                                   # a slow machine is not a new stream
    cb = make_frame_callback(engine, q, s, frame_log="")
    outs = [cb(_frame(img)).to_ndarray(format="rgb24") for _ in range(6)]
    res = [q.get_nowait() for _ in range(6)]
    assert all(r.detected and r.faces == 3 for r in res)
    assert all(np.abs(o.astype(int) - img).sum() > 1000 for o in outs)
    rt = cb.state.realtime.realtime
    assert rt.stats["frames"] == 6 and rt.stats["full"] == 1      # one full detection, then reuse
    full = engine.detect(img, engine.with_config(min_face=s.min_face))
    got = cb.state.detections
    assert {d.label for d in got} == {d.label for d in full}
    iou = pairwise_iou(torch.tensor([d.box for d in full]), torch.tensor([g.box for g in got]))
    assert float(iou.max(dim=1).values.min()) > 0.7                 # same faces as full detection
    s.stream_gap_s = 0.0                                            # a new stream: start afresh
    cb(_frame(img))
    assert rt.stats["full"] == 1 and rt.stats["frames"] == 1 and q.get_nowait().faces == 3
    s.stream_gap_s = 60.0
    s.min_face = 400                                                # changed setting: afresh too
    assert np.array_equal(cb(_frame(img)).to_ndarray(format="rgb24"), img)
    assert q.get_nowait().faces == 0
    s.realtime = False                                              # switched off: full cascade
    s.min_face = 60
    cb(_frame(img))
    assert cb.state.realtime is None and q.get_nowait().faces == 3


def test_callback_survives_a_failing_frame(engine):
    class Broken:
        detector = engine.detector

        def with_config(self, **kw):
            raise RuntimeError("boom")

    class BrokenNets:
        detector = None                 # realtime mode fails on its first use of the nets

    f = _frame(read_rgb(GROUP3, (160, 120)))
    for broken, realtime in ((Broken(), False), (BrokenNets(), True)):
        q = queue.Queue()
        cb = make_frame_callback(broken, q, WebcamSettings(realtime=realtime), frame_log="")
        assert cb(f) is f and cb(f) is f and q.empty() and cb.state.errors == 2


def test_full_queue_drops_oldest():
    q = queue.Queue(maxsize=2)
    for k in range(5):
        webcam._put_latest(q, k)
    assert [q.get_nowait(), q.get_nowait()] == [3, 4]


def test_scale_detections_maps_back(engine):
    from PIL import Image

    from tests.support.data import dlib_boxes
    img = read_rgb(GROUP3, (640, 480))
    with Image.open(GROUP3) as im:
        sx, sy = 640 / im.width, 480 / im.height
    people = np.array(dlib_boxes()[GROUP3.name], np.float32) * np.array([sx, sy, sx, sy], np.float32)
    full = engine.detect(img, engine.with_config(min_face=40))
    small = webcam.detect_frame(engine, img, WebcamSettings(detect_side=320, min_face=40))
    for found in (full, small):      # both paths find the three people, in full-frame pixels
        boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
        assert len(people) == 3 and (pairwise_iou(torch.from_numpy(people), torch.from_numpy(boxes)).numpy().max(1) >= 0.5).all()
    # at min_face 40 the full frame has one extra, doubtful detection (a hand, face score 0.73)
    assert len(small) == 3 and len(full) <= 4
    for a in small:
        best = min(full, key=lambda b: abs(b.box[0] - a.box[0]) + abs(b.box[1] - a.box[1]))
        assert max(abs(x - y) for x, y in zip(a.box, best.box)) < 20


def _res(t, no_mask=0, mask=1):
    return FrameResult(t, {"mask": mask, "no_mask": no_mask, "incorrect": 0}, mask + no_mask, 10.0, 0)


def test_live_stats_window_fps_and_series():
    st = LiveStats(window=60)
    now = 1000.0
    st.add([_res(now - 70 + k * 0.05) for k in range(20)], now=now)   # all older than the window
    assert not st.results and st.total_frames == 20
    st.add([_res(now - 2 + k * 0.05, no_mask=k % 2) for k in range(40)], now=now)
    assert 19 < st.fps(now=now) <= 20.5
    assert st.detect_fps(now=now) == st.fps(now=now)          # every frame detected here
    xs, series = st.series(now=now)
    assert xs == [-2.0, -1.0] and series["no_mask"] == [1, 1] and series["mask"] == [1, 1]
    q = queue.Queue()
    q.put(_res(now))
    assert len(st.drain(q)) == 1 and q.empty()


def test_alert_limiter_rate_limits_and_can_be_off():
    a = AlertLimiter(interval=10)
    bad, ok = {"no_mask": 1}, {"mask": 2, "no_mask": 0, "incorrect": 0}
    assert not a.should_alert(ok, now=0)
    assert a.should_alert(bad, now=1)
    assert not a.should_alert(bad, now=5)
    assert not a.should_alert({"incorrect": 1}, now=10.9)
    assert a.should_alert({"incorrect": 1}, now=11.1)
    assert not a.should_alert(bad, now=100, enabled=False)
    assert a.fired == 2


def test_alert_wav_is_a_short_valid_wav():
    data = alert_wav()
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert 0.3 < w.getnframes() / w.getframerate() < 1.5
    assert alert_wav(variant=1) != alert_wav(variant=2)


def test_live_snapshot_is_the_newest_fresh_frame():
    st = LiveStats()
    assert not st.snapshot(5.0, now=100.0).fresh
    st.add([FrameResult(100.0, {"mask": 0, "no_mask": 1, "incorrect": 0}, 1, 5.0, 1),
            FrameResult(101.0, {"mask": 1}, 1, 5.0, 2)], now=101.0)
    snap = st.snapshot(5.0, now=101.5)
    assert snap.fresh and snap.counts == {"mask": 1, "no_mask": 0, "incorrect": 0}
    assert snap.violations == 0 and snap.faces == 1          # the newest frame, not the last alarm
    old = st.snapshot(5.0, now=106.0)
    assert not old.fresh and old.counts == {"mask": 0, "no_mask": 0, "incorrect": 0} and old.faces == 0


def test_alert_language_and_sentences():
    assert live.alert_language(env={}) == "en"
    assert live.alert_language(env={"MASKWATCH_ALERT_LANG": "fr_FR"}) == "fr"
    assert live.alert_language("de-AT", env={"MASKWATCH_ALERT_LANG": "fr"}) == "de"
    with pytest.raises(ValueError, match="expected one of en, fr, de, es"):
        live.alert_language("klingon", env={})
    assert set(live.ALERT_SENTENCES) == set(live.ALERT_LANGUAGES)
    assert all(set(v) == {"no_mask", "incorrect"} for v in live.ALERT_SENTENCES.values())
    assert live.alert_speech({"no_mask": 2}) == "Please wear your mask."
    assert live.alert_speech({"incorrect": 1}) == "Please cover your nose with your mask."
    assert live.alert_speech({"no_mask": 1, "incorrect": 1}, "es") == (
        "Por favor, póngase la mascarilla. Por favor, cúbrase la nariz con la mascarilla.")
    assert live.alert_speech({"mask": 3}) == "" and live.alert_speech(None) == ""


def test_voice_alert_html_speaks_with_a_beep_fallback():
    html = live.voice_alert_html("Veuillez porter votre masque.", "fr", serial=3)
    assert 'const text = "Veuillez porter votre masque."' in html and 'lang = "fr-FR"' in html
    assert "new SpeechSynthesisUtterance(text)" in html and "synth.speak(u)" in html
    assert 'data-alert="3"' in html
    beep = re.search(r'"data:audio/wav;base64,([A-Za-z0-9+/=]+)"', html).group(1)
    assert base64.b64decode(beep) == alert_wav(variant=3)       # the fallback is the beep
    assert live.voice_alert_html("x", "en", 1) != live.voice_alert_html("x", "en", 2)


def test_ice_modes(monkeypatch):
    assert ice_mode({}) == "local"
    assert ice_mode({"SPACE_ID": "me/space"}) == "auto"
    assert ice_mode({"MASKWATCH_ICE": "HF"}) == "hf"
    with pytest.raises(ValueError):
        ice_mode({"MASKWATCH_ICE": "carrier-pigeon"})
    assert ice_configuration(env={})[0] == {"iceServers": []}
    assert ice_configuration("auto", env={})[0] is None

    from streamlit_webrtc import credentials
    seen = {}

    def fake_hf(token):
        seen["token"] = token
        return [{"urls": "turn:gradio-turn.com:80", "username": "u", "credential": "c"}]

    monkeypatch.setattr(credentials, "get_hf_ice_servers", fake_hf)
    cfg, note = ice_configuration(env={"MASKWATCH_ICE": "hf", "HF_TOKEN": "hf_x"})
    assert seen["token"] == "hf_x"
    assert cfg["iceServers"][0]["urls"] == "turn:gradio-turn.com:80"
    assert any("stun:" in str(s["urls"]) for s in cfg["iceServers"])
    cfg, note = ice_configuration(env={"MASKWATCH_ICE": "hf"})        # no token: STUN only
    assert cfg == {"iceServers": [ice.GOOGLE_STUN]} and "HF_TOKEN" in note
    cfg, note = ice_configuration(env={"MASKWATCH_ICE": "twilio", "TWILIO_ACCOUNT_SID": "a"})
    assert cfg == {"iceServers": [ice.GOOGLE_STUN]} and "TWILIO" in note

    monkeypatch.setattr(credentials, "get_twilio_ice_servers",
                        lambda sid, tok: [{"urls": ["turn:global.turn.twilio.com:3478"]}])
    cfg, _ = ice_configuration(env={"MASKWATCH_ICE": "twilio", "TWILIO_ACCOUNT_SID": "a",
                                    "TWILIO_AUTH_TOKEN": "b"})
    assert cfg["iceServers"][0]["urls"] == ["turn:global.turn.twilio.com:3478"]


def test_callback_tracks_people_draws_ids_and_pushes_total(engine, tmp_path, monkeypatch):
    from pipeline.people.counter import PeopleCounter
    from pipeline.people.tracker import TrackerConfig
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    drawn = []
    real_annotate = webcam.annotate

    def spy(image, dets, **kw):
        drawn.append(kw.get("track_ids"))
        return real_annotate(image, dets, **kw)

    monkeypatch.setattr(webcam, "annotate", spy)
    img = read_rgb(GROUP3, (640, 480))
    q = queue.Queue()
    # live frames are timed by the clock: on a busy CI core one detection can take over a
    # second, longer than the tracker's default 0.5 s for a not yet confirmed face
    people = PeopleCounter(source="webcam", config=TrackerConfig(tentative_max_age_s=30, max_age_s=30))
    log = tmp_path / "frames.jsonl"
    cb = make_frame_callback(engine, q, WebcamSettings(detect_every=2, realtime=False), frame_log=str(log),
                             people=people)
    for _ in range(6):                      # detected: frames 1, 3, 5 -> confirmed at frame 5
        cb(_frame(img))
    res = [q.get_nowait() for _ in range(6)]
    assert [r.detected for r in res] == [True, False] * 3
    assert [r.people for r in res] == [0, 0, 0, 0, 3, 3]
    assert people.total == 3 and people.frames == 3          # the tracker saw detected frames only
    assert drawn[0] == {} and sorted(drawn[4].values()) == [1, 2, 3]
    assert drawn[5] == drawn[4]                              # skipped frame: the last ids again
    assert json.loads(log.read_text().splitlines()[-1])["people"] == 3
    people.flush()                                           # the stream stopped: people closed
    assert len(people.events) == 3 and all(e.source == "webcam" for e in people.events)
    assert not people.logging and not (tmp_path / "maskwatch.db").exists()
    # without a counter the result says nothing about people
    q2 = queue.Queue()
    make_frame_callback(engine, q2, WebcamSettings(), frame_log="")(_frame(img))
    assert q2.get_nowait().people is None


def test_frame_log_setting_is_used_when_no_file_is_given(engine, tmp_path, monkeypatch):
    """MASKWATCH_FRAME_LOG (pipeline.settings) is the default frame log of the callback."""
    log = tmp_path / "from_env.jsonl"
    monkeypatch.setenv("MASKWATCH_FRAME_LOG", str(log))
    cb = make_frame_callback(engine, queue.Queue(), WebcamSettings(realtime=False))
    cb(_frame(read_rgb(GROUP3, (320, 240))))
    assert len(log.read_text().splitlines()) == 1
