"""Old code against new, head to head: the detector, the full pipeline and the webcam mode of
an older checkout of MaskWatch and of this one, in one process, on the same weights and frames,
alternating old/new frame by frame (so a busy machine slows both alike), 1 torch thread.

    git archive <commit> | tar -x -C /tmp/old      # the older version, anywhere
    python -m benchmarks.head_to_head --old /tmp/old [--repeats 3] [--frames 24]

Checks that both find the same faces (and, in the webcam mode, take the same steps) and prints
new/old time ratios (median over repeats). For refactors, where the quiet-machine speed table
of benchmarks.speed is too noisy to resolve a few percent.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.speed import alternate  # noqa: E402


def load_old(root: Path, name: str = "oldpipeline"):
    """The older checkout's pipeline package, imported under another name."""
    pkg = root / "pipeline"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.engine"), importlib.import_module(f"{name}.realtime")


def main(argv=None) -> None:
    from benchmarks.frames import group_photos, moving_clip
    from pipeline.engine import mask_detector as new_engine
    from pipeline.engine import temporal as new_rt
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", type=Path, required=True, help="root of the older checkout")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=24)
    a = ap.parse_args(argv)
    old_engine, old_rt = load_old(a.old)
    torch.set_num_threads(1)
    engines = {"old": old_engine.MaskDetector.load(device="cpu"), "new": new_engine.MaskDetector.load(device="cpu")}
    frames = [f for _, f in group_photos(640, 480)][: a.frames]
    for f in frames:
        got = {k: e.detect(f) for k, e in engines.items()}
        assert len(got["old"]) == len(got["new"]) and all(
            np.allclose(x.box, y.box, atol=1e-4) and x.label == y.label for x, y in zip(got["old"], got["new"]))
    for name, call in (("detector (FaceDetector.detect)", lambda e, f: e.detector.detect(f)),
                       ("full pipeline (MaskDetector.detect)", lambda e, f: e.detect(f))):
        t = alternate(engines, frames, lambda k, i, f: call(engines[k], f), a.repeats)
        o, n = statistics.median(t["old"]), statistics.median(t["new"])
        print(f"{name}: old {1000 * o / len(frames):.1f} ms/frame, new {1000 * n / len(frames):.1f}, new/old {n / o:.3f}",
              flush=True)
    clip = moving_clip(n_frames=90)
    modules = {"old": old_rt, "new": new_rt}
    for min_face in (20.0, 40.0):
        spent = {"old": [], "new": []}
        for _ in range(a.repeats):
            rts = {k: m.RealtimeMaskDetector(engines[k], m.RealtimeConfig(threads=1),
                                             detector_config=dataclasses.replace(engines[k].detector.config,
                                                                                 min_face=min_face))
                   for k, m in modules.items()}
            t = alternate(rts, clip, lambda k, i, f: rts[k].process(f, i / 30), 1)
            assert rts["old"].stats == rts["new"].stats, (rts["old"].stats, rts["new"].stats)
            for k in t:
                spent[k] += t[k]
        o, n = statistics.median(spent["old"]), statistics.median(spent["new"])
        print(f"webcam mode min_face {min_face:g}: old {len(clip) / o:.1f} fps, new {len(clip) / n:.1f} fps, "
              f"new/old time {n / o:.3f}", flush=True)
    print("load", [round(x, 2) for x in os.getloadavg()])


if __name__ == "__main__":
    main()
