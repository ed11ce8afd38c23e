"""`python -m pipeline watch SOURCE`: a door camera without a browser.

Reads a video file (decoded as a stream by pipeline.streams.video.DecodedFrames, the decoding loop the
Video page uses too: corrupt packets are skipped and counted) or a camera (an integer: OpenCV
device index), runs the detector and the tracker on every Nth frame, and logs each person to the
store. A status line (frames, fps, people per class) goes to stderr. SIGINT (Ctrl-C) or SIGTERM
stops it cleanly: open tracks become people and buffered events are written before it exits.
A source with no decodable frame is an error (exit 1), as is one that cannot be opened.
"""
from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.engine.cascade import main_pass_config
from pipeline.engine.config import DETECTOR_WEIGHTS
from pipeline.people.counter import PeopleCounter
from pipeline.people.tracker import TrackerConfig
from pipeline.records import PersonEvent
from pipeline.records import CLASSES
from pipeline.streams.video import DecodedFrames, VideoError, open_video

log = logging.getLogger("maskwatch.watch")


class WatchError(RuntimeError):
    """The source cannot be read. str(err) is the user-facing reason."""


@dataclass(frozen=True)
class WatchConfig:
    """Settings of one watch run.

    source: a video file path, or a camera device index as text ('0').
    source_name: stored with each person (default: 'camera<N>' or the file's name).
    db_url: database URL (None: MASKWATCH_DB_URL, else SQLite in MASKWATCH_DATA_DIR).
    log: write people to the store (False: count only).
    every: process every Nth frame (others are skipped, not decoded for cameras).
    min_face: smallest face side in pixels (None: the detector's default).
    device: auto, cpu or cuda.
    detector: the face detector's weights, "camera" (default: fine-tuned for grainy, blurred
        frames as well) or "photo" (pipeline.engine.config.DETECTOR_WEIGHTS).
    tracker: tracker settings (confirmation frames, close-after seconds, ...).
    start: UNIX time of a file's first frame (None: when watching starts).
    status_interval_s: how often the status line is refreshed.
    json_events: also print each person as a JSON line on stdout.
    """

    source: str
    source_name: str | None = None
    db_url: str | None = None
    log: bool = True
    every: int = 1
    min_face: float | None = None
    device: str = "auto"
    detector: str = "camera"
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    start: float | None = None
    status_interval_s: float = 1.0
    json_events: bool = False

    @property
    def is_camera(self) -> bool:
        return self.source.strip().isdigit()

    def name(self) -> str:
        if self.source_name:
            return self.source_name
        return f"camera{int(self.source)}" if self.is_camera else Path(self.source).stem or "video"


@dataclass
class WatchResult:
    frames: int = 0
    processed: int = 0
    people: int = 0
    counts: dict = field(default_factory=lambda: {c: 0 for c in CLASSES})
    logged: int = 0
    log_error: str | None = None
    frames_failed: int = 0          # packets or frames of a file that could not be decoded
    stopped: bool = False
    seconds: float = 0.0
    events: list = field(default_factory=list)


# ---------------------------------------------------------------------------- frame sources
class FileFrames:
    """(frame index, seconds from the file's start, RGB uint8) for every Nth decodable frame of a
    video file, decoded as a stream (one frame in memory at a time) by video.DecodedFrames:
    a corrupt packet is skipped and counted in `failed`, and reading goes on.
    Raises WatchError when the file cannot be opened."""

    def __init__(self, path: str, every: int = 1):
        if not Path(path).is_file():
            raise WatchError(f"{path}: no such video file")
        try:
            self.container, stream = open_video(path)
        except VideoError as e:
            raise WatchError(f"{path}: {e}") from None
        self.decoded = DecodedFrames(self.container, stream)
        self.rate = float(stream.average_rate or stream.guessed_rate or 25)
        self._frames = self._read(max(1, int(every)))

    def _read(self, every: int) -> Iterator[tuple[int, float, np.ndarray]]:
        k = -1
        for frame in self.decoded:
            k += 1
            if k % every:
                continue
            rgb = self.decoded.to_rgb(frame)
            if rgb is None:
                continue
            t = frame.time if frame.time is not None else k / self.rate
            yield k, float(t), rgb

    @property
    def failed(self) -> int:
        return self.decoded.failed

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, float, np.ndarray]:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()
        self.container.close()


def file_frames(path: str, every: int = 1) -> FileFrames:
    """See FileFrames."""
    return FileFrames(path, every)


def camera_frames(index: int, every: int = 1, stop: threading.Event | None = None,
                  max_failures: int = 50) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, UNIX time, RGB uint8) from an OpenCV camera, every Nth frame (the others
    are grabbed, not decoded)."""
    import cv2
    try:
        cap = cv2.VideoCapture(index)
    except (cv2.error, OverflowError, ValueError):   # e.g. an index beyond a C int
        raise WatchError(f"cannot open camera {index}: there is no such camera (cameras are "
                         "numbered 0, 1, 2, ...)") from None
    if not cap.isOpened():
        raise WatchError(f"cannot open camera {index} (is it connected, and not used by another "
                         "program?)")
    try:
        k = -1
        failures = 0
        while not (stop is not None and stop.is_set()):
            k += 1
            if k % every:
                if not cap.grab():
                    failures += 1
                continue
            ok, bgr = cap.read()
            if not ok or bgr is None:
                failures += 1
                if failures >= max_failures:
                    log.warning("camera %d: no frames any more; stopping", index)
                    return
                time.sleep(0.05)
                continue
            failures = 0
            yield k, time.time(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


# -------------------------------------------------------------------------------- status
class _Status:
    def __init__(self, stream, interval_s: float):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval_s if self.tty else max(interval_s, 0.2)
        self.last = 0.0
        self.width = 0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


def status_line(frames: int, processed: int, fps: float, counter: PeopleCounter,
                logging_on: bool | None = None) -> str:
    """logging_on: whether this run logs people (default: whether the counter logs now; pass it
    for the line after counter.close(), when the writer is gone but the people were saved)."""
    c = counter.counts()
    on = counter.logging if logging_on is None else logging_on
    failing = counter.write_error or (counter.log_error if on else None)
    db = ("db off" if not on else
          f"db {counter.logged} saved" + (" (write failing)" if failing else ""))
    return (f"frames {frames} · processed {processed} · {fps:.1f} fps · people {counter.total} "
            f"(mask {c['mask']}, no_mask {c['no_mask']}, incorrect {c['incorrect']}) · {db}")


# ---------------------------------------------------------------------------------- run
def watch(cfg: WatchConfig, engine=None, stderr=None, stdout=None,
          stop: threading.Event | None = None) -> WatchResult:
    """Run until the source ends or `stop` is set (SIGINT/SIGTERM set it when this runs in the
    main thread). Raises WatchError when the source cannot be opened."""
    stderr = stderr or sys.stderr
    stdout = stdout or sys.stdout
    stop = stop or threading.Event()
    if cfg.every < 1:
        raise ValueError("every must be at least 1")
    name = cfg.name()
    camera = cfg.is_camera
    frames = camera_frames(int(cfg.source), cfg.every, stop) if camera else file_frames(cfg.source, cfg.every)
    counter = None
    try:     # start-up: open the source, load the models, open the store
        first = next(frames, None) if not stop.is_set() else None   # opens a camera: fail early
        if first is None and not stop.is_set():
            failed = getattr(frames, "failed", 0)
            raise WatchError(f"camera {int(cfg.source)}: it gave no frame" if camera else
                             f"{cfg.source}: the video has no frame that could be decoded"
                             + (f" ({failed} unreadable packets)" if failed else ""))
        if engine is None:
            from pipeline.engine.mask_detector import MaskDetector
            engine = MaskDetector.load(device=cfg.device, detector=cfg.detector)
        # a stream: the main pass only (DetectorConfig.small_face_below), as the webcam; a
        # --min-face given is a plain pyramid from it
        det_cfg = main_pass_config(engine.detector.config, cfg.min_face or None)

        def on_person(ev: PersonEvent) -> None:
            if cfg.json_events:
                stdout.write(json.dumps({"person": ev.track_id, "source": ev.source, "label": ev.label,
                                         "confidence": round(ev.confidence, 4), "frames": ev.frames,
                                         "first_seen": ev.first_seen_utc().isoformat(),
                                         "last_seen": ev.last_seen_utc().isoformat()}) + "\n")
                stdout.flush()

        start = None if camera else (cfg.start if cfg.start is not None else time.time())
        counter = PeopleCounter(source=name, log=cfg.log, store_url=cfg.db_url, config=cfg.tracker,
                                start=start, on_person=on_person)
    except BaseException:     # WatchError, a failed model load, Ctrl-C while starting
        if counter is not None:
            counter.close()
        frames.close()
        raise
    if counter.log_error:
        stderr.write(f"warning: {counter.log_error}\n")
    elif counter.logging:
        stderr.write(f"logging people from {name!r} to {counter.store_name}\n")
    logging_on = counter.logging
    status = _Status(stderr, cfg.status_interval_s)
    res = WatchResult()
    t0 = time.monotonic()
    old = install_signals(stop)
    try:
        item = first
        while item is not None and not stop.is_set():
            k, t, image = item
            dets = engine.detect(image, det_cfg)
            counter.update(dets, t, (image.shape[1], image.shape[0]))
            res.frames = k + 1
            res.processed += 1
            elapsed = time.monotonic() - t0
            status.show(status_line(res.frames, res.processed, res.processed / max(elapsed, 1e-6),
                                    counter, logging_on))
            item = next(frames, None)
    except KeyboardInterrupt:     # a second Ctrl-C during a frame: still end cleanly
        stop.set()
    finally:
        restore_signals(old)
        res.stopped = stop.is_set()
        try:
            frames.close()
        except Exception:
            pass
        res.events = counter.close()
        res.seconds = time.monotonic() - t0
        res.frames_failed = getattr(frames, "failed", 0)
        status.show(status_line(res.frames, res.processed, res.processed / max(res.seconds, 1e-6),
                                counter, logging_on), force=True)
        status.end()
        res.people = counter.total
        res.counts = counter.counts()
        res.logged = counter.logged
        res.log_error = counter.log_error or counter.write_error
    return res


def install_signals(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None
    presses = {"n": 0}

    def handler(signum, _frame):
        presses["n"] += 1
        stop.set()
        if signum == signal.SIGINT and presses["n"] >= 2:
            raise KeyboardInterrupt
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    return old


def restore_signals(old) -> None:
    for sig, h in (old or {}).items():
        try:
            signal.signal(sig, h)
        except (ValueError, OSError):
            pass


def add_parser(sub, min_face_type) -> None:
    """The `watch` subcommand's arguments (called by cli.build_parser)."""
    w = sub.add_parser("watch", help="count people on a video file or camera and log them",
                       description="Detect and track faces on a video file or a camera, count "
                                   "each person once, and log people to the store (times, "
                                   "label, confidence; never an image). Ctrl-C stops cleanly.")
    w.add_argument("source", metavar="SOURCE", help="video file, or camera device index (0, 1, ...)")
    w.add_argument("--source-name", metavar="NAME",
                   help="name stored with each person (default: camera<N> or the file name)")
    w.add_argument("--db", metavar="URL", help="database URL (default: MASKWATCH_DB_URL, else "
                   "SQLite in MASKWATCH_DATA_DIR or ./data)")
    w.add_argument("--no-log", action="store_true", help="count only; write nothing")
    w.add_argument("--every", type=_positive_int, default=1, metavar="N",
                   help="process every Nth frame (default 1)")
    w.add_argument("--min-face", type=min_face_type, default=None,
                   help="smallest face side to look for, in pixels (default 20)")
    w.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    w.add_argument("--detector", choices=tuple(DETECTOR_WEIGHTS), default=WatchConfig.detector,
                   help=f"face detector weights: camera (grainy, blurred frames) or photo (default {WatchConfig.detector})")
    w.add_argument("--confirm", type=_positive_int, default=TrackerConfig.min_hits, metavar="FRAMES",
                   help=f"frames a face must be seen to count as a person (default {TrackerConfig.min_hits})")
    w.add_argument("--close-after", type=_seconds, default=TrackerConfig.max_age_s, metavar="S",
                   help=f"seconds unseen after which a person has left (default {TrackerConfig.max_age_s})")
    w.add_argument("--start", type=_seconds, default=None, metavar="UNIX_TIME",
                   help="for a file: UNIX time of its first frame (default: now)")
    w.add_argument("--json", action="store_true", help="print each person as a JSON line on stdout")
    w.add_argument("--status-interval", type=_seconds, default=1.0, help=__import__("argparse").SUPPRESS)


def _positive_int(text: str) -> int:
    import argparse
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _seconds(text: str) -> float:
    import argparse
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError("expected a non-negative number of seconds")
    return v


def cmd_watch(args) -> int:
    """CLI entry: 0 when the source ended or was stopped, 1 when it could not be opened."""
    cfg = WatchConfig(source=args.source, source_name=args.source_name, db_url=args.db,
                      log=not args.no_log, every=args.every, min_face=args.min_face,
                      device=args.device, detector=args.detector, start=args.start, json_events=args.json,
                      status_interval_s=args.status_interval,
                      tracker=TrackerConfig(min_hits=args.confirm, max_age_s=max(args.close_after, 0.01)))
    try:
        res = watch(cfg)
    except WatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:     # Ctrl-C while the source, the models or the store open
        print("stopped before watching began: nothing was counted", file=sys.stderr)
        return 130
    how = "stopped" if res.stopped else "source ended"
    skipped = (f" ({res.frames_failed} unreadable packet{'s' if res.frames_failed != 1 else ''} "
               "skipped)" if res.frames_failed else "")
    print(f"{how}: {res.processed} of {res.frames} frames{skipped} in {res.seconds:.1f} s; people "
          f"{res.people} (" + ", ".join(f"{c} {res.counts[c]}" for c in CLASSES) + f"); "
          f"saved {res.logged}" + (f"; not logged: {res.log_error}" if res.log_error else ""),
          file=sys.stderr)
    return 0
