"""Train the 3-class mask classifier (pipeline.engine.nets.MaskClassifier) and release its weights.

Data: scenes/ilc2021 (real scenes, main set), crops/fmd (real face crops),
synthetic/maskedfacenet (drawn masks) and our own synthetic masks (MaskTheFace templates drawn
onto MTFL faces, correctly and below the nose; both synthetic sets weighted below real data),
see training.classifier_data.
Crops are made the way inference makes them, from jittered boxes, with low-resolution, JPEG,
blur, colour, flip and rotation augmentation (training.augment).

Split: stratified, duplicate-group-aware, per source, fixed seed. Early stopping on the macro-F1
of the ILC validation faces (real scene photos, cut exactly as inference cuts them).

Writes <out>/config.json, <out>/model.safetensors, weights/classifier_validation.json (unless
--no-report) and runs/classifier_<time>.csv (per-epoch scalars). Then run
`python -m training.manifest`.

usage: python -m training.train_classifier [--epochs N] [--out weights/classifier] ...

On this 2-core CPU an epoch (about 12,600 draws: ILC twice, syn once) takes about 90 s with one
thread. The released weights come from training.rebuild.CLASSIFIER_STAGES (one 40-epoch run);
its settings are recorded in weights/classifier_validation.json ("init", "lr", "source_repeat",
...). --init warm-starts a run from earlier weights of the same config.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm import tqdm

from pipeline.engine.config import ClassifierConfig
from pipeline.engine.nets import MaskClassifier
from pipeline.engine.weights import save_net
from pipeline.records import CLASSES, INCORRECT_INDEX, MASK_INDEX
from training import classifier_data as cd
from training.augment import AugmentConfig, make_batch
from training.metrics import evaluate, majority_baseline, summary
from training.paths import DATA, ROOT, WEIGHTS
from training.splits import SEED, VAL_FRAC, split_faces

EPOCHS = 8
BATCH = 64
LR = 2e-3
WEIGHT_DECAY = 1e-4
WARMUP_EPOCHS = 1
LABEL_SMOOTHING = 0.05
PATIENCE = 8
"""Stop when ILC validation macro-F1 has not improved for this many epochs."""
SOURCE_WEIGHT = {"ilc": 1.0, "fmd": 1.0, "mfn": 0.5, "syn": 0.5, "adi": 1.0, "mac": 1.0}
"""Per-sample loss weight by source: synthetic faces count half."""
SOURCE_REPEAT = {"ilc": 1, "fmd": 1, "mfn": 1, "syn": 1, "adi": 1, "mac": 1}
"""Times each training face is drawn per epoch."""
THREADS = 2
OUT = WEIGHTS / "classifier"
REPORT = WEIGHTS / "classifier_validation.json"
RUNS = ROOT / "runs"
SIZE_BINS = ((0, 20), (20, 40), (40, math.inf))
"""Face short-side bins (pixels) for the ILC validation breakdown."""
SELECTIONS = ("ilc", "views")
"""Model selection: "ilc", the best macro-F1 on the ILC validation faces as they are; "views",
the best mean macro-F1 over the standard, small and degraded views of them (training.views)."""


# ---------------------------------------------------------------- pieces


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def class_weights(labels: np.ndarray, sample_weights: np.ndarray | None = None,
                  num_classes: int = len(CLASSES)) -> torch.Tensor:
    """The report's class weights: 1 - class share (share of the weighted training faces).
    If one class is every training face (a smoke-test subset), its 1 - share would be 0 and
    make the normalised loss 0/0; it gets weight 1 instead."""
    w = np.ones(len(labels)) if sample_weights is None else np.asarray(sample_weights, float)
    share = np.bincount(labels, weights=w, minlength=num_classes) / w.sum()
    weights = 1.0 - share
    weights[weights <= 0] = 1.0
    return torch.tensor(weights, dtype=torch.float32)


def epoch_order(train_idx: np.ndarray, sources: np.ndarray, rng: np.random.Generator,
                repeat: dict = SOURCE_REPEAT) -> np.ndarray:
    """Shuffled face indices for one epoch; a face of source s is drawn repeat[s] times on
    average (a fractional part is a per-epoch random draw)."""
    r = np.array([repeat.get(s, 1) for s in sources[train_idx]], float)
    reps = np.floor(r).astype(np.int64) + (rng.random(len(r)) < r - np.floor(r))
    return rng.permutation(np.repeat(train_idx, reps))


def weighted_loss(logits, y, sample_w, class_w, smoothing: float = LABEL_SMOOTHING, merged=None):
    """Class- and sample-weighted cross-entropy, normalised by the summed weights.
    merged: bool [B], faces whose `mask` label means "mask or incorrect" (two-class sources,
    classifier_data.TWO_CLASS_SOURCES): their loss is -log(p(mask) + p(incorrect)), smoothed
    the same way, with the mask class weight."""
    ce = F.cross_entropy(logits, y, weight=class_w, reduction="none", label_smoothing=smoothing)
    if merged is not None and bool(merged.any()):
        logp = F.log_softmax(logits, 1)
        nll = -torch.logsumexp(logp[:, [MASK_INDEX, INCORRECT_INDEX]], 1)
        soft = (1 - smoothing) * nll - smoothing * logp.mean(1)
        ce = torch.where(merged, soft * class_w[MASK_INDEX], ce)
    return (ce * sample_w).sum() / (class_w[y] * sample_w).sum()


@torch.inference_mode()
def predict(net: MaskClassifier, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Normalised crops -> predicted class indices (argmax, as pipeline.engine.mask_detector)."""
    net.eval()
    out = [net(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def mask_or_incorrect(faces: cd.FaceSet, checked: np.ndarray | None = None) -> np.ndarray:
    """bool [N]: faces whose `mask` label means "mask or incorrect": with_mask faces of the
    two-class sources (classifier_data.TWO_CLASS_SOURCES), unless checked by eye
    (training.label_fixes)."""
    merged = np.isin(faces.source, cd.TWO_CLASS_SOURCES) & (faces.labels == MASK_INDEX)
    return merged if checked is None else merged & ~np.asarray(checked, bool)


def train_epoch(net, opt, faces: cd.FaceSet, order: np.ndarray, sample_w: np.ndarray,
                class_w: torch.Tensor, rng, aug: AugmentConfig, batch: int, step: int,
                total_steps: int, warmup_steps: int, lr: float, progress: bool = True,
                ema_net=None, merged: np.ndarray | None = None):
    """One pass over `order` (face indices). -> (mean loss, training accuracy, next step).
    ema_net: a torch.optim.swa_utils.AveragedModel of `net`, updated after every step.
    merged: mask_or_incorrect of `faces` (computed here when not given)."""
    merged_all = mask_or_incorrect(faces) if merged is None else merged
    c = net.config
    net.train()
    tot_loss = tot_w = correct = 0.0
    bar = tqdm(range(0, len(order), batch), desc="train", leave=False, disable=not progress,
               mininterval=1)
    for b in bar:
        idx = order[b:b + batch]
        if len(idx) < 2:
            continue
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total_steps, warmup_steps, lr)
        x = make_batch(faces.context, faces.ctx_boxes, idx, c.crop_size, c.margin, rng, aug)
        y = torch.from_numpy(faces.labels[idx])
        sw = torch.from_numpy(sample_w[idx]).float()
        merged = torch.from_numpy(merged_all[idx])
        logits = net(x)
        loss = weighted_loss(logits, y, sw, class_w, merged=merged)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema_net is not None:
            ema_net.update_parameters(net)
        step += 1
        tot_loss += float(loss.detach()) * len(idx)
        tot_w += len(idx)
        pred = logits.argmax(1)
        correct += float(((pred == y) | (merged & (pred == INCORRECT_INDEX))).sum())
        bar.set_postfix(loss=f"{tot_loss / tot_w:.3f}")
    return tot_loss / max(tot_w, 1), correct / max(tot_w, 1), step


def validation_report(y_true: np.ndarray, y_pred: np.ndarray, source: np.ndarray,
                      size: np.ndarray) -> dict:
    """Metrics + majority baseline for the ILC validation faces (headline), every source, all
    sources together, and ILC by face short side."""
    def block(sel):
        return {"metrics": evaluate(y_true[sel], y_pred[sel]),
                "majority_baseline": majority_baseline(y_true[sel])}

    out = {"ilc": block(source == "ilc")}
    for s in cd.SOURCES:
        if s in cd.TWO_CLASS_SOURCES and (source == s).any():   # mask here = mask or incorrect
            sel = source == s
            out[s] = {"n": int(sel.sum()), "binary_accuracy": float(np.mean((y_true[sel] == MASK_INDEX) == (y_pred[sel] == MASK_INDEX))),
                      "note": "two-class source: binary view only (its with_mask includes masks below the nose)"}
        elif s != "ilc" and (source == s).any():
            out[s] = block(source == s)
    three = ~np.isin(source, cd.TWO_CLASS_SOURCES)
    out["all_sources"] = block(three)
    ilc = source == "ilc"
    out["ilc_by_face_size"] = {
        f"{lo}-{hi}px" if hi != math.inf else f">={lo}px":
            block(ilc & (size >= lo) & (size < hi)) | {"n_faces": int((ilc & (size >= lo) & (size < hi)).sum())}
        for lo, hi in SIZE_BINS}
    return out


def _views_block(net, y, view_x, x_standard, size_standard, factor) -> dict:
    from training import views as tv
    out = {"small_factor": factor,
           "standard": tv.view_report(y, predict(net, x_standard), size_standard)}
    for v, (x, size) in view_x.items():
        out[v] = tv.view_report(y, predict(net, x), size)
    return out


CLASSIFIER_SOURCE = ("trained from scratch by training.train_classifier on ILC 2021, FMD (MIT), "
                     "MaskedFace-Net (CC BY-NC-SA 4.0) and MaskTheFace masks drawn on MTFL faces")


# ---------------------------------------------------------------- the run


def train(epochs: int = EPOCHS, out: Path | None = OUT, report: Path | None = REPORT,
          seed: int = SEED, val_frac: float = VAL_FRAC, batch: int = BATCH, lr: float = LR,
          patience: int = PATIENCE, data: Path = DATA, sources=cd.SOURCES,
          limit: int | None = None, aug: AugmentConfig | None = None,
          config: ClassifierConfig | None = None, log_dir: Path | None = RUNS,
          progress: bool = True, faces: cd.FaceSet | None = None,
          use_cache: bool = True, init: Path | None = None,
          repeat: dict | None = None, val_mask: np.ndarray | None = None,
          threads: int = THREADS, ema: float = 0.0, select: str = "ilc",
          checkpoint: Path | None = None, views: bool | None = None,
          label_fixes: bool | Path | str = False, min_p_incorrect: float = 0.0) -> dict:
    """Full training run. Returns the result dict (also written to `report` if given).
    val_mask: bool [N] validation faces to use instead of split_faces (cross-validation folds).
    ema: if > 0, an exponential moving average of the weights (and batch-norm statistics) with
    this decay per step is kept; it is what is validated, selected and saved.
    select: SELECTIONS. views: also validate on the small and degraded views of the ILC
    validation faces every epoch (training.views; default: when select == "views").
    checkpoint: a folder where the best weights so far are written at every improvement (a run
    stopped early still leaves its best epoch). label_fixes: True (training/label_fixes.json) or
    a file (relative to the repository root): training faces relabelled, kept (checked) or
    left out (training.label_fixes.apply, with min_p_incorrect); faces of the two-class sources that
    are near-duplicates of ILC photos are always left out."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}")
    views = select == "views" if views is None else views
    torch.set_num_threads(threads)
    set_seed(seed)
    t0 = time.time()
    config = config or ClassifierConfig()
    aug = aug or AugmentConfig()
    if faces is None:
        records = cd.list_all(data, sources, limit)
        faces = (cd.cached_faceset(records, config, progress=progress) if use_cache
                 else cd.build_faceset(records, config, progress=progress))
    val = split_faces(faces, val_frac, seed) if val_mask is None else np.asarray(val_mask, bool)
    drop = checked = None
    if label_fixes:
        from training import label_fixes as lf
        faces, drop, checked = lf.apply(faces, lf.FIXES if label_fixes is True else ROOT / label_fixes, only=~val,
                                        min_p_incorrect=min_p_incorrect)
    two_class_masks = mask_or_incorrect(faces)
    merged = mask_or_incorrect(faces, checked)
    keep = ~cd.cross_source_duplicates(faces)
    n_cross_dup = int((~keep).sum())
    if drop is not None:
        keep &= ~np.asarray(drop, bool)
    train_idx, val_idx = np.nonzero(~val & keep)[0], np.nonzero(val & keep)[0]
    x_val = cd.exact_crops(faces, val_idx, config)
    y_val = faces.labels[val_idx]
    src_val, size_val = faces.source[val_idx], faces.size[val_idx]
    ilc_val = src_val == "ilc"
    if not ilc_val.any():  # e.g. a test run on crop sources only
        ilc_val = np.ones(len(val_idx), bool)
    view_x = {}
    if views:
        from training import views as tv
        vv = tv.all_views(faces, val_idx[ilc_val], config)
        view_x = {v: vv[v] for v in tv.VIEWS if v != "standard"}
        view_factor = vv["factor"]

    sample_w = np.array([SOURCE_WEIGHT.get(s, 1.0) for s in faces.source], np.float32)
    class_w = class_weights(faces.labels[train_idx], sample_w[train_idx])
    net = MaskClassifier(config)
    net.reset_parameters()
    if init is not None:  # warm start (fine-tuning) from earlier weights of the same config
        net.load_state_dict(load_file(str(init)), strict=True)
    repeat = dict(SOURCE_REPEAT if repeat is None else repeat)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    ema_net = None
    if ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema_net = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
    model = ema_net.module if ema_net is not None else net   # what is validated and kept
    rng = np.random.default_rng(seed)
    per_epoch = len(epoch_order(train_idx, faces.source, np.random.default_rng(0), repeat))
    steps_per_epoch = math.ceil(per_epoch / batch)
    total_steps, warmup = steps_per_epoch * epochs, steps_per_epoch * WARMUP_EPOCHS

    log_path = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_dir) / f"classifier_{time.strftime('%Y%m%d_%H%M%S')}.csv"
    fields = ["epoch", "lr", "train_loss", "train_acc", "val_ilc_macro_f1", "val_ilc_acc",
              "val_ilc_binary_acc", "val_ilc_recall_incorrect", "val_all_macro_f1",
              *(f"val_{v}_{k}" for v in view_x for k in ("macro_f1", "binary_acc")),
              "score", "seconds"]
    if log_path:
        with open(log_path, "w", newline="") as fh:
            csv.writer(fh).writerow(fields)
    print(f"faces: train {len(train_idx)}, val {len(val_idx)} "
          f"({ {s: int((src_val == s).sum()) for s in cd.SOURCES} }); class weights "
          f"{[round(float(v), 3) for v in class_w]}; {steps_per_epoch} steps/epoch", flush=True)

    best, best_state, best_epoch, step, history = -1.0, None, 0, 0, []
    for epoch in range(1, epochs + 1):
        te = time.time()
        order = epoch_order(train_idx, faces.source, rng, repeat)
        loss, acc, step = train_epoch(net, opt, faces, order, sample_w, class_w, rng, aug, batch,
                                      step, total_steps, warmup, lr, progress, ema_net, merged)
        pred = predict(model, x_val)
        m_ilc = evaluate(y_val[ilc_val], pred[ilc_val])
        three = ~np.isin(src_val, cd.TWO_CLASS_SOURCES)
        m_all = evaluate(y_val[three], pred[three])
        m_view = {v: evaluate(y_val[ilc_val], predict(model, x)) for v, (x, _) in view_x.items()}
        score = (m_ilc["macro_f1"] if select == "ilc"
                 else float(np.mean([m_ilc["macro_f1"]] + [m["macro_f1"] for m in m_view.values()])))
        row = [epoch, opt.param_groups[0]["lr"], loss, acc, m_ilc["macro_f1"], m_ilc["accuracy"],
               m_ilc["binary_accuracy"], m_ilc["per_class"]["incorrect"]["recall"],
               m_all["macro_f1"],
               *(m[k] for m in m_view.values() for k in ("macro_f1", "binary_accuracy")),
               score, time.time() - te]
        history.append(dict(zip(fields, row)))
        if log_path:
            with open(log_path, "a", newline="") as fh:
                csv.writer(fh).writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        improved = score > best
        if improved:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if checkpoint is not None:
                save_net(model, checkpoint, source=CLASSIFIER_SOURCE)
                (Path(checkpoint) / "epoch.txt").write_text(f"{epoch}\n")
        views_txt = "".join(f" | {v} F1 {m['macro_f1']:.4f} bin {m['binary_accuracy']:.4f}"
                            for v, m in m_view.items())
        print(f"epoch {epoch:3d} loss {loss:.4f} acc {acc:.3f} | val ilc {summary(m_ilc)}{views_txt}"
              f"{' *' if improved else ''} | {time.time() - te:.0f}s", flush=True)
        if epoch - best_epoch >= patience:
            print(f"early stop: no validation score gain for {patience} epochs")
            break

    net.load_state_dict(best_state)
    pred = predict(net, x_val)
    result = {
        "classes": list(CLASSES),
        "selection": ("epoch with the best macro-F1 on the ILC validation faces" if select == "ilc" else
                      "epoch with the best mean macro-F1 over the standard, small and degraded views "
                      "of the ILC validation faces (training.views)"),
        "sources": sorted({str(v) for v in np.unique(faces.source)}),
        "dropped_cross_source_duplicates": n_cross_dup,
        "dropped_label_fixes": int(np.asarray(drop, bool).sum()) if drop is not None else 0,
        "checked_two_class_faces": int((two_class_masks & ~merged)[train_idx].sum()),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "split_seed": seed,
        "val_frac": val_frac,
        "n_train_faces": int(len(train_idx)),
        "n_val_faces": int(len(val_idx)),
        "train_counts_per_source": {s: int((faces.source[train_idx] == s).sum()) for s in cd.SOURCES},
        "val_counts_per_source": {s: {c: int(((src_val == s) & (y_val == k)).sum())
                                      for k, c in enumerate(CLASSES)} for s in cd.SOURCES},
        "class_weights": [float(v) for v in class_w],
        "source_weights": SOURCE_WEIGHT,
        "source_repeat": repeat,
        "init": str(init) if init else None,
        "label_fixes": str(label_fixes) if label_fixes else None,
        "min_p_incorrect": min_p_incorrect,
        "lr": lr, "batch": batch, "label_smoothing": LABEL_SMOOTHING, "ema": ema,
        "architecture": net.config_dict(),
        "augment": asdict(aug),
        "train_seconds": round(time.time() - t0, 1),
        "validation": validation_report(y_val, pred, src_val, size_val),
        **({"validation_views": _views_block(net, y_val[ilc_val], view_x, x_val[ilc_val], size_val[ilc_val],
                                             view_factor)} if view_x else {}),
        "history": history,
    }
    if out is not None:
        save_net(net, out, source=CLASSIFIER_SOURCE)
    if report is not None:
        Path(report).write_text(json.dumps(result, indent=2) + "\n")
    print(f"best epoch {best_epoch}: ILC val {summary(result['validation']['ilc']['metrics'])}")
    print(f"done in {result['train_seconds']:.0f}s")
    result["net"] = net
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", type=Path, default=OUT, help="weights folder to write")
    ap.add_argument("--report", type=Path, default=REPORT, help="validation JSON to write")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--val-frac", type=float, default=VAL_FRAC)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--patience", type=int, default=PATIENCE)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sources", default=",".join(cd.SOURCES))
    ap.add_argument("--limit", type=int, default=None, help="images per source (smoke tests)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (model.safetensors) instead of xavier init")
    ap.add_argument("--repeat", default=None,
                    help="draws per training face per epoch by source, e.g. ilc=2,fmd=0.5,mfn=1")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep, validate and save a weight average with this decay per step (e.g. 0.998)")
    ap.add_argument("--select", default="ilc", choices=SELECTIONS,
                    help="model selection: ILC validation macro-F1, or its mean over the views")
    ap.add_argument("--small-face-p", type=float, default=0.0, help="AugmentConfig.small_face_p")
    ap.add_argument("--camera-p", type=float, default=0.0, help="AugmentConfig.camera_p")
    ap.add_argument("--checkpoint", type=Path, default=None, help="best-so-far weights folder")
    ap.add_argument("--label-fixes", nargs="?", const=True, default=False, type=Path,
                    help="apply training/label_fixes.json (or the file given)")
    ap.add_argument("--min-p-incorrect", type=float, default=0.0,
                    help="with --label-fixes: only fixes whose p_incorrect is at least this count")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--channels", default=None,
                    help="conv channels of the classifier, e.g. 32,64,96,128 (default %s)"
                         % ",".join(map(str, ClassifierConfig().channels)))
    a = ap.parse_args(argv)
    repeat = None
    if a.repeat:
        repeat = {k: float(v) for k, v in (kv.split("=") for kv in a.repeat.split(","))}
    train(epochs=a.epochs, out=a.out, report=None if a.no_report else a.report, seed=a.seed,
          val_frac=a.val_frac, batch=a.batch, lr=a.lr, patience=a.patience, data=a.data,
          sources=tuple(a.sources.split(",")), limit=a.limit, progress=not a.no_progress,
          init=a.init, repeat=repeat, ema=a.ema, select=a.select, checkpoint=a.checkpoint,
          threads=a.threads, label_fixes=a.label_fixes, min_p_incorrect=a.min_p_incorrect,
          aug=AugmentConfig(small_face_p=a.small_face_p, camera_p=a.camera_p),
          config=ClassifierConfig(channels=tuple(int(c) for c in a.channels.split(","))) if a.channels else None)


if __name__ == "__main__":
    main()
