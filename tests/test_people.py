"""PeopleCounter: tracker + optional store for a frame stream, as the pages use it."""
from __future__ import annotations

import threading
import time


from pipeline.people.counter import PeopleCounter
from pipeline.store import open_store
from pipeline.people.tracker import TrackerConfig
from pipeline.records import CLASSES, Detection


def det(cx, cy, label="mask", size=60.0):
    probs = tuple((c, 0.9 if c == label else 0.05) for c in CLASSES)
    return Detection(box=(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), score=0.99,
                     label=label, probs=probs)


def test_logging_is_off_by_default_and_counting_works(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MASKWATCH_DB_URL", raising=False)
    c = PeopleCounter(source="video", start=1_700_000_000.0)
    for k in range(10):
        ids = c.update([det(100 + 5 * k, 100), det(300, 100, "no_mask")], k / 10)
    assert ids == {0: 1, 1: 2}
    assert not c.logging and c.log_error is None
    assert c.status_text() == "people 2 · mask 1 · no mask 1 · incorrect 0"
    events = c.close()
    assert len(events) == 2 and events[0].first_seen == 1_700_000_000.0
    assert not (tmp_path / "maskwatch.db").exists()          # nothing written anywhere
    snap = c.snapshot()
    assert snap["frames"] == 10 and snap["faces"] == 20 and snap["people"] == 2


def test_logging_writes_people_and_close_flushes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    c = PeopleCounter(source="webcam", log=True, store_url=url,
                      config=TrackerConfig(max_age_s=0.5))
    t0 = time.time()
    for k in range(6):
        c.update([det(100, 100)], t0 + k * 0.1)
    c.update([], t0 + 2.0)                        # person 1 left: closed, queued for writing
    for k in range(6):
        c.update([det(200, 100, "incorrect")], t0 + 2.1 + k * 0.1)   # person 2 still open
    assert c.logging and c.total == 2
    c.close()                                     # open track closed, buffer written
    s = open_store(url)
    got = s.events()
    assert [(e.label, e.source, e.frames) for e in got] == [("mask", "webcam", 6), ("incorrect", "webcam", 6)]
    assert abs(got[0].first_seen.timestamp() - t0) < 1e-3
    s.close()
    assert c.close() == c.events                  # twice is fine


def test_broken_database_keeps_counting_without_logging():
    c = PeopleCounter(source="webcam", log=True, store_url="postgresql://mw:pw@127.0.0.1:1/nope")
    assert not c.logging and "Cannot reach the database" in c.log_error
    assert "not logged" in c.log_error and "pw@" not in c.log_error
    for k in range(5):
        c.update([det(100, 100)], 1000 + k * 0.1)
    assert c.total == 1 and len(c.close()) == 1


def test_update_from_another_thread_while_reading_counters():
    c = PeopleCounter(source="webcam")
    stop = threading.Event()

    def feed():                                   # one person jittering in place, however fast
        k = 0
        while not stop.is_set() or k < 50:
            c.update([det(100 + (k % 5), 100)])
            k += 1
    th = threading.Thread(target=feed)
    th.start()
    try:
        for _ in range(200):
            c.snapshot(), c.status_text()
    finally:
        stop.set()
        th.join()
    assert c.total == 1


class SlowClock:
    """A busy machine's clock for live frames: each frame takes `step` seconds, and the
    scheduled stalls (frame number -> seconds) make some frames come much later."""

    def __init__(self, step=0.04, stalls=None, t0=1_700_000_000.0):
        self.t, self.step, self.stalls, self.calls = t0, step, stalls or {}, 0

    def __call__(self):
        self.calls += 1
        self.t += self.step + self.stalls.get(self.calls, 0.0)
        return self.t


def test_slow_machine_does_not_count_a_person_twice():
    """Defect 10: one person in view the whole time, fed as a busy machine feeds a webcam:
    quick frames, then stalls of 2.5 to 9 s between two frames (longer than max_age_s), one of
    them followed by a frame where the detector missed the face. Counted once."""
    clock = SlowClock(stalls={20: 2.5, 40: 4.0, 41: 0.5, 60: 9.0})
    c = PeopleCounter(source="webcam", clock=clock)
    for k in range(80):
        c.update([] if k == 40 else [det(100 + (k % 5), 100)])   # frame 41 comes 4 s late, empty
    assert c.total == 1 and c.tracker.open_tracks == 1
    assert [e.frames for e in c.close()] == [79]


def test_person_who_left_is_still_closed_on_a_slow_machine():
    """Frames a second apart or more: a person gone for two frames and max_age_s is closed,
    and the next face is a second person; so is one gone across a long gap in the stream."""
    clock = SlowClock(step=1.2)
    c = PeopleCounter(source="webcam", clock=clock)
    for k in range(4):
        c.update([det(100, 100)])
    c.update([])
    assert c.tracker.open_tracks == 1                # one slow frame without the face: not yet
    c.update([])
    assert c.tracker.open_tracks == 0 and len(c.events) == 1   # two frames and 2.4 s: left
    for k in range(4):
        c.update([det(100, 100, "no_mask")])
    clock.stalls = {clock.calls + 1: 20.0}          # the stream stops for 20 s ...
    c.update([])                                     # ... and the face is gone: closed at once
    assert c.tracker.open_tracks == 0 and c.total == 2
    assert [e.label for e in c.events] == ["mask", "no_mask"]


def test_logging_toggle_while_streaming(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    c = PeopleCounter(source="video", start=1_700_000_000.0, store_url=url,
                      config=TrackerConfig(max_age_s=0.5))

    def person(t0, x):
        for k in range(5):
            c.update([det(x, 100)], t0 + k * 0.1)
        c.update([], t0 + 2.0)                        # left: closed

    person(0, 100)                                    # logging off: not written
    assert c.set_logging(True) and c.logging
    person(10, 200)                                   # written
    assert not c.set_logging(False)                   # off: the buffer is written first
    person(20, 300)                                   # not written
    c.close()
    assert c.total == 3 and c.logged == 1
    s = open_store(url)
    assert len(s.events()) == 1
    s.close()
    bad = PeopleCounter(store_url="postgresql://x@127.0.0.1:1/x")
    assert not bad.set_logging(True) and "Cannot reach" in bad.log_error


def test_flush_closes_people_in_view_and_keeps_counting(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    c = PeopleCounter(source="webcam", log=True, store_url=url)
    for k in range(4):
        c.update([det(100, 100)], 100 + k * 0.1)
    assert [e.frames for e in c.flush()] == [4]      # stream stopped: the person is written
    s = open_store(url)
    assert len(s.events()) == 1
    for k in range(4):                                # stream restarted
        c.update([det(100, 100)], 200 + k * 0.1)
    c.close()
    assert len(s.events()) == 2 and c.total == 2
    s.close()
