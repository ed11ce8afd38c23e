"""Lever-by-lever CPU measurements behind docs/PERFORMANCE.md (one thread, same frames).

    python -m benchmarks.levers [--frames 12] [--trials 5]

Each stage of the detector is timed with the alternatives that were tried, on the same
640x480 frames, interleaved (A, B, C, A, B, C, ...), as CPU time per frame (process time: less
sensitive than wall time to other processes on a busy machine). Prints a table and writes
benchmarks/results/levers-<machine>.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from training.paths import ROOT  # noqa: E402
sys.path.insert(0, str(ROOT))

from benchmarks.frames import group_photos  # noqa: E402
from benchmarks.speed import load, machine_name  # noqa: E402


def interleaved(fns: dict, trials: int) -> dict:
    """{name: fn()} -> {name: median CPU ms per call over trials}, calls interleaved."""
    for f in fns.values():
        f()
    res = {k: [] for k in fns}
    for _ in range(trials):
        for k, f in fns.items():
            t = time.process_time()
            f()
            res[k].append((time.process_time() - t) * 1000)
    return {k: round(statistics.median(v), 2) for k, v in res.items()}


def old_nms(boxes, scores, thr, mode="union"):
    """The first version of pipeline.engine.boxes.nms: [N,N] matrix, then a Python loop over boxes."""
    from pipeline.engine.boxes import pairwise_iou
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    suppress = (pairwise_iou(b, b, mode) > thr).numpy()
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= suppress[i]
    return order[torch.as_tensor(keep, dtype=torch.long)]


def cascade_pyramid(image_rgb, sizes):
    """The first MaskWatch pyramid: each level bilinear from the previous one (cv2)."""
    import cv2
    levels, src = [], image_rgb
    for h, w in sizes:
        interp = cv2.INTER_AREA if w / src.shape[1] < 0.5 else cv2.INTER_LINEAR
        src = cv2.resize(src, (w, h), interpolation=interp)
        levels.append(src)
    return levels


def facenet_crops(img_t, boxes, size):
    """The reference's crops: a Python loop, one clipped slice + area interpolate per box."""
    H, W = img_t.shape[2:]
    out = []
    for x, y, ex, ey in boxes.trunc().int().tolist():
        x, y, ex, ey = max(x, 1), max(y, 1), min(ex, W), min(ey, H)
        if ey > y - 1 and ex > x - 1:
            out.append(F.interpolate(img_t[:, :, y - 1:ey, x - 1:ex], size=(size, size), mode="area"))
    return torch.cat(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--trials", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    from pipeline.engine.boxes import nms
    from pipeline.engine.crops import area_crops, area_pyramid, crop_and_resize, image_to_tensor, integral_image
    from pipeline.engine.cascade import pyramid_scales, pyramid_sizes
    from pipeline.engine.nets import inference_form, normalize
    from pipeline.engine.mask_detector import MaskDetector

    eng = MaskDetector.load(device="cpu")
    det, cfg = eng.detector, eng.detector.config
    frames = [f for _, f in group_photos(640, 480)][: a.frames]
    h, w = 480, 640
    scales = pyramid_scales(h, w, cfg)
    sizes = pyramid_sizes(h, w, scales)
    pn, rn, on = det.pnet, det.rnet, det.onet
    pn_cl = copy.deepcopy(pn).to(memory_format=torch.channels_last)
    rn_cl = copy.deepcopy(rn).to(memory_format=torch.channels_last)
    on_cl = copy.deepcopy(on).to(memory_format=torch.channels_last)
    fast = det.fast
    rnet_unchunked = inference_form(rn, det.device)
    out = {"machine": machine_name("cpu"), "threads": 1, "frames": len(frames), "load_start": load(),
           "unit": "CPU ms per 640x480 frame (median over trials), 1 thread", "stages": {}}

    # per-frame inputs of every stage, made once by the current detector
    prep = []
    with torch.inference_mode():
        for f in frames:
            ii = integral_image(f)
            levels = area_pyramid(f, sizes, integral=ii)
            cand, _ = det.propose(f, cfg, integral=ii)
            refined = det.refine(ii, cand, cfg)
            img_t = image_to_tensor(f)
            prep.append((f, ii, levels, cand, refined, img_t))
    n_r = np.mean([len(p[3]) for p in prep])
    n_o = np.mean([len(p[4]) for p in prep])
    out["candidates_per_frame"] = {"rnet": round(float(n_r), 1), "onet": round(float(n_o), 1)}

    def per_frame(fn):
        return lambda: [fn(p) for p in prep]

    def scale(r):
        return {k: round(v / len(prep), 2) for k, v in r.items()}

    with torch.inference_mode():
        s = out["stages"]
        s["pyramid"] = scale(interleaved({
            "reference: F.interpolate(area) per level": per_frame(
                lambda p: [F.interpolate(p[5], size=z, mode="area") for z in sizes]),
            "first MaskWatch: cv2 bilinear cascade (inexact: recall 0.949)": per_frame(
                lambda p: cascade_pyramid(p[0], sizes)),
            "ours: integral-image window sums (exact)": per_frame(
                lambda p: area_pyramid(p[0], sizes, integral=p[1])),
        }, a.trials))
        s["pnet_all_levels"] = scale(interleaved({
            "NCHW modules (reference layout)": per_frame(lambda p: [pn(normalize(lv.contiguous())) for lv in p[2]]),
            "channels_last modules": per_frame(lambda p: [pn_cl(normalize(lv)) for lv in p[2]]),
            "ours: oneDNN blocked trunk + 1x1 heads conv, folded normalisation": per_frame(
                lambda p: [fast.pnet.raw(lv) for lv in p[2]]),
        }, a.trials))
        outs = [[fast.pnet.raw(lv)[0] for lv in p[2]] for p in prep]

        def cands(i, old):
            found = []
            for sc, o in zip(scales, outs[i]):
                if old:
                    prob = torch.softmax(o[4:6], dim=0)[1]
                    ys, xs = torch.nonzero(prob >= cfg.thresholds[0], as_tuple=True)
                    cells = torch.stack([xs, ys], 1).float()
                    b = torch.cat([torch.floor((2 * cells + 1) / sc), torch.floor((2 * cells + 12) / sc)], 1)
                    sco = prob[ys, xs]
                    if len(sco):
                        k = old_nms(b, sco, 0.5)
                        found.append((b[k], sco[k]))
                else:
                    b, sco, _ = det.pnet_candidates(o, sc, cfg.thresholds[0])
                    if len(sco):
                        k = nms(b, sco, 0.5)
                        found.append((b[k], sco[k]))
            b = torch.cat([x[0] for x in found])
            sco = torch.cat([x[1] for x in found])
            return old_nms(b, sco, 0.7) if old else torch.argsort(sco, descending=True, stable=True)
        s["pnet_candidates_and_nms"] = scale(interleaved({
            "first version: softmax on the grid, [N,N] NMS + Python loop, cross-level NMS": lambda: [cands(i, True) for i in range(len(prep))],
            "ours: logit pre-filter, sparse sweep NMS (no per-box loop), no-op cross-level NMS skipped": lambda: [cands(i, False) for i in range(len(prep))],
        }, a.trials))
        s["rnet_crops"] = scale(interleaved({
            "reference: per-box slice + F.interpolate(area) loop": per_frame(lambda p: facenet_crops(p[5], p[3], 24)),
            "first MaskWatch: grid_sample supersampled (inexact)": per_frame(
                lambda p: crop_and_resize(p[5], p[3], 24)),
            "ours: integral-image gathers (exact)": per_frame(lambda p: area_crops(p[1], p[3], 24)),
        }, a.trials))
        crops24 = [area_crops(p[1], p[3], 24) for p in prep]
        crops48 = [area_crops(p[1], p[4], 48) for p in prep]
        s["rnet"] = scale(interleaved({
            "NCHW modules": lambda: [rn(normalize(c.contiguous())) for c in crops24],
            "channels_last modules": lambda: [rn_cl(normalize(c)) for c in crops24],
            "oneDNN blocked, one batch": lambda: [rnet_unchunked(c) for c in crops24],
            "ours: oneDNN blocked, chunks of 64 crops": lambda: [fast.rnet(c) for c in crops24],
        }, a.trials))
        s["onet_crops"] = scale(interleaved({
            "reference: per-box loop": per_frame(lambda p: facenet_crops(p[5], p[4], 48)),
            "ours: integral-image gathers": per_frame(lambda p: area_crops(p[1], p[4], 48)),
        }, a.trials))
        s["onet"] = scale(interleaved({
            "NCHW modules": lambda: [on(normalize(c.contiguous())) for c in crops48],
            "channels_last modules": lambda: [on_cl(normalize(c)) for c in crops48],
            "ours: oneDNN blocked": lambda: [fast.onet(c) for c in crops48],
        }, a.trials))
        faces = [torch.from_numpy(det.detect(p[0]).boxes) for p in prep]
        net = eng.classifier.net
        from pipeline.engine.classifier import face_crops
        ccfg = eng.classifier.config
        cl_in = [face_crops(p[5], b, ccfg) for p, b in zip(prep, faces) if len(b)]
        s["classifier"] = scale(interleaved({
            "NCHW crops": lambda: [net(c.contiguous()) for c in cl_in],
            "ours: channels_last crops (crop_and_resize returns them)": lambda: [net(c) for c in cl_in],
        }, a.trials))
        lv0 = [p[2][0] for p in prep[:3]]
        try:
            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return [pn_cl(normalize(x)) for x in lv0]
            s["bf16_pnet_level0_3frames"] = interleaved({
                "fp32 channels_last": lambda: [pn_cl(normalize(x)) for x in lv0],
                "bf16 autocast (no AVX512-BF16/AMX here)": bf16,
            }, a.trials)
        except Exception as e:  # pragma: no cover
            s["bf16_pnet_level0_3frames"] = {"error": str(e)}
    out["load_end"] = load()
    path = ROOT / "benchmarks" / "results" / f"levers-{out['machine']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    for stage, r in out["stages"].items():
        print(f"\n{stage}")
        for k, v in r.items():
            print(f"  {v:9.2f}  {k}")
    print(f"\ncandidates per frame: {out['candidates_per_frame']}\nwrote {path}")
    return out


if __name__ == "__main__":
    main()
