"""The webcam page's frame path and live statistics. No streamlit here.

make_frame_callback() builds the `video_frame_callback` handed to streamlit-webrtc. It runs in
the WebRTC worker thread: it detects, draws, and pushes one FrameResult per frame onto a
queue.Queue that the page drains. It never calls st.* and never waits on the page. The alert
decision (voice + banner, rate-limited) is taken on the page side from the queue (AlertLimiter),
so it cannot slow the frame rate. The banner, the count tiles and the spoken alert all read one
LiveSnapshot (LiveStats.snapshot), so they always agree.

The alert is spoken in the browser (Web Speech API, voice_alert_html) in the language of
MASKWATCH_ALERT_LANG (en, fr, de, es; default en) or of the page's picker, with the beep as a
fallback where the browser cannot speak.

MASKWATCH_FRAME_LOG=path makes every processed frame append a JSON line (for tests/benchmarks).
"""
from __future__ import annotations

import base64
import io
import json
import logging
import math
import queue
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from pipeline.media.draw import annotate
from pipeline.settings import current as current_settings
from pipeline.engine.temporal import RealtimeConfig, realtime_frame_detector
from pipeline.records import CLASSES, Detection, count_labels

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
        return self.counts.get("no_mask", 0) + self.counts.get("incorrect", 0)


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
    cfg = engine.with_config(min_face=max(6.0, settings.min_face / s), onet_threshold=settings.onet_threshold)
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
    state = {"n": 0, "errors": 0, "dets": [], "ids": None, "since": 0, "rt": None}

    def find_faces(img: np.ndarray) -> list[Detection]:
        if not settings.realtime:
            state["rt"] = None
            return detect_frame(engine, img, settings)
        if state["rt"] is None:
            state["rt"] = realtime_frame_detector(engine, settings, WEBCAM_REALTIME)
        return state["rt"](img)

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        t0, c0 = time.perf_counter(), time.thread_time()
        if settings.threads:
            import torch
            if torch.get_num_threads() != settings.threads:
                torch.set_num_threads(settings.threads)   # per-thread in torch's OpenMP pool
        img = frame.to_ndarray(format="rgb24")
        try:
            detected = state["since"] <= 0 or not state["n"]
            if detected:
                state["dets"] = find_faces(img)
                state["since"] = max(1, int(settings.detect_every))
                state["ids"] = (people.update(state["dets"], frame_size=(img.shape[1], img.shape[0]))
                                if people is not None else None)
            state["since"] -= 1
            dets = state["dets"]
            out = annotate(img, dets, show_landmarks=settings.show_landmarks, blur=settings.blur,
                           track_ids=state["ids"])
        except Exception as e:  # never break the stream
            state["errors"] += 1
            if state["errors"] <= 5:
                log.exception("webcam frame failed: %s", e)
            return frame
        state["n"] += 1
        counts = count_labels(dets)
        ms = (time.perf_counter() - t0) * 1000
        total = people.total if people is not None else None
        res = FrameResult(time.time(), counts, len(dets), ms, state["n"], detected, total)
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


# ---------------------------------------------------------------- page-side statistics


@dataclass
class LiveStats:
    """Rolling window of FrameResults, fed by draining the callback's queue on the page."""

    window: float = 60.0
    results: deque = field(default_factory=deque)
    total_frames: int = 0

    def drain(self, q: queue.Queue, limit: int = 10_000) -> list[FrameResult]:
        got = []
        for _ in range(limit):
            try:
                got.append(q.get_nowait())
            except queue.Empty:
                break
        self.add(got)
        return got

    def add(self, items, now: float | None = None) -> None:
        for r in items:
            self.results.append(r)
            self.total_frames += 1
        self.prune(now)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        while self.results and self.results[0].t < now - self.window:
            self.results.popleft()

    @property
    def latest(self) -> FrameResult | None:
        return self.results[-1] if self.results else None

    def snapshot(self, fresh_s: float, now: float | None = None) -> LiveSnapshot:
        """The newest frame's counts when it is at most fresh_s seconds old, else zeros."""
        now = time.time() if now is None else now
        latest = self.latest
        if latest is None or now - latest.t >= fresh_s:
            return LiveSnapshot({c: 0 for c in CLASSES}, 0, False)
        return LiveSnapshot({c: int(latest.counts.get(c, 0)) for c in CLASSES}, latest.faces, True)

    def fps(self, span: float = 3.0, now: float | None = None) -> float:
        """Processed frames per second over the last `span` seconds."""
        if not self.results:
            return 0.0
        now = self.results[-1].t if now is None else now
        recent = [r for r in self.results if r.t >= now - span]
        if len(recent) < 2:
            return 0.0
        dt = recent[-1].t - recent[0].t
        return (len(recent) - 1) / dt if dt > 0 else 0.0

    def detect_fps(self, span: float = 3.0, now: float | None = None) -> float:
        """Frames per second that ran the detector (the others were drawn with its last boxes)."""
        if not self.results:
            return 0.0
        now = self.results[-1].t if now is None else now
        recent = [r for r in self.results if r.t >= now - span]
        share = sum(1 for r in recent if r.detected) / len(recent) if recent else 0.0
        return self.fps(span, now) * share

    def mean_ms(self, span: float = 3.0, detected_only: bool = False) -> float:
        if not self.results:
            return 0.0
        now = self.results[-1].t
        recent = [r.ms for r in self.results if r.t >= now - span and (r.detected or not detected_only)]
        return float(np.mean(recent)) if recent else 0.0

    def series(self, bucket: float = 1.0, now: float | None = None) -> tuple[list[float], dict[str, list[float]]]:
        """Counts per class over the window, one point per `bucket` seconds (the max in each
        bucket), x = seconds relative to now (negative = past)."""
        now = time.time() if now is None else now
        buckets: dict[int, dict[str, int]] = {}
        for r in self.results:
            b = int(math.floor((r.t - now) / bucket))
            cur = buckets.setdefault(b, {c: 0 for c in CLASSES})
            for c in CLASSES:
                cur[c] = max(cur[c], r.counts.get(c, 0))
        keys = sorted(buckets)
        return [k * bucket for k in keys], {c: [buckets[k][c] for k in keys] for c in CLASSES}


@dataclass(frozen=True)
class LiveSnapshot:
    """What the live panel shows at one moment, taken from one FrameResult: the count tiles,
    the banner and the spoken alert all read this, so they cannot disagree.

    fresh: a frame was processed within the freshness limit; when not, counts are all zero.
    """

    counts: dict
    faces: int
    fresh: bool

    @property
    def violations(self) -> int:
        return self.counts.get("no_mask", 0) + self.counts.get("incorrect", 0)


class AlertLimiter:
    """Decides, on the page side, when to sound the alert: a violation is seen and the last
    alert was at least `interval` seconds ago."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.last: float | None = None
        self.fired = 0

    def should_alert(self, counts: dict | None, now: float | None = None, enabled: bool = True) -> bool:
        if not enabled or not counts or not (counts.get("no_mask") or counts.get("incorrect")):
            return False
        now = time.monotonic() if now is None else now
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        self.fired += 1
        return True


def alert_wav(freq: float = 880.0, seconds: float = 0.35, rate: int = 16_000, beeps: int = 2,
              variant: int = 0) -> bytes:
    """A short two-beep WAV made in code (16-bit mono). `variant` adds a few silent samples so
    that successive alerts are distinct media (browsers replay a changed element only)."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    env = np.minimum(1.0, np.minimum(t, seconds - t) * 40)       # 25 ms fade in/out
    beep = 0.5 * np.sin(2 * np.pi * freq * t) * env
    gap = np.zeros(int(0.08 * rate))
    parts = []
    for _ in range(beeps):
        parts += [beep, gap]
    parts.append(np.zeros(int(variant) % 97 + 1))
    pcm = (np.concatenate(parts) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


# ---------------------------------------------------------------- voice alert

ALERT_SENTENCES: dict[str, dict[str, str]] = {
    "en": {"no_mask": "Please wear your mask.",
           "incorrect": "Please cover your nose with your mask."},
    "fr": {"no_mask": "Veuillez porter votre masque.",
           "incorrect": "Veuillez couvrir votre nez avec votre masque."},
    "de": {"no_mask": "Bitte tragen Sie Ihre Maske.",
           "incorrect": "Bitte bedecken Sie Ihre Nase mit der Maske."},
    "es": {"no_mask": "Por favor, póngase la mascarilla.",
           "incorrect": "Por favor, cúbrase la nariz con la mascarilla."},
}
"""The spoken alert per language and class (no_mask before incorrect when both are in view)."""
ALERT_LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "en-US"), "fr": ("Français", "fr-FR"),
    "de": ("Deutsch", "de-DE"), "es": ("Español", "es-ES"),
}
"""language code -> (name for the picker, BCP-47 tag for the browser's voice)."""


def alert_language(value: str | None = None, env=None) -> str:
    """The alert's language code: `value`, else MASKWATCH_ALERT_LANG, else 'en'. A BCP-47 tag
    or locale ('fr-CA', 'de_DE') selects its language. Unknown: ValueError with the choices."""
    raw = value if value is not None else (current_settings(env).alert_lang or "")
    code = (raw or "en").strip().replace("_", "-").split("-")[0].lower() or "en"
    if code not in ALERT_SENTENCES:
        raise ValueError(f"MASKWATCH_ALERT_LANG={raw!r} is not a language the alert speaks; "
                         f"expected one of {', '.join(ALERT_SENTENCES)}")
    return code


def alert_speech(counts: dict | None, lang: str = "en") -> str:
    """The sentence to speak for these counts ('' when nobody is unmasked): one sentence per
    class in view, e.g. 'Please wear your mask.' for no_mask."""
    sentences = ALERT_SENTENCES[alert_language(lang)]
    return " ".join(sentences[c] for c in ("no_mask", "incorrect") if counts and counts.get(c))


def voice_alert_html(text: str, lang: str = "en", serial: int = 0) -> str:
    """HTML + script that speaks `text` once in the browser with the Web Speech API
    (speechSynthesis, voice tag from ALERT_LANGUAGES) and plays the alert beep (alert_wav)
    instead where the browser has no speech synthesis or speaking fails. `serial` makes each
    alert a distinct element, so that the page runs it again. Text and language come from
    ALERT_SENTENCES / ALERT_LANGUAGES only, never from user input."""
    tag = ALERT_LANGUAGES[alert_language(lang)][1]
    beep = "data:audio/wav;base64," + base64.b64encode(alert_wav(variant=serial)).decode("ascii")
    return (
        f'<div class="maskwatch-voice-alert" data-alert="{int(serial)}" hidden></div>\n'
        "<script>(() => {\n"
        f"  const text = {json.dumps(text)}, lang = {json.dumps(tag)}, beep = {json.dumps(beep)};\n"
        "  const playBeep = () => { try { new Audio(beep).play().catch(() => {}); } catch (e) {} };\n"
        "  const synth = window.speechSynthesis;\n"
        "  if (!text || !synth || typeof SpeechSynthesisUtterance === 'undefined') { playBeep(); return; }\n"
        "  try {\n"
        "    const u = new SpeechSynthesisUtterance(text);\n"
        "    u.lang = lang;\n"
        "    const voices = synth.getVoices ? synth.getVoices() : [];\n"
        "    const voice = voices.find(v => v.lang === lang)\n"
        "      || voices.find(v => (v.lang || '').slice(0, 2) === lang.slice(0, 2));\n"
        "    if (voice) u.voice = voice;\n"
        "    u.onerror = e => { if (!['interrupted', 'canceled'].includes(e.error)) playBeep(); };\n"
        "    synth.cancel();\n"
        "    synth.speak(u);\n"
        "  } catch (e) { playBeep(); }\n"
        "})();</script>")
