"""Webcam mode (pipeline.engine.temporal): same faces as full detection on every frame, within 2%
recall, on a moving-face clip made from a real group photo; labels smoothed; drop-in API."""
import numpy as np
import pytest
import torch

from benchmarks.frames import moving_clip
from pipeline.engine.boxes import pairwise_iou
from pipeline.engine.temporal import RealtimeConfig, RealtimeMaskDetector, realtime_frame_detector


def _recall(dets, truth) -> tuple[int, int]:
    found = total = 0
    for d, t in zip(dets, truth):
        total += len(t)
        if len(t) and len(d):
            iou = pairwise_iou(torch.as_tensor(np.asarray(t, np.float32)),
                               torch.as_tensor(np.asarray(d, np.float32).reshape(-1, 4)))
            found += int((iou.max(dim=1).values >= 0.5).sum())
    return found, total


@pytest.fixture(scope="module")
def clip():
    return moving_clip(n_frames=90, with_boxes=True)


def test_recall_within_2_percent_of_full_detection_every_frame(engine, clip):
    frames, truth = clip
    full = [[d.box for d in engine.detect(f, classify=False)] for f in frames]
    rt = RealtimeMaskDetector(engine)
    live = [[d.box for d in rt.process(f, i / 30)] for i, f in enumerate(frames)]
    f_found, total = _recall(full, truth)
    r_found, _ = _recall(live, truth)
    assert total > 300
    assert r_found / total >= f_found / total - 0.02, (r_found, f_found, total, rt.stats)
    # and it really reused work: one full detection, the rest refined / searched in pieces
    assert rt.stats["full"] == 1 and rt.stats["frames"] == len(frames)


def test_first_frame_is_the_full_detection(engine, clip):
    frame = clip[0][0]
    rt = RealtimeMaskDetector(engine)
    got = rt.process(frame, 0.0, classify=False)
    want = engine.detect(frame, classify=False)
    assert len(got) == len(want) > 0
    assert np.allclose(sorted(d.box for d in got), sorted(d.box for d in want), atol=1e-3)


def test_labels_are_an_ema_of_classifications(engine, clip, monkeypatch):
    frame = clip[0][0]
    calls = {"k": 0}

    def glitchy(image, boxes):
        """mask, mask, no_mask, mask, mask, no_mask, ...: a one-frame wrong label every third frame"""
        calls["k"] += 1
        p = np.zeros((len(boxes), 3), np.float32)
        p[:, 1 if calls["k"] % 3 == 0 else 0] = 1.0
        return p

    monkeypatch.setattr(engine.classifier, "probabilities", glitchy)
    rt = RealtimeMaskDetector(engine, RealtimeConfig(classify_every=1, ema=0.3))
    labels, expect = [], None
    for i in range(9):
        dets = rt.process(frame, i / 30)
        assert dets and all(abs(sum(d.prob_dict.values()) - 1) < 1e-5 for d in dets)
        raw = 0.0 if (i + 1) % 3 == 0 else 1.0
        expect = raw if expect is None else 0.3 * raw + 0.7 * expect
        labels.append(dets[0].label)
        assert abs(dets[0].prob_dict["mask"] - expect) < 1e-5
    assert labels == ["mask"] * 9          # the raw label flipped on frames 3, 6 and 9


def test_no_faces_and_reset(engine):
    rt = RealtimeMaskDetector(engine)
    black = np.zeros((480, 640, 3), np.uint8)
    for i in range(5):
        assert rt.process(black, i / 30) == []
    rt.reset()
    assert rt.frame_no == 0 and rt.tracks == []


def test_drop_in_reads_webcam_settings(engine, clip):
    from types import SimpleNamespace
    frames, _ = clip
    settings = SimpleNamespace(min_face=40.0, onet_threshold=0.7, detect_side=320, threads=1,
                               classify=True)
    detect = realtime_frame_detector(engine, settings)
    dets = [detect(f) for f in frames[:5]]
    assert all(d and all(x.label for x in d) for d in dets)
    # detected on a 320-px copy, boxes come back in full-frame pixels
    assert max(x.box[2] for d in dets for x in d) > 330
    assert detect.realtime.config.detect_side == 320
