"""One cascade: the per-frame, batched and webcam drivers share the nets' one definition, the
stage arithmetic and the box/crop helpers; no pipeline module imports another's private names."""
import ast
from pathlib import Path

import numpy as np
import torch

from benchmarks.frames import group_photos
from pipeline.engine.boxes import calibrate_boxes, pairwise_iou, square_boxes
from pipeline.engine.crops import area_pyramid, image_to_tensor, integral_image
from pipeline.engine.cascade import onet_landmarks, pnet_strip, pnet_windows
from pipeline.engine.nets import ONet, PNet, RNet, inference_form, normalize

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"


def test_no_pipeline_module_imports_private_names():
    bad = []
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                bad += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" \
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and str(node.args[1].value).startswith("_"):
                bad.append(f"{path.name}: getattr(.., {node.args[1].value!r})")
    assert not bad, bad


def test_inference_form_is_derived_from_the_module():
    """Any weights (here random, PReLU slopes included): the fast form on raw pixels computes
    the module's forward on normalised pixels, and follows the module when it changes."""
    torch.manual_seed(3)
    for net, side in ((PNet(), 37), (RNet(), 24), (ONet(), 48)):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        x = torch.rand(5, 3, side, side) * 255
        with torch.inference_mode():
            fast = inference_form(net, "cpu", chunk=2)
            want = net(normalize(x))
            got = fast(x)
            for a, b in zip(got, want):
                assert torch.allclose(a, b, atol=1e-4), type(net).__name__
            if isinstance(net, PNet):                    # raw: offsets then logits, one map
                raw = fast.raw(x)
                assert raw.shape[1] == 6 and torch.allclose(raw[:, :4], want[0], atol=1e-4)
        with torch.no_grad():
            net.conv1.bias.add_(1.0)
        with torch.inference_mode():
            assert not torch.allclose(inference_form(net, "cpu")(x)[-1], fast(x)[-1])


def test_box_and_stage_arithmetic_takes_batches():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(3, 7, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(3, 7, 2, generator=g) * 40], -1)
    offsets = torch.randn(3, 7, 4, generator=g) * 0.1
    points = torch.rand(3, 7, 10, generator=g)
    iou = pairwise_iou(boxes, boxes, "min")
    for i in range(3):
        assert torch.equal(iou[i], pairwise_iou(boxes[i], boxes[i], "min"))
        assert torch.equal(calibrate_boxes(boxes, offsets)[i], calibrate_boxes(boxes[i], offsets[i]))
        assert torch.equal(square_boxes(boxes)[i], square_boxes(boxes[i]))
        assert torch.equal(onet_landmarks(boxes, points)[i], onet_landmarks(boxes[i], points[i]))
    # P-Net cell (2, 1) at scale 0.5: window x 2*2+1 .. 2*2+12 -> /0.5, floored
    assert pnet_windows(torch.tensor([[2.0, 1.0]]), 0.5).tolist() == [[10, 6, 32, 28]]
    assert pnet_strip(5, 12, 100) == (10, 34) and pnet_strip(0, 50, 60) == (0, 60)


def test_batched_images_equal_one_at_a_time():
    frames = [f for _, f in group_photos(160, 120, n_crowd=2)][:2]
    stack = np.stack(frames)
    ii = integral_image(stack)
    sizes = [(60, 80), (17, 23)]
    levels = area_pyramid(stack, sizes, integral=ii)
    t = image_to_tensor(stack)
    assert t.shape == (2, 3, 120, 160)
    for k, f in enumerate(frames):
        assert torch.equal(ii[k], integral_image(f))
        assert torch.equal(t[k:k + 1], image_to_tensor(f))
        for lv, one in zip(levels, area_pyramid(f, sizes)):
            assert torch.equal(lv[k:k + 1], one)
