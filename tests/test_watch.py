"""`python -m pipeline watch` on short mp4 files made of real face photos, and the tracker on
real detections: people counted against people present."""
from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.support import media_util as mu
from tests.support import synth_video as sv
from tests.support.data import ROOT
from pipeline.store import open_store
from pipeline.people.tracker import FaceTracker
from pipeline.streams.watch import FileFrames, WatchConfig, watch

MIN_FACE = "40"


def run_watch(*args, timeout=400):
    p = subprocess.run([sys.executable, "-m", "pipeline", "watch", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    people = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, people, p.stderr


@pytest.fixture(scope="module")
def door_video(tmp_path_factory):
    frames, present, labels = sv.door_clip(fps=6)
    return sv.write_video(tmp_path_factory.mktemp("v") / "door.mp4", frames, 6), present


# ---------------------------------------------------------------- tracker, real detections
def count_people(engine, frames, fps):
    cfg = engine.with_config(min_face=float(MIN_FACE))
    tr = FaceTracker()
    per_frame = []
    for k, f in enumerate(frames):
        faces = tr.update(engine.detect(f, cfg), k / fps)
        ids = [x.track_id for x in faces if x.track_id is not None]
        assert len(ids) == len(set(ids))                 # never one id twice in a frame
        per_frame.append(ids)
    tr.flush()
    return tr, per_frame


@pytest.mark.slow
def test_panning_across_a_group_photo_counts_three_people(engine):
    tr, per_frame = count_people(engine, sv.pan_clip(), fps=8)
    events = tr.closed_events()
    assert tr.total == 3 and len(events) == 3
    # the middle person is in view the whole time: one id from confirmation to the end
    assert all(len(ids) >= 2 for ids in per_frame[3:])
    assert len({e.track_id for e in events}) == 3 and all(e.frames >= 3 for e in events)
    assert all(e.label in ("mask", "no_mask", "incorrect") for e in events)


# -------------------------------------------------------------------------------- watch
@pytest.mark.slow
def test_watch_logs_the_right_number_of_people(door_video, tmp_path):
    path, present = door_video
    url = f"sqlite:///{tmp_path / 'door.db'}"
    rc, people, err = run_watch(str(path), "--source-name", "front-door", "--db", url, "--json",
                                "--min-face", MIN_FACE, "--device", "cpu")
    assert rc == 0, err
    assert len(people) == present == 3
    assert "people 3" in err and "source ended" in err and "saved 3" in err
    s = open_store(url)
    events = s.events()
    s.close()
    assert len(events) == 3 and {e.source for e in events} == {"front-door"}
    assert [e.frames for e in events] == [p["frames"] for p in people]
    gaps = [(events[k + 1].first_seen - events[k].last_seen).total_seconds() for k in range(2)]
    assert gaps[0] > 2.0                              # the same face, back after the timeout


@pytest.mark.slow
def test_watch_with_a_broken_database_still_counts(tmp_path):
    frames, _, _ = sv.door_clip(fps=6)
    path = sv.write_video(tmp_path / "short.mp4", frames[:6], 6)
    rc, people, err = run_watch(str(path), "--db", "postgresql://mw:secret@127.0.0.1:1/x", "--json",
                                "--min-face", MIN_FACE, "--device", "cpu")
    assert rc == 0, err
    assert "Cannot reach the database" in err and "not logged" in err and "secret" not in err
    assert len(people) == 1 and "people 1" in err


@pytest.mark.parametrize("url, says", [
    ("postgresql://mw:pw-secret@127.0.0.1:1/x?password=qs-secret&sslpassword=ssl-secret&application_name=door",
     "Cannot reach the database postgresql://mw:***@127.0.0.1:1/x?password=***&sslpassword=***"),
    ("postgresql://a:pw-secret@[::1:1/db", "is not valid"),          # malformed: a StoreError
])
def test_watch_hides_database_secrets_and_counts_on_without_a_store(tmp_path, url, says):
    """Every secret of the URL stays out of watch's messages (the query's password was printed
    three times), and a URL that does not even parse is a sentence, not a crash: watch counts
    on with the store off."""
    path = sv.write_video(tmp_path / "a.mp4", [sv.background()] * 3, 6)
    rc, _, err = run_watch(str(path), "--db", url, "--device", "cpu", timeout=300)
    assert rc == 0, err
    assert "secret" not in err and "Traceback" not in err
    assert says in err and "not logged" in err and "source ended: 3 of 3 frames" in err


@pytest.mark.slow
def test_sigint_stops_cleanly_and_keeps_open_people(tmp_path):
    """A person stands in view for a long clip; Ctrl-C as soon as they are counted: the open
    track becomes a person and is written before the process exits."""
    bg = sv.background()
    face = sv.face_patch(sv.WALKERS[1])
    frames = [sv.paste(bg, face, 160 + 20 * np.sin(k / 8), 120) for k in range(240)]   # 40 s
    path = sv.write_video(tmp_path / "long.mp4", frames, 6)
    url = f"sqlite:///{tmp_path / 'sig.db'}"
    p = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(path), "--db", url,
                          "--min-face", MIN_FACE, "--device", "cpu", "--status-interval", "0"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 300
    try:
        for line in p.stderr:
            lines.append(line)
            if "people 1" in line or time.monotonic() > deadline:
                break
        p.send_signal(signal.SIGINT)
        rest = p.communicate(timeout=120)[1]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, "".join(lines) + rest
    assert "stopped:" in rest and "saved 1" in rest
    processed = int(rest.split("stopped: ")[1].split(" of ")[0])
    assert processed < 240
    s = open_store(url)
    assert len(s.events()) == 1
    s.close()


def test_watch_bad_sources_fail_fast():
    rc, _, err = run_watch("/no/such/video.mp4", "--no-log", timeout=60)
    assert rc == 1 and "no such video file" in err
    rc, _, err = run_watch("7", "--no-log", timeout=60)
    assert rc == 1 and "cannot open camera 7" in err
    rc, _, err = run_watch(str(ROOT / "pytest.ini"), "--no-log", timeout=60)
    assert rc == 1 and ("not a video that can be read" in err or "no video stream" in err)
    rc, _, err = run_watch("99999999999", "--no-log", timeout=60)      # beyond a C int
    assert rc == 1 and "cannot open camera 99999999999: there is no such camera" in err
    assert "OpenCV" not in err and "Traceback" not in err


# ------------------------------------------------------------------- corrupt and empty files
def mjpeg_clip(path, frames, fps=6):
    """An MJPEG .avi: every frame its own packet, so one packet can be broken alone."""
    return mu.write_video(path, frames, fps=fps, codec="mjpeg", fmt="avi")


def test_file_frames_skip_a_corrupt_packet_and_go_on(tmp_path):
    """watch reads files through the Video page's decoding loop: a corrupt packet is skipped
    and counted, and every frame after it is still read (it used to stop there)."""
    good = mjpeg_clip(tmp_path / "good.avi", list(mu.moving_crop_frames(n=20)), fps=10)
    bad = mu.corrupt_packets(good, tmp_path / "bad.avi", bad=(5,))
    frames = FileFrames(str(bad))
    got = list(frames)
    frames.close()
    assert len(got) == 19 and frames.failed == 1
    assert [k for k, _, _ in got] == list(range(19))
    times = [t for _, t, _ in got]
    assert times == sorted(times) and times[-1] == pytest.approx(1.9, abs=0.01)   # frame 20's time
    assert all(img.shape == (240, 320, 3) and img.dtype == np.uint8 for _, _, img in got)
    every3 = FileFrames(str(bad), every=3)
    assert [k for k, _, _ in every3] == list(range(0, 19, 3)) and every3.failed == 1
    every3.close()


@pytest.mark.parametrize("kind", ["zero_frames", "all_corrupt"])
def test_a_source_with_no_decodable_frame_is_an_error(tmp_path, kind):
    """An empty or wholly undecodable file is an error (exit 1), not '0 of 0 frames', exit 0."""
    if kind == "zero_frames":
        path = mu.zero_frame_video(tmp_path / "empty.avi")
    else:
        good = mjpeg_clip(tmp_path / "good.avi", list(mu.moving_crop_frames(n=6)), fps=10)
        path = mu.corrupt_packets(good, tmp_path / "bad.avi", bad=range(6))
    rc, people, err = run_watch(str(path), "--no-log", "--device", "cpu", timeout=120)
    assert rc == 1, err
    assert "no frame that could be decoded" in err and "Traceback" not in err
    assert "source ended" not in err and people == []
    if kind == "all_corrupt":
        assert "(6 unreadable packets)" in err


@pytest.mark.slow
def test_watch_goes_on_after_a_corrupt_packet(tmp_path):
    """The door clip with one corrupt packet (while nobody is in view), through the real entry
    point: every other frame is read, the 3 people are counted and saved, the skipped packet is
    reported, and the last status line says what was saved (it said 'db off')."""
    frames, present, _ = sv.door_clip(fps=6)
    good = mjpeg_clip(tmp_path / "door.avi", frames, fps=6)
    bad = mu.corrupt_packets(good, tmp_path / "door_bad.avi", bad=(8,))
    url = f"sqlite:///{tmp_path / 'door.db'}"
    rc, people, err = run_watch(str(bad), "--db", url, "--json", "--min-face", MIN_FACE,
                                "--device", "cpu", "--status-interval", "0")
    assert rc == 0, err
    n = len(frames) - 1
    assert f"source ended: {n} of {n} frames (1 unreadable packet skipped)" in err
    assert len(people) == present == 3 and "saved 3" in err
    status = [l for l in err.splitlines() if l.startswith("frames ")]
    assert status[-1].endswith("db 3 saved") and not any("db off" in l for l in status)
    s = open_store(url)
    assert len(s.events()) == 3
    s.close()


def test_last_status_line_tells_what_was_saved(tmp_path, engine):
    """The status line after the end: 'db 1 saved' (the writer is closed by then; it read
    'db off' right before 'saved 1')."""
    frames, _, _ = sv.door_clip(fps=6)
    path = sv.write_video(tmp_path / "a.mp4", frames[:6], 6)
    err = io.StringIO()
    res = watch(WatchConfig(source=str(path), db_url=f"sqlite:///{tmp_path / 'a.db'}",
                            min_face=float(MIN_FACE), status_interval_s=0), engine=engine,
                stderr=err, stdout=io.StringIO())
    status = [l for l in err.getvalue().splitlines() if l.startswith("frames ")]
    assert status and status[-1].endswith("db 1 saved")
    assert res.logged == res.people == 1 and res.frames_failed == 0


# ------------------------------------------------------------------- Ctrl-C while starting
CTRL_C_AT = r"""
import os, runpy, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal, whatever the parent ignores
sys.path.insert(0, sys.argv[1])
when = sys.argv[2]

def ctrl_c(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)    # a real SIGINT, as a terminal's Ctrl-C sends
    time.sleep(30)

if when == "modules":                      # while `python -m pipeline` imports its modules
    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "sqlalchemy":
                sys.meta_path.remove(self)
                ctrl_c()
            return None
    sys.meta_path.insert(0, Finder())
elif when == "models":
    from pipeline.engine import mask_detector as engine
    engine.MaskDetector.load = ctrl_c
elif when == "store":
    from pipeline.people import counter as people
    people.open_store = ctrl_c
sys.argv = ["pipeline", "watch", *sys.argv[3:]]
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("when", ["modules", "models", "store"])
def test_ctrl_c_while_starting_exits_cleanly(tmp_path, when):
    path = sv.write_video(tmp_path / "a.mp4", [sv.background()] * 3, 6)
    p = subprocess.run([sys.executable, "-c", CTRL_C_AT, str(ROOT), when, str(path), "--device",
                        "cpu", "--db", f"sqlite:///{tmp_path / 'a.db'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr
    assert "stopped" in p.stderr
