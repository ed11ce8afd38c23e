"""Each net's output shapes, and that nothing in __init__ touches files."""
import torch

from pipeline.engine.config import ClassifierConfig
from pipeline.engine.nets import MaskClassifier, ONet, PNet, RNet


def test_pnet_is_fully_convolutional():
    reg, prob = PNet()(torch.zeros(2, 3, 12, 12))
    assert reg.shape == (2, 4, 1, 1) and prob.shape == (2, 1, 1)
    reg, prob = PNet()(torch.zeros(1, 3, 100, 60))
    assert reg.shape == (1, 4, 45, 25) and prob.shape == (1, 45, 25)
    assert torch.all((prob >= 0) & (prob <= 1))


def test_rnet_onet_shapes():
    reg, prob = RNet()(torch.zeros(5, 3, 24, 24))
    assert reg.shape == (5, 4) and prob.shape == (5,)
    reg, lm, prob = ONet()(torch.zeros(3, 3, 48, 48))
    assert reg.shape == (3, 4) and lm.shape == (3, 10) and prob.shape == (3,)


def test_classifier_shape_and_size():
    net = MaskClassifier().eval()
    assert net(torch.zeros(4, 3, 64, 64)).shape == (4, 3)
    params = sum(p.numel() for p in net.parameters())
    assert params * 4 < 1_000_000, "classifier must stay under 1 MB of float32 weights"
    small = MaskClassifier(ClassifierConfig(channels=(8, 16), hidden=8, crop_size=32)).eval()
    assert small(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_committed_weights_under_3mb_per_engine_and_the_report_cap_in_all():
    """An engine loads one detector weight set and the classifier: at most 3 MB. The release
    holds both detector sets (the camera set's growth is its measured gain on degraded frames,
    weights/metrics.json): under the report's 8.8 MB in all."""
    import json
    from pathlib import Path

    from pipeline.engine.config import DETECTOR_WEIGHTS
    from pipeline.engine.weights import required_files
    manifest = json.loads((Path(__file__).parents[1] / "weights" / "manifest.json").read_text())["files"]
    for detector in DETECTOR_WEIGHTS:
        loaded = [rel for rel in required_files(detector=detector) if rel.endswith(".safetensors")]
        assert sum(manifest[rel]["size"] for rel in loaded) <= 3_000_000, detector
    total = sum(v["size"] for k, v in manifest.items() if k.endswith(".safetensors"))
    assert total <= 8_800_000, total
