"""pipeline.streams.video: streaming annotate + H.264 encode, on short videos made from a real photo."""
from __future__ import annotations

import csv
import io

import pytest

from tests.support.media_util import (corrupt_packets, make_test_video, mixed_clip, moving_crop_frames,
                                      no_stream_mp4, write_video, zero_frame_video)
from pipeline.streams.video import (VideoError, h264_encoder, probe_mp4, process_video)


@pytest.fixture(scope="module")
def cfg(engine):
    return engine.with_config(min_face=40)


def test_h264_encoder_available():
    assert h264_encoder() in ("libx264", "libopenh264")


def test_process_video_writes_playable_h264_and_counts(tmp_path, engine, cfg):
    src = make_test_video(tmp_path / "in.mp4", n=20)
    progress = []
    s = process_video(src, tmp_path / "out.mp4", engine, every_n=1, config=cfg,
                      on_progress=progress.append, progress_interval=0)
    info = probe_mp4(tmp_path / "out.mp4")
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (320, 240) and info["frames"] == 20
    assert s.frames_written == 20 and s.frames_detected == 20 and s.frames_failed == 0
    assert s.max_faces == 3                      # the three people of the photo
    assert all(f.faces >= 2 for f in s.frames)
    assert progress[-1].done == 20 and progress[-1].fraction == 1.0
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    rows = list(csv.DictReader(io.StringIO(s.csv())))
    assert len(rows) == 20 and rows[0]["frame"] == "0"
    assert sum(int(rows[0][c]) for c in ("mask", "no_mask", "incorrect")) == int(rows[0]["faces"])
    times, series = s.series()
    assert len(times) == 20 and times[0] == 0 and abs(times[1] - 0.1) < 1e-3
    assert all(len(v) == 20 for v in series.values())


def test_every_n_reuses_detections_and_odd_sizes_become_even(tmp_path, engine, cfg):
    src = write_video(tmp_path / "odd.avi", moving_crop_frames(n=9, size=(321, 241)), codec="mjpeg", fmt="avi")
    s = process_video(src, tmp_path / "out.mp4", engine, every_n=3, config=cfg)
    assert [f.detected for f in s.frames] == [True, False, False] * 3
    assert s.frames[1].counts == s.frames[0].counts
    info = probe_mp4(tmp_path / "out.mp4")
    assert info["width"] % 2 == 0 and info["height"] % 2 == 0 and info["frames"] == 9


def test_undecodable_frame_is_skipped_and_counted(tmp_path, engine, cfg):
    good = write_video(tmp_path / "m.avi", moving_crop_frames(n=12, size=(160, 120)), codec="mjpeg", fmt="avi")
    bad = corrupt_packets(good, tmp_path / "bad.avi", bad=(5,))
    s = process_video(bad, tmp_path / "out.mp4", engine, config=cfg)
    assert s.frames_failed == 1 and s.frames_written == 11 and s.errors
    assert probe_mp4(tmp_path / "out.mp4")["frames"] == 11


def test_max_frames_truncates(tmp_path, engine, cfg):
    src = make_test_video(tmp_path / "in.mp4", n=12, size=(160, 120))
    s = process_video(src, tmp_path / "out.mp4", engine, config=cfg, max_frames=5, every_n=5)
    assert s.frames_written == 5 and s.truncated


@pytest.mark.parametrize("kind,needle", [("zero_frames", "no frames"), ("no_stream", "no video stream"),
                                         ("garbage", "not a video"), ("empty", "not a video"),
                                         ("text", "not a video")])
def test_bad_videos_raise_clear_errors(tmp_path, engine, kind, needle):
    p = tmp_path / "bad.mp4"
    if kind == "zero_frames":
        zero_frame_video(p)
    elif kind == "no_stream":
        no_stream_mp4(p)
    elif kind == "garbage":
        p.write_bytes(b"\x00\x01garbage" * 1000)
    elif kind == "empty":
        p.write_bytes(b"")
    else:
        p.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError) as e:
        process_video(p, tmp_path / "out.mp4", engine)
    assert needle in str(e.value)
    assert not (tmp_path / "out.mp4").exists()


def test_people_are_tracked_counted_and_drawn_with_ids(tmp_path, engine, cfg, monkeypatch):
    from pipeline.streams import video
    from pipeline.people.counter import PeopleCounter
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    drawn = []
    real_annotate = video.annotate

    def spy(image, dets, **kw):
        drawn.append(dict(kw.get("track_ids") or {}))
        return real_annotate(image, dets, **kw)

    monkeypatch.setattr(video, "annotate", spy)
    src = make_test_video(tmp_path / "in.mp4", n=20)          # the 3-person photo, panning
    people = PeopleCounter(source="video", start=1_700_000_000.0)
    s = process_video(src, tmp_path / "out.mp4", engine, every_n=2, config=cfg, people=people)
    assert s.people == people.total == 3                       # three people, not 20 x 3 faces
    assert sum(s.people_counts.values()) == 3 and s.people_counts["no_mask"] >= 2
    assert s.to_dict()["people"] == 3 and s.people_logged == 0 and s.log_error is None
    # ids appear once a face was matched in 3 detected frames (frames 0, 2, 4), and stay
    assert drawn[0] == {} and sorted(drawn[4].values()) == [1, 2, 3]
    assert all(sorted(d.values()) == [1, 2, 3] for d in drawn[4:])
    assert drawn[5] == drawn[4]                                # in-between frame reuses the ids
    events = people.events                                     # closed at the end of the video
    assert len(events) == 3 and all(e.source == "video" for e in events)
    assert all(1_700_000_000.0 <= e.first_seen < e.last_seen <= 1_700_000_002.0 for e in events)
    assert not (tmp_path / "maskwatch.db").exists()            # logging off: nothing written
    # without a counter: no ids drawn, no people in the summary
    drawn.clear()
    s2 = process_video(src, tmp_path / "out2.mp4", engine, every_n=2, config=cfg, max_frames=6)
    assert s2.people is None and "people" not in s2.to_dict() and not any(drawn)


def test_people_logged_to_the_store(tmp_path, engine, cfg):
    from pipeline.people.counter import PeopleCounter
    from pipeline.store import open_store
    url = f"sqlite:///{tmp_path / 'people.db'}"
    src = make_test_video(tmp_path / "in.mp4", n=10)
    people = PeopleCounter(source="video", log=True, store_url=url, start=1_700_000_000.0)
    s = process_video(src, tmp_path / "out.mp4", engine, config=cfg, people=people)
    assert s.people == 3 and s.people_logged == 3 and s.log_error is None
    store = open_store(url)
    try:
        got = store.events()
        assert len(got) == 3 and {e.source for e in got} == {"video"}
        assert all(e.frames >= 3 for e in got)
    finally:
        store.close()


def test_people_counter_closed_when_the_video_fails(tmp_path, engine):
    from pipeline.people.counter import PeopleCounter
    p = tmp_path / "bad.mp4"
    zero_frame_video(p)
    people = PeopleCounter(source="video", start=0.0)
    with pytest.raises(VideoError):
        process_video(p, tmp_path / "out.mp4", engine, people=people)
    assert people._closed and people.total == 0


@pytest.mark.parametrize("every_n, batches", [(1, [4, 4, 4, 2]), (3, [4])])   # (3: frame 12 alone, per frame)
def test_batched_detection_gives_the_frame_by_frame_result(tmp_path, engine, cfg, monkeypatch, every_n, batches):
    """batch_size > 1 (the GPU default) goes through pipeline.engine.batched.detect_batch, a batch at a
    time, and writes the same frames, counts and boxes as frame by frame."""
    import pipeline.engine.batched as batch
    calls = []
    real = batch.detect_batch
    monkeypatch.setattr(batch, "detect_batch", lambda e, fr, c, **kw: calls.append(len(fr)) or real(e, fr, c, **kw))
    src = write_video(tmp_path / "m.avi", moving_crop_frames(n=14, size=(320, 240)), codec="mjpeg", fmt="avi")
    one = process_video(src, tmp_path / "a.mp4", engine, every_n=every_n, config=cfg, batch_size=1)
    assert not calls
    many = process_video(src, tmp_path / "b.mp4", engine, every_n=every_n, config=cfg, batch_size=4,
                         progress_interval=0)
    assert calls == batches                                       # batches of at most 4 frames
    assert [(f.index, f.counts, f.faces, f.detected) for f in many.frames] == \
           [(f.index, f.counts, f.faces, f.detected) for f in one.frames]
    assert probe_mp4(tmp_path / "b.mp4")["frames"] == 14


def test_batch_size_defaults_to_frame_by_frame_on_cpu(tmp_path, engine, cfg, monkeypatch):
    import pipeline.engine.batched as batch
    monkeypatch.setattr(batch, "detect_batch", lambda *a, **k: pytest.fail("batched on CPU"))
    src = write_video(tmp_path / "m.avi", moving_crop_frames(n=4, size=(160, 120)), codec="mjpeg", fmt="avi")
    assert process_video(src, tmp_path / "o.mp4", engine, config=cfg).frames_written == 4


def test_bundled_sample_clip_small_h264_and_licensed():
    from pipeline.streams.video import SAMPLE_CLIP, sample_clip
    clip = sample_clip()
    assert clip == SAMPLE_CLIP and clip.stat().st_size <= 400_000
    info = probe_mp4(clip)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] >= 24
    sources = (clip.parent / "SOURCES.md").read_text()
    section = sources.split(f"## `{clip.name}`", 1)[1].split("\n## ", 1)[0]
    parts = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
    assert parts, "the clip's sources are not listed in SOURCES.md"
    licensed = ("crops/fmd/", "synthetic/maskedfacenet/", "scenes/dlib_faces/")
    assert all(p.startswith(licensed) for p in parts), parts  # never ilc2021, macwin, adityap27
    assert "Licence:" in section



def test_auto_runs_the_weight_set_most_of_the_first_frames_pick_on_the_whole_clip(tmp_path):
    """With "auto", a clip whose frames would flip between the weight sets (sharp and JPEG-20
    frames, stored losslessly) runs one set throughout, the majority's: each frame's faces are
    those the engine of that set finds, and the summary names it."""
    from pipeline.engine.mask_detector import MaskDetector
    auto = MaskDetector.load(device="cpu", detector="auto")
    only = {w: MaskDetector.load(device="cpu", detector=w) for w in ("photo", "camera")}
    for name, blocky, want in (("mostly_blocky", (0, 1, 3, 4, 6, 7, 9), "camera"), ("mostly_sharp", (2, 5, 8), "photo")):
        src, clip = mixed_clip(tmp_path / f"{name}.mkv", blocky)
        per_frame = [auto.detector_for(f) is auto.camera_detector for f in clip]
        assert sum(per_frame) == len(blocky) and 0 < sum(per_frame) < len(clip)     # per frame it would flip
        clip_engine = auto.for_clip(clip)
        assert clip_engine.detector is (auto.camera_detector if want == "camera" else auto.detector)
        assert clip_engine.lock is auto.lock and clip_engine.classifier is auto.classifier

        def run(engine):
            s = process_video(src, tmp_path / "out.mp4", engine, config=engine.with_config(min_face=40))
            return s, [(f.faces, f.counts) for f in s.frames]
        s, got = run(auto)
        ref, expected = run(only[want])
        assert s.detector == ref.detector == want and s.to_dict()["detector"] == want
        assert got == expected and s.frames_written == 10
    assert only["photo"].for_clip(clip) is only["photo"]                  # one set: nothing to choose
