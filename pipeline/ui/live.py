"""The webcam page's side of the stream: live statistics drained from the frame callback's queue,
the rate-limited alert, and the spoken alert (Web Speech API in the browser, with a beep as the
fallback). The banner, the count tiles and the spoken alert all read one LiveSnapshot
(LiveStats.snapshot), so they always agree. Plain Python: the page renders what these return.

The alert is spoken in the language of MASKWATCH_ALERT_LANG (en, fr, de, es; default en) or of
the page's picker.
"""
from __future__ import annotations

import base64
import io
import json
import math
import queue
import time
import wave
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pipeline.records import CLASSES, VIOLATIONS, violation_count
from pipeline.settings import current as current_settings
from pipeline.streams.webcam import FrameResult


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
        return violation_count(self.counts)


class AlertLimiter:
    """Decides, on the page side, when to sound the alert: a violation is seen and the last
    alert was at least `interval` seconds ago."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.last: float | None = None
        self.fired = 0

    def should_alert(self, counts: dict | None, now: float | None = None, enabled: bool = True) -> bool:
        if not enabled or not violation_count(counts):
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
    return " ".join(sentences[c] for c in VIOLATIONS if counts and counts.get(c))


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
