"""Faces across frames -> people: a small multi-object tracker for the detector's output.

Each frame's detections are associated with the open tracks by a cost that mixes box overlap
and motion: every track predicts where its face is now (constant velocity of the box centre,
in pixels per second, from the frame timestamps), and the cost of pairing it with a detection
is `1 - IoU(predicted, detection) + centre_weight * centre distance / face size`. Pairs that are
too far apart, or whose sizes differ too much, are not allowed. The assignment is solved by the
Hungarian algorithm (`scipy.optimize.linear_sum_assignment`).

A track becomes a person once it has been matched in `min_hits` frames (so a one-frame false
positive is never counted). It is closed only when it has been missing from `max_age_frames`
processed frames AND unseen for `max_age_s` seconds of frame time (or missing from any frame
after a long gap, `max_gap_s`; or walked out of view). Time alone never ends a track: on a
busy machine frames come late and irregularly, and a face that is in every processed frame
must stay one person however long the stall between two frames was. A closed, confirmed
track is one `PersonEvent`: when the face was first and last seen, the majority label over its
life and the mean confidence of that label, its number of frames, and the source. Nothing
about the face itself (no image, no crop, no box) is kept in the event.

Timestamps are seconds on any clock that only goes forward (frame pts for a video file,
time.time() for a camera). PersonEvent times are on the same clock; use UNIX time (or add a
UNIX start time to the pts) when the events go into the store.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from pipeline.engine.boxes import box_iou
from pipeline.records import CLASSES, Detection, PersonEvent

_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings.

    min_hits: frames in which a track must be matched before it is a person (confirmed).
    max_age_s: a track unseen for longer than this (seconds of frame time) AND missing from at
        least max_age_frames processed frames is closed; a person who leaves and comes back
        after this counts twice.
    max_age_frames: ... the frames half of that rule. Ageing by frames as well as by time keeps
        a slow or stalling machine (few frames, far apart) from ending, and so counting twice,
        someone who is still in view: the frame after a stall either shows them (matched, not
        missing) or is one missed frame, not yet enough.
    max_gap_s: a track missing from a frame after being unseen this long is closed even below
        max_age_frames (a real gap in the stream, then the face is gone). None: 3 * max_age_s.
    tentative_max_age_s: a not yet confirmed track unseen for longer than this and missing from
        a frame is dropped (shorter than max_age_s, so that flickering false positives do not
        add up to a person).
    min_iou: a pair is allowed when the IoU of the predicted box and the detection reaches
        this ...
    max_centre_dist: ... or when the centre distance, in face sizes (sqrt(w*h) of the track's
        box), is at most this.
    max_speed: ... plus this many face sizes per second since the track was last seen (half of
        it once the track has a velocity), so that fast faces at low frame rates still match.
    max_size_ratio: a pair whose box sides differ by more than this factor is never allowed.
    centre_weight: weight of the normalised centre distance in the cost.
    velocity_smoothing: weight of the newest velocity measurement (exponential smoothing).
    min_velocity_dt: a velocity is measured over at least this many seconds (from the centre
        the last measurement ended at). Over shorter spans the box's jitter of a few pixels
        dominates: frames 1 ms apart made a still face move at 20,000 px/s, and the next frame
        after a 10 ms stall was predicted hundreds of pixels away and started a new person.
    max_predict_s: the constant-velocity prediction is extrapolated for at most this long.
    exit_margin: with the frame size given to update(), a track whose predicted box lies
        outside the frame by more than this fraction of its size is closed (walked out of view).
    min_score: detections with a lower face score are ignored.
    labels: the labels counted per class (a detection's label outside this tuple is ignored
        for the majority vote).
    """

    min_hits: int = 3
    max_age_s: float = 2.0
    max_age_frames: int = 2
    max_gap_s: float | None = None
    tentative_max_age_s: float = 0.5
    min_iou: float = 0.05
    max_centre_dist: float = 1.0
    max_speed: float = 3.0
    max_size_ratio: float = 2.0
    centre_weight: float = 0.5
    velocity_smoothing: float = 0.6
    min_velocity_dt: float = 0.04
    max_predict_s: float = 1.0
    exit_margin: float = 0.25
    min_score: float = 0.0
    labels: tuple[str, ...] = CLASSES

    def __post_init__(self):
        if self.min_hits < 1:
            raise ValueError("min_hits must be at least 1")
        if not (self.max_age_s > 0 and math.isfinite(self.max_age_s)):
            raise ValueError("max_age_s must be a positive number of seconds")
        if self.max_age_frames < 1:
            raise ValueError("max_age_frames must be at least 1")
        if self.max_gap_s is not None and not (self.max_gap_s > 0 and math.isfinite(self.max_gap_s)):
            raise ValueError("max_gap_s must be a positive number of seconds (or None)")
        if not (0 < self.velocity_smoothing <= 1):
            raise ValueError("velocity_smoothing must be in (0, 1]")
        if not (self.min_velocity_dt >= 0 and math.isfinite(self.min_velocity_dt)):
            raise ValueError("min_velocity_dt must be a number of seconds, 0 or more")


@dataclass(frozen=True)
class TrackedFace:
    """One detection of a frame and the track it belongs to.

    track_id: the person number (1, 2, ... in order of confirmation), or None while the track
        is not yet confirmed.
    label: the track's majority label so far (may differ from detection.label in one frame).
    """

    detection: Detection
    track_id: int | None
    confirmed: bool
    hits: int
    label: str


@dataclass
class _Track:
    key: int
    box: np.ndarray                 # last matched box, x1 y1 x2 y2
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # centre px / s
    has_velocity: bool = False
    anchor: tuple | None = None     # (centre, time) the next velocity measurement starts from
    hits: int = 1
    missed: int = 0                 # processed frames since it was last matched
    person_id: int | None = None
    label_counts: dict = field(default_factory=dict)
    label_conf: dict = field(default_factory=dict)

    def predict(self, t: float, max_predict_s: float) -> np.ndarray:
        dt = min(max(t - self.last_seen, 0.0), max_predict_s)
        shift = self.velocity * dt
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])

    def add_label(self, det: Detection, labels: Sequence[str]) -> None:
        if det.label in labels:
            self.label_counts[det.label] = self.label_counts.get(det.label, 0) + 1
            self.label_conf[det.label] = self.label_conf.get(det.label, 0.0) + det.confidence

    def majority(self, labels: Sequence[str]) -> tuple[str, float]:
        """(label, mean confidence of that label); ties go to the higher mean confidence,
        then to the order of `labels`. ("", 0.0) when no frame was labelled."""
        if not self.label_counts:
            return "", 0.0
        best = max(self.label_counts, key=lambda c: (self.label_counts[c],
                                                     self.label_conf[c] / self.label_counts[c],
                                                     -labels.index(c)))
        return best, self.label_conf[best] / self.label_counts[best]


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _size(box: np.ndarray) -> float:
    return math.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6))


class FaceTracker:
    """Stable ids for faces across frames, and people counted from them.

    update(detections, timestamp) -> one TrackedFace per detection, in input order.
    flush(timestamp) closes every open track (end of a video, or stopping a camera).
    closed_events() returns the people closed since the last call (the newest 100,000 are
    kept when nobody asks); on_close, when given, is
    called with each PersonEvent as it closes (from the thread that called update/flush).
    counts() / total: people counted so far (confirmed tracks, open and closed) per label.

    Thread-safe: update, flush and the counters may be called from different threads.
    """

    def __init__(self, config: TrackerConfig | None = None, source: str = "",
                 on_close: Callable[[PersonEvent], None] | None = None):
        self.config = config or TrackerConfig()
        self.source = source
        self.on_close = on_close
        self._tracks: list[_Track] = []
        self._next_key = 1
        self._next_person = 1
        self._last_t: float | None = None
        self._interval: float | None = None   # smoothed time between update() calls
        self._closed: deque[PersonEvent] = deque(maxlen=100_000)
        self._closed_counts = {c: 0 for c in self.config.labels}
        self._closed_unlabelled = 0
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------- frames
    def update(self, detections: Iterable[Detection], timestamp: float,
               frame_size: tuple[int, int] | None = None) -> list[TrackedFace]:
        """Associate one frame's detections (at `timestamp` seconds) with the tracks.

        frame_size: (width, height) of the frame, optional. With it, a track whose predicted
        box has moved out of the frame (by exit_margin of its size) is closed at once: the
        person walked out of view, and a face entering at that edge just after is someone else.
        """
        cfg = self.config
        dets = list(detections)
        t = float(timestamp)
        if not math.isfinite(t):
            raise ValueError("timestamp must be a finite number of seconds")
        with self._lock:
            if self._last_t is not None and t < self._last_t:
                t = self._last_t        # a clock that went back: treat as the same instant
            if self._last_t is not None and t > self._last_t:
                dt = t - self._last_t
                self._interval = dt if self._interval is None else 0.7 * self._interval + 0.3 * dt
            self._last_t = t
            self._expire(t, frame_size)
            keep = [k for k, d in enumerate(dets) if d.score >= cfg.min_score]
            boxes = np.array([dets[k].box for k in keep], dtype=np.float64).reshape(-1, 4)
            pairs = self._associate(boxes, t)
            out: dict[int, TrackedFace] = {}
            matched_dets = set()
            for ti, di in pairs:
                tr = self._tracks[ti]
                det = dets[keep[di]]
                self._match(tr, boxes[di], det, t)
                matched_dets.add(di)
                out[keep[di]] = self._face(tr, det)
            self._age_unmatched({self._tracks[ti].key for ti, _ in pairs}, t)
            for di in range(len(keep)):
                if di in matched_dets:
                    continue
                det = dets[keep[di]]
                tr = _Track(key=self._next_key, box=boxes[di].copy(), first_seen=t, last_seen=t)
                self._next_key += 1
                tr.add_label(det, cfg.labels)
                self._confirm_if_ready(tr)
                self._tracks.append(tr)
                out[keep[di]] = self._face(tr, det)
            return [out[k] if k in out else TrackedFace(d, None, False, 0, d.label)
                    for k, d in enumerate(dets)]

    def flush(self, timestamp: float | None = None) -> list[PersonEvent]:
        """Close every open track now. Returns the PersonEvents this produced (confirmed ones);
        they are also passed to on_close and queued for closed_events(). timestamp, when given,
        is the time of the stop (tracks are closed at their own last_seen either way)."""
        with self._lock:
            if timestamp is not None and math.isfinite(timestamp):
                self._last_t = max(self._last_t or timestamp, timestamp)
            out = [ev for tr in list(self._tracks) if (ev := self._close(tr)) is not None]
            self._tracks.clear()
            return out

    def closed_events(self) -> list[PersonEvent]:
        """People closed since the last call (each event is returned once)."""
        with self._lock:
            out = list(self._closed)
            self._closed.clear()
            return out

    # ------------------------------------------------------------------------- counters
    def counts(self) -> dict[str, int]:
        """People counted so far per label: closed events plus open confirmed tracks (by their
        current majority label). Every label present, zero when none."""
        with self._lock:
            out = dict(self._closed_counts)
            for tr in self._tracks:
                if tr.person_id is not None:
                    label, _ = tr.majority(self.config.labels)
                    if label in out:
                        out[label] += 1
            return out

    @property
    def total(self) -> int:
        """People counted so far (confirmed tracks, open and closed, labelled or not)."""
        with self._lock:
            return self._next_person - 1

    @property
    def open_tracks(self) -> int:
        with self._lock:
            return sum(1 for tr in self._tracks if tr.person_id is not None)

    # ------------------------------------------------------------------------- internals
    def _face(self, tr: _Track, det: Detection) -> TrackedFace:
        label, _ = tr.majority(self.config.labels)
        return TrackedFace(det, tr.person_id, tr.person_id is not None, tr.hits, label)

    def _associate(self, boxes: np.ndarray, t: float) -> list[tuple[int, int]]:
        cfg = self.config
        if not self._tracks or not len(boxes):
            return []
        pred = np.stack([tr.predict(t, cfg.max_predict_s) for tr in self._tracks])
        iou = box_iou(pred, boxes)
        pc = np.stack([_centre(p) for p in pred])
        dc = np.stack([_centre(b) for b in boxes])
        psize = np.array([_size(p) for p in pred])
        dsize = np.array([_size(b) for b in boxes])
        dist = np.linalg.norm(pc[:, None, :] - dc[None, :, :], axis=2) / psize[:, None]
        ratio = np.maximum(psize[:, None] / dsize[None, :], dsize[None, :] / psize[:, None])
        # how far a face may be from where its track predicts it: a base distance, plus room for
        # speed (a new track has no velocity yet; a moving one may turn or speed up) that grows
        # with the time since the track was last seen, so that slow frame rates still associate
        dt = np.array([min(max(t - tr.last_seen, 0.0), cfg.max_predict_s) for tr in self._tracks])
        speed = np.array([cfg.max_speed * (0.5 if tr.has_velocity else 1.0) for tr in self._tracks])
        reach = cfg.max_centre_dist + speed * dt
        allowed = ((iou >= cfg.min_iou) | (dist <= reach[:, None])) & (ratio <= cfg.max_size_ratio)
        cost = np.where(allowed, 1.0 - iou + cfg.centre_weight * dist, _FORBIDDEN)
        from scipy.optimize import linear_sum_assignment   # imported on first use (slow import)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]

    def _match(self, tr: _Track, box: np.ndarray, det: Detection, t: float) -> None:
        if tr.anchor is None:                   # first match: measure from the first box
            tr.anchor = (_centre(tr.box), tr.last_seen)
        anchor_centre, anchor_t = tr.anchor
        dt = t - anchor_t
        if dt > 1e-6 and dt >= self.config.min_velocity_dt:
            v = (_centre(box) - anchor_centre) / dt
            a = self.config.velocity_smoothing
            tr.velocity = v if not tr.has_velocity else a * v + (1 - a) * tr.velocity
            tr.has_velocity = True
            tr.anchor = (_centre(box), t)
        tr.box = box.copy()
        tr.last_seen = t
        tr.missed = 0
        tr.hits += 1
        tr.add_label(det, self.config.labels)
        self._confirm_if_ready(tr)

    def _confirm_if_ready(self, tr: _Track) -> None:
        if tr.person_id is None and tr.hits >= self.config.min_hits:
            tr.person_id = self._next_person
            self._next_person += 1

    def _too_old(self, tr: _Track, t: float) -> bool:
        """Whether a track has aged out at time t, after tr.missed frames without it.

        Both frames and time: a track in every processed frame (missed == 0) never ages, however
        far apart the frames are."""
        cfg = self.config
        if tr.missed < 1:
            return False
        unseen = t - tr.last_seen
        # When detections come slower than the configured ages (a busy CPU, detecting every n-th
        # frame), the limits also stretch to 1.5 observed intervals.
        reach = 1.5 * (self._interval or 0.0)
        if tr.person_id is None:
            limit = max(min(cfg.tentative_max_age_s, cfg.max_age_s), min(reach, cfg.max_age_s))
            return unseen > limit
        limit = max(cfg.max_age_s, reach)
        gap = max(cfg.max_gap_s if cfg.max_gap_s is not None else 3 * cfg.max_age_s, limit)
        return (tr.missed >= cfg.max_age_frames and unseen > limit) or unseen > gap

    def _expire(self, t: float, frame_size=None) -> None:
        """Before association: close the tracks that have aged out (by the frames they already
        missed) or walked out of view."""
        keep = []
        for tr in self._tracks:
            unseen = t - tr.last_seen
            if self._too_old(tr, t) or (frame_size is not None and unseen > 0
                                        and self._left_view(tr, t, frame_size)):
                self._close(tr)
            else:
                keep.append(tr)
        self._tracks = keep

    def _age_unmatched(self, matched: set[int], t: float) -> None:
        """After association: the tracks missing from this frame have missed one more frame;
        those that have now aged out are closed."""
        keep = []
        for tr in self._tracks:
            if tr.key not in matched:
                tr.missed += 1
                if self._too_old(tr, t):
                    self._close(tr)
                    continue
            keep.append(tr)
        self._tracks = keep

    def _left_view(self, tr: _Track, t: float, frame_size) -> bool:
        if not tr.has_velocity:
            return False
        w, h = frame_size
        p = tr.predict(t, self.config.max_predict_s)
        m = self.config.exit_margin * _size(tr.box)
        return p[0] > w + m or p[2] < -m or p[1] > h + m or p[3] < -m

    def _close(self, tr: _Track) -> PersonEvent | None:
        if tr.person_id is None:
            return None
        label, conf = tr.majority(self.config.labels)
        ev = PersonEvent(first_seen=tr.first_seen, last_seen=tr.last_seen, label=label,
                         confidence=float(conf), frames=tr.hits, source=self.source,
                         track_id=tr.person_id)
        if label in self._closed_counts:
            self._closed_counts[label] += 1
        else:
            self._closed_unlabelled += 1
        self._closed.append(ev)
        if self.on_close is not None:
            self.on_close(ev)
        return ev


def track_ids(faces: Sequence[TrackedFace]) -> dict[int, int]:
    """{index in the frame's detections: person id} for confirmed faces, as draw.annotate takes."""
    return {k: f.track_id for k, f in enumerate(faces) if f.track_id is not None}
