"""People from a frame stream, in two lines: the tracker plus, when asked, the event store.

    counter = PeopleCounter(source="webcam", log=False)       # once per stream / session
    counter.set_logging(st.toggle("Log people", value=False))  # a page's toggle, any time
    ids = counter.update(detections, frame_size=(w, h))        # every processed frame
    image = annotate(image, detections, track_ids=ids)         # '#3 mask 97%'
    counter.status_text()          # 'people 4 · mask 2 · no mask 1 · incorrect 1'
    counter.flush()                # stream stopped/paused: people in view are closed and written
    counter.close()                # end of stream: open tracks become people, buffer written

For a video file pass the frame's time in the file (seconds) and say when the file starts:
`PeopleCounter(source="video", start=time.time())`, then `counter.update(dets, frame.time)`.

Logging is off unless log=True. A database that cannot be used does not stop anything: the
counter keeps counting, `log_error` holds the message for the user, and nothing is written.
Thread-safe: the webcam callback thread may call update() while the page reads the counters.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

from pipeline.store import BackgroundWriter, EventStore, StoreConfig, StoreError, open_store
from pipeline.people.tracker import FaceTracker, TrackedFace, TrackerConfig, track_ids

from pipeline.records import CLASSES, LABEL_NAMES, Detection, PersonEvent

_log = logging.getLogger("maskwatch.people")

class PeopleCounter:
    """Tracker + optional store for one stream of frames.

    source: where the frames come from ('webcam', 'video', or a camera's name); stored with
        each person.
    log: write each person (times, label, confidence, frames; never an image) to the store.
    store_url: database URL (None: MASKWATCH_DB_URL, else SQLite in MASKWATCH_DATA_DIR).
    store: an already open EventStore to use instead of opening one (not closed by close()).
    start: None for live frames (timestamps are UNIX time; update() without one uses now);
        a UNIX time for a video file, whose frame times (seconds from the file's start) are
        added to it.
    on_person: optional callback for each PersonEvent as it closes (with start applied).
    clock: the clock of live frames (update() without a timestamp); time.time by default, a
        fake one in tests.
    """

    def __init__(self, source: str = "webcam", log: bool = False, store_url: str | None = None,
                 config: TrackerConfig | None = None, store: EventStore | None = None,
                 start: float | None = None, store_config: StoreConfig | None = None,
                 on_person=None, clock=time.time):
        self.source = source
        self.clock = clock
        self.start = start
        self.on_person = on_person
        self.tracker = FaceTracker(config, source=source, on_close=self._on_close)
        self.frames = 0
        self.faces = 0
        self.events: list[PersonEvent] = []
        self.log_error: str | None = None
        self._store: EventStore | None = None
        self._own_store = False
        self._writer: BackgroundWriter | None = None
        self._last_t: float | None = None
        self._closed = False
        self._written_before = 0
        self._lock = threading.RLock()
        self._store_url = store_url
        self._store_config = store_config
        self._given_store = store
        if log:
            self.set_logging(True)

    def set_logging(self, enabled: bool) -> bool:
        """Turn logging on or off while the stream runs (a page's toggle). People who close
        while it is on are written; turning it off writes what is buffered. Returns whether
        logging is on (False with log_error set when the database cannot be used)."""
        with self._lock:
            if enabled and self._writer is None and not self._closed:
                try:
                    store = self._given_store
                    if store is None:
                        store = open_store(self._store_url, self._store_config)
                        self._own_store = True
                    self._store = store
                    self._writer = store.writer()
                    self.log_error = None
                except StoreError as e:
                    self.log_error = f"{e} People are counted but not logged."
                    _log.warning("%s", self.log_error)
            elif not enabled and self._writer is not None:
                self._stop_writer()
            return self.logging

    def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            unsaved = writer.close()
            self._written_before += writer.written
            if unsaved:
                self.log_error = (f"{unsaved} people could not be saved: "
                                  f"{writer.last_error or 'the database failed'}")
                _log.warning("%s", self.log_error)
        if self._store is not None and self._own_store:
            self._store.close()
        self._store = None
        self._own_store = False

    # ----------------------------------------------------------------------------- frames
    def update(self, detections: Iterable[Detection], timestamp: float | None = None,
               frame_size: tuple[int, int] | None = None) -> dict[int, int]:
        """Track this frame's detections. Returns {index in detections: person id} for the
        confirmed faces, as draw.annotate(track_ids=...) takes. frame_size: (width, height),
        optional but better: someone walking out of the frame is closed at once."""
        return track_ids(self.track(detections, timestamp, frame_size))

    def track(self, detections: Iterable[Detection], timestamp: float | None = None,
              frame_size: tuple[int, int] | None = None) -> list[TrackedFace]:
        """Like update(), but returns one TrackedFace per detection."""
        dets = list(detections)
        with self._lock:
            t = self._time(timestamp)
            self._last_t = t
            self.frames += 1
            self.faces += len(dets)
            return self.tracker.update(dets, t, frame_size)

    def _time(self, timestamp: float | None) -> float:
        if timestamp is None:
            return self.clock() if self.start is None else (self._last_t or self.start)
        return float(timestamp) if self.start is None else self.start + float(timestamp)

    def _on_close(self, event: PersonEvent) -> None:
        if len(self.events) < 100_000:          # a long-running camera: keep memory bounded
            self.events.append(event)
        writer = self._writer
        if writer is not None:
            try:
                writer.add(event)
            except RuntimeError:    # closed by set_logging(False) meanwhile
                pass
        if self.on_person is not None:
            self.on_person(event)

    # ---------------------------------------------------------------------------- counters
    def counts(self) -> dict[str, int]:
        """People counted so far per class (confirmed, open and closed)."""
        return self.tracker.counts()

    @property
    def total(self) -> int:
        return self.tracker.total

    @property
    def logging(self) -> bool:
        """True when people are being written to the store."""
        return self._writer is not None and not self._writer.closed

    @property
    def store_name(self) -> str | None:
        """The store's URL, password hidden, when logging."""
        return self._store.display_url if self._store is not None else None

    @property
    def logged(self) -> int:
        """People written to the store so far."""
        return self._written_before + (self._writer.written if self._writer is not None else 0)

    @property
    def write_error(self) -> str | None:
        """The last failed write (the database went away after it was opened), if any."""
        return self._writer.last_error if self._writer is not None else None

    def status_text(self) -> str:
        c = self.counts()
        return f"people {self.total} · " + " · ".join(f"{LABEL_NAMES[k]} {c[k]}" for k in CLASSES)

    def snapshot(self) -> dict:
        """Counters for a UI: frames, faces, people, per class, logging state."""
        return {"frames": self.frames, "faces": self.faces, "people": self.total,
                "counts": self.counts(), "logging": self.logging, "logged": self.logged,
                "log_error": self.log_error or self.write_error}

    # ------------------------------------------------------------------------------- end
    def flush(self) -> list[PersonEvent]:
        """The stream paused or stopped (webcam Stop): everyone in view now counts as having
        left, and buffered people are written. The counter stays usable (a restarted stream
        goes on counting). Returns the people this closed."""
        with self._lock:
            out = self.tracker.flush(self._last_t)
            writer = self._writer
        if writer is not None:
            writer.flush()
        return out

    def close(self) -> list[PersonEvent]:
        """End of the stream: every open track becomes a person, buffered events are written,
        the writer stops. Returns all people of this stream. Safe to call twice."""
        with self._lock:
            if self._closed:
                return list(self.events)
            self._closed = True
            self.tracker.flush(self._last_t)
            self._stop_writer()
        return list(self.events)

    def __enter__(self) -> "PeopleCounter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
