"""The small-face pass (DetectorConfig.small_face_below): faces under 20 px found by a second
pass over the finer pyramid levels, added only where the main pass found nothing."""
import numpy as np
import pytest
import torch
import cv2

from pipeline.engine.boxes import pairwise_iou
from pipeline.engine.cascade import (add_small_faces, main_pass_config, pyramid_scales, small_face_config,
                                     small_face_scales)
from pipeline.engine.config import DetectorConfig
from pipeline.media.images import read_image
from tests.support.data import DLIB, dlib_boxes


def _faces(boxes, scores):
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return b, torch.tensor(scores, dtype=torch.float32), torch.zeros((len(b), 5, 2))


def test_add_small_faces_keeps_only_new_small_faces_ranked_last():
    cfg = DetectorConfig()
    main = _faces([[100, 100, 150, 150], [300, 300, 318, 318]], [0.99, 0.8])
    small = _faces([[10, 10, 25, 25],        # new, 15 px: kept
                    [110, 110, 125, 125],    # inside a main face (a part of it): dropped
                    [302, 302, 319, 319],    # the same face as a main one: dropped
                    [400, 10, 430, 40]],     # 30 px: the main pass's to find, dropped
                   [0.95, 0.99, 0.99, 0.99])
    boxes, scores, landmarks = add_small_faces(main, small, cfg)
    assert boxes.tolist() == main[0].tolist() + [[10, 10, 25, 25]]
    assert scores[:2].tolist() == main[1].tolist()
    assert scores[2] == pytest.approx(0.95 * cfg.thresholds[2]) and scores[2] < scores[:2].min()
    assert landmarks.shape == (3, 5, 2)
    # no main face: every small one under small_face_below is kept
    none = _faces([], [])
    assert len(add_small_faces(none, small, cfg)[0]) == 3


def test_the_pass_runs_only_below_small_face_below():
    cfg = DetectorConfig()
    assert cfg.min_face < cfg.small_face_below
    first = pyramid_scales(480, 640, cfg)[0]
    assert first == pytest.approx(12 / cfg.small_face_below)
    fine = small_face_scales(480, 640, cfg)
    assert fine == [pytest.approx(12 / cfg.min_face)]           # one step finer than the main pyramid at least
    assert all(s >= first / cfg.scale_factor for s in fine)
    assert len(small_face_scales(480, 640, DetectorConfig(min_face=8.0))) == 2
    for off in (DetectorConfig(min_face=20.0), DetectorConfig(min_face=40.0), DetectorConfig(small_face_below=0.0)):
        assert small_face_config(off) is None and small_face_scales(480, 640, off) == []
        assert pyramid_scales(480, 640, off)[0] == pytest.approx(12 / off.min_face)
    plain = main_pass_config(cfg)
    assert small_face_config(plain) is None and pyramid_scales(480, 640, plain) == pyramid_scales(480, 640, cfg)
    own = main_pass_config(cfg, min_face=15)                      # a stream's own smallest face, as given
    assert (own.min_face, own.small_face_below) == (15.0, 0.0) and small_face_config(own) is None
    assert pyramid_scales(480, 640, own)[0] == pytest.approx(12 / 15)


def test_the_pass_finds_small_faces_the_main_pass_misses(engine):
    """dlib's group photo shrunk to a 14 px median face: the main pass's faces are kept as they
    are, and the pass adds real faces (on a boxed face), ranked after them."""
    det = engine.detector
    gt = np.array(dlib_boxes()["2008_002079.jpg"], np.float32)
    img = read_image(DLIB / "2008_002079.jpg")
    f = 14 / np.median(np.minimum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]))
    small = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)
    gt = gt * np.array([small.shape[1] / img.shape[1], small.shape[0] / img.shape[0]] * 2, np.float32)
    both = det.detect(small)
    main = det.detect(small, main_pass_config(det.config))
    n = len(main)
    assert len(both) >= n + 2
    assert np.array_equal(both.boxes[:n], main.boxes) and np.array_equal(both.scores[:n], main.scores)
    added = both.boxes[n:]
    assert (np.minimum(added[:, 2] - added[:, 0], added[:, 3] - added[:, 1]) < det.config.small_face_below).all()
    assert (both.scores[n:] <= det.config.thresholds[2]).all()
    iou = pairwise_iou(torch.tensor(added), torch.tensor(gt)).max(dim=1).values
    assert (iou >= 0.3).all(), iou


def test_small_face_benchmark_compares_the_two_configs(tmp_path):
    from benchmarks.small_faces import main
    res = main(["--frames", "3", "--repeats", "1", "--out", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").exists()
    for r in res["sets"].values():
        assert r["frames"] == 3 and r["faces"]["with_pass"] >= r["faces"]["main_pass"]
        assert r["median_ratio"] > 1.0          # the pass is extra work: skipped, it would be ~1
