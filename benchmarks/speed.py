"""MaskWatch speed benchmark against the reference MTCNN (facenet-pytorch 2.6.0), one command:

    python -m benchmarks.speed                     # CPU: 1 core, 2 cores (2 threads; 1 thread x 2
                                                   # detector workers), 640x480 and 1280x720
    python -m benchmarks.speed --device cuda       # GPU: + batched throughput, fp16/bf16 variants
    python -m benchmarks.speed --quick             # a fast smoke run (few frames, 1 repeat)
    python -m benchmarks.speed --detector original # the original MTCNN weights + thresholds
                                                   # (recall of the reference's faces = levers only)

Same frames, same process, same min face size (20) for everything:
* frames: real photos of several people (dlib's example scenes + ilc2021 crowd photos with
  >= 3 faces), fitted to 640x480 and 1280x720 (benchmarks/frames.py);
* reference: facenet-pytorch 2.6.0's MTCNN from its wheel (benchmarks/reference.py),
  detection only; its stand-in NMS time is reported (and it is at most a few percent);
* ours: the detector alone (FaceDetector.detect) and the full two-stage pipeline
  (MaskDetector.detect: faces + mask labels);
* accuracy: recall of the reference's faces by our detector at IoU >= 0.5 (and extra faces);
* realtime (640x480): the webcam mode (pipeline/engine/temporal.py) on a pan/zoom clip made from a
  real group photo, against full detection on every frame, both scored on the photo's
  annotated faces mapped into every frame;
* GPU only: batched throughput (pipeline/engine/batched.py) at several batch sizes and dtypes, and the
  reference's own batched mode.

Timings interleave the methods frame by frame (ref, ours, ours+labels on each frame in turn)
so a busy machine slows them alike; ms/frame is the median over repeats of each pass's mean.
The system load is recorded.
Writes benchmarks/results/speed-<machine>.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from training.paths import ROOT  # noqa: E402
sys.path.insert(0, str(ROOT))

from benchmarks import reference as ref  # noqa: E402
from benchmarks.frames import group_photos, moving_clip  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def machine_info(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0).lower().replace(" ", "-")
    cpu = machine_info("cpu").get("cpu", "cpu").lower()
    vendor = "amd-epyc" if "epyc" in cpu else ("intel" if "intel" in cpu else "cpu")
    return f"cpu{os.cpu_count()}-{vendor}"


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def alternate(pair: dict, items: list, step, repeats: int, clock=time.perf_counter) -> dict:
    """step(key, item_index, item) for both keys of pair on every item, the order alternating
    per item and per pass -> {key: [seconds per pass]} by `clock` (wall time by default;
    time.process_time for CPU time)."""
    keys = list(pair)
    out = {k: [] for k in keys}
    for r in range(repeats):
        spent = dict.fromkeys(keys, 0.0)
        for i, item in enumerate(items):
            for k in (keys if (i + r) % 2 == 0 else keys[::-1]):
                t0 = clock()
                step(k, i, item)
                spent[k] += clock() - t0
        for k in keys:
            out[k].append(spent[k])
    return out


def record_sets(kind: str, sets: dict, out=None, **facts) -> dict:
    """Run each set ({name: a callable -> its result}) in turn -> {"machine", "started",
    "load_start", **facts, "sets": {name: result}, "load_end"}, written as JSON to `out` or
    benchmarks/results/<kind>-<machine>.json (the CPU benchmarks' record)."""
    res = {"machine": machine_name("cpu"), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": load(),
           **facts}
    res["sets"] = {name: run() for name, run in sets.items()}
    res["load_end"] = load()
    with open(out or ROOT / "benchmarks" / "results" / f"{kind}-{res['machine']}.json", "w") as fh:
        json.dump(res, fh, indent=2)
    return res


def recall_vs(ref_boxes: list[np.ndarray], our_boxes: list[np.ndarray], thr: float = 0.5) -> dict:
    """Share of the reference's faces that ours finds at IoU >= thr, and our extra faces."""
    from pipeline.engine.boxes import pairwise_iou
    found = total = extra = 0
    ious = []
    for r, o in zip(ref_boxes, our_boxes):
        r, o = np.asarray(r, np.float32).reshape(-1, 4), np.asarray(o, np.float32).reshape(-1, 4)
        total += len(r)
        if len(r) and len(o):
            iou = pairwise_iou(torch.from_numpy(r), torch.from_numpy(o))
            best = iou.max(dim=1).values
            found += int((best >= thr).sum())
            ious += best[best >= thr].tolist()
            extra += int((iou.max(dim=0).values < thr).sum())
        else:
            extra += len(o)
    return {"reference_faces": total, "found": found, "recall": round(found / max(total, 1), 4),
            "extra_faces": extra, "mean_iou": round(float(np.mean(ious)), 4) if ious else None}


def timed_passes(methods: dict, frames: list, repeats: int, device: str) -> dict:
    """Per method: ms/frame (median over repeats, and min), CPU ms/frame, fps.

    Round-robin per frame (ref, ours, ours+labels on frame 1, then on frame 2, ...) so that
    a machine whose load drifts slows every method alike."""
    for f in methods.values():            # warm up (lazy init, oneDNN primitive caches)
        for img in frames[:2]:
            f(img)
    wall = {k: [] for k in methods}
    cpu = {k: [] for k in methods}
    extra = {k: [] for k in methods}
    for _ in range(repeats):
        tw = dict.fromkeys(methods, 0.0)
        tc = dict.fromkeys(methods, 0.0)
        te = dict.fromkeys(methods, 0.0)
        for img in frames:
            for k, f in methods.items():
                s0 = ref.standin_seconds
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                f(img)
                _sync(device)
                tw[k] += time.perf_counter() - t0
                tc[k] += time.process_time() - c0
                te[k] += ref.standin_seconds - s0
        for k in methods:
            wall[k].append(tw[k] * 1000 / len(frames))
            cpu[k].append(tc[k] * 1000 / len(frames))
            extra[k].append(te[k] * 1000 / len(frames))
    out = {}
    for k in methods:
        med = statistics.median(wall[k])
        out[k] = {"ms_per_frame": round(med, 2), "ms_min": round(min(wall[k]), 2),
                  "fps": round(1000 / med, 1), "cpu_ms_per_frame": round(statistics.median(cpu[k]), 2),
                  "passes_ms": [round(x, 2) for x in wall[k]]}
        if max(extra[k]) > 0:
            out[k]["standin_nms_ms_per_frame"] = round(statistics.median(extra[k]), 2)
    return out


def parse_config(c: str) -> tuple[int, int]:
    """"T" -> (T torch threads, 1 worker); "TxW" -> (T threads, W detector workers)."""
    t, _, w = c.partition("x")
    return int(t), int(w or 1)


def bench_size(engine, mtcnn, width: int, height: int, configs: list[str], repeats: int,
               n_frames: int, device: str) -> dict:
    frames = [f for _, f in group_photos(width, height)][:n_frames]
    res = {"frames": len(frames), "size": f"{width}x{height}", "min_face": engine.detector.config.min_face}
    # accuracy (does not depend on threads)
    ref_boxes = [ref.detect(mtcnn, f)[0] for f in frames]
    ours = [engine.detector.detect(f).boxes for f in frames]
    res["accuracy"] = recall_vs(ref_boxes, ours)
    res["timing"] = {}
    det = engine.detector
    for c in configs if device == "cpu" else [str(torch.get_num_threads())]:
        t, w = parse_config(c)
        cores = t * w

        def as_ref(f):
            # the reference runs with the same intra-op threads (switching the OpenMP pool size
            # between calls is itself slow); best-vs-best across configs is in "best"
            def g(img):
                torch.set_num_threads(t)
                return f(img)
            return g

        def as_ours(f):
            def g(img):
                torch.set_num_threads(t)
                det.workers = w
                return f(img)
            return g

        methods = {
            "reference": as_ref(lambda img: ref.detect(mtcnn, img)),
            "ours_detector": as_ours(lambda img: det.detect(img)),
            "ours_full": as_ours(lambda img: engine.detect(img)),
        }
        la = load()
        r = timed_passes(methods, frames, repeats, device)
        det.workers = 1
        for k in ("ours_detector", "ours_full"):
            r[k]["speedup_vs_reference"] = round(r["reference"]["ms_per_frame"] / r[k]["ms_per_frame"], 2)
            r[k]["cpu_speedup_vs_reference"] = round(r["reference"]["cpu_ms_per_frame"] / r[k]["cpu_ms_per_frame"], 2)
        r["reference"]["threads"] = t
        r["ours_full"]["threads"] = r["ours_detector"]["threads"] = t
        r["ours_full"]["workers"] = r["ours_detector"]["workers"] = w
        r["load_before"], r["load_after"] = la, load()
        res["timing"][f"cores={cores} ours=threads {t} x workers {w}"] = r
        print(f"  {width}x{height} {c}: " + ", ".join(
            f"{k} {v['ms_per_frame']} ms" for k, v in r.items() if isinstance(v, dict)), flush=True)
    # each side in its best configuration on this machine, now
    timing = res["timing"]
    best_ref = min(timing.items(), key=lambda kv: kv[1]["reference"]["ms_per_frame"])
    best_full = min(timing.items(), key=lambda kv: kv[1]["ours_full"]["ms_per_frame"])
    best_det = min(timing.items(), key=lambda kv: kv[1]["ours_detector"]["ms_per_frame"])
    res["best"] = {
        "reference": {"config": best_ref[0], "ms_per_frame": best_ref[1]["reference"]["ms_per_frame"]},
        "ours_detector": {"config": best_det[0], "ms_per_frame": best_det[1]["ours_detector"]["ms_per_frame"]},
        "ours_full": {"config": best_full[0], "ms_per_frame": best_full[1]["ours_full"]["ms_per_frame"]},
    }
    for k in ("ours_detector", "ours_full"):
        res["best"][k]["speedup_vs_best_reference"] = round(
            res["best"]["reference"]["ms_per_frame"] / res["best"][k]["ms_per_frame"], 2)
    return res


def bench_batched(engine, mtcnn, width: int, height: int, batch_sizes: list[int], amps: list[str],
                  n_frames: int, device: str) -> dict:
    from pipeline.engine.batched import detect_batch
    frames = [f for _, f in group_photos(width, height)][:n_frames]
    ref_boxes = [ref.detect(mtcnn, f)[0] for f in frames]
    out = {"size": f"{width}x{height}", "runs": []}
    for amp_name in amps:
        amp = {"none": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp_name]
        for bs in batch_sizes:
            work = (frames * (1 + (2 * bs) // len(frames)))[: max(2 * bs, len(frames))]
            detect_batch(engine, work[:bs], batch_size=bs, amp=amp)            # warm up
            _sync(device)
            t0 = time.perf_counter()
            got = detect_batch(engine, work, batch_size=bs, amp=amp)
            _sync(device)
            dt = time.perf_counter() - t0
            acc = recall_vs(ref_boxes, [[d.box for d in g] for g in got[: len(frames)]])
            out["runs"].append({"amp": amp_name, "batch_size": bs, "frames": len(work),
                                "fps": round(len(work) / dt, 1), "ms_per_frame": round(dt * 1000 / len(work), 3),
                                "recall_vs_reference": acc["recall"], "extra_faces": acc["extra_faces"]})
            print(f"  batched {width}x{height} amp={amp_name} bs={bs}: {out['runs'][-1]['fps']} fps, "
                  f"recall {acc['recall']}", flush=True)
    # the reference's own batched mode (same-size frames in one call)
    for bs in [b for b in batch_sizes if b > 1][:2]:
        work = (frames * (1 + bs // len(frames)))[:bs]
        ref.detect_batch(mtcnn, work)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(2):
            ref.detect_batch(mtcnn, work)
        _sync(device)
        dt = (time.perf_counter() - t0) / 2
        out.setdefault("reference_batched", []).append({"batch_size": bs, "fps": round(bs / dt, 1)})
    return out


def bench_realtime(engine, min_faces: list[float], config: str) -> dict:
    from dataclasses import replace

    from pipeline.engine.temporal import RealtimeConfig, RealtimeMaskDetector
    threads, workers = parse_config(config)
    torch.set_num_threads(threads)
    engine.detector.workers = workers
    frames, truth = moving_clip(n_frames=90, with_boxes=True)
    out = {"clip": "pan/zoom over dlib 2007_007763.jpg (7 annotated faces), 90 frames 640x480",
           "threads": threads, "workers": workers, "runs": []}
    for mf in min_faces:
        cfg = replace(engine.detector.config, min_face=mf)
        engine.detect(frames[0], cfg)
        t0 = time.perf_counter()
        full = [[d.box for d in engine.detect(f, cfg)] for f in frames]
        t_full = time.perf_counter() - t0
        rt = RealtimeMaskDetector(engine, RealtimeConfig(threads=threads), detector_config=cfg)
        per = []
        live = []
        for i, f in enumerate(frames):
            t = time.perf_counter()
            live.append([d.box for d in rt.process(f, i / 30)])
            per.append(time.perf_counter() - t)
        r_full = recall_vs(truth, full)
        r_live = recall_vs(truth, live)
        agree = recall_vs(full, live)
        run = {"min_face": mf, "full_every_frame_fps": round(len(frames) / t_full, 1),
               "realtime_fps": round(len(frames) / sum(per), 1),
               "realtime_ms_p50": round(1000 * float(np.median(per)), 2),
               "realtime_ms_p95": round(1000 * float(np.percentile(per, 95)), 2),
               "recall_full_every_frame": r_full["recall"], "recall_realtime": r_live["recall"],
               "recall_gap": round(r_full["recall"] - r_live["recall"], 4),
               "full_faces_found_by_realtime": agree["recall"], "stats": dict(rt.stats),
               "load": load()}
        out["runs"].append(run)
        engine.detector.workers = 1
        print(f"  realtime min_face={mf}: {run['realtime_fps']} fps (full every frame "
              f"{run['full_every_frame_fps']}), recall {run['recall_realtime']} vs {run['recall_full_every_frame']}",
              flush=True)
    return out


def table(result: dict) -> str:
    lines = ["| size | config | method | threads x workers | ms/frame | fps | vs reference (same row group) | recall of reference faces |",
             "|---|---|---|---|---|---|---|---|"]
    for s in result["sizes"]:
        for tk, r in s["timing"].items():
            for k in ("reference", "ours_detector", "ours_full"):
                v = r[k]
                ratio = "1.00x" if k == "reference" else f"{v['speedup_vs_reference']:.2f}x"
                rec = "-" if k == "reference" else f"{s['accuracy']['recall']:.3f}"
                tw = f"{v['threads']}" if k == "reference" else f"{v['threads']} x {v['workers']}"
                lines.append(f"| {s['size']} | {tk} | {k} | {tw} | {v['ms_per_frame']} | {v['fps']} | {ratio} | {rec} |")
        b = s["best"]
        lines.append(f"| {s['size']} | **best vs best** | ours_full ({b['ours_full']['config']}) vs reference "
                     f"({b['reference']['config']}) | | {b['ours_full']['ms_per_frame']} | "
                     f"{round(1000 / b['ours_full']['ms_per_frame'], 1)} | "
                     f"**{b['ours_full']['speedup_vs_best_reference']:.2f}x** | {s['accuracy']['recall']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--configs", nargs="+", default=["1", "2", "1x2"],
                    help="CPU configurations: T = T torch threads for everyone; TxW = ours with T "
                         "threads x W detector workers (T*W cores), the reference with T threads")
    ap.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--amp", nargs="+", default=["none", "fp16", "bf16"])
    ap.add_argument("--batched", action="store_true", help="also time pipeline.engine.batched (always on cuda)")
    ap.add_argument("--no-realtime", action="store_true")
    ap.add_argument("--realtime-min-face", type=float, nargs="+", default=[20.0, 40.0])
    ap.add_argument("--realtime-config", default="1x2", help="threads x workers for the webcam mode")
    ap.add_argument("--quick", action="store_true", help="8 frames, 1 repeat, 640x480 only")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--detector", default="released", choices=["released", "original"],
                    help="released: the shipped (fine-tuned) weights and thresholds; original: the "
                         "original MTCNN weights and thresholds, the reference's own detector, so "
                         "that recall of its faces isolates what the speed levers change")
    a = ap.parse_args(argv)
    if a.quick:
        a.frames, a.repeats, a.sizes = 8, 1, ["640x480"]
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU here")
    engine = load_engine(a.device, a.detector)
    mtcnn = ref.load_mtcnn(a.device, min_face=int(engine.detector.config.min_face))
    name = a.machine or machine_name(a.device)
    result = {"machine": name, "device": a.device, "info": machine_info(a.device),
              "reference": f"facenet-pytorch {ref.VERSION} MTCNN (wheel, not installed), min_face 20",
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": load(),
              "detector_weights": a.detector,
              "detector_thresholds": list(engine.detector.config.thresholds),
              "command": "python -m benchmarks.speed " + " ".join(argv if argv is not None else sys.argv[1:]),
              "sizes": []}
    print(f"{name}: {result['info']}", flush=True)
    for s in a.sizes:
        w, h = (int(v) for v in s.lower().split("x"))
        result["sizes"].append(bench_size(engine, mtcnn, w, h, a.configs, a.repeats, a.frames, a.device))
    if a.device == "cuda" or a.batched:
        result["batched"] = [bench_batched(engine, mtcnn, *(int(v) for v in s.lower().split("x")),
                                           a.batch_sizes, a.amp if a.device == "cuda" else ["none"],
                                           a.frames, a.device) for s in a.sizes]
    if not a.no_realtime:
        result["realtime"] = bench_realtime(engine, a.realtime_min_face,
                                            a.realtime_config if a.device == "cpu" else str(torch.get_num_threads()))
    result["load_end"] = load()
    result["table"] = table(result)
    out = Path(a.out) if a.out else ROOT / "benchmarks" / "results" / f"speed-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(result["table"])
    print(f"wrote {out}")
    return result


def load_engine(device: str, detector: str = "released"):
    """The MaskDetector to time: the released weights, or the original MTCNN weights
    (training.evaluate_detector.baseline_weights) with the original thresholds + our classifier."""
    from dataclasses import replace

    from pipeline.engine.mask_detector import MaskDetector
    from pipeline.engine.cascade import main_pass_config
    engine = MaskDetector.load(device=device)
    # like for like with the reference (min face 20, one pyramid): the main pass only; what the
    # small-face pass (DetectorConfig.small_face_below) adds is timed by benchmarks.small_faces
    engine.detector.config = main_pass_config(engine.detector.config)
    if detector == "original":
        from pipeline.engine.config import REFERENCE_THRESHOLDS
        from training.evaluate_detector import baseline_weights, load_detector
        cfg = replace(engine.detector.config, thresholds=REFERENCE_THRESHOLDS)
        # the original weights, converted once into runs/ as the evaluation does
        engine = MaskDetector(load_detector(baseline_weights(), cfg, engine.device),
                              engine.classifier, engine.source)
    return engine


if __name__ == "__main__":
    main()
