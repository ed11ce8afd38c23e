"""ROC/PR curve maths for weights/metrics.json, on cases worked by hand."""
import numpy as np

from training.evaluate import curves, pr_curve, roc_curve, thin


def test_roc_perfect_and_inverted():
    y = np.array([1, 1, 0, 0])
    assert roc_curve(y, np.array([0.9, 0.8, 0.2, 0.1]))["auc"] == 1.0
    assert roc_curve(y, np.array([0.1, 0.2, 0.8, 0.9]))["auc"] == 0.0


def test_roc_by_hand():
    # scores 0.9(+) 0.7(-) 0.6(+) 0.2(-): points (0,0) (0,.5) (.5,.5) (.5,1) (1,1) -> AUC 0.75
    r = roc_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.7, 0.6, 0.2]))
    assert r["fpr"].tolist() == [0, 0, 0.5, 0.5, 1] and r["tpr"].tolist() == [0, 0.5, 0.5, 1, 1]
    assert abs(r["auc"] - 0.75) < 1e-9


def test_pr_by_hand():
    # precision at each hit: 1/1 then 2/3 -> AP = 0.5*1 + 0.5*2/3
    p = pr_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.7, 0.6, 0.2]))
    assert abs(p["ap"] - (0.5 + 1 / 3)) < 1e-9


def test_ties_count_together():
    r = roc_curve(np.array([1, 0]), np.array([0.5, 0.5]))
    assert r["fpr"].tolist() == [0, 1] and abs(r["auc"] - 0.5) < 1e-9


def test_curves_shape_and_thin():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    probs = rng.dirichlet([1, 1, 1], 500)
    roc, pr = curves(y, probs)
    assert set(roc) == {"mask", "no_mask", "incorrect", "not_masked"}
    assert len(roc["mask"]["fpr"]) <= 101 and roc["mask"]["fpr"][0] == 0 and roc["mask"]["fpr"][-1] == 1
    assert 0.4 < roc["mask"]["auc"] < 0.6  # random scores
    t = thin({"a": np.arange(1000), "b": np.arange(1000), "auc": 0.5}, ("a", "b"), 11)
    assert t["a"][0] == 0 and t["a"][-1] == 999 and len(t["a"]) == 11 and t["auc"] == 0.5
