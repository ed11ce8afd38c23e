"""pipeline.engine.metrics_schema: the committed weights/metrics.json fits it, a document missing
a required key, with a wrong basic type or another schema_version does not, and the writer
(training.evaluate) only writes documents that fit."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import typing

import pytest

from pipeline.engine import metrics_schema as schema
from training import evaluate
from training.paths import ROOT, WEIGHTS


def committed() -> dict:
    return json.loads((WEIGHTS / schema.FILENAME).read_text())


def test_committed_metrics_json_fits_the_schema():
    doc = committed()
    assert doc["schema_version"] == schema.SCHEMA_VERSION
    assert schema.problems(doc) == []
    assert schema.parse(doc) is doc
    # the optional sections the page draws are there in the release
    assert {"classifier", "detector", "roc", "pr", "cv_folds", "cv_summary", "cv_protocol"} <= doc.keys()


def _required_paths(value, tp, path=()):
    """One path per (TypedDict, required key) reachable in `value`: every required key the
    schema names, found in the committed document."""
    seen: set = set()

    def walk(value, tp, path):
        if typing.is_typeddict(tp):
            hints = typing.get_type_hints(tp)
            for key in sorted(tp.__required_keys__):
                if (tp, key) not in seen:
                    seen.add((tp, key))
                    yield path + (key,)
            for key, sub in hints.items():
                if key in value:
                    yield from walk(value[key], sub, path + (key,))
            return
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is dict and value:
            key = next(iter(value))
            yield from walk(value[key], args[1], path + (key,))
        elif origin is list and value:
            yield from walk(value[0], args[0], path + (0,))
    yield from walk(value, tp, path)


def _dotted(path) -> str:
    return "metrics" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def test_every_required_key_is_checked():
    doc = committed()
    paths = list(_required_paths(doc, schema.MetricsDoc))
    assert len(paths) > 60 and ("classifier", "validation", "ilc", "metrics", "confusion_matrix") in paths
    for path in paths:
        if path == ("schema_version",):
            continue
        broken = copy.deepcopy(doc)
        parent = broken
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
        assert schema.problems(broken) == [f"{_dotted(path)}: missing"], path


@pytest.mark.parametrize("path, value, expected", [
    (("git_commit",), 3, "metrics.git_commit: expected a string or null, found a number"),
    (("total_weight_bytes",), 2.5, "metrics.total_weight_bytes: expected an integer, found a number"),
    (("classifier", "validation", "ilc", "metrics", "n"), True, "metrics.classifier.validation.ilc.metrics.n: expected an integer"),
    (("classifier", "validation", "ilc", "metrics", "per_class", "mask", "f1"), "0.9",
     "metrics.classifier.validation.ilc.metrics.per_class.mask.f1: expected a number, found a string"),
    (("detector", "baseline", "min_face_20", "by_size"), [], "metrics.detector.baseline.min_face_20.by_size: expected an object"),
    (("roc", "mask", "fpr"), [0.0, None], "metrics.roc.mask.fpr[1]: expected a number, found null"),
    (("cv_folds",), {}, "metrics.cv_folds: expected a list, found an object"),
])
def test_wrong_basic_types_are_named(path, value, expected):
    doc = committed()
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    found = schema.problems(doc)
    assert len(found) == 1 and found[0].startswith(expected), found
    with pytest.raises(schema.MetricsSchemaError, match="does not fit the metrics schema"):
        schema.parse(doc)


@pytest.mark.parametrize("version, expected", [
    (None, "it has no schema_version (written before the schema); this version reads schema_version 1"),
    (2, "it has schema_version 2; this version reads schema_version 1"),
    ("1", "it has schema_version '1'; this version reads schema_version 1"),
])
def test_another_schema_version_is_refused(version, expected):
    doc = committed()
    if version is None:
        del doc["schema_version"]
    else:
        doc["schema_version"] = version
    assert schema.version_problem(doc) == expected
    assert schema.problems(doc) == [expected]
    with pytest.raises(schema.MetricsSchemaError, match="weights/metrics.json does not fit"):
        schema.parse(doc, "weights/metrics.json")


def test_optional_sections_may_be_left_out_and_extra_keys_are_allowed():
    doc = committed()
    for key in ("classifier", "detector", "cv_folds", "cv_summary", "cv_protocol", "training_config",
                "roc", "pr", "curves_on"):
        del doc[key]
    doc["calibration"] = {"temperature": 1.3}        # a section a later version may name
    assert schema.problems(doc) == []
    d = committed()
    del d["classifier"]["validation"]["fmd"], d["detector"]["weights"]
    assert schema.problems(d) == []


def test_the_writer_builds_a_document_that_fits(tmp_path):
    built = evaluate.build_metrics(WEIGHTS, with_curves=False)
    assert schema.problems(built) == [] and list(built)[0] == "schema_version"
    # the committed file is this document plus the curves and views (which need the classifier run)
    doc = committed()
    run_only = ("generated", "git_commit", "roc", "pr", "curves_on", "classifier_views")
    assert {k: v for k, v in doc.items() if k not in run_only} == \
        {k: v for k, v in built.items() if k not in ("generated", "git_commit")}
    out = tmp_path / "metrics.json"
    evaluate.write_metrics(built, out)
    assert json.loads(out.read_text()) == built and out.read_text().startswith('{\n "schema_version": 1,')
    del built["classifier"]["validation"]["ilc"]["metrics"]["accuracy"]
    with pytest.raises(schema.MetricsSchemaError, match=r"classifier\.validation\.ilc\.metrics\.accuracy: missing"):
        evaluate.write_metrics(built, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_schema_module_is_standard_library_only():
    code = ("import sys; import pipeline.engine.metrics_schema; "
            "print(sorted(m for m in ('torch', 'numpy', 'streamlit', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_committed_reports_hold_no_machine_paths():
    """The reports under weights/ name folders relative to the repository: an absolute path is one
    machine's (it once leaked into metrics.json through evaluate_views)."""
    def strings(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from strings(v)
        elif isinstance(o, list):
            for v in o:
                yield from strings(v)
        elif isinstance(o, str):
            yield o

    files = WEIGHTS.glob("**/*.json")
    found = [(f.name, s) for f in files for s in strings(json.loads(f.read_text()))
             if s.startswith("/") or ":\\" in s]
    assert not found, found


def test_reports_name_weights_folders_relative_to_the_repository(tmp_path):
    from training.paths import repo_relative
    assert repo_relative(WEIGHTS) == "weights"
    assert repo_relative(ROOT / "runs" / "x") == "runs/x"
    assert repo_relative(tmp_path / "elsewhere") == "elsewhere"
