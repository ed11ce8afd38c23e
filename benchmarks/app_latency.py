"""App latency on this machine (not a test): photo result time and webcam frame rate.

    python -m benchmarks.app_latency [--repeat 5] [--photo PATH] [--json OUT]

1. Photo page, 1280x960: the page's work (decode the upload, detect + classify, draw, encode the
   PNG download) timed piece by piece, and the whole page run in AppTest (upload -> rendered
   result), median of --repeat runs after one warm-up.
2. Webcam frame path: the real video_frame_callback on 640x480 av.VideoFrames of a group photo,
   with 1 and with 2 torch threads (frames per second the callback sustains).
3. The real-browser webcam run, when tests/test_browser_webcam.py left
   artifacts/webcam_browser_stats.json: processed fps measured from the server's frame log.
The load average is printed: other work on the machine changes these numbers a lot.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import queue
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the app (pipeline/ui/session.py) runs

import cv2  # noqa: E402
from PIL import Image  # noqa: E402

from training.paths import DATA, ROOT  # noqa: E402
DEFAULT_PHOTO = DATA / "scenes" / "dlib_faces" / "2008_002506.jpg"
CROWD_PHOTO = DATA / "scenes" / "dlib_faces" / "bald_guys.jpg"


def _jpeg_1280x960(path: Path) -> bytes:
    img = Image.open(path).convert("RGB").resize((1280, 960), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _median_ms(fn, repeat: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this thread and its torch workers: process time)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def photo_pieces(engine, data: bytes, repeat: int, threads: int) -> dict:
    """The photo page's work, piece by piece. With threads=1 the CPU time is what the wall
    time would be on an otherwise idle core (a load-independent figure)."""
    import torch
    from pipeline.streams import photo
    from pipeline.media.images import decode_image
    torch.set_num_threads(threads)
    img = decode_image(data, "bench.jpg")
    a = photo.analyze(engine, img)
    shown = photo.render(a)
    out = {"threads": threads, "faces": len(a.detections)}
    for name, fn in (("decode", lambda: decode_image(data, "bench.jpg")),
                     ("detect_classify", lambda: engine.detect(img)),
                     ("render", lambda: photo.render(a)),
                     ("encode_jpeg_for_display", lambda: photo.encode_image(shown, "JPEG")),
                     ("encode_png_download", lambda: photo.encode_image(shown, "PNG"))):
        w, c = _median_ms(fn, repeat)
        out[name] = {"wall_ms": round(w, 1), "cpu_ms": round(c, 1)}
    shown_parts = [k for k in out if isinstance(out[k], dict) and k != "encode_png_download"]
    out["result_shown_wall_ms"] = round(sum(out[k]["wall_ms"] for k in shown_parts), 1)
    out["result_shown_cpu_ms"] = round(sum(out[k]["cpu_ms"] for k in shown_parts), 1)
    return out


def photo_apptest(data: bytes, repeat: int) -> dict:
    """Whole photo page in AppTest: set the upload, run, until the result is rendered."""
    from streamlit.testing.v1 import AppTest
    times = []
    faces = None
    for k in range(repeat + 1):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.switch_page("pages/1_Photo.py")
        at.run()
        # a different byte string each time so st.cache_data cannot answer
        at.file_uploader[0].set_value((f"bench{k}.jpg", data + bytes([k]), "image/jpeg"))
        t = time.perf_counter()
        at.run()
        dt = (time.perf_counter() - t) * 1000
        assert not at.exception, at.exception
        faces = sum(int(m.value) for m in at.metric if m.label in ("mask", "no mask", "incorrect"))
        if k:
            times.append(dt)
    return {"faces": faces, "page_run_ms_median": round(statistics.median(times), 1),
            "page_run_ms_all": [round(t, 1) for t in times]}


def webcam_fps(engine, seconds: float, threads: int, every: int) -> dict:
    """Frames per second of the real callback on one worker thread (as streamlit-webrtc runs it)."""
    import av
    from pipeline.streams.webcam import WebcamSettings, make_frame_callback
    img = cv2.cvtColor(cv2.resize(cv2.imread(str(DEFAULT_PHOTO)), (640, 480)), cv2.COLOR_BGR2RGB)
    q: queue.Queue = queue.Queue()
    cb = make_frame_callback(engine, q, WebcamSettings(threads=threads, detect_every=every), frame_log="")
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    result = {}

    def run():
        cb(frame)
        n, t0, c0 = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - t0 < seconds:
            cb(frame)
            n += 1
        result["fps"] = n / (time.perf_counter() - t0)
        result["cpu"] = time.thread_time() - c0        # this thread only: exact for threads=1

    th = threading.Thread(target=run)
    th.start()
    th.join()
    ms = [r.ms for r in list(q.queue)[1:]]
    return {"threads": threads, "detect_every": every, "fps": round(result["fps"], 1), "ms_median": round(statistics.median(ms), 1),
            "cpu_ms_per_frame": round(result["cpu"] * 1000 / max(1, len(ms)), 1),
            "faces": list(q.queue)[-1].faces}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8.0, help="per webcam setting")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-apptest", action="store_true")
    a = ap.parse_args(argv)

    import torch
    from pipeline.engine.mask_detector import MaskDetector, device_name
    engine = MaskDetector.load("auto")
    out = {"device": device_name(engine.device), "cpus": os.cpu_count(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "loadavg_before": [round(v, 2) for v in os.getloadavg()], "weights": engine.source.describe()}
    default_threads = torch.get_num_threads()
    for name, path in (("photo_3_faces_1280x960", DEFAULT_PHOTO), ("photo_26_faces_1280x960", CROWD_PHOTO)):
        for threads in sorted({1, default_threads}):
            key = f"{name}_{threads}t"
            out[key] = photo_pieces(engine, _jpeg_1280x960(path), a.repeat, threads)
            print(key, out[key], flush=True)
    torch.set_num_threads(default_threads)
    if not a.skip_apptest:
        out["photo_page_apptest_1280x960_3_faces"] = photo_apptest(_jpeg_1280x960(DEFAULT_PHOTO), a.repeat)
        print("apptest", out["photo_page_apptest_1280x960_3_faces"], flush=True)
    out["webcam_callback"] = [webcam_fps(engine, a.seconds, t, n) for t, n in ((1, 1), (2, 1), (1, 2), (1, 3))]
    torch.set_num_threads(default_threads)
    print("webcam callback", out["webcam_callback"], flush=True)
    stats = ROOT / "artifacts" / "webcam_browser_stats.json"
    if stats.exists():
        out["webcam_browser"] = json.loads(stats.read_text())
        print("browser", out["webcam_browser"])
    out["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
