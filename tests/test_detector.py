"""Detector recall on the boxed faces of dlib's example photos."""
import numpy as np
import torch

from tests.support.data import DLIB, dlib_boxes
from pipeline.engine.boxes import pairwise_iou
from pipeline.media.images import read_image


def test_detector_finds_90_percent_of_dlib_faces(engine):
    found = total = 0
    for name, gt in dlib_boxes().items():
        if not gt:
            continue
        faces = engine.detect(read_image(DLIB / name), classify=False)
        total += len(gt)
        if faces:
            iou = pairwise_iou(torch.tensor(gt), torch.tensor([f.box for f in faces]))
            found += int((iou.max(dim=1).values >= 0.4).sum())
    assert total >= 40
    assert found / total >= 0.90, f"recall {found}/{total}"


def test_no_faces_in_a_photo_of_dogs(engine):
    assert len(engine.detect(read_image(DLIB / "dogs.jpg"))) == 0


def test_detection_fields(engine):
    faces = engine.detect(read_image(DLIB / "2008_002506.jpg"))
    assert len(faces) == 3
    for f in faces:
        assert len(f.landmarks) == 5 and f.label in ("mask", "no_mask", "incorrect")
        assert abs(sum(f.prob_dict.values()) - 1) < 1e-4 and 0.7 < f.score <= 1
        x1, y1, x2, y2 = f.box
        # landmarks inside (or near) their face
        lm = np.array(f.landmarks)
        assert np.all((lm[:, 0] > x1 - 5) & (lm[:, 0] < x2 + 5) & (lm[:, 1] > y1 - 5) & (lm[:, 1] < y2 + 5))


def test_with_config_replaces_only_the_onet_threshold(engine):
    base = engine.detector.config
    cfg = engine.with_config(min_face=30, onet_threshold=0.9)
    assert cfg.thresholds == (*base.thresholds[:2], 0.9) and cfg.min_face == 30
    assert engine.with_config() == base and engine.with_config(onet_threshold=None) == base
