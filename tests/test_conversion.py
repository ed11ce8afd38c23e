"""The conversion is right: our nets with converted weights equal the original nets with the
original weights (Caffe-order dense layers), and the optimised detector finds the same faces
as the original algorithm on real photos.

The converted weights come from training.convert_mtcnn.convert into a temporary folder (the
`detector_nets` fixture), not from weights/, which may hold fine-tuned detector weights."""
import cv2
import numpy as np
import pytest
import torch

from tests.support import reference_mtcnn as ref
from tests.support.data import DLIB
from pipeline.engine.boxes import pairwise_iou
from pipeline.engine.config import REFERENCE_THRESHOLDS, DetectorConfig
from pipeline.engine.cascade import FaceDetector
from training.convert_mtcnn import caffe_dense_to_torch


def test_dense_reorder_matches_permuted_flatten():
    c, h, w = 4, 3, 2
    feat = torch.randn(1, c, h, w)
    weight = torch.randn(5, c * h * w)
    caffe = feat.permute(0, 3, 2, 1).reshape(1, -1) @ weight.T
    ours = feat.reshape(1, -1) @ caffe_dense_to_torch(weight, (c, h, w)).T
    assert torch.allclose(caffe, ours, atol=1e-5)


def test_nets_match_original(detector_nets, original_weights):
    torch.manual_seed(0)
    x24, x48, x = torch.randn(8, 3, 24, 24), torch.randn(8, 3, 48, 48), torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        a, b = detector_nets["pnet"](x)
        ra, rb = ref.pnet(original_weights["pnet"], x)
        assert torch.allclose(a, ra, atol=1e-5) and torch.allclose(b, rb[:, 1], atol=1e-5)
        a, b = detector_nets["rnet"](x24)
        ra, rb = ref.rnet(original_weights["rnet"], x24)
        assert torch.allclose(a, ra, atol=1e-5) and torch.allclose(b, rb[:, 1], atol=1e-5)
        a, l, b = detector_nets["onet"](x48)
        ra, rl, rb = ref.onet(original_weights["onet"], x48)
        assert torch.allclose(a, ra, atol=1e-5) and torch.allclose(l, rl, atol=1e-5)
        assert torch.allclose(b, rb[:, 1], atol=1e-5)


@pytest.mark.parametrize("name", ["2008_002506.jpg", "2009_004587.jpg", "2007_007763.jpg"])
def test_detector_matches_original_algorithm(detector_nets, original_weights, name):
    img = cv2.cvtColor(cv2.imread(str(DLIB / name)), cv2.COLOR_BGR2RGB)
    rb, rs, rl = ref.detect(img, original_weights)
    faces = FaceDetector(detector_nets["pnet"], detector_nets["rnet"], detector_nets["onet"],
                         DetectorConfig(min_face=20.0, thresholds=REFERENCE_THRESHOLDS)).detect(img)
    assert len(rb) >= 2
    iou = pairwise_iou(torch.tensor(rb).float(), torch.tensor(faces.boxes))
    # every original face is found again, tightly, and we add nothing confident beyond them
    best = iou.max(dim=1)
    assert float(best.values.min()) >= 0.8, best.values
    assert abs(len(faces) - len(rb)) <= max(1, len(rb) // 10)
    # landmarks agree to within a few percent of the face size
    lm_err = np.abs(faces.landmarks[best.indices.numpy()] - rl).max(axis=(1, 2))
    side = rb[:, 2] - rb[:, 0]
    assert np.all(lm_err <= 0.12 * side), lm_err / side
