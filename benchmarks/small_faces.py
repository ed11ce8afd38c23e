"""What the small-face pass (DetectorConfig.small_face_below) costs and finds, one command:

    python -m benchmarks.small_faces [--frames 32] [--repeats 3] [--size 640x480]

The released detector with its defaults (min face 12: the main pyramid from 20 px plus the
small-face pass) against the main pass alone (pipeline.engine.cascade.main_pass_config: a plain
pyramid from 20 px, the previous default), in one process, on the same frames
(benchmarks.frames.group_photos, and the same photos shrunk so that their faces are small), one
thread, alternating frame by frame. Reports the median over repeats of the time ratio, and the
faces each finds. Writes benchmarks/results/small_faces-<machine>.json.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from benchmarks.frames import group_photos
from benchmarks.speed import record_sets
from pipeline.engine.cascade import main_pass_config


def shrunk(frames: list[np.ndarray], factor: float) -> list[np.ndarray]:
    return [cv2.resize(f, (round(f.shape[1] * factor), round(f.shape[0] * factor)), interpolation=cv2.INTER_AREA)
            for f in frames]


def compare(detector, frames: list[np.ndarray], repeats: int) -> dict:
    """Both configs on every frame, alternating -> time ratio (with pass / main pass only) per
    repeat and its median, and the faces each finds."""
    configs = {"with_pass": detector.config, "main_pass": main_pass_config(detector.config)}
    faces = {k: sum(len(detector.detect(f, c)) for f in frames) for k, c in configs.items()}
    ratios = []
    for _ in range(repeats):
        t = dict.fromkeys(configs, 0.0)
        for f in frames:
            for k, c in configs.items():
                s = time.process_time()
                detector.detect(f, c)
                t[k] += time.process_time() - s
        ratios.append(round(t["with_pass"] / t["main_pass"], 3))
    return {"frames": len(frames), "faces": faces, "ratios": ratios, "median_ratio": statistics.median(ratios),
            "main_pass_ms_per_frame": round(1000 * t["main_pass"] / len(frames), 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--shrink", type=float, default=0.4, help="factor for the small-faces frames")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from pipeline.engine.mask_detector import MaskDetector
    torch.set_num_threads(1)
    det = MaskDetector.load(device="cpu").detector
    w, h = (int(v) for v in a.size.lower().split("x"))
    frames = [f for _, f in group_photos(w, h)][:a.frames]
    res = record_sets("small_faces", {a.size: lambda: compare(det, frames, a.repeats),
                                      f"{a.size} x{a.shrink:g}": lambda: compare(det, shrunk(frames, a.shrink), a.repeats)},
                      a.out, config={"min_face": det.config.min_face, "small_face_below": det.config.small_face_below})
    for name, r in res["sets"].items():
        print(f"{name}: with pass / main pass time {r['median_ratio']:.2f} (repeats {r['ratios']}), "
              f"faces {r['faces']['with_pass']} against {r['faces']['main_pass']}")
    return res


if __name__ == "__main__":
    main()
