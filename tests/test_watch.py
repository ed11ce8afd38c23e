"""`python -m pipeline watch` on short mp4 files made of real face photos, and the tracker on
real detections: people counted against people present."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.support import synth_video as sv
from tests.support.data import ROOT
from pipeline.store import open_store
from pipeline.people.tracker import FaceTracker

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
    assert rc == 1 and ("not a readable video" in err or "no video stream" in err)
