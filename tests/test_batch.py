"""Batched video path (pipeline.engine.batched): same detections as the per-frame path, on CPU."""
import numpy as np
import pytest
import torch

from benchmarks.frames import group_photos
from pipeline.engine.batched import BatchLimits, detect_batch
from pipeline.engine.boxes import batched_greedy_nms, nms
from pipeline.engine.config import DetectorConfig
from pipeline.engine.crops import crop_and_resize, crop_and_resize_batch
from pipeline.engine.cascade import cross_level_nms_is_noop


def _same(want, got):
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert len(w) == len(g)
        for a, b in zip(w, g):
            assert np.allclose(a.box, b.box, atol=1e-3), (a.box, b.box)
            assert abs(a.score - b.score) < 1e-4
            assert np.allclose(a.landmarks, b.landmarks, atol=1e-3)
            assert a.label == b.label
            assert max(abs(x[1] - y[1]) for x, y in zip(a.probs, b.probs)) < 1e-4


@pytest.fixture(scope="module")
def frames():
    return [f for _, f in group_photos(640, 480, n_crowd=3)][:5]


def test_batched_nms_is_greedy_nms_per_row():
    rng = np.random.default_rng(1)
    for mode, thr in (("union", 0.5), ("union", 0.7), ("min", 0.7)):
        b, n = 4, 120
        xy = rng.uniform(0, 200, (b, n, 2))
        wh = rng.uniform(8, 60, (b, n, 2))
        boxes = torch.tensor(np.concatenate([xy, xy + wh], -1), dtype=torch.float32)
        scores = torch.rand(b, n)
        valid = torch.rand(b, n) > 0.2
        order = torch.sort(torch.where(valid, scores, -1.0), dim=1, descending=True, stable=True).indices
        sb = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
        sv = torch.gather(valid, 1, order)
        keep, conv = batched_greedy_nms(sb, sv, thr, rounds=n, mode=mode)
        assert bool(conv.all())
        for i in range(b):
            vi = torch.nonzero(valid[i]).flatten()
            want = vi[nms(boxes[i][vi], scores[i][vi], thr, mode)]
            got = order[i][keep[i]]
            assert torch.equal(got, want)


def test_cross_level_nms_provably_noop_with_defaults(engine, frames):
    from pipeline.engine.crops import area_pyramid
    from pipeline.engine.cascade import pyramid_scales, pyramid_sizes
    assert cross_level_nms_is_noop(DetectorConfig())
    assert cross_level_nms_is_noop(DetectorConfig(min_face=40))
    assert not cross_level_nms_is_noop(DetectorConfig(nms_thresholds=(0.5, 0.4, 0.7, 0.7)))
    # and indeed, on real photos, NMS across levels removes nothing
    det, cfg = engine.detector, engine.detector.config
    with torch.inference_mode():
        for f in frames[:3]:
            h, w = f.shape[:2]
            scales = pyramid_scales(h, w, cfg)
            found = [det.level_candidates(lv, s, cfg) for s, lv in
                     zip(scales, area_pyramid(f, pyramid_sizes(h, w, scales)))]
            boxes, scores = torch.cat([x[0] for x in found]), torch.cat([x[1] for x in found])
            assert len(nms(boxes, scores, cfg.nms_thresholds[1])) == len(boxes) > 100


def test_crop_and_resize_batch_equals_crop_and_resize(frames):
    imgs = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() for f in frames[:3]])
    boxes = [torch.tensor([[10., 20, 60, 80], [100, 100, 400, 380]]),     # k = 4 (big box)
             torch.tensor([[200., 150, 260, 215]]),                          # k = 1
             torch.tensor([[-20., -10, 90, 100], [300, 200, 380, 290], [500, 400, 700, 600]])]
    want = torch.cat([crop_and_resize(imgs[i:i + 1], b, 64) for i, b in enumerate(boxes)])
    ks = [min(max(1, int(np.ceil(float((b[:, 2:] - b[:, :2]).max()) / 64))), 4) for b in boxes]
    index = torch.cat([torch.full((len(b),), i) for i, b in enumerate(boxes)])
    got = crop_and_resize_batch(imgs, torch.cat(boxes), index, 64, ks)
    assert torch.allclose(got, want, atol=1e-3)


def test_detect_batch_equals_per_frame(engine, frames):
    from pipeline.engine import batched as batch
    want = [engine.detect(f) for f in frames]
    assert sum(map(len, want)) >= 10
    batch._CAPS.clear()
    _same(want, detect_batch(engine, frames, batch_size=3))   # 2nd batch sized from the 1st
    assert len(batch._CAPS) == 2                               # the main and the small-face pass
    for caps in batch._CAPS.values():
        assert caps["rnet"] <= BatchLimits().rnet_cap and caps["rnet"] % 64 == 0
    _same(want, detect_batch(engine, frames, batch_size=2))


def test_mixed_sizes_and_tiny_limits_still_exact(engine, frames):
    """Frames over the caps (or whose NMS needs more rounds) are redone per frame."""
    mixed = frames[:2] + [frames[2][:360, :500].copy()]
    want = [engine.detect(f) for f in mixed]
    got = detect_batch(engine, mixed, limits=BatchLimits(level_cap=40, rnet_cap=30, onet_cap=4, nms_rounds=1))
    _same(want, got)
    assert detect_batch(engine, []) == []


def test_a_flagged_frame_redoes_only_its_flagged_pass(engine, frames, monkeypatch):
    """The per-frame fallback reruns the main pass without the small-face pass (whose batched
    result is kept unless it was flagged too): no pass runs twice for one frame."""
    det = engine.detector
    calls = []
    cascade, small_faces = det.cascade, det.small_faces
    monkeypatch.setattr(det, "cascade", lambda f, c, *a, **k: calls.append(("cascade", c)) or cascade(f, c, *a, **k))
    monkeypatch.setattr(det, "small_faces", lambda f, c, *a, **k: calls.append(("small", c)) or small_faces(f, c, *a, **k))
    got = detect_batch(engine, frames[:2], limits=BatchLimits(level_cap=40, rnet_cap=30, onet_cap=4, nms_rounds=1))
    assert [n for n, _ in calls].count("cascade") == 2          # both frames' main passes flagged
    assert all(c.small_face_below == 0 for n, c in calls if n == "cascade")
    assert [n for n, _ in calls].count("small") <= 2
    monkeypatch.undo()
    _same([engine.detect(f) for f in frames[:2]], got)


def test_detect_batch_serves_the_auto_detector_frame_by_frame_choice(frames):
    """With "auto", each frame goes through the face detector MaskDetector.detector_for picks for
    it (blocky frames: the camera weights), in batches of frames that share one: the same as
    engine.detect per frame."""
    from pipeline.engine.mask_detector import MaskDetector
    from tests.support.media_util import jpeg_copy
    auto = MaskDetector.load(device="cpu", detector="auto")
    mixed = [frames[0], jpeg_copy(frames[1], 20), frames[2], jpeg_copy(frames[3], 20)]
    assert [auto.detector_for(f) is auto.camera_detector for f in mixed] == [False, True, False, True]
    want = [auto.detect(f) for f in mixed]
    _same(want, detect_batch(auto, mixed, batch_size=4))
    camera_nets = MaskDetector.load(device="cpu", detector="camera")
    _same([camera_nets.detect(f) for f in mixed[1::2]], detect_batch(auto, mixed[1::2]))
