"""Streamlit helpers shared by the pages: the cached engine, cached photo analysis, the
video job, the per-session webcam state, and small render helpers.

This is the only module in pipeline/ that imports streamlit. Nothing here loads a model or
reads a file at import time; the engine is built on first use and kept by st.cache_resource.
"""
from __future__ import annotations

import io
import logging
import os
import queue
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# libgomp's default spin-waiting makes 2-thread torch up to 10x slower when the CPU is shared
# (a Space's vCPUs, or the webcam's WebRTC work beside a photo): a 20-frame test video took
# 31-67 s instead of 3.5-4.3 s on this 2-core machine under load. It must be set before torch
# (and its OpenMP runtime) loads; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402

from pipeline.settings import current as current_settings
from pipeline.engine.config import DEFAULT_DETECTOR, DEFAULT_MEDIA_DETECTOR, DETECTOR_CHOICES
from pipeline.streams import photo
from pipeline.streams import video
from pipeline.streams import webcam
from pipeline.ui import live
from pipeline.records import LABEL_NAMES
from pipeline.ui.charts import class_color
from pipeline.people.counter import PeopleCounter
from pipeline.records import CLASSES
from pipeline.media.images import MIB

APP_NAME = "MaskWatch"
DEFAULT_THREADS = torch.get_num_threads()
"""torch threads for photo/video work. The webcam callback sets 1 thread for its own thread,
and torch hands that count to threads created later, so page work restores this first."""
FRESH_S = 5.0
"""Live counts older than this (no frame processed since) are shown as zero."""


PAGES = (
    # (file beside app.py, title in the sidebar and the tab, icon); the first is the landing
    # page at the root URL, the others keep their URL path: the file name without its number
    ("pages/0_Home.py", "Home", "🏠"),
    ("pages/1_Photo.py", "Photo", "🖼️"),
    ("pages/2_Video.py", "Video", "🎞️"),
    ("pages/3_Webcam.py", "Webcam", "📹"),
    ("pages/4_Metrics.py", "Metrics", "📊"),
    ("pages/5_Dashboard.py", "Dashboard", "📈"),
)


def navigation():
    """st.navigation over PAGES: the sidebar menu; returns the page this run should show."""
    return st.navigation([st.Page(path, title=title, icon=icon, default=k == 0)
                          for k, (path, title, icon) in enumerate(PAGES)])


log = logging.getLogger("maskwatch.ui")


def show_failure(what: str) -> None:
    """An unexpected error on a page: a plain sentence for the visitor (no exception text, which
    may hold paths or secrets), the traceback in the server log. Call it inside `except`."""
    log.exception("%s failed", what)
    st.error(f"{what} failed unexpectedly. The details are in the server's log; please try "
             "again, or with another file.")


def upload_limit_mib(limit_bytes: int) -> int:
    """A byte limit as st.file_uploader's max_upload_size, whose unit is 2**20 bytes (a MiB):
    the browser then refuses a larger file and the widget states the same limit as our label.
    Whole MiB, at least 1 (Streamlit refuses 0)."""
    return max(1, int(limit_bytes) // MIB)


def page_setup(title: str, icon: str = "😷") -> None:
    """First call of every page: the sidebar menu (see below), tab title, wide layout.

    Streamlit picks, per server process, the older multipage mode (each file of pages/ run on
    its own, the sidebar listing "app") until some run calls st.navigation; so a page opened
    by its own URL before anyone opened the root would run without app.py's menu. Calling
    st.navigation here in that case sends the same menu for the same page (URL paths match)
    and leaves that mode for good, without a rerun that would drop a button click."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        navigation()
    st.set_page_config(page_title=f"{title} · {APP_NAME}" if title != APP_NAME else APP_NAME,
                       page_icon=icon, layout="wide")


# ---------------------------------------------------------------- engine


DETECTOR_LABELS = {"photo": "Photos", "camera": "Camera frames (grainy, blurred)", "auto": "Auto (per photo or clip)"}
"""How pages name the face detector's choices (pipeline.engine.config.DETECTOR_CHOICES)."""


def detector_label(choice: str) -> str:
    """A detector choice ("photo", "camera", "auto") as the pages name it."""
    return DETECTOR_LABELS.get(choice, choice)


@st.cache_resource(show_spinner="Loading the face and mask models…")
def get_engine(detector: str = DEFAULT_DETECTOR):
    """The MaskDetector of this server process for one detector weight set (GPU when there is one)."""
    from pipeline.engine.mask_detector import MaskDetector
    return MaskDetector.load(current_settings().device, detector=detector)


def detector_select(key: str, default: str = DEFAULT_DETECTOR) -> str:
    """A sidebar select of the face detector's weights -> "photo", "camera" or "auto", starting
    at `default`."""
    return st.selectbox("Face detector", DETECTOR_CHOICES, index=DETECTOR_CHOICES.index(default),
                        format_func=detector_label, key=key,
                        help="Photos: tuned on sharp photos. Camera frames: fine-tuned on grainy, blurred, "
                             "low-light frames as well (CCTV, door cameras, webcams); better "
                             "there, slightly worse on sharp crowd photos. Auto (the default): the "
                             "camera frames' weights for a photo with strong compression block edges "
                             "or sensor noise, the photo weights for the rest; a video takes the "
                             "weights most of its first frames take, for all its frames.")


def use_default_threads() -> None:
    if torch.get_num_threads() != DEFAULT_THREADS:
        torch.set_num_threads(DEFAULT_THREADS)


def require_engine(detector: str = DEFAULT_DETECTOR):
    """The engine, or a clear error on the page and st.stop() when the weights are unusable."""
    try:
        return get_engine(detector)
    except Exception as e:  # WeightsError carries a readable reason
        st.error(f"The models could not be loaded, so the app cannot run. {e}")
        st.stop()


def engine_facts(engine) -> dict[str, str]:
    from pipeline.engine.mask_detector import device_name
    use_default_threads()
    src = engine.source
    return {"weights": src.describe() if src is not None else "unknown",
            "weights_kind": src.kind if src is not None else "unknown",
            "device": device_name(engine.device),
            "detector": detector_label(engine.detector_weights)}


def sidebar_facts(engine) -> None:
    facts = engine_facts(engine)
    with st.sidebar:
        st.caption(f"Device: **{facts['device']}**  \nWeights: {facts['weights']}  \n"
                   f"Face detector: {facts['detector']}")


# ---------------------------------------------------------------- photos


@st.cache_data(max_entries=16, show_spinner=False)
def analyze_photo(data: bytes, name: str, min_face: float, onet_threshold: float,
                  detector: str = DEFAULT_MEDIA_DETECTOR) -> photo.PhotoAnalysis:
    """Decode + detect, cached on the bytes and settings (toggling landmarks, blur or the
    download format does not run the detector again). Raises images.ImageError."""
    engine = get_engine(detector)
    use_default_threads()
    cfg = engine.with_config(min_face=float(min_face), onet_threshold=onet_threshold)
    return photo.analyze_bytes(engine, data, name, cfg)


@st.cache_resource(show_spinner="Annotating the sample photo…")
def landing_sample() -> tuple[str, photo.PhotoAnalysis, np.ndarray] | None:
    """(title, analysis, annotated image) of the first bundled sample; run once per server."""
    samples = photo.sample_photos()
    if not samples:
        return None
    title, path = next(iter(samples.items()))
    use_default_threads()
    a = photo.analyze_bytes(get_engine(DEFAULT_MEDIA_DETECTOR), path.read_bytes(), path.name)
    return title, a, photo.render(a)


def count_metrics(counts: dict, container=None) -> None:
    """Three st.metric tiles, one per class."""
    cols = (container or st).columns(len(CLASSES))
    for col, c in zip(cols, CLASSES):
        col.metric(LABEL_NAMES[c], int(counts.get(c, 0)))


def legend_html() -> str:
    return " ".join(f"<span style='color:{class_color(c)};font-weight:600'>■ {LABEL_NAMES[c]}</span>"
                    for c in CLASSES)


# ---------------------------------------------------------------- video


@dataclass
class VideoResult:
    summary: video.VideoSummary
    video_bytes: bytes
    name: str
    logged: bool = False          # logging was on for this run


def people_text(counts: dict) -> str:
    """'mask 1 · no mask 2 · incorrect 0' for a {class: people} dict."""
    return " · ".join(f"{LABEL_NAMES[c]} {int(counts.get(c, 0))}" for c in CLASSES)


class SampleUpload(io.BytesIO):
    """A bundled file that reads like an st.file_uploader upload (name, size, file_id,
    getvalue, seek, read), so a sample goes down the same path as an uploaded file."""

    def __init__(self, path: Path):
        data = path.read_bytes()
        super().__init__(data)
        self.name, self.size = path.name, len(data)
        self.file_id = f"sample/{path.name}/{len(data)}"


def sample_clip_upload() -> SampleUpload | None:
    """The bundled sample clip as an upload (read when asked for), or None when it is missing."""
    path = video.sample_clip()
    return SampleUpload(path) if path is not None else None


def process_uploaded_video(upload, engine, every_n: int, min_face: float, onet_threshold: float,
                           show_landmarks: bool, blur: bool, on_progress=None,
                           max_frames: int | None = None, log_people: bool = False,
                           people: PeopleCounter | None = None) -> VideoResult:
    """UploadedFile -> annotated mp4 bytes + summary. Streams through temp files; raises
    video.VideoError with a user-facing reason.

    People are tracked (ids drawn, counted in the summary) with `people`, else a new
    PeopleCounter(source="video") whose people go to the event store only when log_people
    (a database that cannot be used leaves summary.log_error and processing goes on)."""
    size = getattr(upload, "size", None)
    if size == 0:
        raise video.VideoError("the file is empty")
    if size is not None and size > video.MAX_VIDEO_BYTES:
        from pipeline.media.images import mib
        raise video.VideoError(f"the file is {mib(size)}; the limit is {mib(video.MAX_VIDEO_BYTES)}")
    suffix = Path(upload.name).suffix.lower() or ".mp4"
    if people is None:
        # made only here, when a video is processed: with logging on it opens the store
        people = PeopleCounter(source="video", log=log_people, start=time.time())
    use_default_threads()
    cfg = engine.with_config(min_face=float(min_face), onet_threshold=onet_threshold)
    with tempfile.TemporaryDirectory(prefix="maskwatch_") as tmp:
        src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / "out.mp4"
        upload.seek(0)
        with open(src, "wb") as fh:
            while chunk := upload.read(1 << 20):
                fh.write(chunk)
        summary = video.process_video(src, dst, engine, every_n=every_n, config=cfg,
                                      on_progress=on_progress, max_frames=max_frames,
                                      show_landmarks=show_landmarks, blur=blur, people=people)
        data = dst.read_bytes()
    return VideoResult(summary, data, f"{Path(upload.name).stem}_maskwatch.mp4",
                       logged=bool(log_people))


# ---------------------------------------------------------------- webcam


@dataclass
class WebcamSession:
    """Everything the webcam page keeps between reruns for one browser session; the callback
    closes over queue + settings and never touches streamlit."""

    settings: webcam.WebcamSettings
    results: queue.Queue
    callback: object
    stats: live.LiveStats = field(default_factory=live.LiveStats)
    limiter: live.AlertLimiter = field(default_factory=live.AlertLimiter)
    people: PeopleCounter = field(default_factory=lambda: PeopleCounter(source="webcam"))
    streaming: bool = False       # the stream was playing at the last look (see stream_state)


def webcam_session(engine) -> WebcamSession:
    key = "_maskwatch_webcam"
    sess = st.session_state.get(key)
    if sess is None or getattr(sess, "engine_id", None) != id(engine):
        if sess is not None:
            sess.people.close()
        settings = webcam.WebcamSettings()
        q: queue.Queue = queue.Queue(maxsize=512)
        people = PeopleCounter(source="webcam")
        sess = WebcamSession(settings, q, webcam.make_frame_callback(engine, q, settings, people=people),
                             people=people)
        sess.engine_id = id(engine)
        st.session_state[key] = sess
    return sess


def stream_state(sess: WebcamSession, playing: bool) -> None:
    """Note whether the stream plays; when it has stopped since the last look, everyone in view
    counts as having left and logged people are written (PeopleCounter.flush)."""
    if playing:
        sess.streaming = True
    elif sess.streaming:
        sess.streaming = False
        sess.people.flush()


def alert_language_select() -> str:
    """The webcam page's 'Voice language' picker (default MASKWATCH_ALERT_LANG, else English;
    an unknown setting is shown as a warning, not a traceback). -> language code."""
    try:
        default = live.alert_language()
    except ValueError as e:
        st.warning(f"{e}. Using English.")
        default = "en"
    codes = list(live.ALERT_LANGUAGES)
    return st.selectbox("Voice language", codes, index=codes.index(default), key="webcam_alert_lang",
                        format_func=lambda c: live.ALERT_LANGUAGES[c][0],
                        help="The language of the spoken alert ('Please wear your mask').")


def render_live(sess: WebcamSession, slots: dict, sound: bool, banner: bool, tick: int,
                chart: bool = True, lang: str = "en") -> None:
    """One refresh of the live panel: drain the queue, counts, FPS, banner, voice alert, chart.
    The count tiles, the banner and the alert all come from one snapshot of the newest frame."""
    sess.stats.drain(sess.results)
    sess.stats.prune()
    now = time.time()
    snap = sess.stats.snapshot(FRESH_S, now)
    people = sess.people
    with slots["metrics"].container():
        count_metrics(snap.counts)
        c1, c2, c3 = st.columns(3)
        c1.metric("processed fps", f"{sess.stats.fps():.1f}",
                  help="Frames per second that came back annotated.")
        c2.metric("detections/s", f"{sess.stats.detect_fps():.1f}",
                  help="Frames per second the detector ran on (see 'Detect every n-th frame').")
        c3.metric("detector ms", f"{sess.stats.mean_ms(detected_only=True):.0f}",
                  help="Time to find and label the faces in one frame.")
        c1, c2, c3 = st.columns(3)
        c1.metric("frames", sess.stats.total_frames)
        c2.metric("people", people.total,
                  help="People counted since this page was opened: a face seen in 3 detected "
                       "frames is a person (the #number on its box); someone out of view for "
                       "more than 2 s counts again. " + people_text(people.counts()))
        c3.metric("logged", people.logged if people.logging else "off",
                  help="People written to the dashboard's database (the 'Log people' toggle). "
                       "Only times, label, confidence and frame count; never an image.")
        error = people.log_error or people.write_error
        if error:
            st.warning(error)
    if not snap.fresh or (snap.violations and not banner):
        slots["banner"].empty()
    elif snap.violations:
        slots["banner"].error(f"🚨 In view: {photo.alert_text(snap.counts)}")
    else:
        slots["banner"].success("✅ Everyone in view wears a mask" if snap.faces else "No face in view")
    if sess.limiter.should_alert(snap.counts if snap.fresh else None, enabled=sound):
        slots["audio"].html(live.voice_alert_html(live.alert_speech(snap.counts, lang), lang,
                                                    serial=sess.limiter.fired),
                            unsafe_allow_javascript=True)
    if chart:
        from pipeline.ui.charts import counts_over_time
        xs, series = sess.stats.series(now=now)
        fig = counts_over_time(xs, series, title=None, x_title="seconds ago", height=250)
        fig.update_xaxes(range=[-60, 0])
        with slots["chart"].container():
            st.caption("**Faces per class, last minute**")
            st.plotly_chart(fig, key=f"live_chart_{tick}", width="stretch")
