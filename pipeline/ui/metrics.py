"""Load and shape the model metrics for the Metrics page: plain dicts and plotly figures,
no streamlit. Nothing is invented: a section whose data is absent comes back as None and the
page says what is missing.

Files read from the weights folder (weights/ or MASKWATCH_WEIGHTS_DIR):
  metrics.json   the release evaluation (training.evaluate), in the layout of
                 pipeline.engine.metrics_schema.MetricsDoc. A file without "schema_version", with
                 another version or with a key missing is not shown; "problem" says why.
  manifest.json  file sizes (and sha256) of every weight file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from pipeline.engine import metrics_schema
from pipeline.settings import current as current_settings
from pipeline.engine.metrics_schema import VALIDATION_SETS, ClassifierReport, CvFold, CvProtocol, DetectorReport, MetricsDoc
from pipeline.records import CLASSES, LABEL_NAMES, MASK_INDEX
from pipeline.ui.charts import class_color

REPORT = {"accuracy": 0.9315, "precision": 0.9193, "recall": 0.946, "model_mb": 8.8}
"""The figures claimed by the original project report (a binary mask / no-mask classifier)."""

DATASETS = {
    "ilc": ("ILC 2021 face-mask scenes", "jolignier/face-mask-dataset-ilc-2021",
            "real photos with face boxes and 3 mask labels; the main set for both stages and the "
            "held-out validation images", "no licence file (not redistributed)"),
    "fmd": ("Face-Mask-Detection crops", "chandrikadeb7/Face-Mask-Detection",
            "face images with and without masks", "MIT"),
    "mfn": ("MaskedFace-Net samples", "Cabani et al., via marellanoc/MaskON",
            "FFHQ faces with masks drawn on, worn correctly and incorrectly (synthetic)",
            "CC BY-NC-SA 4.0"),
    "syn": ("MaskTheFace masks on MTFL faces", "aqeelanwar/MaskTheFace templates (MIT) on MTFL faces",
            "faces drawn bare, with a mask and with it below the nose, by training.mask_synthesis "
            "(synthetic)", "MIT templates; MTFL has no licence file (not redistributed)"),
    "adi": ("adityap27 face-mask scenes", "adityap27/face-mask-detector",
            "real news and street photos, many small faces in crowds; two labels (with_mask counts as "
            "mask or incorrect)", "MIT"),
    "mac": ("MacwinWin face-mask photos", "MacwinWin/face_mask_dataset",
            "web and stock photos, mostly large faces; two labels", "no licence file (not redistributed)"),
    "mtcnn": ("MTCNN original weights", "facenet-pytorch 2.6.0", "face detector (P/R/O-Net)",
              "MIT"),
}


def weights_dir() -> Path:
    from pipeline.engine.weights import LOCAL_WEIGHTS
    return current_settings().weights_dir or LOCAL_WEIGHTS


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_metrics(path: Path) -> tuple[MetricsDoc | None, str | None]:
    """metrics.json -> (document, None), (None, why it cannot be shown), or (None, None) when
    the file is absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"`{path}` cannot be read ({e.strerror or type(e).__name__})."
    try:
        doc = json.loads(text)
    except ValueError as e:
        return None, f"`{path}` is not valid JSON ({e})."
    if not isinstance(doc, dict):
        return None, f"`{path}` is not a JSON object."
    version = metrics_schema.version_problem(doc)
    if version is not None:
        return None, (f"`{path}` was written in another layout: {version}. Re-run "
                      "`python -m training.evaluate` to write it in this version's layout.")
    try:
        return metrics_schema.parse(doc, f"`{path}`"), None
    except metrics_schema.MetricsSchemaError as e:
        return None, f"{e}. Re-run `python -m training.evaluate` to write it again."


def _classifier_part(report: ClassifierReport) -> dict:
    """-> {"headline": ilc scores, "baseline": its majority baseline, "headline_name",
    "by_source": {other validation set: ValidationSet}, "by_size": {bucket: SizeBucket},
    "val_counts_per_source", "source"}."""
    val = report["validation"]
    return {"headline": val["ilc"]["metrics"], "baseline": val["ilc"]["majority_baseline"],
            "headline_name": "ilc",
            "by_source": {k: val[k] for k in VALIDATION_SETS if k != "ilc" and k in val},
            "by_size": val["ilc_by_face_size"],
            "val_counts_per_source": report["val_counts_per_source"],
            "source": metrics_schema.FILENAME}


def load(folder: Path | None = None) -> dict:
    """Everything the page shows, with "missing" listing what was not found and "problem" why
    metrics.json (when present) cannot be shown, else None."""
    folder = Path(folder or weights_dir())
    doc, problem = _read_metrics(folder / metrics_schema.FILENAME)
    manifest = _read_json(folder / "manifest.json")
    out: dict[str, Any] = {"folder": str(folder), "missing": [], "problem": problem,
                           "files": {name: (folder / name).is_file() for name in (metrics_schema.FILENAME, "manifest.json")}}
    doc = doc or {}
    out["classifier"] = _classifier_part(doc["classifier"]) if "classifier" in doc else None
    out["detector"] = dict(doc["detector"], source=metrics_schema.FILENAME) if "detector" in doc else None
    out["roc"] = doc.get("roc")
    out["pr"] = doc.get("pr")
    out["folds"] = doc.get("cv_folds")
    out["cv_summary"] = doc.get("cv_summary")
    out["cv_protocol"] = doc.get("cv_protocol")
    out["manifest"] = manifest
    out["views"] = doc.get("classifier_views")
    out["views_previous"] = doc.get("classifier_views_previous")
    if out["classifier"] is None:
        out["missing"].append("classifier validation (metrics.json)")
    if out["detector"] is None:
        out["missing"].append("detector evaluation (metrics.json)")
    return out


# ---------------------------------------------------------------- numbers


CV_LABELS = {"binary_accuracy": "binary accuracy (mask vs not)", "macro_f1": "3-class macro-F1",
             "accuracy": "3-class accuracy", "recall_mask": "recall mask",
             "recall_no_mask": "recall no_mask", "recall_incorrect": "recall incorrect",
             "majority_macro_f1": "majority class: macro-F1"}


def cv_rows(summary: dict | None) -> list[dict]:
    """Cross-validation summary {metric: {mean, std, min, max}} -> table rows, in a fixed order."""
    if not summary:
        return []
    return [{"metric": label, "mean": round(summary[k]["mean"], 4), "± std": round(summary[k]["std"], 4),
             "min": round(summary[k]["min"], 4), "max": round(summary[k]["max"], 4)}
            for k, label in CV_LABELS.items() if k in summary]


def cv_caption(protocol: CvProtocol | None, folds: list[CvFold] | None) -> str:
    """One line on how the folds were made and trained."""
    if not protocol:
        return ""
    n = len(folds or [])
    return (f"{n} of {protocol['folds']} folds, stratified by class and grouped by near-duplicate "
            f"group within each source; each fold's model trained from scratch for "
            f"{protocol['epochs']} epochs (the released weights: longer, on one split), scored on "
            f"the ILC (real photo) faces of its validation fold.")


def binary_scores(cm) -> dict:
    """'mask' vs the rest, from a 3x3 confusion matrix (rows true): accuracy, precision, recall."""
    cm = np.asarray(cm, float)
    k = MASK_INDEX
    tp = cm[k, k]
    fp = cm[:, k].sum() - tp
    fn = cm[k, :].sum() - tp
    tn = cm.sum() - tp - fp - fn
    n = cm.sum()
    return {"accuracy": (tp + tn) / n if n else 0.0, "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0}


def model_sizes(manifest: dict | None) -> dict | None:
    """{"rows": [{model, MB}], "total_mb", "engine_mb"} from manifest.json, or None. engine_mb:
    what one loaded engine holds, the classifier plus one detector weight set (the largest set;
    the camera/ folder is a second set, not a fourth net)."""
    if not manifest or not isinstance(manifest.get("files"), dict):
        return None
    per: dict[str, int] = {}
    for rel, info in manifest["files"].items():
        if isinstance(info, dict) and "size" in info:
            per[rel.split("/")[0]] = per.get(rel.split("/")[0], 0) + int(info["size"])
    names = {"pnet": "P-Net (detector)", "rnet": "R-Net (detector)", "onet": "O-Net (detector)",
             "classifier": "mask classifier", "camera": "camera detector weights (P-, R-, O-Net)"}
    rows = [{"model": names.get(k, k), "MB": round(v / 1e6, 3)} for k, v in sorted(per.items())]
    shared = sum(v for k, v in per.items() if k != "camera")
    engine = max(shared, per.get("classifier", 0) + per["camera"]) if "camera" in per else shared
    return {"rows": rows, "total_mb": round(sum(per.values()) / 1e6, 3), "engine_mb": round(engine / 1e6, 3)}


def _size_text(sizes: dict) -> str:
    if sizes["engine_mb"] == sizes["total_mb"]:
        return f"{sizes['total_mb']:.2f} MB"
    return f"{sizes['total_mb']:.2f} MB on disk, {sizes['engine_mb']:.2f} MB loaded per engine"


def comparison_rows(classifier: dict | None, sizes: dict | None) -> list[dict]:
    """Ours vs the report, only with numbers that exist."""
    rows = []
    ours = binary_scores(classifier["headline"]["confusion_matrix"]) if classifier else None
    for key, label in (("accuracy", "accuracy, mask vs not"), ("precision", "precision of 'mask'"),
                       ("recall", "recall of 'mask'")):
        rows.append({"figure": label, "report": f"{REPORT[key]:.2%}",
                     "MaskWatch": f"{ours[key]:.2%}" if ours else "not measured yet"})
    if classifier:
        h = classifier["headline"]
        rows.append({"figure": "3-class accuracy", "report": "– (binary only)", "MaskWatch": f"{h['accuracy']:.2%}"})
        rows.append({"figure": "3-class macro-F1", "report": "–", "MaskWatch": f"{h['macro_f1']:.3f}"})
    rows.append({"figure": "model size", "report": f"{REPORT['model_mb']} MB",
                 "MaskWatch": _size_text(sizes) if sizes else "manifest missing"})
    return rows


def per_class_rows(metrics: dict) -> list[dict]:
    return [{"class": LABEL_NAMES.get(c, c), "precision": round(v["precision"], 4),
             "recall": round(v["recall"], 4), "F1": round(v["f1"], 4), "support": v.get("support")}
            for c, v in metrics["per_class"].items()]


def by_source_rows(classifier: dict) -> list[dict]:
    rows = []
    for name, b in [(classifier["headline_name"], {"metrics": classifier["headline"],
                                                     "majority_baseline": classifier["baseline"]}),
                    *classifier["by_source"].items()]:
        m, base = b["metrics"], b["majority_baseline"]
        rows.append({"validation set": name, "faces": m["n"], "accuracy": round(m["accuracy"], 4),
                     "macro-F1": round(m["macro_f1"], 4),
                     "binary acc.": round(m["binary_accuracy"], 4),
                     "majority baseline acc.": round(base["accuracy"], 4)})
    return rows


def by_size_rows(classifier: dict) -> list[dict]:
    rows = []
    for name, b in classifier["by_size"].items():
        m = b["metrics"]
        if m["n"]:
            rows.append({"face size (short side)": name, "faces": m["n"], "accuracy": round(m["accuracy"], 4),
                         "macro-F1": round(m["macro_f1"], 4)})
    return rows


def datasets_rows(data: dict) -> list[dict]:
    """Data sets actually named in the metrics files (plus the detector's weights)."""
    used = []
    c = data.get("classifier")
    if c:
        used += [k for k in c["val_counts_per_source"] if k in DATASETS]
        used += [k for k in c["by_source"] if k in DATASETS and k not in used]
        if c.get("headline_name") in DATASETS and c["headline_name"] not in used:
            used.insert(0, c["headline_name"])
    if data.get("detector") and "ilc" not in used:
        used.append("ilc")
    if data.get("detector") or c:
        used.append("mtcnn")
    return [{"data set": DATASETS[k][0], "from": DATASETS[k][1], "what": DATASETS[k][2],
             "licence": DATASETS[k][3]} for k in dict.fromkeys(used)]


# ---------------------------------------------------------------- figures


def confusion_figure(cm, normalize: bool = False, classes=CLASSES, title: str | None = None) -> go.Figure:
    cm = np.asarray(cm, float)
    z = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    text = [[f"{v:.0%}" if normalize else f"{int(v)}" for v in row] for row in z]
    names = [LABEL_NAMES.get(c, c) for c in classes]
    fig = go.Figure(go.Heatmap(z=z.tolist(), x=names, y=names, text=text, texttemplate="%{text}",
                               colorscale="Blues", showscale=False,
                               zmin=0, zmax=1 if normalize else None))
    fig.update_layout(title=title or ("Row-normalised (recall per true class)" if normalize else "Counts"),
                      height=340, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")
    return fig


def per_class_figure(metrics: dict) -> go.Figure:
    fig = go.Figure()
    classes = list(metrics["per_class"])
    for key, colour in (("precision", "#4C78A8"), ("recall", "#F58518"), ("f1", "#54A24B")):
        ys = [metrics["per_class"][c][key] for c in classes]
        fig.add_trace(go.Bar(name=key if key != "f1" else "F1", x=[LABEL_NAMES.get(c, c) for c in classes],
                             y=ys, marker_color=colour, text=[f"{v:.2f}" for v in ys], textposition="auto"))
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(range=[0, 1]), legend=dict(orientation="h", y=1.1))
    return fig


def curve_figure(curves: dict, kind: str) -> go.Figure | None:
    """ROC (kind='roc': fpr/tpr/auc) or PR (kind='pr': recall/precision/ap) per class."""
    fig = go.Figure()
    xk, yk, ak = ("fpr", "tpr", "auc") if kind == "roc" else ("recall", "precision", "ap")
    for c, v in (curves or {}).items():
        fig.add_trace(go.Scatter(x=v[xk], y=v[yk], mode="lines", name=f"{LABEL_NAMES.get(c, c)} ({ak.upper()} {v[ak]:.3f})",
                                 line=dict(color=class_color(c))))
    if not fig.data:
        return None
    if kind == "roc":
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                 line=dict(dash="dot", color="gray")))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="false positive rate" if kind == "roc" else "recall",
                      yaxis_title="true positive rate" if kind == "roc" else "precision")
    return fig


VIEW_NAMES = {"standard": "ILC validation, as shot", "small": "same faces, median side 21 px",
              "degraded": "small + camera degradations"}


def views_rows(views: dict | None, label: str = "MaskWatch") -> list[dict]:
    """training.evaluate_views' report -> one row per view and decision (plain argmax, and the
    released rule: temperature + logit bias), with `incorrect` precision / recall as measured
    and at the target's class mix (79% mask, 18% no_mask, 3% incorrect)."""
    rows = []
    for v, d in ((views or {}).get("views") or {}).items():
        for rule in ("argmax", "rule"):
            r = d.get(rule)
            if not r:
                continue
            m, p = r["metrics"], r.get("at_target_prior") or {}
            rows.append({"weights": label, "view": VIEW_NAMES.get(v, v),
                         "decision": "argmax" if rule == "argmax" else "released rule",
                         "binary acc.": round(m["binary_accuracy"], 4), "macro-F1": round(m["macro_f1"], 4),
                         "incorrect P": round(m["per_class"]["incorrect"]["precision"], 3),
                         "incorrect R": round(m["per_class"]["incorrect"]["recall"], 3),
                         "incorrect P @3%": round(p["incorrect_precision"], 3) if p else None,
                         "incorrect R @3%": round(p["incorrect_recall"], 3) if p else None})
    return rows


def street_rows(views: dict | None, label: str = "MaskWatch") -> list[dict]:
    """The street check of training.evaluate_views (real street photos' faces, labels checked by
    eye) -> one row per decision: how often masks and bare faces are called `incorrect`, and
    each binary slip."""
    st = (views or {}).get("street") or {}
    rows = []
    for rule in ("argmax", "rule"):
        d = st.get(rule)
        if d:
            rows.append({"weights": label, "decision": "argmax" if rule == "argmax" else "released rule",
                         "mask → incorrect": round(d["mask_as_incorrect"], 4),
                         "no_mask → incorrect": round(d["no_mask_as_incorrect"], 4),
                         "mask → no_mask": round(d["mask_as_no_mask"], 4),
                         "no_mask → mask": round(d["no_mask_as_mask"], 4)})
    return rows


def reliability_figure(views: dict | None, view: str = "small") -> go.Figure | None:
    """Reliability diagram (accuracy against confidence) of one view, before and after the
    temperature and decision rule."""
    d = ((views or {}).get("views") or {}).get(view) or {}
    fig = go.Figure()
    for key, name in (("reliability_raw", "softmax as trained"), ("reliability_rule", "released rule")):
        r = d.get(key)
        if not r:
            continue
        pts = [(c, a, n) for c, a, n in zip(r["confidence"], r["accuracy"], r["n"]) if c is not None]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=f"{name} (ECE {r['ece']:.3f})", text=[f"{p[2]} faces" for p in pts]))
    if not fig.data:
        return None
    fig.add_trace(go.Scatter(x=[0.33, 1], y=[0.33, 1], mode="lines", name="perfect",
                             line=dict(dash="dot", color="gray")))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="confidence (top class)",
                      yaxis_title="accuracy", legend=dict(orientation="h", y=1.15))
    return fig


def _detector_runs(detector: DetectorReport):
    """(which, run) for the original MTCNN runs, then the released weights' (when evaluated)."""
    for which in ("baseline", "weights"):
        runs = detector["baseline"] if which == "baseline" else detector.get("weights", {})
        for run in runs.values():
            yield which, run


def detector_size_rows(detector: DetectorReport) -> list[dict]:
    """Recall (and AP) by face size for each evaluated weights x min_face setting."""
    rows = []
    for which, r in _detector_runs(detector):
        row = {"weights": "original MTCNN" if which == "baseline" else "MaskWatch",
               "min_face": r["min_face"], "s/image": r["seconds_per_image"]}
        for b, v in r["by_size"].items():
            row[f"recall {b}px"] = round(v["recall"], 4)
        row["AP ≥20px"] = round(r["headline"]["ap"], 4)
        rows.append(row)
    return rows


def detector_size_figure(detector: DetectorReport) -> go.Figure | None:
    fig = go.Figure()
    for which, r in _detector_runs(detector):
        bins = list(r["by_size"])
        fig.add_trace(go.Bar(x=bins, y=[r["by_size"][b]["recall"] for b in bins],
                             name=f"{'original' if which == 'baseline' else 'MaskWatch'}, min_face {r['min_face']:g}"))
    if not fig.data:
        return None
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="face size (short side, px)", yaxis_title="recall (IoU 0.5)",
                      yaxis=dict(range=[0, 1]), legend=dict(orientation="h", y=1.15))
    return fig


DETECTOR_WEIGHT_LABELS = {"baseline": "original MTCNN", "previous": "previous release",
                          "weights": "MaskWatch", "camera": "MaskWatch camera weights",
                          "auto": "MaskWatch auto (per image)"}
DETECTOR_SETS = {"standard": "ILC validation, as shot", "ilc_small": "same photos, median face 21 px",
                 "ilc_degraded": "small + camera degradations", "crowds": "adityap27 crowds (validation)"}


def detector_views_rows(detector: DetectorReport) -> list[dict]:
    """Face AP on every validation set (the standard split and training.evaluate_detector's
    views) for the original MTCNN, the previous release (when recorded), this release, its
    camera detector weights and the "auto" detector that picks one of the two per image (when
    recorded), at each min_face setting evaluated on the views."""
    sets = {"standard": {"baseline": detector["baseline"], "weights": detector.get("weights") or {}}}
    for name, v in (detector.get("views") or {}).items():
        sets[name] = {"baseline": v["baseline"], "weights": v.get("weights") or {}}
    for which in ("previous", "camera", "auto"):   # the previous release, the camera weights, "auto"
        other = detector.get(which)
        if other:
            sets["standard"][which] = other["weights"]
            for name, runs in other["views"].items():
                if name in sets:
                    sets[name][which] = runs
    view_keys = set().union(*(v["baseline"].keys() for v in (detector.get("views") or {}).values())) or None
    rows = []
    for name, by_weights in sets.items():
        for which, label in DETECTOR_WEIGHT_LABELS.items():
            for key, r in (by_weights.get(which) or {}).items():
                if view_keys and key not in view_keys:
                    continue
                small = r["by_size"].get("12-20") or {}
                rows.append({"set": DETECTOR_SETS.get(name, name), "weights": label, "min_face": r["min_face"],
                             "AP ≥20px": round(r["headline"]["ap"], 4), "AP all sizes": round(r["all_faces"]["ap"], 4),
                             "recall 12-20px": round(small["recall"], 4) if small else None,
                             "precision": round(r["all_faces"]["precision"], 4)})
    return rows
