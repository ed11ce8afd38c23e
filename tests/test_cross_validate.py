"""training.cross_validate: fold assignment (stratified, groups whole) and a tiny CV run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.engine.config import ClassifierConfig
from training import classifier_data as cd
from training.cross_validate import cross_validate, stratified_group_kfold, summarize


def test_kfold_keeps_groups_whole_and_classes_even():
    rng = np.random.default_rng(0)
    labels = rng.choice(3, 600, p=[0.5, 0.4, 0.1])
    groups = rng.integers(0, 250, 600)                      # many groups of 1-6 faces
    fold = stratified_group_kfold(labels, groups, 10, seed=3)
    assert set(fold) == set(range(10))
    for g in np.unique(groups):                             # a group never straddles folds
        assert len(set(fold[groups == g])) == 1
    for c in range(3):                                      # every fold near a tenth of each class
        per = np.bincount(fold[labels == c], minlength=10)
        share = (labels == c).sum() / 10
        assert per.min() >= 0.5 * share and per.max() <= 1.5 * share, (c, per)
    assert np.array_equal(fold, stratified_group_kfold(labels, groups, 10, seed=3))   # seeded
    assert not np.array_equal(fold, stratified_group_kfold(labels, groups, 10, seed=4))


def test_summarize_mean_and_sample_std():
    rows = [{"binary_accuracy": a, "macro_f1": a / 2, "accuracy": a, "recall_mask": 1.0,
             "recall_no_mask": 1.0, "recall_incorrect": 0.0, "all_sources_macro_f1": 0.5,
             "majority_macro_f1": 0.2} for a in (0.8, 0.9, 1.0)]
    s = summarize(rows)
    assert abs(s["binary_accuracy"]["mean"] - 0.9) < 1e-12
    assert abs(s["binary_accuracy"]["std"] - 0.1) < 1e-12 and s["macro_f1"]["max"] == 0.5


def test_tiny_cross_validation_writes_folds_and_resumes(tmp_path):
    faces = cd.build_faceset(cd.list_all(limit=6), ClassifierConfig(), progress=False)
    out = tmp_path / "cv.json"
    r = cross_validate(k=2, epochs=1, out=out, faces=faces, only={0}, progress=False, log_dir=tmp_path)
    assert [f["fold"] for f in r["folds"]] == [0] and not r["complete"]
    r = cross_validate(k=2, epochs=1, out=out, faces=faces, progress=False, log_dir=tmp_path)
    doc = json.loads(out.read_text())
    assert doc["complete"] and [f["fold"] for f in doc["folds"]] == [0, 1]
    assert doc["folds"][0] == r["folds"][0]                   # fold 0 kept, not retrained
    assert sum(doc["fold_sizes_ilc"]) == int((faces.source == "ilc").sum())
    for f in doc["folds"]:
        assert 0.0 <= f["macro_f1"] <= 1.0 and f["n"] == doc["fold_sizes_ilc"][f["fold"]]
    assert set(doc["summary"]) >= {"binary_accuracy", "macro_f1", "recall_incorrect"}
    assert list(tmp_path.glob("classifier_cv_*.csv"))


def test_folds_run_in_two_processes_are_merged(tmp_path):
    """Folds written to two result files (as two processes would) join into one complete
    result without retraining; a file from another protocol is refused."""
    faces = cd.build_faceset(cd.list_all(limit=6), ClassifierConfig(), progress=False)
    a, b, joined = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "cv.json"
    ra = cross_validate(k=2, epochs=1, out=a, faces=faces, only={0}, progress=False, log_dir=None)
    rb = cross_validate(k=2, epochs=1, out=b, faces=faces, only={1}, progress=False, log_dir=None)
    r = cross_validate(k=2, epochs=1, out=joined, faces=faces, only=set(), progress=False,
                       log_dir=None, merge=(a, b))
    doc = json.loads(joined.read_text())
    assert doc["complete"] and doc["folds"] == [ra["folds"][0], rb["folds"][0]] == r["folds"]
    assert doc["protocol"]["source_repeat"] == r["protocol"]["source_repeat"]
    with pytest.raises(ValueError, match="another protocol"):
        cross_validate(k=2, epochs=2, out=None, faces=faces, only=set(), progress=False,
                       log_dir=None, merge=(a,))
