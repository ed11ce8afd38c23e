"""Frames per second: `python -m pipeline batch` (Ray Data, K actors) against `python -m pipeline
detect` in one process, on the same files, on this machine.

    python -m benchmarks.batch_speed [--images 40] [--actors 2] [--json OUT]

Both commands run as a user runs them (a fresh process each, models loaded, Ray started
embedded for `batch`). Each is run on N and on 2N images: the wall time of the N-image run
includes the start-up (model loading; for `batch` also starting Ray and its actors), and the
difference between the two runs gives the steady-state rate, N / (t(2N) - t(N)). Images: ILC
2021 held-out photos (tests/data/ilc_val_images.txt) from ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from training.paths import DATA, ROOT  # noqa: E402


def images(n: int) -> list[str]:
    names = [l.strip() for l in (ROOT / "tests" / "data" / "ilc_val_images.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    out = [str(DATA / "scenes" / "ilc2021" / "images" / x) for x in names]
    out = [p for p in out if Path(p).exists()][:n]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} images found")
    return out


LAST: dict = {}


def _run(cmd) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    if p.returncode not in (0, 2):
        raise RuntimeError(p.stderr[-2000:])
    if "batch" in cmd:
        LAST.update(json.loads(p.stdout.strip().splitlines()[-1]))
    return time.perf_counter() - t


def detect_time(paths) -> float:
    return _run([sys.executable, "-m", "pipeline", "detect", *paths, "--json", "--device", "cpu"])


def batch_time(paths, actors: int, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mwbatch") as d:
        return _run([sys.executable, "-m", "pipeline", "batch", *paths, "--out", d, "--actors",
                     str(actors), "--num-cpus", str(threads), "--device", "cpu", "--no-progress",
                     "--json"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    n = a.images
    small, big = images(n), images(2 * n)
    res = {"images": n, "actors": a.actors, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    runs = {}
    for name, fn in (("detect", detect_time), ("batch", lambda p: batch_time(p, a.actors, 1))):
        t1, t2 = fn(small), fn(big)
        runs[name] = {"wall_s_N": round(t1, 1), "wall_s_2N": round(t2, 1),
                      "frames_per_s_wall_2N": round(2 * n / t2, 2),
                      "frames_per_s_steady": round(n / max(1e-6, t2 - t1), 2),
                      "startup_s": round(max(0.0, 2 * t1 - t2), 1)}
        if name == "batch":       # the 2N run's own summary: rate once the actors were up
            runs[name]["frames_per_s_after_start_2N"] = LAST.get("fps_after_start")
            runs[name]["first_result_s_2N"] = round(LAST.get("first_result_s") or 0, 1)
        print(name, runs[name], flush=True)
    res["runs"] = runs
    res["load_after"] = os.getloadavg()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
