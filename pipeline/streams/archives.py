"""`python -m pipeline batch INPUT... --out DIR`: image and video archives on Ray Data.

    python -m pipeline batch recordings/ 'photos/*.jpg' --out results/   # Ray embedded here
    python -m pipeline batch ... --out results/ --address auto            # join a running cluster

The plan (made here, in the driver) is a list of work items: one per image, and for a video
one per range of `--chunk-frames` frames, so that one long file spreads over the actors.
Ray Data runs the items through a pool of actors (`map_batches` with a callable class), each of
which loads the models once (`MaskDetector.load`) and, on a GPU, detects a video range with the
batched path (`pipeline.engine.batched.detect_batch`). Images are decoded by `pipeline.media.images`, videos by
`pipeline.streams.video` (the same decoding loop as the Video page: corrupt packets are skipped).

Output, under DIR:
  detections/<item>.parquet   one file per finished item (a Parquet dataset all together): one
                              row per face (source, kind, frame, time_s, face, box, score,
                              label, probs, width, height, worker), one row with face = -1 for a
                              frame without faces, one row with `error` set for an input that
                              could not be read.
  annotated/                  annotated JPEGs, only with --annotate.
  people/<video>.done         with --db: the video's people were written to the store.
  job.json                    the job's settings; a rerun with the same DIR uses them and skips
                              the items already in detections/ (an input that failed is retried).

Frame numbers come from the frame's time in the file (round((t - t_first) * fps)), so a range
processed by any actor numbers its frames as a whole-file pass does (constant frame rate).
Within a file the rows are in frame order. People (--db URL): the tracker needs every frame of a
video in order, so after detection each video's rows go, in order, to one Ray task that feeds a
pipeline.people.counter.PeopleCounter (the same code path as `watch`), which writes the people to the
store.

Ray is imported only here, and only when `batch` runs.
"""
from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.engine.config import AUTO_CLIP_FRAMES, DEFAULT_DETECTOR, DEFAULT_MEDIA_DETECTOR, DETECTOR_CHOICES
from pipeline.media.images import IMAGE_EXTENSIONS, ImageError, read_image
from pipeline.records import CLASSES

log = logging.getLogger("maskwatch.batch")

ROOT = Path(__file__).resolve().parents[1]
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
DEFAULT_CHUNK_FRAMES = 256
GPU_FRAMES = 32
"""Frames per batched forward pass in an actor on a GPU."""
JOB_FILE = "job.json"


# ------------------------------------------------------------------------------ schema
def schema():
    import pyarrow as pa
    return pa.schema([
        ("source", pa.string()), ("kind", pa.string()), ("frame", pa.int64()),
        ("time_s", pa.float64()), ("face", pa.int32()),
        ("box", pa.list_(pa.float32())), ("score", pa.float32()), ("label", pa.string()),
        ("probs", pa.struct([(c, pa.float32()) for c in CLASSES])),
        ("width", pa.int32()), ("height", pa.int32()), ("error", pa.string()),
        ("worker", pa.string()), ("item", pa.string()), ("item_rows", pa.int32()),
    ])


def _frame_rows(base: dict, frame: int, time_s, faces, w: int, h: int) -> list[dict]:
    """Rows of one frame: one per face, or one with face = -1 when there is none."""
    common = dict(base, frame=frame, time_s=time_s, width=w, height=h, error=None)
    if not faces:
        return [dict(common, face=-1, box=None, score=None, label=None, probs=None)]
    return [dict(common, face=k, box=[float(v) for v in f.box], score=float(f.score),
                 label=f.label or None, probs=dict(f.probs) if f.probs else None)
            for k, f in enumerate(faces)]


def _error_row(base: dict, message: str) -> dict:
    return dict(base, frame=None, time_s=None, face=None, box=None, score=None, label=None,
                probs=None, width=None, height=None, error=message[:500])


def _table(rows: list[dict]):
    import pyarrow as pa
    for r in rows:
        r["item_rows"] = len(rows)
    return pa.Table.from_pylist(rows, schema=schema())


# ------------------------------------------------------------------------------ inputs
def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (searched recursively for images and videos) and globs -> paths, in input
    order, each once. A path that matches nothing is kept, so that it gets an error row."""
    media = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    out: list[str] = []
    for p in inputs:
        q = Path(p)
        if q.is_dir():
            found = [str(f) for f in sorted(q.rglob("*")) if f.is_file() and f.suffix.lower() in media]
        elif not q.exists() and glob.has_magic(p):
            found = sorted(f for f in glob.glob(p, recursive=True) if Path(f).is_file())
        else:
            found = [p]
        out += found
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _file_key(path: str) -> str:
    """Stable per input file and content version: path, size and modification time."""
    p = Path(path)
    try:
        st = p.stat()
        ident = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        ident = f"{p}|missing"
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------- video
def _decoder(container, stream):
    """The video module's decoding loop (packets that fail are skipped and counted)."""
    from pipeline.streams import video
    cls = video.DecodedFrames
    return cls(container, stream)


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int | None          # estimate (None: unknown)
    t0: float | None            # time of the first frame, seconds (None: no timestamps)
    duration: float


def probe_video(path: str) -> VideoInfo:
    """Frame rate, estimated frames and first frame time. Raises VideoError for an unreadable
    file or one without a decodable frame."""
    from pipeline.streams.video import VideoError, estimate_frames, frame_rate, open_video
    container, stream = open_video(path)
    try:
        fps = frame_rate(stream)
        total = estimate_frames(container, stream, fps)
        decoded = _decoder(container, stream)
        first = next(iter(decoded), None)
        if first is None:
            raise VideoError(f"{path}: the video has no frames that could be decoded")
        return VideoInfo(float(fps), total, first.time, (total or 0) / float(fps))
    finally:
        container.close()


def video_frames(path: str, start: int = 0, stop: int | None = None, fps: float = 25.0,
                 t0: float | None = None):
    """(frame index, seconds from the first frame, RGB uint8) for frames start <= index < stop
    (stop None: to the end). Indices come from frame times, so a range gives the same numbers
    as the whole file. Seeks to the key frame before `start` when the file allows it."""
    from pipeline.streams.video import MAX_OUTPUT_SIDE, output_size, open_video
    for attempt in ("seek", "from_start"):
        container, stream = open_video(path)
        try:
            seek = attempt == "seek" and start > 0 and t0 is not None
            if seek:
                target = t0 + (start - 0.5) / fps
                try:
                    container.seek(max(0, int(target / float(stream.time_base))), stream=stream,
                                   backward=True, any_frame=False)
                except Exception as e:   # not seekable: decode from the start
                    log.info("%s: seek failed (%s); decoding from the start", path, e)
                    continue
            decoded = _decoder(container, stream)
            size = None
            k = -1
            first = True
            for frame in decoded:
                k += 1
                t = frame.time
                if t0 is not None and t is not None:
                    idx = int(round((t - t0) * fps))
                    ts = t - t0
                else:
                    idx, ts = k, k / fps
                if first and seek and idx > start:
                    break          # the seek went past the range's start: go again from 0
                first = False
                if idx < start:
                    continue
                if stop is not None and idx >= stop:
                    return
                if size is None:
                    size = output_size(frame.width, frame.height, MAX_OUTPUT_SIDE)
                try:
                    rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                except Exception as e:      # a frame that cannot be converted: skipped, counted
                    decoded._fail(e)
                    continue
                yield idx, float(ts), rgb
            else:
                return
        finally:
            container.close()


# ------------------------------------------------------------------------------ actors
class DetectActor:
    """One Ray actor: the models loaded once, then work items in, detection rows out."""

    def __init__(self, device: str = "auto", min_face: float | None = None,
                 annotate_dir: str | None = None, threads: int = 1, detector: str | None = None):
        import torch
        from pipeline.engine.mask_detector import MaskDetector
        torch.set_num_threads(max(1, int(threads)))
        # None: a job from before the detector was recorded, which ran the default weight set
        self.engine = MaskDetector.load(device=device, detector=detector or DEFAULT_DETECTOR)
        self.clip_engines: dict[str, object] = {}
        self.config = self.engine.with_config(min_face=min_face) if min_face else None
        self.annotate_dir = Path(annotate_dir) if annotate_dir else None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.gpu = self.engine.device.type == "cuda"

    def __call__(self, batch):
        import pyarrow as pa
        tables = [self.run_item(item) for item in batch.to_pylist()]
        return pa.concat_tables(tables) if tables else _table([])

    def run_item(self, item: dict):
        base = {"source": item["source"], "kind": item["kind"], "worker": self.worker,
                "item": item["item"]}
        try:
            if item["kind"] == "image":
                rows = self._image(item, base)
            else:
                rows = self._video(item, base)
        except ImageError as e:
            rows = [_error_row(base, str(e))]
        except Exception as e:   # one bad input never stops the job
            from pipeline.streams.video import VideoError
            msg = str(e) if isinstance(e, VideoError) else f"processing failed ({type(e).__name__}: {e})"
            rows = [_error_row(base, msg)]
        return _table(rows)

    def _image(self, item, base) -> list[dict]:
        image = read_image(item["path"])
        faces = self.engine.detect(image, self.config)
        self._annotate(item, 0, image, faces, video=False)
        h, w = image.shape[:2]
        return _frame_rows(base, 0, None, faces, w, h)

    def clip_engine(self, item: dict):
        """The engine for this item's video file: with "auto", one running the weight set the
        file's first AUTO_CLIP_FRAMES frames pick (MaskDetector.for_clip, as on the Video page),
        the same for every range of the file; else the actor's engine."""
        if not self.engine.chooses_per_image:
            return self.engine
        path = item["path"]
        if path not in self.clip_engines:
            first = [rgb for _, _, rgb in video_frames(path, 0, AUTO_CLIP_FRAMES, item["fps"], item["t0"])]
            self.clip_engines[path] = self.engine.for_clip(first)
        return self.clip_engines[path]

    def _video(self, item, base) -> list[dict]:
        engine = self.clip_engine(item)
        stop = item["stop"] if item["stop"] >= 0 else None
        frames = video_frames(item["path"], item["start"], stop, item["fps"], item["t0"])
        rows: list[dict] = []
        pending: list[tuple[int, float, np.ndarray]] = []

        def flush():
            if self.gpu and len(pending) > 1:
                from pipeline.engine.batched import detect_batch
                found = detect_batch(engine, [p[2] for p in pending], self.config,
                                     batch_size=GPU_FRAMES)
            else:
                found = [engine.detect(p[2], self.config) for p in pending]
            for (idx, ts, rgb), faces in zip(pending, found):
                self._annotate(item, idx, rgb, faces, video=True)
                rows.extend(_frame_rows(base, idx, round(ts, 4), faces, rgb.shape[1], rgb.shape[0]))
            pending.clear()

        for f in frames:
            pending.append(f)
            if len(pending) >= (GPU_FRAMES if self.gpu else 1):
                flush()
        flush()
        if not rows and item["start"] == 0:
            from pipeline.streams.video import VideoError
            raise VideoError(f"{item['source']}: the video has no frames that could be decoded")
        return rows

    def _annotate(self, item, idx, rgb, faces, video: bool) -> None:
        if self.annotate_dir is None:
            return
        import cv2
        from pipeline.media.draw import annotate
        stem = f"{Path(item['source']).stem}_{item['item'][:8]}"
        path = (self.annotate_dir / stem / f"frame_{idx:06d}.jpg") if video else \
            (self.annotate_dir / f"{stem}.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(annotate(rgb, faces, show_landmarks=True), cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------ people
def track_video(table, source_name: str, db_url: str | None, start: float) -> dict:
    """A video's detection rows (in frame order) through the tracker, people to the store."""
    from pipeline.people.counter import PeopleCounter
    from pipeline.records import Detection
    counter = PeopleCounter(source=source_name, log=True, store_url=db_url, start=start)
    rows = [r for r in table.to_pylist() if r["error"] is None]
    rows.sort(key=lambda r: (r["frame"], r["face"]))
    k = 0
    while k < len(rows):
        j = k
        while j < len(rows) and rows[j]["frame"] == rows[k]["frame"]:
            j += 1
        dets = [Detection(box=tuple(r["box"]), score=r["score"], label=r["label"] or "",
                          probs=tuple((c, float(r["probs"][c])) for c in CLASSES) if r["probs"] else ())
                for r in rows[k:j] if r["face"] >= 0]
        counter.update(dets, rows[k]["time_s"], (rows[k]["width"], rows[k]["height"]))
        k = j
    counter.close()
    return {"source": source_name, "people": counter.total, "logged": counter.logged,
            "error": counter.log_error or counter.write_error}


# ------------------------------------------------------------------------------- job
@dataclass
class BatchSummary:
    files: int = 0
    items: int = 0
    items_skipped: int = 0
    frames: int = 0
    faces: dict = field(default_factory=lambda: {c: 0 for c in CLASSES})
    errors: int = 0
    error_messages: list = field(default_factory=list)
    seconds: float = 0.0
    first_result_s: float | None = None   # when the first item came back (Ray and actors up)
    people: dict = field(default_factory=dict)
    workers: list = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def fps_after_start(self) -> float:
        """Frames/s from the first result on: the pool's rate without Ray's and the actors'
        start-up (the first item's frames are not counted)."""
        if self.first_result_s is None or self.seconds <= self.first_result_s:
            return 0.0
        return (self.frames - self._first_frames) / (self.seconds - self.first_result_s)

    _first_frames: int = 0

    def text(self) -> str:
        faces = ", ".join(f"{c} {self.faces[c]}" for c in CLASSES)
        out = (f"{self.files} file(s), {self.items} item(s) run, {self.items_skipped} already done; "
               f"{self.frames} frame(s) in {self.seconds:.1f} s = {self.fps:.2f} frames/s; "
               f"faces: {faces}; errors: {self.errors}")
        for m in self.error_messages[:10]:
            out += f"\n  error: {m}"
        for src, p in self.people.items():
            out += f"\n  people {src}: {p}"
        return out

    def to_dict(self) -> dict:
        return dict(asdict(self), fps=round(self.fps, 3),
                    fps_after_start=round(self.fps_after_start, 3))


def _job_settings(out: Path, chunk_frames: int, min_face: float | None,
                  detector: str = DEFAULT_MEDIA_DETECTOR) -> dict:
    """The job's settings: those of an earlier run in `out` win (so its items stay valid)."""
    f = out / JOB_FILE
    want = {"chunk_frames": int(chunk_frames), "min_face": min_face, "detector": detector, "version": 1}
    if f.is_file():
        try:
            have = json.loads(f.read_text())
            if have != want:
                log.warning("%s holds an earlier job's settings %s; resuming with them", out, have)
            return have
        except (OSError, ValueError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(want))
    return want


def _abs(path: str) -> str:
    """Actors may run in another folder (or on another node with the same mounts)."""
    return str(Path(path).expanduser().absolute())


def plan(paths: list[str], chunk_frames: int) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """-> (work items, {video key: info}, error items found while planning)."""
    items, videos, errors = [], {}, []
    for path in paths:
        key = _file_key(path)
        if not is_video(path):
            items.append({"item": key, "source": path, "path": _abs(path), "kind": "image",
                          "start": 0, "stop": -1, "fps": 0.0, "t0": None})
            continue
        try:
            info = probe_video(path)
        except Exception as e:
            from pipeline.streams.video import VideoError
            msg = str(e) if isinstance(e, VideoError) else f"{path}: cannot read ({type(e).__name__}: {e})"
            if not msg.startswith(path):
                msg = f"{path}: {msg}"
            errors.append({"item": key, "source": path, "kind": "video", "error": msg})
            continue
        n = info.frames
        if info.t0 is None or not n or n <= chunk_frames:
            ranges = [(0, -1)]
        else:
            starts = list(range(0, n, chunk_frames))
            ranges = [(s, starts[i + 1] if i + 1 < len(starts) else -1) for i, s in enumerate(starts)]
        keys = []
        for s, e in ranges:
            k = f"{key}_{s:09d}"
            keys.append(k)
            items.append({"item": k, "source": path, "path": _abs(path), "kind": "video",
                          "start": s, "stop": e, "fps": info.fps, "t0": info.t0})
        videos[key] = {"source": path, "items": keys, "duration": info.duration}
    return items, videos, errors


def _write_atomic(table, path: Path) -> None:
    import pyarrow.parquet as pq
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _count(table, summary: BatchSummary) -> None:
    rows = table.select(["frame", "face", "label", "error", "worker"]).to_pylist()
    frames = {r["frame"] for r in rows if r["error"] is None}
    summary.frames += len(frames)
    for r in rows:
        if r["error"] is not None:
            summary.errors += 1
            summary.error_messages.append(r["error"])
        elif r["face"] >= 0 and r["label"] in summary.faces:
            summary.faces[r["label"]] += 1
        if r["worker"] and r["worker"] not in summary.workers:
            summary.workers.append(r["worker"])


def _init_ray(address: str | None, num_cpus_total: int | None):
    import ray
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    for k, v in os.environ.items():
        if k.startswith(("MASKWATCH_", "HF_")):
            env[k] = v
    kw = dict(runtime_env={"env_vars": env}, logging_level=logging.WARNING,
              ignore_reinit_error=True)
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(address="local", num_cpus=num_cpus_total, include_dashboard=False, **kw)
    return ray


def run_batch(inputs: list[str], out: str | Path, *, address: str | None = None,
              actors: int | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0,
              device: str = "auto", min_face: float | None = None, detector: str = DEFAULT_MEDIA_DETECTOR,
              annotate: bool = False,
              chunk_frames: int = DEFAULT_CHUNK_FRAMES, db_url: str | None = None,
              progress: bool = True, shutdown: bool = True) -> BatchSummary:
    """Run the job; returns its summary. See the module docstring."""
    out = Path(out)
    settings = _job_settings(out, chunk_frames, min_face, detector)
    det_dir = out / "detections"
    det_dir.mkdir(parents=True, exist_ok=True)
    paths = expand_inputs(inputs)
    summary = BatchSummary(files=len(paths))
    items, videos, plan_errors = plan(paths, int(settings["chunk_frames"]))
    for e in plan_errors:   # unreadable videos: one error row each, written now
        table = _table([_error_row({"source": e["source"], "kind": e["kind"], "worker": None,
                                    "item": e["item"]}, e["error"])])
        _write_atomic(table, det_dir / f"{e['item']}.error.parquet")
        _count(table, summary)
    todo = [it for it in items if not (det_dir / f"{it['item']}.parquet").exists()]
    summary.items_skipped = len(items) - len(todo)
    summary.items = len(todo)
    t0 = time.perf_counter()
    ray = None
    done_now: set[str] = set()
    if todo or (db_url and videos):
        cpus = max(1, os.cpu_count() or 1)
        ray = _init_ray(address, None if address else cpus)
    try:
        if todo:
            import ray.data
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = progress
            n_actors = actors or max(1, int((ray.cluster_resources().get("GPU", 0) // num_gpus) if num_gpus
                                            else ray.cluster_resources().get("CPU", 1) // max(num_cpus, 1e-3)))
            n_actors = max(1, min(n_actors, len(todo)))
            ds = ray.data.from_items(todo, override_num_blocks=len(todo))
            ds = ds.map_batches(
                DetectActor, batch_size=1, batch_format="pyarrow",
                fn_constructor_kwargs={"device": device, "min_face": settings.get("min_face"),
                                       "detector": settings.get("detector"),   # None: an older job
                                       "annotate_dir": str((out / "annotated").resolve()) if annotate else None,
                                       "threads": max(1, int(math.floor(num_cpus)))},
                compute=ray.data.ActorPoolStrategy(size=n_actors, max_tasks_in_flight_per_actor=1),
                num_cpus=num_cpus, num_gpus=num_gpus)
            parts: dict[str, list] = {}
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                for key in batch.column("item").unique().to_pylist():
                    import pyarrow.compute as pc
                    sub = batch.filter(pc.equal(batch.column("item"), key))
                    parts.setdefault(key, []).append(sub)
                    import pyarrow as pa
                    whole = pa.concat_tables(parts[key])
                    if whole.num_rows >= whole.column("item_rows")[0].as_py():
                        del parts[key]
                        whole = whole.sort_by([("frame", "ascending"), ("face", "ascending")])
                        failed = whole.column("error").null_count < whole.num_rows
                        name = f"{key}.error.parquet" if failed else f"{key}.parquet"
                        _write_atomic(whole, det_dir / name)
                        if not failed:
                            (det_dir / f"{key}.error.parquet").unlink(missing_ok=True)
                        done_now.add(key)
                        _count(whole, summary)
                        if summary.first_result_s is None:
                            summary.first_result_s = time.perf_counter() - t0
                            summary._first_frames = summary.frames
        summary.seconds = time.perf_counter() - t0
        if db_url:
            summary.people = _people(ray, out, videos, db_url)
    finally:
        if ray is not None and shutdown:
            ray.shutdown()
    return summary


def _people(ray, out: Path, videos: dict, db_url: str) -> dict:
    """One Ray task per finished video whose people are not in the store yet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    det_dir, mark_dir = out / "detections", out / "people"
    mark_dir.mkdir(parents=True, exist_ok=True)
    task = ray.remote(num_cpus=0.5)(track_video)
    refs = {}
    for key, v in videos.items():
        files = [det_dir / f"{k}.parquet" for k in v["items"]]
        if (mark_dir / f"{key}.done").exists() or not all(f.exists() for f in files):
            continue
        table = pa.concat_tables([pq.read_table(f) for f in files])
        src = Path(v["source"])
        start = src.stat().st_mtime - v["duration"]   # the recording ended when it was written
        refs[key] = task.remote(table, src.stem[:64] or "video", db_url, start)
    res = {}
    for key, ref in refs.items():
        r = ray.get(ref)
        if not r["error"]:
            (mark_dir / f"{key}.done").write_text(json.dumps(r))
        res[r["source"]] = r
    return res


def read_detections(out: str | Path):
    """The job's detections as one pyarrow Table, in (source, frame, face) order."""
    import pyarrow.dataset as pads
    files = sorted(str(f) for f in (Path(out) / "detections").glob("*.parquet"))
    if not files:
        return schema().empty_table()
    t = pads.dataset(files, schema=schema(), format="parquet").to_table()
    return t.sort_by([("source", "ascending"), ("frame", "ascending"), ("face", "ascending")])


# --------------------------------------------------------------------------------- CLI
def add_parser(sub, min_face_type) -> None:
    b = sub.add_parser("batch", help="images and videos in bulk on Ray Data (Parquet out)",
                       description="Detect faces and masks in many images and videos with Ray "
                                   "Data: embedded on this machine, or on a cluster with "
                                   "--address. Needs requirements-scale.txt.")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (Parquet dataset)")
    b.add_argument("--address", default=None,
                   help="Ray cluster to join: ray://HOST:10001 or auto (default: start Ray here)")
    b.add_argument("--actors", type=int, default=None, metavar="N",
                   help="actors in the pool (default: as many as the resources allow)")
    b.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per actor (default 1)")
    b.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per actor (default 0)")
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.add_argument("--min-face", type=min_face_type, default=None,
                   help="smallest face side to look for, in pixels (default 20)")
    b.add_argument("--detector", choices=DETECTOR_CHOICES, default=DEFAULT_MEDIA_DETECTOR,
                   help="face detector weights: camera (grainy, blurred frames), photo, or auto (camera "
                        "for each heavily compressed or grainy image, and for each video whose first "
                        f"frames mostly are; photo for the rest); default {DEFAULT_MEDIA_DETECTOR}")
    b.add_argument("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, metavar="N",
                   help=f"frames per video work item (default {DEFAULT_CHUNK_FRAMES})")
    b.add_argument("--annotate", action="store_true", help="also write annotated JPEGs")
    b.add_argument("--db", metavar="URL", default=None,
                   help="also count people per video and write them to this store")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_batch(args) -> int:
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError as e:
        print(f"error: `batch` needs Ray Data and pyarrow: pip install -r requirements-scale.txt "
              f"({e.name} is missing)", file=sys.stderr)
        return 1
    if args.chunk_frames < 1:
        print("error: --chunk-frames must be at least 1", file=sys.stderr)
        return 1
    s = run_batch(args.inputs, args.out, address=args.address, actors=args.actors,
                  num_cpus=args.num_cpus, num_gpus=args.num_gpus, device=args.device,
                  min_face=args.min_face, detector=args.detector, annotate=args.annotate,
                  chunk_frames=args.chunk_frames,
                  db_url=args.db, progress=not args.no_progress)
    print(json.dumps(s.to_dict()) if args.json else s.text())
    return 2 if s.errors else 0
