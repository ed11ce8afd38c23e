"""pipeline.ui.metrics and the Metrics page: shaping of weights/metrics.json, honest 'missing'
messages when it is absent, and a clear message (no traceback) when it has another layout. The
documents are the committed metrics.json with small, known parts put in."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tests.support.app_util import app_at, no_exception, plotly_specs, texts
from pipeline.engine import metrics_schema
from pipeline.ui import metrics as mv
from pipeline.records import CLASSES
from training.paths import WEIGHTS

RELEASE = json.loads((WEIGHTS / "metrics.json").read_text())

CM = [[90, 6, 4], [5, 80, 15], [2, 8, 30]]


def _metrics(cm):
    cm = np.asarray(cm)
    per = {}
    for k, c in enumerate(CLASSES):
        p = cm[k, k] / cm[:, k].sum() if cm[:, k].sum() else 0.0
        r = cm[k, k] / cm[k, :].sum() if cm[k, :].sum() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per[c] = {"precision": float(p), "recall": float(r), "f1": float(f1), "support": int(cm[k].sum())}
    return {"n": int(cm.sum()), "confusion_matrix": cm.tolist(), "per_class": per,
            "accuracy": float(np.trace(cm) / cm.sum()),
            "macro_f1": float(np.mean([v["f1"] for v in per.values()])),
            "binary_accuracy": float((cm[0, 0] + cm[1:, 1:].sum()) / cm.sum())}


def _classifier_report():
    base = _metrics([[100, 0, 0], [100, 0, 0], [40, 0, 0]])
    base["predicts"] = "mask"
    block = {"metrics": _metrics(CM), "majority_baseline": base}
    return dict(copy.deepcopy(RELEASE["classifier"]), best_epoch=7, n_train_faces=5000, n_val_faces=900,
                val_counts_per_source={"ilc": {"mask": 100}, "fmd": {"mask": 50}, "mfn": {"incorrect": 9}},
                validation={"ilc": block, "fmd": {"metrics": _metrics([[40, 1, 0], [2, 30, 0], [0, 0, 1]]),
                                                  "majority_baseline": base},
                            "all_sources": block,
                            "ilc_by_face_size": {"20-32px": dict(block, n_faces=240)}})


def _scores(recall, ap):
    return {"ap": ap, "recall": recall, "precision": 0.9, "npos": 100, "tp": int(100 * recall), "fp": 5}


def _detector_report():
    run = {"min_face": 20.0, "seconds_per_image": 0.09, "detections": 600,
           "headline": _scores(0.85, 0.8), "all_faces": _scores(0.8, 0.75),
           "by_size": {"12-20": _scores(0.3, 0.2), "20-32": _scores(0.7, 0.6), ">=64": _scores(0.97, 0.95)},
           "by_class": {c: _scores(0.8, 0.7) for c in CLASSES},
           "by_group": {"masked": _scores(0.8, 0.7), "unmasked": _scores(0.9, 0.8)}}
    return {"split": {"source": "held-out images", "images": 200, "faces": 500, "faces_ge_20px": 450,
                      "faces_by_class": {"mask": 250, "no_mask": 200, "incorrect": 50}},
            "metric": "VOC AP at IoU 0.5.", "detector_config": {}, "seconds": 12.0,
            "baseline": {"min_face_20": run}, "weights": {"min_face_20": dict(run, min_face=15.0)}}


def _doc(**sections):
    """The release's metrics.json without its optional sections, plus `sections`."""
    doc = {k: v for k, v in copy.deepcopy(RELEASE).items()
           if k in metrics_schema.MetricsDoc.__required_keys__}
    doc.update(sections)
    assert metrics_schema.problems(doc) == []
    return doc


def _manifest():
    return {"files": {"pnet/model.safetensors": {"size": 27536, "sha256": "x"},
                      "classifier/model.safetensors": {"size": 791492, "sha256": "y"},
                      "classifier/config.json": {"size": 96, "sha256": "z"}}}


def test_empty_folder_reports_missing(tmp_path):
    d = mv.load(tmp_path)
    assert d["classifier"] is None and d["detector"] is None and d["roc"] is None
    assert len(d["missing"]) == 2 and not any(d["files"].values())
    rows = mv.comparison_rows(None, None)
    assert rows[0]["report"] == "93.15%" and rows[0]["MaskWatch"] == "not measured yet"
    assert rows[-1]["MaskWatch"] == "manifest missing"
    assert mv.datasets_rows(d) == []


def test_classifier_shapes(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(_doc(classifier=_classifier_report())))
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    d = mv.load(tmp_path)
    c = d["classifier"]
    assert d["problem"] is None and d["detector"] is None and d["roc"] is None and d["folds"] is None
    assert c["source"] == "metrics.json" and c["headline_name"] == "ilc"
    assert c["headline"]["confusion_matrix"] == CM and c["baseline"]["predicts"] == "mask"
    b = mv.binary_scores(CM)
    assert b["precision"] == pytest.approx(90 / 97) and b["recall"] == pytest.approx(0.9)
    rows = {r["figure"]: r for r in mv.comparison_rows(c, mv.model_sizes(d["manifest"]))}
    assert rows["precision of 'mask'"]["MaskWatch"] == f"{90 / 97:.2%}"
    assert rows["model size"]["MaskWatch"] == "0.82 MB" and rows["model size"]["report"] == "8.8 MB"
    assert [r["validation set"] for r in mv.by_source_rows(c)] == ["ilc", "fmd", "all_sources"]
    assert mv.by_size_rows(c)[0]["faces"] == 240
    names = [r["data set"] for r in mv.datasets_rows(d)]
    assert names[0].startswith("ILC") and any("MaskedFace" in n for n in names)
    z = mv.confusion_figure(CM, normalize=True).data[0].z
    assert np.allclose(np.asarray(z).sum(1), 1)
    assert len(mv.per_class_figure(c["headline"]).data) == 3


def test_metrics_json_with_curves_and_folds(tmp_path):
    doc = _doc(classifier=_classifier_report(), detector=_detector_report(),
               roc={"mask": {"fpr": [0, 0.1, 1], "tpr": [0, 0.9, 1], "auc": 0.95}},
               pr={"mask": {"recall": [0, 0.9, 1], "precision": [1, 0.9, 0.5], "ap": 0.9}},
               cv_folds=RELEASE["cv_folds"][:2],
               cv_summary={"macro_f1": {"mean": 0.8, "std": 0.02, "min": 0.78, "max": 0.82},
                           "binary_accuracy": {"mean": 0.9, "std": 0.01, "min": 0.89, "max": 0.91}},
               cv_protocol=dict(RELEASE["cv_protocol"], folds=10, epochs=4))
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    d = mv.load(tmp_path)
    assert d["classifier"]["source"] == "metrics.json" and d["detector"]["source"] == "metrics.json"
    assert len(mv.curve_figure(d["roc"], "roc").data) == 2        # class + chance line
    assert len(mv.curve_figure(d["pr"], "pr").data) == 1
    assert len(d["folds"]) == 2
    cv = mv.cv_rows(d["cv_summary"])
    assert [r["metric"] for r in cv] == ["binary accuracy (mask vs not)", "3-class macro-F1"]
    assert cv[1]["mean"] == 0.8 and cv[1]["± std"] == 0.02
    assert "2 of 10 folds" in mv.cv_caption(d["cv_protocol"], d["folds"]) and "4 epochs" in mv.cv_caption(d["cv_protocol"], d["folds"])
    assert mv.cv_rows(None) == [] and mv.cv_caption(None, None) == ""
    rows = mv.detector_size_rows(d["detector"])
    assert rows[0]["weights"] == "original MTCNN" and rows[1]["recall >=64px"] == 0.97
    assert len(mv.detector_size_figure(d["detector"]).data) == 2


def test_metrics_page_without_files_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_WEIGHTS_DIR", str(tmp_path))
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    info = " ".join(texts(at.info))
    assert "No classifier evaluation yet" in info and "No ROC or PR" in info
    assert "No detector evaluation yet" in info and "manifest.json` is missing" in info
    assert not plotly_specs(at)                                    # no invented charts
    assert at.dataframe[0].value["report"].tolist()[:3] == ["93.15%", "91.93%", "94.60%"]


def test_metrics_page_with_files_draws_sections(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text(json.dumps(_doc(classifier=_classifier_report(),
                                                           detector=_detector_report())))
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    monkeypatch.setenv("MASKWATCH_WEIGHTS_DIR", str(tmp_path))
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    specs = plotly_specs(at)
    heat = [s for s in specs if s["data"][0]["type"] == "heatmap"]
    assert len(heat) == 2 and heat[0]["data"][0]["z"] == CM
    assert any(s["data"][0]["type"] == "bar" and "min_face" in s["data"][0]["name"] for s in specs)
    m = {x.label: x.value for x in at.metric}
    assert m["accuracy"] == f"{np.trace(CM) / np.sum(CM):.2%}" and m["all weights"] == "0.82 MB"
    info = " ".join(texts(at.info))
    assert "No ROC or PR" in info and "No classifier evaluation" not in info


def test_metrics_page_on_the_real_weights_folder():
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    d = mv.load()
    if d["manifest"]:
        assert any(x.label == "all weights" for x in at.metric)
    if d["classifier"] is None:
        assert any("No classifier evaluation yet" in i for i in texts(at.info))
    else:
        assert len([s for s in plotly_specs(at) if s["data"][0]["type"] == "heatmap"]) == 2


def _without_version():
    doc = _doc(classifier=_classifier_report())
    del doc["schema_version"]
    return doc


def _without(*path):
    report = _classifier_report()
    parent = report
    for p in path[:-1]:
        parent = parent[p]
    del parent[path[-1]]
    return dict(_doc(), classifier=report)


@pytest.mark.parametrize("doc, expected", [
    (_without_version(), "it has no schema_version (written before the schema); this version reads schema_version 1"),
    (dict(_doc(classifier=_classifier_report()), schema_version=2),
     "it has schema_version 2; this version reads schema_version 1"),
    (_without("validation", "all_sources"), "does not fit the metrics schema: metrics.classifier.validation.all_sources: missing"),
    ("{not json", "is not valid JSON"),
])
def test_metrics_json_in_another_layout_is_not_guessed(tmp_path, doc, expected):
    (tmp_path / "metrics.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    d = mv.load(tmp_path)
    assert expected in d["problem"] and f"`{tmp_path / 'metrics.json'}`" in d["problem"]
    assert d["classifier"] is None and d["detector"] is None and d["files"]["metrics.json"]


def test_metrics_page_says_which_layout_it_found(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text(json.dumps(dict(_doc(classifier=_classifier_report()), schema_version=7)))
    monkeypatch.setenv("MASKWATCH_WEIGHTS_DIR", str(tmp_path))
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    error = " ".join(texts(at.error))
    assert f"{tmp_path / 'metrics.json'}" in error and "schema_version 7" in error
    assert "reads schema_version 1" in error and "python -m training.evaluate" in error
    assert "No classifier evaluation yet" in " ".join(texts(at.info)) and not plotly_specs(at)


def _views_doc(prec=0.8):
    def view():
        block = {"metrics": _metrics(CM),
                 "at_target_prior": {"prior": {"mask": 0.79, "no_mask": 0.18, "incorrect": 0.03},
                                     "binary_accuracy": 0.9, "macro_f1": 0.8,
                                     "incorrect_precision": prec, "incorrect_recall": 0.6},
                 "by_face_size": {"<20px": {"n_faces": 100, "metrics": _metrics(CM)}}}
        rel = {"bin_lo": [0.3, 0.6, 0.9], "bin_hi": [0.6, 0.9, 1.0], "n": [10, 90, 0],
               "confidence": [0.5, 0.9, None], "accuracy": [0.4, 0.95, None], "ece": 0.05, "nll": 0.3}
        return {"argmax": block, "rule": block, "reliability_raw": rel, "reliability_rule": dict(rel, ece=0.02)}
    return {"weights": "weights", "n_faces": 728, "small_factor": 0.4,
            "config_rule": {"temperature": 0.8, "logit_bias": [0, -0.4, -1.1]},
            "views": {v: view() for v in ("standard", "small", "degraded")}}


def test_views_table_and_reliability_diagram_on_the_metrics_page(tmp_path, monkeypatch):
    """metrics.json's classifier_views (training.evaluate_views) -> a table of every view and
    decision next to the previous release, and a reliability diagram with both curves."""
    doc = _doc(classifier=_classifier_report(), classifier_views=_views_doc(),
               classifier_views_previous=_views_doc(0.4))
    assert metrics_schema.problems(doc) == []
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    d = mv.load(tmp_path)
    rows = mv.views_rows(d["views"]) + mv.views_rows(d["views_previous"], "previous release")
    assert len(rows) == 12 and rows[0]["incorrect P @3%"] == 0.8 and rows[-1]["incorrect P @3%"] == 0.4
    fig = mv.reliability_figure(d["views"])
    assert [t.name.split(" (")[0] for t in fig.data] == ["softmax as trained", "released rule", "perfect"]
    assert list(fig.data[0].x) == [0.5, 0.9]                        # empty bins left out
    assert mv.views_rows(None) == [] and mv.reliability_figure(None) is None
    assert mv.street_rows(d["views"]) == [] and mv.street_rows(None) == []
    monkeypatch.setenv("MASKWATCH_WEIGHTS_DIR", str(tmp_path))
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    assert any(s["data"][0].get("name", "").startswith("softmax as trained") for s in plotly_specs(at))


def test_detector_views_sit_next_to_the_previous_release_and_the_original():
    rep = _detector_report()
    run = rep["weights"]["min_face_20"]
    rep["views"] = {"ilc_small": {"split": rep["split"], "baseline": rep["baseline"],
                                  "weights": {"min_face_20": dict(run, all_faces=_scores(0.7, 0.61))}}}
    rep["previous"] = {"release": "abc", "weights": rep["baseline"],
                       "views": {"ilc_small": {"min_face_20": dict(run, all_faces=_scores(0.6, 0.55))}}}
    assert metrics_schema.problems(_doc(detector=rep)) == []
    rows = mv.detector_views_rows(rep)
    small = {r["weights"]: r for r in rows if r["set"] == mv.DETECTOR_SETS["ilc_small"]}
    assert set(small) == {"original MTCNN", "previous release", "MaskWatch"}
    assert small["MaskWatch"]["AP all sizes"] == 0.61 and small["previous release"]["AP all sizes"] == 0.55
    assert {r["set"] for r in rows} == {mv.DETECTOR_SETS["standard"], mv.DETECTOR_SETS["ilc_small"]}
    from training.model_card import _det_views_text
    text = "\n".join(_det_views_text(rep))
    assert "shrunk to a 21 px median face" in text and "0.800 / 0.550 / 0.300" in text and "0.800 / 0.610 / 0.300" in text


def test_camera_detector_weights_sit_beside_the_release_on_every_set():
    """The "camera" detector weights (weights/camera/) are reported on the same sets as the
    released detector: in the Metrics page's table and the model card's."""
    rep = _detector_report()
    run = rep["weights"]["min_face_20"]
    rep["views"] = {"ilc_degraded": {"split": rep["split"], "baseline": rep["baseline"],
                                     "weights": {"min_face_20": dict(run, all_faces=_scores(0.7, 0.61))}}}
    rep["camera"] = {"weights_dir": "weights/camera",
                     "weights": {"min_face_20": dict(run, headline=_scores(0.8, 0.77))},
                     "views": {"ilc_degraded": {"min_face_20": dict(run, all_faces=_scores(0.75, 0.66))}}}
    assert metrics_schema.problems(_doc(detector=rep)) == []
    rows = mv.detector_views_rows(rep)
    degraded = {r["weights"]: r for r in rows if r["set"] == mv.DETECTOR_SETS["ilc_degraded"]}
    assert degraded["MaskWatch camera weights"]["AP all sizes"] == 0.66 and degraded["MaskWatch"]["AP all sizes"] == 0.61
    standard = {r["weights"]: r for r in rows if r["set"] == mv.DETECTOR_SETS["standard"]}
    assert standard["MaskWatch camera weights"]["AP ≥20px"] == 0.77
    from training.model_card import CAMERA_WEIGHTS_NOTE, _det_views_text
    text = "\n".join(_det_views_text(rep))
    assert "MaskWatch camera weights |" in text and "| 0.800 / 0.610 / 0.300 | 0.800 / 0.660 / 0.300 |" in text
    assert CAMERA_WEIGHTS_NOTE in text
    rep.pop("camera")
    assert "camera weights" not in "\n".join(_det_views_text(rep)) and "MaskWatch camera weights" not in {
        r["weights"] for r in mv.detector_views_rows(rep)}


def test_the_auto_detector_sits_beside_the_release_on_every_set():
    """"auto" (the photo and camera weights, one per image) is reported on the same sets, with
    how many images took the camera weights, in the Metrics page's table and the model card."""
    rep = _detector_report()
    run = rep["weights"]["min_face_20"]
    rep["views"] = {"ilc_degraded": {"split": rep["split"], "baseline": rep["baseline"],
                                     "weights": {"min_face_20": dict(run, all_faces=_scores(0.7, 0.61))}}}
    rep["auto"] = {"rule": "camera where blocky",
                   "weights": {"min_face_20": dict(run, headline=_scores(0.8, 0.76), camera_images=1)},
                   "views": {"ilc_degraded": {"min_face_20": dict(run, all_faces=_scores(0.75, 0.64),
                                                                 camera_images=2)}}}
    assert metrics_schema.problems(_doc(detector=rep)) == []
    broken = {**rep, "auto": {**rep["auto"], "weights": {"min_face_20": run}}}     # no camera_images
    assert any("camera_images" in p for p in metrics_schema.problems(dict(_doc(), detector=broken)))
    rows = mv.detector_views_rows(rep)
    degraded = {r["weights"]: r for r in rows if r["set"] == mv.DETECTOR_SETS["ilc_degraded"]}
    label = mv.DETECTOR_WEIGHT_LABELS["auto"]
    assert degraded[label]["AP all sizes"] == 0.64 and degraded["MaskWatch"]["AP all sizes"] == 0.61
    assert {r["weights"]: r for r in rows if r["set"] == mv.DETECTOR_SETS["standard"]}[label]["AP ≥20px"] == 0.76
    from training.model_card import _det_views_text
    text = "\n".join(_det_views_text(rep))
    assert "MaskWatch auto |" in text and "| 0.800 / 0.610 / 0.300 | 0.800 / 0.640 / 0.300 |" in text
    assert "1 of 200 images of the ILC split, 2 of 200 images of the degraded view" in text and "camera where blocky" in text


def test_model_size_with_camera_weights_names_what_one_engine_loads():
    """camera/ is a second detector weight set: the size on disk counts it, the size of one
    loaded engine (the classifier and one set) does not count both sets."""
    files = {"pnet/model.safetensors": 100, "rnet/model.safetensors": 200, "onet/model.safetensors": 300,
             "classifier/model.safetensors": 1000, "camera/pnet/model.safetensors": 100,
             "camera/rnet/model.safetensors": 200, "camera/onet/model.safetensors": 400}
    sizes = mv.model_sizes({"files": {k: {"size": v * 1000, "sha256": "x"} for k, v in files.items()}})
    assert sizes["total_mb"] == 2.3 and sizes["engine_mb"] == 1.7   # the larger set: camera's 0.7 + 1.0
    rows = {r["figure"]: r for r in mv.comparison_rows(None, sizes)}
    assert rows["model size"]["MaskWatch"] == "2.30 MB on disk, 1.70 MB loaded per engine"
    from training.model_card import render
    card = render({"model_sizes_bytes": {"pnet": 100, "rnet": 200, "onet": 300, "classifier": 1000, "camera": 700},
                   "total_weight_bytes": 2300})
    assert "1,600 bytes with the photo detector, 1,700 with the camera one" in card
    assert "second set of detector weights" not in render({"model_sizes_bytes": {"pnet": 100}, "total_weight_bytes": 100})


def test_street_check_on_the_metrics_page_and_the_model_card(tmp_path, monkeypatch):
    """classifier_views' street check (training.evaluate_views.street_report) -> rows on the
    Metrics page and a table in the model card, next to the previous release."""
    def scores(fa):
        return {"confusion_matrix": [[90, 2, 8], [3, 97, 0], [0, 0, 2]], "mask_as_incorrect": fa,
                "no_mask_as_incorrect": 0.0, "mask_as_no_mask": 0.02, "no_mask_as_mask": 0.03}
    views, prev = _views_doc(), _views_doc(0.4)
    views["street"] = {"checks": "training/street_checks.json", "n_faces": {"mask": 100, "no_mask": 100, "incorrect": 2},
                       "argmax": scores(0.08), "rule": scores(0.012)}
    views["street"]["rule_by_source"] = {"adi": scores(0.01), "mac": scores(0.02)}
    prev["street"] = dict(views["street"], argmax=scores(0.05), rule=scores(0.05),
                          rule_by_source={"adi": scores(0.01), "mac": scores(0.09)})
    doc = _doc(classifier=_classifier_report(), classifier_views=views, classifier_views_previous=prev)
    assert metrics_schema.problems(doc) == []
    rows = mv.street_rows(views) + mv.street_rows(prev, "previous release")
    assert [r["mask → incorrect"] for r in rows] == [0.08, 0.012, 0.05, 0.05]
    from training.model_card import _views_text
    text = "\n".join(_views_text(doc))
    assert "| this release | rule | 1.2% |" in text and "| previous release | argmax | 5.0% |" in text
    assert "| previous release | rule | 5.0% |" in text and "100 masks, 2 incorrect, 100 bare faces" in text
    assert "macwin (web and stock photos) 2.0% of 100 (previous release 9.0%)" in text
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    monkeypatch.setenv("MASKWATCH_WEIGHTS_DIR", str(tmp_path))
    at = app_at("4_Metrics.py")
    at.run()
    no_exception(at)
    assert any("Street check" in c.value for c in at.caption)
