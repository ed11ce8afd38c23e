"""The speed work computes the same things: exact area pyramid and crops (as the reference's
F.interpolate(mode="area")), P-Net on strips == on the whole level, the fast nets == the
modules, split-across-workers detection == single-threaded, classifier crops unchanged."""
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.frames import group_photos
from pipeline.engine.crops import area_crops, area_pyramid, crop_and_resize, integral_image
from pipeline.engine.nets import normalize


def _frame():
    return group_photos(640, 480, n_crowd=1)[0][1]


def test_area_pyramid_equals_reference_interpolation():
    img = _frame()
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    sizes = [(289, 385), (103, 137), (14, 18), (480, 640)]
    for size, level in zip(sizes, area_pyramid(img, sizes)):
        assert torch.allclose(level, F.interpolate(t, size=size, mode="area"), atol=1e-3)
    strip = area_pyramid(img, [(289, 385)], rows=[(40, 90)])[0]
    assert torch.allclose(strip, F.interpolate(t, size=(289, 385), mode="area")[:, :, 40:90], atol=1e-3)


def test_area_crops_equal_reference_crops():
    img = _frame()
    h, w = img.shape[:2]
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    boxes = torch.tensor([[10.7, 20.2, 60.9, 70.4], [-15., 400, 50, 470], [600, -3, 700, 90], [300, 200, 305, 206]])
    got = area_crops(integral_image(img), boxes, 24)
    for b, g in zip(boxes, got):       # facenet-pytorch detect_face: pad() then imresample()
        x, y, ex, ey = (int(v) for v in b.trunc())
        x, y, ex, ey = max(x, 1), max(y, 1), min(ex, w), min(ey, h)
        want = F.interpolate(t[:, :, y - 1:ey, x - 1:ex], size=(24, 24), mode="area")[0]
        assert torch.allclose(g, want, atol=1e-3)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_fast_nets_equal_modules(detector_nets):
    from pipeline.engine.cascade import FaceDetector
    det = FaceDetector(detector_nets["pnet"], detector_nets["rnet"], detector_nets["onet"])
    torch.manual_seed(0)
    with torch.inference_mode():
        x = torch.rand(2, 3, 50, 70) * 255
        out = det.fast.pnet.raw(x)
        reg, prob = detector_nets["pnet"](normalize(x))
        assert torch.allclose(out[:, :4], reg, atol=1e-4)
        assert torch.allclose(torch.softmax(out[:, 4:], 1)[:, 1], prob, atol=1e-5)
        # a strip of the level (2 * row0 .. 2 * row1 + 10) gives exactly those output rows
        strip = det.fast.pnet.raw(x[:, :, 2 * 5: 2 * 12 + 10])
        assert torch.allclose(strip, out[:, :, 5:12], atol=1e-5)
        x = torch.rand(150, 3, 24, 24) * 255      # > one chunk
        a, b = det.fast.rnet(x)
        ra, rb = detector_nets["rnet"](normalize(x))
        assert torch.allclose(a, ra, atol=1e-4) and torch.allclose(b, rb, atol=1e-5)
        x = torch.rand(9, 3, 48, 48) * 255
        a, lm, b = det.fast.onet(x)
        ra, rl, rb = detector_nets["onet"](normalize(x))
        assert torch.allclose(a, ra, atol=1e-4) and torch.allclose(lm, rl, atol=1e-4)
        assert torch.allclose(b, rb, atol=1e-5)


def test_workers_give_identical_detections(engine):
    """workers are meant for torch.set_num_threads(1) (FaceDetector's doc); with more intra-op
    threads the single-worker run's matrix products may differ by an ulp, so the test pins it
    (it passed or failed with the order of the tests before)."""
    det = engine.detector
    frames = [f for _, f in group_photos(640, 480, n_crowd=2)][:3]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = [det.detect(f) for f in frames]
        det.workers = 2
        two = [det.detect(f) for f in frames]
    finally:
        det.workers = 1
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
        assert np.array_equal(a.landmarks, b.landmarks)


def test_classifier_crops_values_unchanged_and_channels_last():
    img = torch.from_numpy(_frame()).permute(2, 0, 1)[None].float()
    boxes = torch.tensor([[100., 100, 180, 190], [-20, 300, 60, 400]])
    got = crop_and_resize(img, boxes, 64)
    assert got.is_contiguous(memory_format=torch.channels_last)
    # the original computation, NCHW
    side = float(torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).max())
    k = int(min(max(1, int(np.ceil(side / 64))), 4))
    out = 64 * k
    steps = (torch.arange(out) + 0.5) / out
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    grid = torch.stack([(xs / 640 * 2 - 1)[:, None, :].expand(2, out, out),
                        (ys / 480 * 2 - 1)[:, :, None].expand(2, out, out)], -1)
    want = F.avg_pool2d(F.grid_sample(img.expand(2, -1, -1, -1), grid, align_corners=False), k)
    assert torch.equal(got, want)


def test_speed_benchmark_can_time_the_original_weights():
    from benchmarks.speed import load_engine
    from pipeline.engine.config import REFERENCE_THRESHOLDS
    released, original = load_engine("cpu"), load_engine("cpu", "original")
    assert original.detector.config.thresholds == REFERENCE_THRESHOLDS
    assert original.classifier is not None and original.source == released.source   # + our classifier
    ours, orig = released.detector.rnet.state_dict(), original.detector.rnet.state_dict()
    assert ours.keys() == orig.keys()
    assert not all(torch.equal(ours[k], orig[k]) for k in ours)     # the original R-Net, not ours
