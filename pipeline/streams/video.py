"""Annotate a video file, streaming: PyAV decodes one packet at a time and encodes each
annotated frame straight into an H.264 mp4 (yuv420p, even dimensions, faststart), so memory
stays bounded whatever the length. No streamlit here.

    summary = process_video("in.mp4", "out.mp4", engine, every_n=2, on_progress=print)

Frames that fail to decode are skipped and counted (summary.frames_failed); the rest of the
video is still written. Audio is not copied. `DecodedFrames` is the one decoding loop: the Video
page and `python -m pipeline watch` both read files through it.

People: pass a pipeline.people.counter.PeopleCounter as `people=` and every detected frame goes through
its tracker (frame time = seconds from the first frame); confirmed faces are drawn with their
person id ('#2 no mask 97%'), the summary holds the people counted (summary.people, per label in
summary.people_counts), and the counter is closed at the end (its open tracks become people and,
with logging on, are written to the store).
"""
from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple

import av
import numpy as np

from pipeline.engine.config import AUTO_CLIP_FRAMES, DetectorConfig
from pipeline.media.draw import annotate
from pipeline.records import CLASSES, Detection, count_labels
from pipeline.settings import SAMPLES_DIR

if TYPE_CHECKING:
    from pipeline.people.counter import PeopleCounter

log = logging.getLogger("maskwatch.video")

VIDEO_TYPES = ["mp4", "mov", "webm", "avi"]
MAX_VIDEO_BYTES = 200 * 1024 * 1024
"""Largest video file accepted (200 MiB); .streamlit/config.toml's server.maxUploadSize matches."""
MAX_OUTPUT_SIDE = 1920
"""Frames with a longer side are scaled down to this before detection and encoding."""
DEFAULT_FPS = Fraction(25)
SAMPLE_CLIP = SAMPLES_DIR / "sample_clip.mp4"
"""The bundled sample clip (made by training/make_samples.py; sources in samples/SOURCES.md)."""


def sample_clip() -> Path | None:
    """The bundled sample clip, when it is there."""
    return SAMPLE_CLIP if SAMPLE_CLIP.is_file() else None


class VideoError(ValueError):
    """A video that cannot be processed. str(err) is the user-facing reason."""


@dataclass(frozen=True)
class FrameCounts:
    """What was found in one output frame."""

    index: int            # output frame number, from 0
    time: float           # seconds from the first frame
    counts: dict          # {class: faces}
    faces: int
    detected: bool        # False: the detector was skipped and the last detections reused

    @property
    def violations(self) -> int:
        return self.counts.get("no_mask", 0) + self.counts.get("incorrect", 0)


@dataclass(frozen=True)
class Progress:
    done: int                 # frames written so far
    total: int | None         # estimated frames in the file (None when unknown)
    elapsed: float            # seconds
    failed: int               # frames skipped because they could not be decoded

    @property
    def fraction(self) -> float:
        if not self.total:
            return 0.0
        return min(1.0, self.done / self.total)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the rate so far (None while unknown)."""
        if not self.total or not self.done:
            return None
        return max(0.0, self.elapsed / self.done * (self.total - self.done))

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def text(self) -> str:
        total = f"/{self.total}" if self.total else ""
        eta = self.eta
        left = f", about {format_seconds(eta)} left" if eta is not None else ""
        fail = f", {self.failed} unreadable skipped" if self.failed else ""
        return f"{self.done}{total} frames ({self.rate:.1f} fps){left}{fail}"


@dataclass
class VideoSummary:
    frames: list[FrameCounts]
    width: int
    height: int
    fps: float
    every_n: int
    encoder: str
    seconds: float                  # processing wall time
    frames_failed: int = 0          # unreadable frames skipped
    errors: list[str] = field(default_factory=list)
    truncated: bool = False         # stopped at max_frames
    source_size: tuple[int, int] = (0, 0)
    people: int | None = None       # people counted by the tracker (None: no tracker given)
    people_counts: dict = field(default_factory=dict)   # {class: people} by majority label
    people_logged: int = 0          # people written to the event store
    log_error: str | None = None    # why people could not be logged, for the user
    detector: str = ""              # the face detector's weight set that ran ("photo", "camera")

    @property
    def frames_written(self) -> int:
        return len(self.frames)

    @property
    def frames_detected(self) -> int:
        return sum(1 for f in self.frames if f.detected)

    @property
    def duration(self) -> float:
        return self.frames_written / self.fps if self.fps else 0.0

    @property
    def max_faces(self) -> int:
        return max((f.faces for f in self.frames), default=0)

    @property
    def max_faces_time(self) -> float | None:
        best = max(self.frames, key=lambda f: f.faces, default=None)
        return best.time if best is not None and best.faces else None

    @property
    def unmasked_share(self) -> float:
        """Share of frames with at least one face without a mask or wearing it wrong."""
        if not self.frames:
            return 0.0
        return sum(1 for f in self.frames if f.violations) / len(self.frames)

    @property
    def no_mask_share(self) -> float:
        if not self.frames:
            return 0.0
        return sum(1 for f in self.frames if f.counts.get("no_mask")) / len(self.frames)

    def series(self) -> tuple[list[float], dict[str, list[int]]]:
        """(times, {class: counts per frame}) for a line chart."""
        return [f.time for f in self.frames], {c: [f.counts.get(c, 0) for f in self.frames] for c in CLASSES}

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["frame", "time_s", "faces", *CLASSES, "detected"])
        for f in self.frames:
            w.writerow([f.index, f"{f.time:.3f}", f.faces, *(f.counts.get(c, 0) for c in CLASSES),
                        int(f.detected)])
        return buf.getvalue()

    def to_dict(self) -> dict:
        return {"frames": self.frames_written, "frames_detected": self.frames_detected,
                "frames_failed": self.frames_failed, "width": self.width, "height": self.height,
                "fps": round(self.fps, 3), "duration_s": round(self.duration, 3),
                "max_faces": self.max_faces, "unmasked_share": round(self.unmasked_share, 4),
                "encoder": self.encoder, "seconds": round(self.seconds, 3), "detector": self.detector,
                **({"people": self.people, "people_counts": dict(self.people_counts),
                    "people_logged": self.people_logged} if self.people is not None else {})}


GPU_BATCH = 32
"""Frames per batched forward pass on a GPU (pipeline.engine.batched.detect_batch)."""
MAX_PENDING = 64
"""At most this many decoded frames wait for their batch (bounded memory with every n-th)."""


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def h264_encoder() -> str:
    """The H.264 encoder this PyAV build has: libx264, else libopenh264."""
    for name in ("libx264", "libopenh264"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    raise VideoError("this server's PyAV has no H.264 encoder (libx264 or libopenh264)")


def output_size(w: int, h: int, max_side: int = MAX_OUTPUT_SIDE) -> tuple[int, int]:
    s = min(1.0, max_side / max(w, h))
    ow, oh = int(w * s), int(h * s)
    return max(2, ow - ow % 2), max(2, oh - oh % 2)


def frame_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            if rate and 1 <= float(rate) <= 240:
                return Fraction(rate).limit_denominator(1001)
        except (TypeError, ZeroDivisionError):
            continue
    return DEFAULT_FPS


def estimate_frames(container, stream, fps: Fraction) -> int | None:
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return max(1, int(round(float(stream.duration * stream.time_base) * float(fps))))
    if container.duration:
        return max(1, int(round(container.duration / 1e6 * float(fps))))
    return None


class DecodedFrames:
    """The decoding loop of MaskWatch (the Video page and `watch` both use it): decode a video
    stream packet by packet with PyAV. A packet that fails to decode (a corrupt chunk of the
    file) is skipped and counted, and decoding goes on with the next one.

        decoded = DecodedFrames(*open_video(path))
        for frame in decoded:                      # av.VideoFrame
            rgb = decoded.to_rgb(frame)            # None (and counted) when it fails
        decoded.failed, decoded.errors             # packets/frames skipped, first reasons
    """

    MAX_FAILURES = 1000
    """A file whose container breaks this often is given up on."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self.failed = 0
        self.errors: list[str] = []

    def _fail(self, e: Exception) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(f"{type(e).__name__}: {e}")
        log.warning("video: skipped an undecodable frame (%s)", e)

    def to_rgb(self, frame: av.VideoFrame, width: int | None = None,
               height: int | None = None) -> np.ndarray | None:
        """The frame as RGB uint8 (scaled to width x height when given); None, counted as
        failed, when it cannot be converted."""
        size = {"width": width, "height": height} if width and height else {}
        try:
            return frame.to_ndarray(format="rgb24", **size)
        except (av.FFmpegError, ValueError) as e:
            self._fail(e)
            return None

    def __iter__(self) -> Iterator[av.VideoFrame]:
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as e:  # a broken container chunk: skip it, keep reading
                self._fail(e)
                if self.failed > self.MAX_FAILURES:
                    return
                continue
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as e:
                self._fail(e)
                continue
            yield from frames


def open_video(src: str | Path):
    """-> (container, video stream). Raises VideoError for unreadable input."""
    try:
        container = av.open(str(src), mode="r")
    except FileNotFoundError:
        raise VideoError(f"{src}: no such file") from None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError("not a video that can be read (mp4, mov, webm or avi expected): "
                         f"{type(e).__name__}") from None
    if not container.streams.video:
        container.close()
        raise VideoError("the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


class _PendingFrame(NamedTuple):
    """A decoded frame waiting to be detected (in a batch), drawn and encoded."""
    rgb: np.ndarray     # HxWx3 uint8, output size
    index: int          # frame number, the output pts
    time_s: float       # seconds from the first frame
    detect: bool        # run the detector on it (else reuse the last detections)


def process_video(src: str | Path, dst: str | Path, engine, every_n: int = 1,
                  config: DetectorConfig | None = None,
                  on_progress: Callable[[Progress], None] | None = None,
                  max_frames: int | None = None, show_landmarks: bool = False, blur: bool = False,
                  progress_interval: float = 0.25, crf: int = 23, preset: str = "veryfast",
                  on_frame: Callable[[FrameCounts], None] | None = None,
                  people: "PeopleCounter | None" = None,
                  batch_size: int | None = None) -> VideoSummary:
    """Detect and annotate every frame (or every n-th; frames in between reuse the last
    detections for drawing) of src, writing a browser-playable H.264 mp4 to dst.

    on_progress(Progress) is called at most every progress_interval seconds and at the end;
    on_frame(FrameCounts) for every written frame. Raises VideoError when the input cannot be
    read or holds no decodable frame (dst is then removed).

    people: an optional PeopleCounter fed with every detected frame (timestamps in seconds
    from the first frame); its person ids are drawn, its totals go into the summary, and it is
    closed when this returns or raises.

    batch_size: frames decoded ahead and detected together by pipeline.engine.batched.detect_batch
    (the same detections as frame by frame: many frames per forward pass, no per-box loops).
    Default: GPU_BATCH on a GPU, 1 (frame by frame) on CPU, where the batched path is slower.
    At most max(batch_size, MAX_PENDING) decoded frames are held, so memory stays bounded.

    An engine with the "auto" detector runs one weight set on the whole clip, chosen from its
    first AUTO_CLIP_FRAMES frames (MaskDetector.for_clip), which are decoded before the first
    detection; the summary's `detector` names the set that ran.
    """
    every_n = max(1, int(every_n))
    if batch_size is None:
        batch_size = GPU_BATCH if getattr(getattr(engine, "device", None), "type", "cpu") == "cuda" else 1
    batch_size = max(1, int(batch_size))
    t0 = time.perf_counter()
    container, stream = open_video(src)
    encoder = h264_encoder()
    dst = Path(dst)
    out = None
    frames: list[FrameCounts] = []
    decoded = DecodedFrames(container, stream)
    fps = frame_rate(stream)
    total = estimate_frames(container, stream, fps)
    if max_frames is not None and total:
        total = min(total, max_frames)
    last_report = 0.0
    truncated = False
    dets: list[Detection] = []
    ids: dict[int, int] = {}        # {index in dets: person id}, reused with dets in between
    size = src_size = None
    first_time = None
    pending: list[_PendingFrame] = []
    choosing = getattr(engine, "chooses_per_image", False)   # "auto": one weight set for the clip

    def flush() -> None:
        """Detect the pending frames (in one batch when batch_size > 1), then draw and encode
        them in order."""
        nonlocal dets, ids, last_report, engine, choosing
        if choosing:
            engine, choosing = engine.for_clip([p.rgb for p in pending]), False
        todo = [i for i, p in enumerate(pending) if p.detect]
        found: dict[int, list[Detection]] = {}
        if batch_size > 1 and len(todo) > 1:
            try:
                from pipeline.engine.batched import detect_batch
                for i, d in zip(todo, detect_batch(engine, [pending[i].rgb for i in todo], config,
                                                   batch_size=batch_size)):
                    found[i] = d
            except Exception as e:  # fall back to frame by frame (and its per-frame errors)
                log.warning("batched detection failed, going frame by frame: %s", e)
                found = {}
        for i, p in enumerate(pending):
            if p.detect:
                if i in found:
                    dets = found[i]
                else:
                    try:
                        dets = engine.detect(p.rgb, config)
                    except Exception as e:  # one bad frame must not lose the video
                        decoded._fail(e)
                        dets = []
                ids = people.update(dets, p.time_s, frame_size=size) if people is not None else {}
            shown = annotate(p.rgb, dets, show_landmarks=show_landmarks, blur=blur, track_ids=ids)
            vf = av.VideoFrame.from_ndarray(shown, format="rgb24")
            vf.pts = p.index
            for packet in ostream.encode(vf):
                out.mux(packet)
            counts = count_labels(dets)
            fc = FrameCounts(p.index, round(p.time_s, 4), counts, len(dets), p.detect)
            frames.append(fc)
            if on_frame:
                on_frame(fc)
            now = time.perf_counter()
            if on_progress and now - last_report >= progress_interval:
                last_report = now
                on_progress(Progress(len(frames), max(total or 0, len(frames)) or None, now - t0, decoded.failed))
        pending.clear()

    try:
        k = 0
        for frame in decoded:
            if max_frames is not None and k >= max_frames:
                truncated = True
                break
            if size is None:
                src_size = (frame.width, frame.height)
                size = output_size(frame.width, frame.height)
                out = av.open(str(dst), mode="w", format="mp4", options={"movflags": "+faststart"})
                ostream = out.add_stream(encoder, rate=fps)
                ostream.width, ostream.height = size
                ostream.pix_fmt = "yuv420p"
                if encoder == "libx264":
                    ostream.options = {"crf": str(crf), "preset": preset}
            rgb = decoded.to_rgb(frame, *size)
            if rgb is None:
                continue
            t = frame.time
            if t is not None and first_time is None:
                first_time = t
            ts = (t - first_time) if (t is not None and first_time is not None) else k / float(fps)
            pending.append(_PendingFrame(rgb, k, ts, k % every_n == 0))
            k += 1
            if choosing and len(pending) < AUTO_CLIP_FRAMES:
                continue
            if sum(p.detect for p in pending) >= batch_size or len(pending) >= max(batch_size, MAX_PENDING):
                flush()
        flush()
        if out is not None:
            for packet in ostream.encode(None):
                out.mux(packet)
    except BaseException:
        if out is not None:
            out.close()
            dst.unlink(missing_ok=True)
        container.close()
        if people is not None:
            people.close()       # stop its writer thread; people seen so far are kept
        raise
    container.close()
    if out is not None:
        out.close()
    if people is not None:
        people.close()           # open tracks become people; logged ones are written
    if not frames:
        dst.unlink(missing_ok=True)
        why = f" ({decoded.failed} unreadable)" if decoded.failed else ""
        raise VideoError(f"the video has no frames that could be decoded{why}")
    elapsed = time.perf_counter() - t0
    if on_progress:
        on_progress(Progress(len(frames), len(frames), elapsed, decoded.failed))
    return VideoSummary(frames=frames, width=size[0], height=size[1], fps=float(fps), every_n=every_n,
                        encoder=encoder, seconds=elapsed, frames_failed=decoded.failed,
                        detector=getattr(engine, "detector_weights", ""),
                        errors=decoded.errors, truncated=truncated, source_size=src_size,
                        **(_people_fields(people) if people is not None else {}))


def _people_fields(people: "PeopleCounter") -> dict:
    return {"people": people.total, "people_counts": people.counts(), "people_logged": people.logged,
            "log_error": people.log_error or people.write_error}


def probe_mp4(path: str | Path) -> dict:
    """Codec, size, pixel format and frame count of a video file (used by tests and checks)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return {"format": c.format.name, "codec": s.codec_context.name, "width": s.width,
                "height": s.height, "pix_fmt": s.codec_context.pix_fmt, "frames": n}
