"""Accuracy floor of the released classifier on a fixed validation sample: the held-out ILC
images (tests/data/ilc_val_images.txt, the group-aware split of training.splits), classified
on their hand-drawn boxes through the engine, as `python -m pipeline classify` does."""
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.data import DATA
from pipeline.media.images import read_image
from pipeline.records import CLASSES
from training.metrics import evaluate, majority_baseline

LABELS = {"with_mask": "mask", "without_mask": "no_mask", "with_incorrect_mask": "incorrect",
          "mask_weared_incorrect": "incorrect"}
ILC = DATA / "scenes" / "ilc2021"


def val_faces():
    names = [l.strip() for l in (Path(__file__).parent / "data" / "ilc_val_images.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    for name in names:
        root = ET.parse(ILC / "annotations" / (Path(name).stem + ".xml")).getroot()
        boxes, labels = [], []
        for o in root.iter("object"):
            bb = o.find("bndbox")
            boxes.append([float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(CLASSES.index(LABELS[o.find("name").text.strip()]))
        yield ILC / "images" / name, boxes, labels


def test_classifier_floor_on_held_out_faces(engine):
    y_true, y_pred = [], []
    for path, boxes, labels in val_faces():
        faces = engine.classify(read_image(path), boxes)
        assert len(faces) == len(boxes)
        y_true += labels
        y_pred += [CLASSES.index(f.label) for f in faces]
    m, base = evaluate(y_true, y_pred), majority_baseline(y_true)
    assert m["n"] >= 700
    # floors a little under the released weights' measured figures (model card), far above
    # the majority class (binary 0.50, macro-F1 0.22)
    assert m["binary_accuracy"] >= 0.86, m
    assert m["macro_f1"] >= 0.75, m
    # the decision rule trades `incorrect` recall for precision at the target's 3% share
    # (training.calibrate; model card: 87.8% / 49.4% on these faces, with the rule)
    assert m["per_class"]["incorrect"]["recall"] >= 0.45, m
    assert m["per_class"]["incorrect"]["precision"] >= 0.8, m
    assert m["binary_accuracy"] > base["binary_accuracy"] + 0.3


@pytest.mark.slow
def test_the_released_rule_is_fitted_again_from_the_released_weights():
    """training.evaluate_views.fit_rule (the rebuild's calibration step) on the released
    classifier gives the temperature and `incorrect` rule stored in its config.json."""
    from pipeline.engine.weights import load_net
    from training.evaluate_views import fit_rule
    from training.paths import WEIGHTS

    config = load_net("classifier", WEIGHTS).config
    fit = fit_rule(WEIGHTS)
    assert fit["temperature"] == pytest.approx(config.temperature, abs=1e-3)
    assert tuple(round(b, 3) for b in fit["logit_bias"]) == config.logit_bias
