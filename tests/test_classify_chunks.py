"""The classifier's memory stays bounded however many boxes one image has: boxes are cropped and
classified pipeline.engine.classifier.CHUNK at a time, with the same result as one batch of all."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.support.data import DLIB, ROOT
from pipeline.engine import classifier as clf
from pipeline.engine.crops import image_to_tensor
from pipeline.media.images import read_image


def _boxes(n: int, w: int, h: int, seed: int = 0) -> torch.Tensor:
    """n boxes; the first CHUNK small (k = 1 on their own), the rest up to full-image size."""
    g = np.random.default_rng(seed)
    side = np.where(np.arange(n) < clf.CHUNK, g.uniform(20, 60, n), g.uniform(60, min(w, h), n))
    x1, y1 = g.uniform(0, w - side), g.uniform(0, h - side)
    return torch.from_numpy(np.stack([x1, y1, x1 + side, y1 + side], 1).astype(np.float32))


@pytest.fixture(scope="module")
def image():
    return image_to_tensor(read_image(DLIB / "2008_002506.jpg"))


def test_classifier_sees_at_most_chunk_boxes_at_a_time(engine, image, monkeypatch):
    runner = engine.classifier
    net, seen = runner.net, []

    def spy(x):
        seen.append(x.shape[0])
        return net(x)

    monkeypatch.setattr(runner, "net", spy)
    n = 5 * clf.CHUNK + 7
    probs = runner.probabilities(image, _boxes(n, image.shape[3], image.shape[2]))
    assert probs.shape == (n, 3)
    assert sum(seen) == n and max(seen) <= clf.CHUNK, seen


def test_chunked_equals_one_batch(engine, image):
    runner = engine.classifier
    boxes = _boxes(2 * clf.CHUNK + 30, image.shape[3], image.shape[2], seed=1)
    with torch.inference_mode():
        one = clf.calibrated_probs(runner.net(clf.face_crops(image, boxes, runner.config)), runner.config).numpy()
    chunked = runner.probabilities(image, boxes)
    np.testing.assert_allclose(chunked, one, atol=1e-5)
    assert (chunked.argmax(1) == one.argmax(1)).all()


RSS_PROBE = r'''
import json, resource, sys
import numpy as np, torch
from pipeline.engine.mask_detector import MaskDetector
from pipeline.media.images import read_image
torch.set_num_threads(1)
engine = MaskDetector.load(device="cpu")
image = read_image(sys.argv[1])
h, w = image.shape[:2]
big = [[0, 0, w, h]]                  # supersampling x4: the costliest crop
engine.classify(image, big * 8)       # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
engine.classify(image, big * int(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_mb": (after - before) / 1024}))
'''


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_boxes_of_one_image():
    """600 full-image boxes: in one batch their 256x256 sampling grids and crops alone take
    about 0.8 GB; in chunks of CHUNK the peak grows by a fraction of that."""
    p = subprocess.run([sys.executable, "-c", RSS_PROBE, str(DLIB / "2008_002506.jpg"), "600"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    grew = json.loads(p.stdout.strip().splitlines()[-1])["grew_mb"]
    assert grew < 400, f"peak RSS grew by {grew:.0f} MB for 600 boxes"
