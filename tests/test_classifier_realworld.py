"""Issue 13: small and degraded faces, two-class sources, the target-like validation views,
calibration and the `incorrect` decision rule, label fixes, and the split that keeps its sides
when a photo is removed. Fast and offline (no training data needed)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.engine.classifier import MaskClassifierRunner, calibrated_probs
from pipeline.engine.config import ClassifierConfig
from pipeline.engine.nets import MaskClassifier
from pipeline.records import CLASSES
from training import calibrate as cal
from training import classifier_data as cd
from training.augment import AugmentConfig, augment_one, camera_degrade
from training.splits import split_faces
from training.train_classifier import weighted_loss


def _faceset(n_images: int, faces_per_image: int = 2, seed: int = 0, names=None) -> cd.FaceSet:
    rng = np.random.default_rng(seed)
    n = n_images * faces_per_image
    image = np.repeat(np.arange(n_images), faces_per_image)
    boxes = np.tile(np.array([[10, 10, 40, 44]], np.float32), (n, 1))
    names = names or [f"{k:04d}.jpg" for k in range(n_images)]
    return cd.FaceSet(source=np.array(["ilc"] * n), image=image, labels=rng.integers(0, 3, n),
                      boxes=boxes, size=np.full(n, 30.0, np.float32), group=image.copy(),
                      context=np.zeros((n, 4, 4, 3), np.uint8), ctx_boxes=boxes.copy(),
                      paths=[f"/data/scenes/ilc2021/images/{s}" for s in names])


# ---------------------------------------------------------------- calibration at inference


def test_runner_applies_temperature_and_logit_bias_from_config(tmp_path):
    """The config's temperature and logit bias shape the probabilities (and so the label), and
    they survive config.json -> pipeline.engine.weights.load_net."""
    from pipeline.engine.weights import load_net, save_net

    torch.manual_seed(0)
    config = ClassifierConfig(temperature=2.0, logit_bias=(0.0, 0.5, -1.5))
    net = MaskClassifier(config)
    net.reset_parameters()
    save_net(net, tmp_path / "classifier", source="a test")
    loaded = load_net("classifier", tmp_path)
    assert loaded.config.temperature == 2.0 and loaded.config.logit_bias == (0.0, 0.5, -1.5)
    image = torch.rand(1, 3, 120, 160) * 255
    boxes = torch.tensor([[20.0, 20.0, 70.0, 80.0], [90.0, 30.0, 130.0, 75.0]])
    runner = MaskClassifierRunner(loaded)
    from pipeline.engine.classifier import face_crops
    with torch.inference_mode():
        logits = loaded(face_crops(image, boxes, loaded.config))
    want = torch.softmax(logits / 2.0 + torch.tensor([0.0, 0.5, -1.5]), 1).numpy()
    assert np.allclose(runner.probabilities(image, boxes), want, atol=1e-6)
    # the default config changes nothing
    z = torch.randn(5, 3)
    assert torch.allclose(calibrated_probs(z, ClassifierConfig()), torch.softmax(z, 1))


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (4000, 3))
    p = cal.probs(z, 2.5)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert cal.fit_temperature(z, y) == pytest.approx(2.5, rel=0.1)


def test_prior_reweighting_and_bias_favour_precision_for_a_rare_class():
    """Rows of the reweighted confusion matrix have the target's shares; at a 3% prior the
    fitted rule gives `incorrect` a negative bias and more precision than the plain argmax."""
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    pred = np.array([0] * 45 + [2] * 5 + [1] * 30 + [2] * 20)
    cm = cal.reweighted_cm(y, pred)
    assert np.allclose(cm.sum(1) / cm.sum(), cal.TARGET_PRIOR)
    m = cal.at_prior(y, pred)
    assert m["per_class"]["incorrect"]["precision"] == pytest.approx(
        0.03 / (0.03 + 0.79 * 5 / 50), rel=1e-6)
    rng = np.random.default_rng(1)
    z = np.eye(3)[y] * 2.0 + rng.normal(0, 1.0, (len(y), 3))
    b = cal.fit_bias(z, y, 1.0)
    assert b[0] == 0.0 and b[2] < 0
    before = cal.at_prior(y, z.argmax(1))["per_class"]["incorrect"]["precision"]
    after = cal.at_prior(y, (z + b).argmax(1))["per_class"]["incorrect"]["precision"]
    assert after > before


def test_cross_fitted_figures_are_the_mean_of_several_halvings():
    """The report's cross-fitted figures average calibrate.CROSS_FIT_SPLITS halvings of the
    photos (one halving is noisy), with the range over them, per view."""
    from training import views as tv
    from training.evaluate_views import cross_fit_report, prior_summary

    rng = np.random.default_rng(3)
    n = 240
    y = rng.choice(3, n, p=[0.5, 0.35, 0.15])
    groups = np.concatenate([np.arange(n) // 2] * len(tv.VIEWS))
    z = np.concatenate([np.eye(3)[y] * 1.5 + rng.normal(0, 1.0, (n, 3)) for _ in tv.VIEWS])
    r = cross_fit_report(y, z, groups, splits=4)
    assert set(r) == set(tv.VIEWS)
    yy = np.concatenate([y] * len(tv.VIEWS))
    for k, v in enumerate(tv.VIEWS):
        d, sel = r[v], slice(k * n, (k + 1) * n)
        each = [prior_summary(y, cal.cross_fit(z, yy, groups, seed=s)[sel])["incorrect_precision"] for s in range(4)]
        assert d["splits"] == 4
        assert d["at_target_prior"]["incorrect_precision"] == pytest.approx(np.mean(each))
        assert d["min"]["incorrect_precision"] == min(each) and d["max"]["incorrect_precision"] == max(each)
    assert cal.CROSS_FIT_SPLITS >= 5


def test_reliability_diagram_counts_every_face():
    rng = np.random.default_rng(2)
    p = cal.probs(rng.normal(0, 2, (300, 3)))
    y = rng.integers(0, 3, 300)
    r = cal.reliability(p, y)
    assert sum(r["n"]) == 300 and len(r["accuracy"]) == cal.RELIABILITY_BINS
    assert 0 <= r["ece"] <= 1


# ---------------------------------------------------------------- training pieces


def test_two_class_mask_label_accepts_incorrect():
    """A with_mask face of a two-class source costs -log(p(mask) + p(incorrect)): calling it
    `incorrect` is not punished, calling it `no_mask` is."""
    cw = torch.ones(3)
    y = torch.tensor([0, 0])
    sw = torch.ones(2)
    merged = torch.tensor([True, True])
    logits = torch.tensor([[0.0, -5.0, 5.0], [0.0, 5.0, -5.0]])
    loss_each = [float(weighted_loss(logits[i:i + 1], y[i:i + 1], sw[:1], cw, 0.0, merged[i:i + 1]))
                 for i in range(2)]
    p = torch.softmax(logits, 1)
    assert loss_each[0] == pytest.approx(float(-torch.log(p[0, 0] + p[0, 2])), abs=1e-6)
    assert loss_each[0] < 0.01 < 4 < loss_each[1]
    plain = float(weighted_loss(logits[:1], y[:1], sw[:1], cw, 0.0))
    assert plain > 4                                    # three-class label: incorrect is wrong


def test_small_face_and_camera_augmentation():
    """small_face_p=1: the face is rendered at 12-40 px, so the crop loses fine detail;
    camera_degrade is seeded and changes the image; the default config draws no extra random
    numbers (the old recipe's stream is kept)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:112, 0:112]
    ctx = (((xx // 2 + yy // 2) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2)   # fine checker
    box = np.array([30.0, 30.0, 80.0, 80.0])
    sharp = AugmentConfig(lowres_p=0, jpeg_p=0, blur_p=0, rotate_p=0, scale=(1, 1), shift=0, aspect=0)
    small = AugmentConfig(**{**sharp.__dict__, "small_face_p": 1.0})
    hf = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()
    a = augment_one(ctx, box, 64, 0.15, np.random.default_rng(1), sharp)
    b = augment_one(ctx, box, 64, 0.15, np.random.default_rng(1), small)
    assert hf(b) < 0.5 * hf(a)
    img = (rng.random((50, 60, 3)) * 255).astype(np.uint8)
    d1 = camera_degrade(img, np.random.default_rng(5))
    d2 = camera_degrade(img, np.random.default_rng(5))
    assert d1.shape == img.shape and np.array_equal(d1, d2) and not np.array_equal(d1, img)
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    augment_one(ctx, box, 64, 0.15, r1, AugmentConfig())
    augment_one(ctx, box, 64, 0.15, r2, AugmentConfig(small_face_p=0.0, camera_p=0.0))
    assert r1.random() == r2.random()


def test_split_keeps_its_sides_when_a_photo_is_removed(monkeypatch):
    """A photo removed from the data keeps its place (SPLIT_PLACEHOLDERS): every other photo
    stays on its side of the split; without the placeholder many would move."""
    names = [f"{k:02x}aa.jpg" for k in range(0, 240, 2)]
    full = _faceset(len(names), names=names, seed=3)
    monkeypatch.setattr(cd, "SPLIT_PLACEHOLDERS", {})
    before = split_faces(full)
    gone = 37
    keep = full.image != gone
    kept_names = [n for i, n in enumerate(names) if i != gone]
    reduced = _faceset(len(kept_names), names=kept_names)
    reduced.labels = full.labels[keep]
    reduced.source = full.source[keep]
    label = [CLASSES[int(v)] for v in full.labels[full.image == gone]]
    monkeypatch.setattr(cd, "SPLIT_PLACEHOLDERS", {"ilc": ((names[gone][:4], tuple(label)),)})
    assert np.array_equal(split_faces(reduced), before[keep])
    monkeypatch.setattr(cd, "SPLIT_PLACEHOLDERS", {})
    assert not np.array_equal(split_faces(reduced), before[keep])


def test_label_fixes_touch_only_the_training_side(tmp_path):
    from training import label_fixes as lf

    fs = _faceset(3, 2)
    fs.labels = np.array([0, 0, 1, 1, 2, 2])
    key = lambda i: lf.face_key(fs.paths[fs.image[i]], fs.boxes[i], data=tmp_path)
    fixes = tmp_path / "fixes.json"
    fixes.write_text(json.dumps({"faces": [{"key": key(0), "action": "relabel", "label": "no_mask"},
                                           {"key": key(2), "action": "drop"},
                                           {"key": key(4), "action": "relabel", "label": "mask"}]}))
    only = np.array([True, True, True, True, False, False])
    new, drop, checked = lf.apply(fs, fixes, only=only, data=tmp_path)
    # faces 0/1 share a key (same photo, same box) in this toy set, so both are relabelled
    assert new.labels.tolist() == [1, 1, 1, 1, 2, 2] and drop.tolist() == [False, False, True, True, False, False]
    assert fs.labels.tolist() == [0, 0, 1, 1, 2, 2]          # the input is not changed
    assert checked.tolist() == [True, True, False, False, False, False]


def test_a_checked_two_class_mask_is_trained_as_a_plain_mask(tmp_path):
    """A with_mask face of a two-class source means "mask or incorrect" in training, unless its
    label was checked by eye (kept or relabelled in a fixes file); faces of other sources and
    validation faces are left alone."""
    from training import label_fixes as lf
    from training.train_classifier import mask_or_incorrect

    fs = _faceset(4, 1, names=["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    fs.source = np.array(["adi", "mac", "adi", "ilc"])
    fs.labels = np.array([0, 0, 0, 0])
    key = lambda i: lf.face_key(fs.paths[fs.image[i]], fs.boxes[i], data=tmp_path)
    fixes = tmp_path / "fixes.json"
    fixes.write_text(json.dumps({"faces": [{"key": key(0), "action": "keep", "p_incorrect": 0.6},
                                           {"key": key(1), "action": "relabel", "label": "incorrect", "p_incorrect": 0.01},
                                           {"key": key(2), "action": "keep"}]}))
    assert mask_or_incorrect(fs).tolist() == [True, True, True, False]
    new, drop, checked = lf.apply(fs, fixes, only=np.array([True, True, False, True]), data=tmp_path)
    assert new.labels.tolist() == [0, 2, 0, 0] and not drop.any()
    assert mask_or_incorrect(new, checked).tolist() == [False, False, True, False]
    # min_p_incorrect: only the checks of faces an earlier classifier took for `incorrect` count
    new, drop, checked = lf.apply(fs, fixes, data=tmp_path, min_p_incorrect=0.5)
    assert new.labels.tolist() == [0, 0, 0, 0] and checked.tolist() == [True, False, True, False]   # no p: counts


def test_street_checks_name_only_two_class_faces_once():
    """training/street_checks.json: every listed face is a with_mask face of a two-class source,
    listed once, on one side; the actions and labels are known ones."""
    from training.evaluate_views import STREET_CHECKS

    doc = json.loads(STREET_CHECKS.read_text())
    train, val = [f["key"] for f in doc["faces"]], [f["key"] for f in doc["validation"]]
    assert len(train) > 500 and len(val) > 100
    assert len(set(train)) == len(train) and len(set(val)) == len(val) and not set(train) & set(val)
    folders = tuple(f"scenes/{cd.SCENE_FOLDERS[s]}/" for s in cd.TWO_CLASS_SOURCES)
    assert all(k.startswith(folders) for k in train + val)
    assert {f["action"] for f in doc["faces"]} <= {"keep", "relabel", "drop"}
    assert {f["label"] for f in doc["faces"] if f["action"] == "relabel"} <= set(CLASSES)
    assert {f["label"] for f in doc["validation"]} <= {"mask", "incorrect"}


def test_street_scores_rates():
    from training.evaluate_views import street_scores

    y = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 2, 1, 0, 1, 0, 2])
    r = street_scores(y, pred)
    assert r["confusion_matrix"] == [[2, 1, 1], [1, 1, 0], [0, 0, 1]]
    assert (r["mask_as_incorrect"], r["mask_as_no_mask"], r["no_mask_as_mask"], r["no_mask_as_incorrect"]) == (0.25, 0.25, 0.5, 0.0)


def test_views_rescale_to_the_target_median(tmp_path, monkeypatch):
    """The small view puts the median face side at 21 px; the degraded one is seeded."""
    import cv2
    from training import views as tv

    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        p = tmp_path / f"{k}.jpg"
        cv2.imwrite(str(p), (rng.random((200, 300, 3)) * 255).astype(np.uint8))
        paths.append(str(p))
    sides = np.array([40, 60, 80, 50, 70, 90], np.float32)
    boxes = np.stack([np.array([20, 20, 20 + s, 20 + s], np.float32) for s in sides])
    fs = cd.FaceSet(source=np.array(["ilc"] * 6), image=np.repeat(np.arange(3), 2),
                    labels=np.zeros(6, np.int64), boxes=boxes, size=sides, group=np.repeat(np.arange(3), 2),
                    context=np.zeros((6, 4, 4, 3), np.uint8), ctx_boxes=boxes, paths=paths)
    f = tv.small_factor(fs.size)
    assert f == pytest.approx(21 / 65)
    x, size = tv.view_crops(fs, np.arange(6), ClassifierConfig(), "small", f)
    assert np.median(size) == pytest.approx(21, abs=0.5) and x.shape == (6, 3, 64, 64)
    d1, _ = tv.view_crops(fs, np.arange(6), ClassifierConfig(), "degraded", f)
    d2, _ = tv.view_crops(fs, np.arange(6), ClassifierConfig(), "degraded", f)
    assert torch.equal(d1, d2) and not torch.equal(d1, x)
    rep = tv.view_report(np.zeros(6, np.int64), np.zeros(6, np.int64), size)
    assert sum(b["n_faces"] for b in rep["by_face_size"].values()) == 6


def test_cleanlab_ranks_a_flipped_label_first_and_subset_keeps_paths():
    """training.label_issues.find_issues (cleanlab) on out-of-fold probabilities: a face whose
    given label the probabilities contradict is found, clean ones are not."""
    from training.label_issues import find_issues, subset

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    probs = np.full((120, 3), 0.05)
    probs[np.arange(120), labels] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    probs /= probs.sum(1, keepdims=True)
    noisy = labels.copy()
    noisy[[5, 50, 90]] = [1, 2, 0]                 # one wrong label in each class
    issues = find_issues(noisy, probs)
    assert set(issues.tolist()) == {5, 50, 90}
    fs = _faceset(4, 2)
    sub = subset(fs, np.array([1, 4, 7]))
    assert len(sub) == 3 and sub.paths == fs.paths and sub.image.tolist() == [0, 2, 3]
