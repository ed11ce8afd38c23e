"""What the "auto" detector (the default of `detect` and the Photo page) costs against "photo",
one command:

    python -m benchmarks.auto_detector [--frames 32] [--repeats 3] [--size 640x480] [--quality 25]

MaskDetector.load(detector="auto") against MaskDetector.load(detector="photo"), whole `detect`
calls (choice, faces, classifier) at the default config, in one process, on the same frames
(benchmarks.frames.group_photos as they are, which "auto" gives the photo weights, and the same
frames saved as JPEG at --quality, which it gives the camera weights), one thread, alternating
frame by frame. Reports the median over repeats of the time ratio, the faces each finds and how
many frames took the camera weights. Writes benchmarks/results/auto_detector-<machine>.json.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from benchmarks.frames import group_photos
from benchmarks.speed import alternate, record_sets
from pipeline.engine.mask_detector import auto_weights


def jpeg(frames: list[np.ndarray], quality: int) -> list[np.ndarray]:
    """RGB frames -> the same after a JPEG round trip at `quality`."""
    out = []
    for f in frames:
        ok, enc = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


def time_ratio(engines: dict, frames: list[np.ndarray], repeats: int) -> dict:
    """engines {"auto": ..., "photo": ...} on every frame, alternating (benchmarks.speed.alternate)
    -> auto / photo CPU time per repeat and its median, the faces each finds, and the frames "auto" gave the camera weights."""
    faces = {k: sum(len(e.detect(f)) for f in frames) for k, e in engines.items()}
    spent = alternate(engines, frames, lambda k, i, f: engines[k].detect(f), repeats, clock=time.process_time)
    ratios = [round(a / p, 3) for a, p in zip(spent["auto"], spent["photo"])]
    return {"frames": len(frames), "camera_frames": sum(auto_weights(f) == "camera" for f in frames),
            "faces": faces, "ratios": ratios, "median_ratio": statistics.median(ratios),
            "photo_ms_per_frame": round(1000 * spent["photo"][-1] / len(frames), 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--quality", type=int, default=25, help="JPEG quality of the compressed copies")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from pipeline.engine.mask_detector import MaskDetector
    torch.set_num_threads(1)
    engines = {k: MaskDetector.load(device="cpu", detector=k) for k in ("auto", "photo")}
    w, h = (int(v) for v in a.size.lower().split("x"))
    frames = [f for _, f in group_photos(w, h)][:a.frames]
    res = record_sets("auto_detector", {a.size: lambda: time_ratio(engines, frames, a.repeats),
                                        f"{a.size} JPEG {a.quality}":
                                            lambda: time_ratio(engines, jpeg(frames, a.quality), a.repeats)}, a.out)
    for name, r in res["sets"].items():
        print(f"{name}: auto / photo time {r['median_ratio']:.2f} (repeats {r['ratios']}), camera weights for "
              f"{r['camera_frames']} of {r['frames']} frames, faces {r['faces']['auto']} against {r['faces']['photo']}")
    return res


if __name__ == "__main__":
    main()
