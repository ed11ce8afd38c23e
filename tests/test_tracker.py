"""Face tracker: stable ids, people counted once, timeouts in frame time, majority labels."""
from __future__ import annotations

import pytest

from pipeline.engine.boxes import box_iou
from pipeline.people.tracker import FaceTracker, TrackerConfig, track_ids

from pipeline.records import PersonEvent
from pipeline.records import CLASSES, Detection


def det(cx, cy, size=60.0, label="mask", conf=0.9, score=0.99):
    rest = (1 - conf) / 2
    probs = tuple((c, conf if c == label else rest) for c in CLASSES)
    h = size / 2
    return Detection(box=(cx - h, cy - h, cx + h, cy + h), score=score, label=label, probs=probs)


def run(tracker, frames, fps=10.0, t0=0.0):
    """frames: list of lists of Detection. Returns per-frame lists of TrackedFace."""
    return [tracker.update(f, t0 + k / fps) for k, f in enumerate(frames)]


def test_box_iou_used_for_matching():
    import numpy as np
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert box_iou(a, b).round(3).tolist() == [[1.0, 0.333, 0.0]]


def test_config_is_frozen_with_tuple_defaults():
    cfg = TrackerConfig()
    assert isinstance(cfg.labels, tuple) and cfg.min_hits == 3 and cfg.max_age_s == 2.0
    with pytest.raises(Exception):
        cfg.min_hits = 5
    with pytest.raises(ValueError):
        TrackerConfig(min_hits=0)


def test_one_person_walking_past_counts_once():
    tr = FaceTracker(source="door")
    frames = [[det(20 + 12 * k, 100)] for k in range(40)]     # 120 px/s across the frame
    out = run(tr, frames)
    ids = {f[0].track_id for f in out[2:]}
    assert ids == {1}
    assert [f[0].track_id for f in out[:2]] == [None, None]    # not confirmed yet
    assert tr.total == 1 and tr.counts() == {"mask": 1, "no_mask": 0, "incorrect": 0}
    events = tr.flush(4.0)
    assert len(events) == 1
    ev = events[0]
    assert isinstance(ev, PersonEvent)
    assert ev.frames == 40 and ev.label == "mask" and ev.source == "door"
    assert ev.first_seen == 0.0 and ev.last_seen == pytest.approx(3.9)
    assert ev.confidence == pytest.approx(0.9)
    assert tr.closed_events() == events and tr.closed_events() == []
    assert tr.total == 1 and tr.counts()["mask"] == 1


def test_moving_and_crossing_boxes_keep_their_ids():
    tr = FaceTracker()
    frames = []
    for k in range(30):
        a = det(40 + 10 * k, 100, label="mask")          # left to right
        b = det(340 - 10 * k, 115, label="no_mask")      # right to left, crossing at k=15
        c = det(200, 300 + 2 * k, label="incorrect")     # slow, elsewhere
        frames.append([a, b, c] if k % 2 else [c, b, a])  # detection order must not matter
    out = run(tr, frames)
    by_label = {}
    for faces in out[2:]:
        for f in faces:
            by_label.setdefault(f.detection.label, set()).add(f.track_id)
    assert all(len(ids) == 1 for ids in by_label.values()), by_label
    assert len({next(iter(v)) for v in by_label.values()}) == 3
    tr.flush()
    ev = sorted(tr.closed_events(), key=lambda e: e.track_id)
    assert sorted(e.label for e in ev) == sorted(["mask", "no_mask", "incorrect"])
    assert all(e.frames == 30 for e in ev)


def test_crossing_with_occlusion_keeps_ids_by_motion():
    """At the crossing the nearer face hides the other for 4 frames; constant-velocity
    prediction carries the hidden track through, so it keeps its id on the other side."""
    tr = FaceTracker()
    frames = []
    for k in range(30):
        a = det(40 + 10 * k, 100, label="mask")
        b = det(340 - 10 * k, 104, label="no_mask")
        frames.append([a] if 13 <= k <= 16 else [a, b])
    out = run(tr, frames)
    ids_b = {f.track_id for faces in out[3:] for f in faces if f.detection.label == "no_mask"}
    ids_a = {f.track_id for faces in out[3:] for f in faces if f.detection.label == "mask"}
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    tr.flush()
    assert tr.total == 2


def test_leaving_and_coming_back_after_the_timeout_counts_twice():
    tr = FaceTracker(TrackerConfig(max_age_s=2.0))
    run(tr, [[det(100, 100)] for _ in range(10)], t0=0.0)                  # 0.0 .. 0.9 s
    run(tr, [[] for _ in range(5)], t0=1.0)                                # empty frames
    run(tr, [[det(100, 100, label="no_mask")] for _ in range(10)], t0=3.5)  # back 2.6 s later
    tr.flush()
    ev = tr.closed_events()
    assert [e.label for e in ev] == ["mask", "no_mask"]
    assert tr.total == 2 and tr.counts() == {"mask": 1, "no_mask": 1, "incorrect": 0}
    assert ev[0].last_seen == pytest.approx(0.9) and ev[1].first_seen == pytest.approx(3.5)


def test_coming_back_within_the_timeout_is_the_same_person():
    tr = FaceTracker(TrackerConfig(max_age_s=2.0))
    run(tr, [[det(100, 100)] for _ in range(10)], t0=0.0)
    run(tr, [[det(104, 100)] for _ in range(10)], t0=2.5)    # unseen 1.6 s: same track
    tr.flush()
    assert tr.total == 1 and len(tr.closed_events()) == 1


def test_timeout_uses_timestamps_not_frame_counts():
    """300 frames at 1000 fps unseen are 0.3 s: the track stays open; one frame 2.5 s later
    closes it."""
    tr = FaceTracker(TrackerConfig(max_age_s=2.0))
    run(tr, [[det(100, 100)] for _ in range(5)], fps=10)
    run(tr, [[] for _ in range(300)], fps=1000, t0=0.5)
    assert tr.open_tracks == 1 and tr.closed_events() == []
    tr.update([], 3.0)
    assert tr.open_tracks == 0 and len(tr.closed_events()) == 1


def test_stalls_between_frames_do_not_end_a_track_in_view():
    """Defect 10: a busy machine processes frames late and irregularly. A face that is in every
    processed frame (or misses one) stays one person, however long the stall before the frame;
    a face missing from two frames and max_age_s is gone."""
    tr = FaceTracker(TrackerConfig(max_age_s=2.0))
    t = 0.0
    for k in range(60):
        t += {10: 3.0, 20: 7.5, 30: 2.5, 31: 0.1}.get(k, 0.03)   # quick frames and long stalls
        tr.update([] if k == 31 else [det(100 + k % 3, 100)], t)  # the detector missed one
    assert tr.total == 1 and tr.open_tracks == 1 and tr.closed_events() == []
    tr.update([], t + 0.03)
    tr.update([], t + 0.06)
    assert tr.open_tracks == 1                       # two frames missed, but only 0.06 s
    tr.update([], t + 2.1)
    assert tr.open_tracks == 0 and [e.frames for e in tr.closed_events()] == [59]


def test_bursts_of_quick_frames_then_a_stall_keep_a_still_face():
    """Defect 10, as it failed on a busy machine: a thread feeds frames as fast as it can (1 ms
    apart) and is then held up for 30 ms. The box jitters by a few pixels; measured over 1 ms
    that was a 'velocity' of thousands of px/s, the face was predicted far away after the stall
    and became a second person."""
    tr = FaceTracker()
    t = 0.0
    for k in range(200):
        t += 0.03 if k % 25 == 24 else 0.001
        tr.update([det(100 + 3 * (k % 2), 100 - 2 * (k % 3))], t)
    assert tr.total == 1 and tr.open_tracks == 1
    with pytest.raises(ValueError):
        TrackerConfig(min_velocity_dt=-1)


def test_frames_and_time_both_needed_and_a_long_gap_ends_a_track():
    cfg = TrackerConfig(max_age_s=2.0, max_age_frames=3)
    tr = FaceTracker(cfg)
    run(tr, [[det(100, 100)] for _ in range(5)])                  # 0.0 .. 0.4 s
    tr.update([], 3.0)
    tr.update([], 3.1)
    assert tr.open_tracks == 1                       # 2.7 s unseen, but 2 frames < 3
    tr.update([], 3.2)
    assert tr.open_tracks == 0                       # 3 frames and 2.8 s
    tr2 = FaceTracker(cfg)
    run(tr2, [[det(100, 100)] for _ in range(5)])
    tr2.update([], 6.5)                              # one frame, after a gap > 3 * max_age_s
    assert tr2.open_tracks == 0 and len(tr2.closed_events()) == 1
    tr3 = FaceTracker(TrackerConfig(max_gap_s=30.0))
    run(tr3, [[det(100, 100)] for _ in range(5)])
    tr3.update([], 20.0)
    assert tr3.open_tracks == 1
    with pytest.raises(ValueError):
        TrackerConfig(max_age_frames=0)
    with pytest.raises(ValueError):
        TrackerConfig(max_gap_s=float("inf"))


def test_one_frame_false_positive_is_not_a_person():
    tr = FaceTracker()
    frames = [[det(100, 100)] for _ in range(20)]
    frames[5] = frames[5] + [det(400, 300, label="no_mask")]     # a flash somewhere else
    frames[12] = frames[12] + [det(50, 350, label="no_mask")]
    out = run(tr, frames)
    assert out[5][1].track_id is None and not out[5][1].confirmed
    tr.flush()
    assert tr.total == 1 and [e.label for e in tr.closed_events()] == ["mask"]


def test_confirmation_needs_min_hits():
    tr = FaceTracker(TrackerConfig(min_hits=3))
    run(tr, [[det(100, 100)], [det(101, 100)]])
    assert tr.total == 0
    tr.flush()
    assert tr.closed_events() == [] and tr.total == 0
    tr2 = FaceTracker(TrackerConfig(min_hits=1))
    tr2.update([det(100, 100)], 0.0)
    assert tr2.total == 1


def test_majority_label_and_its_mean_confidence():
    tr = FaceTracker()
    labels = ["mask"] * 6 + ["incorrect"] * 3 + ["no_mask"] * 2
    confs = [0.8, 0.9, 0.7, 0.9, 0.8, 0.7, 0.99, 0.99, 0.99, 0.99, 0.99]
    run(tr, [[det(100, 100, label=l, conf=c)] for l, c in zip(labels, confs)])
    assert tr.counts()["mask"] == 1
    ev = tr.flush()[0]
    assert ev.label == "mask" and ev.frames == 11
    assert ev.confidence == pytest.approx(sum(confs[:6]) / 6)


def test_open_track_counts_by_current_majority():
    tr = FaceTracker()
    run(tr, [[det(100, 100, label="no_mask")] for _ in range(3)])
    assert tr.counts() == {"mask": 0, "no_mask": 1, "incorrect": 0}
    run(tr, [[det(100, 100, label="mask")] for _ in range(5)], t0=0.3)
    assert tr.counts() == {"mask": 1, "no_mask": 0, "incorrect": 0} and tr.total == 1


def test_far_jump_and_size_change_start_a_new_track():
    tr = FaceTracker()
    run(tr, [[det(100, 100)] for _ in range(5)])
    faces = tr.update([det(600, 400)], 0.5)        # 500 px away in 0.1 s: someone else
    assert faces[0].track_id is None
    faces = tr.update([det(100, 100, size=200)], 0.6)   # 3x bigger at the same spot
    assert faces[0].track_id is None


def test_on_close_callback_and_track_ids_helper():
    got = []
    tr = FaceTracker(TrackerConfig(max_age_s=0.5), source="cam1", on_close=got.append)
    out = run(tr, [[det(100, 100), det(300, 100)] for _ in range(5)])
    assert track_ids(out[-1]) == {0: 1, 1: 2}
    assert track_ids(out[0]) == {}
    tr.update([], 2.0)
    assert len(got) == 2 and all(e.source == "cam1" for e in got)


def test_clock_going_back_and_bad_timestamps():
    tr = FaceTracker()
    tr.update([det(100, 100)], 10.0)
    tr.update([det(100, 100)], 9.0)       # treated as 10.0
    tr.update([det(100, 100)], 10.1)
    assert tr.total == 1
    with pytest.raises(ValueError):
        tr.update([], float("nan"))


def test_many_faces_stay_fast():
    import time
    tr = FaceTracker()
    t = time.perf_counter()
    for k in range(100):
        tr.update([det(30 + 70 * (i % 10) + k, 30 + 70 * (i // 10)) for i in range(50)], k / 25)
    assert time.perf_counter() - t < 5
    assert tr.total == 50


def test_walking_out_of_the_frame_closes_the_track():
    """A leaves through the right edge; 0.3 s later B comes in at that edge. With the frame
    size the tracker knows A is gone; without it, B would inherit A's track."""
    frames = [[det(500 + 20 * k, 200)] for k in range(9)]          # A: 500 -> 660, leaving
    frames += [[]]
    frames += [[det(650 - 20 * k, 205, label="no_mask")] for k in range(8)]   # B walks left
    without = FaceTracker()
    with_size = FaceTracker()
    for k, f in enumerate(frames):
        without.update(f, k / 10)
        with_size.update(f, k / 10, frame_size=(640, 480))
    without.flush()
    with_size.flush()
    assert without.total == 1
    assert with_size.total == 2
    assert [e.label for e in with_size.closed_events()] == ["mask", "no_mask"]


def _crowd(seed, fps=10.0, n_people=8, dur=60.0, jitter=3.0, miss=0.1, fp_rate=0.05):
    """People crossing a 640x480 view at random times, heights, sizes and directions, with
    box jitter, missed detections and one-frame false positives. -> (present, counted)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    w, h = 640, 480
    people = []
    for _ in range(n_people):
        t0 = rng.uniform(0, dur - 6)
        t1 = t0 + rng.uniform(1.5, 6)
        y, size = rng.uniform(80, 400), rng.uniform(50, 110)
        x0, x1 = (-size / 2, w + size / 2) if rng.random() < 0.5 else (w + size / 2, -size / 2)
        people.append((t0, t1, x0, x1, y, size))
    tr = FaceTracker()
    for k in range(int(dur * fps)):
        t = k / fps
        dets = []
        for t0, t1, x0, x1, y, s in people:
            if t0 <= t <= t1:
                cx = x0 + (t - t0) / (t1 - t0) * (x1 - x0) + rng.normal(0, jitter)
                cy = y + rng.normal(0, jitter)
                if -s / 4 < cx < w + s / 4 and rng.random() > miss:
                    dets.append(det(cx, cy, size=s))
        if rng.random() < fp_rate:
            dets.append(det(rng.uniform(0, w), rng.uniform(0, h), label="no_mask", conf=0.6))
        tr.update(dets, t, frame_size=(w, h))
    tr.flush()
    return len(people), tr.total


@pytest.mark.parametrize("fps", [10.0, 4.0])
def test_counting_error_on_a_simulated_crowd_stays_small(fps):
    """40 simulated minutes, 320 people: the count is off by at most 4 % in total
    (measured: ~2 % at 10 and 4 fps)."""
    present = counted_err = 0
    for seed in range(40):
        p, c = _crowd(seed, fps=fps)
        present += p
        counted_err += abs(p - c)
    assert present == 320
    assert counted_err / present <= 0.04, counted_err


def test_slow_detections_still_confirm_people():
    """Detections 1 s apart (a busy CPU) are longer than tentative_max_age_s (0.5 s): the tracker
    stretches its limits to the observed interval, so a person is still counted once."""
    from pipeline.people.tracker import FaceTracker
    from pipeline.records import Detection
    tr = FaceTracker()
    for k in range(6):
        tr.update([Detection(box=(100 + 2 * k, 100, 160 + 2 * k, 170), score=0.99, label="mask",
                             probs=(("mask", 0.9), ("no_mask", 0.05), ("incorrect", 0.05)))], float(k))
    tr.flush(10.0)
    assert tr.total == 1
