"""`python -m pipeline batch` on Ray Data: same detections as `detect`, a video split into frame
ranges gives the frames of a whole-file pass, a corrupt input gives one error row, a rerun
skips what is done; embedded Ray and a local cluster started here (`ray start --head`)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.data import DLIB, ROOT

pytest.importorskip("ray", reason="pip install -r requirements-scale.txt")
pa = pytest.importorskip("pyarrow")

from pipeline.streams import archives as sb  # noqa: E402

IMAGES = [DLIB / "2008_002506.jpg", DLIB / "2008_004176.jpg", DLIB / "2009_004587.jpg"]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Three real photos, a 39-frame door-camera clip, a corrupt image and a corrupt video."""
    from tests.support.synth_video import door_clip, write_video
    d = tmp_path_factory.mktemp("media")
    frames, _, labels = door_clip(6)
    video = write_video(d / "door.mp4", frames, 6)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all" * 10)
    images = [str(p) for p in IMAGES if p.exists()]
    assert len(images) == 3
    return {"images": images, "video": str(video), "frames": len(frames), "people": labels,
            "bad_image": str(d / "broken.jpg"), "bad_video": str(d / "broken.mp4")}


@pytest.fixture(scope="module")
def detect_json(media):
    """`python -m pipeline detect --json` on the photos: {path: faces}."""
    p = subprocess.run([sys.executable, "-m", "pipeline", "detect", *media["images"], "--json",
                        "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return {o["path"]: o["faces"] for o in map(json.loads, p.stdout.splitlines())}


def _faces(table, source):
    rows = [r for r in table.to_pylist() if r["source"] == source and r["face"] is not None
            and r["face"] >= 0]
    return sorted(rows, key=lambda r: r["face"])


def assert_same_as_detect(table, detect_json):
    assert detect_json and any(detect_json.values())
    for path, faces in detect_json.items():
        got = _faces(table, path)
        assert len(got) == len(faces), path
        for g, f in zip(got, faces):
            assert g["box"] == pytest.approx(f["box"], abs=0.05)
            assert g["score"] == pytest.approx(f["score"], abs=1e-4)
            assert g["label"] == f["label"]
            for c, v in f["probs"].items():
                assert g["probs"][c] == pytest.approx(v, abs=1e-4)


def cli_batch(*args, env=None) -> dict:
    """`python -m pipeline batch ... --json` in a process of its own (one Ray job per process,
    as in use); returns its summary."""
    p = subprocess.run([sys.executable, "-m", "pipeline", "batch", *map(str, args), "--json",
                        "--no-progress", "--device", "cpu"], cwd=ROOT, capture_output=True,
                       text=True, timeout=900, env=dict(os.environ, **(env or {})))
    assert p.returncode in (0, 2), p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def frames_of(table, source):
    """[(frame, time, face, box, label)] of one source, in output order."""
    return [(r["frame"], r["time_s"], r["face"], tuple(round(v, 2) for v in r["box"] or ()), r["label"])
            for r in table.to_pylist() if r["source"] == source]


# ------------------------------------------------------------------------ fast: no Ray
def test_expand_inputs_folders_globs_and_missing(media, tmp_path):
    folder = Path(media["video"]).parent
    got = sb.expand_inputs([str(folder), str(folder / "*.jpg"), str(tmp_path / "nothing.png")])
    assert media["video"] in got and media["bad_image"] in got and media["bad_video"] in got
    assert got.count(media["bad_image"]) == 1                 # folder and glob: listed once
    assert got[-1] == str(tmp_path / "nothing.png")            # kept: it gets an error row


def test_plan_splits_a_video_into_frame_ranges(media):
    items, videos, errors = sb.plan([media["video"], media["bad_video"], media["images"][0]], 16)
    ranges = [(it["start"], it["stop"]) for it in items if it["kind"] == "video"]
    assert ranges == [(0, 16), (16, 32), (32, -1)]             # the last range runs to the end
    assert len(videos) == 1 and len(videos[next(iter(videos))]["items"]) == 3
    assert [e["source"] for e in errors] == [media["bad_video"]]
    assert "video" in errors[0]["error"] or "read" in errors[0]["error"]


def test_frame_ranges_give_the_frames_of_the_whole_file(media):
    """Decoding by ranges (with seeks) yields exactly the whole file's frames, numbered alike."""
    import numpy as np
    info = sb.probe_video(media["video"])
    whole = list(sb.video_frames(media["video"], 0, None, info.fps, info.t0))
    assert len(whole) == media["frames"]
    parts = []
    for start, stop in ((0, 10), (10, 23), (23, None)):
        parts += list(sb.video_frames(media["video"], start, stop, info.fps, info.t0))
    assert [f[0] for f in parts] == [f[0] for f in whole] == list(range(media["frames"]))
    assert [f[1] for f in parts] == pytest.approx([f[1] for f in whole])
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(parts, whole))


def _actor(engine, config=None) -> sb.DetectActor:
    """The actor's code, without Ray, around a loaded engine."""
    actor = sb.DetectActor.__new__(sb.DetectActor)
    actor.engine, actor.config, actor.annotate_dir, actor.worker, actor.gpu = engine, config, None, "t", False
    actor.clip_engines = {}
    return actor


def _video_item(path: str, start: int = 0, stop: int = -1) -> dict:
    info = sb.probe_video(path)
    return {"item": f"v{start}", "source": path, "path": path, "kind": "video", "start": start,
            "stop": stop, "fps": info.fps, "t0": info.t0}


def test_a_corrupt_input_is_one_error_row(media, engine):
    actor = _actor(engine)
    t = actor.run_item({"item": "k", "source": media["bad_image"], "path": media["bad_image"],
                        "kind": "image", "start": 0, "stop": -1, "fps": 0.0, "t0": None})
    assert t.num_rows == 1 and t.column("error")[0].as_py()
    assert t.column("face")[0].as_py() is None


def test_auto_runs_one_weight_set_on_every_range_of_a_video(tmp_path):
    """`batch --detector auto` (the default): every range of a video runs the set its first
    frames mostly pick, as the Video page does, though the later range alone would pick the other;
    photos still choose per image."""
    from pipeline.engine.mask_detector import MaskDetector
    from tests.support.media_util import mixed_clip
    assert sb.DEFAULT_MEDIA_DETECTOR == "auto"
    src, frames = mixed_clip(tmp_path / "mixed.mkv", blocky=(0, 1, 2, 3, 4, 5, 6), n=12)
    auto, camera = (MaskDetector.load(device="cpu", detector=d) for d in ("auto", "camera"))
    assert auto.for_clip(frames[7:]).detector is auto.detector                # the tail alone: photo
    cfg = auto.with_config(min_face=40)
    actor, ref = _actor(auto, cfg), _actor(camera, cfg)
    for start, stop in ((0, 7), (7, -1)):
        got, want = (frames_of(a.run_item(_video_item(str(src), start, stop)), str(src)) for a in (actor, ref))
        assert got == want and {f[0] for f in got} == set(range(start, 12 if stop < 0 else stop))
    assert actor.clip_engine(_video_item(str(src))).detector is auto.camera_detector
    assert list(actor.clip_engines) == [str(src)]                              # chosen once per file


# ------------------------------------------------------------------- slow: Ray Data
@pytest.mark.slow
def test_embedded_batch_matches_detect_splits_video_and_resumes(media, detect_json, tmp_path, engine):
    out = tmp_path / "out"
    inputs = [*media["images"], media["video"], media["bad_image"], media["bad_video"]]
    db = f"sqlite:///{tmp_path / 'people.db'}"
    s = cli_batch(*inputs, "--out", out, "--actors", 2, "--num-cpus", 1, "--chunk-frames", 20,
                  "--db", db)
    assert s["files"] == 6 and s["items"] == 6     # 3 photos, 2 video ranges, 1 bad photo
    assert s["errors"] == 2                         # the corrupt photo and the corrupt video
    assert s["frames"] == 3 + media["frames"]
    assert len(s["workers"]) == 2                   # the pool's two actors both worked
    # people: the clip's tracker run (one task, frames in order) wrote its 3 people
    from pipeline.store import open_store
    people = open_store(db).events()
    assert [e.label for e in people] == media["people"] and {e.source for e in people} == {"door"}
    assert s["people"]["door"]["logged"] == 3
    table = sb.read_detections(out)
    assert_same_as_detect(table, detect_json)
    errs = [r for r in table.to_pylist() if r["error"]]
    assert sorted(r["source"] for r in errs) == sorted([media["bad_image"], media["bad_video"]])

    # the split video == one whole-file pass by the same actor code
    whole = _actor(engine).run_item(_video_item(media["video"]))
    got, want = frames_of(table, media["video"]), frames_of(whole, media["video"])
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert [g[4] for g in got] == [w[4] for w in want]
    for g, w in zip(got, want):
        assert g[3] == pytest.approx(w[3], abs=0.05)
    assert {f[0] for f in got} == set(range(media["frames"]))

    # a rerun skips everything done (Ray is not even started) and retries only the failures
    before = {f.name: f.stat().st_mtime_ns for f in (out / "detections").glob("*.parquet")}
    again = sb.run_batch(inputs, out, actors=2, device="cpu", chunk_frames=20, progress=False)
    assert again.items_skipped == 5 and again.items == 1      # only the corrupt photo again
    assert {f.name: f.stat().st_mtime_ns for f in (out / "detections").glob("*.parquet")
            if ".error" not in f.name} == {k: v for k, v in before.items() if ".error" not in k}
    assert sb.read_detections(out).num_rows == table.num_rows     # no duplicate rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """`ray start --head` on 127.0.0.1 with 2 CPUs, in its own process group, killed after."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="mwray", dir="/tmp")      # short: Ray's socket paths
    env = dict(os.environ, RAY_AUTH_MODE="disabled")          # loopback test cluster only
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.Popen([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             f"--temp-dir={temp}", "--disable-usage-stats", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "ray start exited"
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        import shutil
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_local_cluster_matches_detect(media, detect_json, tmp_path, ray_cluster):
    out = tmp_path / "out"
    s = cli_batch(*media["images"], media["bad_image"], "--out", out, "--address", ray_cluster,
                  "--actors", 2, env={"RAY_AUTH_MODE": "disabled"})
    assert s["items"] == 4 and s["errors"] == 1 and s["frames"] == 3
    assert len(s["workers"]) == 2
    table = sb.read_detections(out)
    assert_same_as_detect(table, detect_json)
    assert sum(1 for r in table.to_pylist() if r["error"]) == 1


def test_cli_registers_batch_without_importing_ray():
    code = ("import sys; from pipeline.cli import build_parser; "
            "a = build_parser().parse_args(['batch', 'x.jpg', '--out', 'o', '--actors', '2']); "
            "print(a.command, a.actors, 'ray' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["batch", "2", "False"], p.stderr
