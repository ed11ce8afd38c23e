"""The webcam's frame path. No streamlit here.

make_frame_callback() builds the `video_frame_callback` handed to streamlit-webrtc. It runs in
the WebRTC worker thread: it detects, draws, and pushes one FrameResult per frame onto a
queue.Queue that the page drains. It never calls st.* and never waits on the page. The page's
side (live statistics, the rate-limited banner and spoken alert) is pipeline.ui.live, so the
alert cannot slow the frame rate.

MASKWATCH_FRAME_LOG=path makes every processed frame append a JSON line (for tests/benchmarks).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from pipeline.engine.cascade import main_pass_config
from pipeline.media.draw import annotate
from pipeline.settings import current as current_settings
from pipeline.engine.temporal import RealtimeConfig, realtime_frame_detector
from pipeline.records import Detection, count_labels, violation_count

log = logging.getLogger("maskwatch.webcam")

WEBCAM_REALTIME = RealtimeConfig(discovery_pieces=6, classify_every=10)
"""The webcam page's temporal-reuse settings: new faces are searched for in a sixth of the
pyramid per detected frame (a newcomer appears within 6 detected frames, 0.2-0.6 s) and each
face is re-classified every 10th frame into its smoothed label. Measured here on the
three-person clip: 17.3 ms per frame against 20.6 ms with the RealtimeConfig defaults."""


# ---------------------------------------------------------------- settings and results


@dataclass
class WebcamSettings:
    """Mutable settings shared between the page (writer) and the callback (reader).

    Attribute assignment is atomic in CPython, so the page changes them in place and the next
    frame uses them.
    detect_side: frames whose longer side is larger are scaled down to it before detection
        (boxes are scaled back; 0 = never). The MTCNN pyramid already starts at 12/min_face,
        so for a VGA camera this changes little; it bounds the work for HD cameras.
    min_face: smallest face side, in pixels of the full frame. This sets the detector's cost:
        faces in front of a webcam are large (120-250 px at 0.5-1 m in 640x480), so 60 (not the
        photo default 20) keeps them all and is several times cheaper.
    threads: torch intra-op threads for the frame path (per-thread setting).
    detect_every: run the detector on every n-th frame; the frames in between are drawn with
        the last detections (as the video page's every-n-th setting). 1 = every frame.
    realtime: use the temporal-reuse webcam mode (pipeline.engine.temporal: the faces of the last
        frame are refined by O-Net, new faces are searched for by a slice of the pyramid per
        frame (WEBCAM_REALTIME), labels are smoothed) instead of the full cascade on every detected frame. It is
        several times cheaper per frame; a new face appears at most a few frames late.
    stream_gap_s: in realtime mode, a gap this long between detected frames (a new stream, a
        stall) makes the temporal-reuse state start again with a full detection.
    """

    min_face: float = 60.0
    onet_threshold: float = 0.7
    detect_side: int = 640
    show_landmarks: bool = False
    blur: bool = False
    threads: int = 1
    classify: bool = True
    detect_every: int = 1
    realtime: bool = True
    stream_gap_s: float = 2.0


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, as pushed to the page's queue."""

    t: float                  # time.time() when the frame was done
    counts: dict
    faces: int
    ms: float                 # processing time of this frame
    frame_no: int
    detected: bool = True     # False: drawn with the previous frame's detections
    people: int | None = None  # people counted so far by the callback's PeopleCounter, if any

    @property
    def violations(self) -> int:
        return violation_count(self.counts)


def scale_detections(dets: list[Detection], s: float) -> list[Detection]:
    """Detections found on an image scaled by 1/s, mapped back to the full image."""
    if s == 1.0:
        return list(dets)
    return [replace(d, box=tuple(v * s for v in d.box),
                    landmarks=tuple((x * s, y * s) for x, y in d.landmarks)) for d in dets]


def _downscale(img: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    if not side or max(h, w) <= side:
        return img, 1.0
    import cv2
    s = max(h, w) / side
    small = cv2.resize(img, (max(12, round(w / s)), max(12, round(h / s))), interpolation=cv2.INTER_AREA)
    return small, w / small.shape[1]


def detect_frame(engine, img: np.ndarray, settings: WebcamSettings) -> list[Detection]:
    """Detections on a full-size RGB frame, detecting on a downscaled copy."""
    small, s = _downscale(img, settings.detect_side)
    cfg = main_pass_config(engine.with_config(onet_threshold=settings.onet_threshold),   # the real-time budget
                           min_face=max(6.0, settings.min_face / s))
    dets = engine.detect(small, cfg, classify=False)
    if settings.classify and dets:
        # classify on the full-size frame: sharper crops than the downscaled copy
        labelled = engine.classify(img, [d.box for d in scale_detections(dets, s)])
        return [replace(d, box=l.box, label=l.label, probs=l.probs)
                for d, l in zip(scale_detections(dets, s), labelled)]
    return scale_detections(dets, s)


class FrameLog:
    """Append one JSON line per processed frame to a file (thread-safe)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._fh = open(path, "a", buffering=1)

    def write(self, rec: dict) -> None:
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        with self._lock:
            self._fh.write(line)


def _put_latest(q: queue.Queue, item) -> None:
    """put_nowait; when the queue is full (page not reading), drop the oldest item."""
    try:
        q.put_nowait(item)
    except queue.Full:
        try:
            q.get_nowait()
        except queue.Empty:
            pass
        try:
            q.put_nowait(item)
        except queue.Full:
            pass


@dataclass
class CallbackState:
    """What the frame callback keeps between frames (one per stream; only its thread writes it).

    frames: frames processed; errors: frames that failed (returned unannotated);
    detections: the faces of the last detected frame (reused until the next detection);
    until_detect: frames left before the next detection (settings.detect_every);
    track_ids: person ids of those faces (a PeopleCounter was given), else None;
    realtime: the temporal detector of this stream (None outside realtime mode).
    """

    frames: int = 0
    errors: int = 0
    detections: list[Detection] = field(default_factory=list)
    until_detect: int = 0
    track_ids: list[int | None] | None = None
    realtime: Callable[[np.ndarray], list[Detection]] | None = None


def make_frame_callback(engine, results: queue.Queue, settings: WebcamSettings | None = None,
                        frame_log: str | None = None, people=None) -> Callable:
    """-> callback(av.VideoFrame) -> av.VideoFrame for streamlit-webrtc.

    Each call: detect (realtime mode: temporal reuse, see WebcamSettings.realtime; otherwise
    the full cascade on a downscaled copy), classify, draw (optionally blurred), push a
    FrameResult onto `results`, return the annotated frame (same size). A failing frame is
    returned unannotated and logged; the stream goes on. frame_log (default: env
    MASKWATCH_FRAME_LOG) appends {"t", "n", "faces", counts..., "ms"} per frame.

    people: an optional pipeline.people.counter.PeopleCounter (thread-safe) that tracks the faces of
    every detected frame; confirmed faces are drawn with their person id ('#2 mask 97%'; the
    frames in between reuse the last ids with the last boxes) and FrameResult.people holds its
    total.
    """
    import av

    settings = settings or WebcamSettings()
    path = frame_log if frame_log is not None else current_settings().frame_log
    flog = FrameLog(path) if path else None
    state = CallbackState()

    def find_faces(img: np.ndarray) -> list[Detection]:
        if not settings.realtime:
            state.realtime = None
            return detect_frame(engine, img, settings)
        if state.realtime is None:
            state.realtime = realtime_frame_detector(engine, settings, WEBCAM_REALTIME)
        return state.realtime(img)

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        t0, c0 = time.perf_counter(), time.thread_time()
        if settings.threads:
            import torch
            if torch.get_num_threads() != settings.threads:
                torch.set_num_threads(settings.threads)   # per-thread in torch's OpenMP pool
        img = frame.to_ndarray(format="rgb24")
        try:
            detected = state.until_detect <= 0 or not state.frames
            if detected:
                state.detections = find_faces(img)
                state.until_detect = max(1, int(settings.detect_every))
                state.track_ids = (people.update(state.detections, frame_size=(img.shape[1], img.shape[0]))
                                if people is not None else None)
            state.until_detect -= 1
            dets = state.detections
            out = annotate(img, dets, show_landmarks=settings.show_landmarks, blur=settings.blur,
                           track_ids=state.track_ids)
        except Exception as e:  # never break the stream
            state.errors += 1
            if state.errors <= 5:
                log.exception("webcam frame failed: %s", e)
            return frame
        state.frames += 1
        counts = count_labels(dets)
        ms = (time.perf_counter() - t0) * 1000
        total = people.total if people is not None else None
        res = FrameResult(time.time(), counts, len(dets), ms, state.frames, detected, total)
        _put_latest(results, res)
        if flog:
            flog.write({"t": round(res.t, 4), "n": res.frame_no, "faces": res.faces,
                        **counts, "ms": round(ms, 2), "det": int(detected),
                        **({"people": total} if total is not None else {}),
                        "cpu_ms": round((time.thread_time() - c0) * 1000, 2),
                        "w": img.shape[1], "h": img.shape[0]})
        return av.VideoFrame.from_ndarray(out, format="rgb24")

    callback.state = state          # for tests / diagnostics
    callback.settings = settings
    callback.results = results
    callback.people = people
    return callback
