"""Detector fine-tuning pieces: the AP metric, sample categories and targets, mask synthesis,
the multi-task loss with OHEM, and a tiny training run. Fast and offline (shared data only)."""
import json
import importlib.util
import math

import numpy as np
import pytest
import torch

from tests.support.data import DATA, DLIB
from pipeline.engine.boxes import calibrate_boxes
from pipeline.engine.nets import ONet, PNet, RNet
from training import detector_samples as ds
from training import mask_synthesis as ms
from training import train_detector as td
from training.evaluate_detector import face_metrics, voc_ap

EVALUATE_PY = DATA.parent / "tools" / "evaluate.py"


# ---------------------------------------------------------------- AP metric


def test_voc_ap_hand_worked():
    gts = {"a": [[0, 0, 10, 10], [20, 20, 30, 30]]}
    dets = [("a", 0.9, [0, 0, 10, 10]), ("a", 0.8, [50, 50, 60, 60]), ("a", 0.7, [20, 20, 30, 30])]
    r = voc_ap(dets, gts)
    # ranks: TP (P 1, R .5), FP (P .5, R .5), TP (P 2/3, R 1) -> AP = .5 * 1 + .5 * 2/3
    assert r["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert r["recall"] == 1.0 and r["precision"] == pytest.approx(2 / 3)
    # a duplicate detection of a matched face is a false positive
    r = voc_ap([("a", 0.9, [0, 0, 10, 10]), ("a", 0.8, [0, 0, 10, 10])], gts)
    assert r["ap"] == pytest.approx(0.5) and r["fp"] == 1 and r["recall"] == 0.5
    # below IoU 0.5: a miss and a false positive
    r = voc_ap([("a", 0.9, [0, 0, 10, 4])], gts)
    assert r["ap"] == 0.0 and r["tp"] == 0


def test_voc_ap_ignored_faces():
    gts = {"a": [[0, 0, 10, 10], [20, 20, 30, 30]]}
    ign = {"a": [False, True]}
    # the detection on the ignored face is dropped, not a false positive; recall over 1 face
    r = voc_ap([("a", 0.9, [20, 20, 30, 30]), ("a", 0.5, [0, 0, 10, 10])], gts, ignore=ign)
    assert r["ap"] == 1.0 and r["npos"] == 1 and r["fp"] == 0
    # det_ignore drops an unmatched detection (outside a size bucket) instead of counting it
    dets = [("a", 0.9, [100, 100, 200, 200]), ("a", 0.5, [0, 0, 10, 10])]
    assert voc_ap(dets, gts, ignore=ign)["ap"] == pytest.approx(0.5)
    assert voc_ap(dets, gts, ignore=ign, det_ignore=[True, False])["ap"] == 1.0


def test_face_metrics_buckets_and_classes():
    gts = {"a": np.array([[0, 0, 15, 15], [20, 0, 45, 25], [50, 0, 150, 100]], float)}
    labels = {"a": ["mask", "no_mask", "mask"]}
    dets = [("a", 0.9, [20, 0, 45, 25]), ("a", 0.8, [50, 0, 150, 100])]
    m = face_metrics(dets, gts, labels)
    assert m["headline"]["ap"] == 1.0 and m["headline"]["npos"] == 2   # the 15 px face is ignored
    assert m["all_faces"]["recall"] == pytest.approx(2 / 3)
    assert m["by_size"]["12-20"]["recall"] == 0.0 and m["by_size"]["12-20"]["npos"] == 1
    assert m["by_size"]["20-32"]["ap"] == 1.0 and m["by_size"][">=64"]["ap"] == 1.0
    assert m["by_size"]["32-64"]["npos"] == 0
    assert m["by_class"]["no_mask"]["ap"] == 1.0 and m["by_class"]["mask"]["npos"] == 1


@pytest.mark.skipif(not EVALUATE_PY.exists(), reason="shared/tools/evaluate.py not present")
def test_voc_ap_matches_release_evaluator():
    spec = importlib.util.spec_from_file_location("release_eval", EVALUATE_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    for _ in range(20):
        gts, ign, dets = {}, {}, []
        for i in range(3):
            xy = rng.uniform(0, 200, (rng.integers(0, 5), 2))
            b = np.concatenate([xy, xy + rng.uniform(8, 60, (len(xy), 1))], 1)
            gts[str(i)] = b.tolist()
            ign[str(i)] = list(rng.random(len(b)) < 0.3)
            for bb in b:
                if rng.random() < 0.7:
                    dets.append((str(i), float(rng.random()), (bb + rng.normal(0, 4, 4)).tolist()))
            for _ in range(rng.integers(0, 3)):
                xy = rng.uniform(0, 200, 2)
                dets.append((str(i), float(rng.random()), [*xy, *(xy + 20)]))
        ours = voc_ap(dets, gts, ignore=ign)
        theirs = mod.voc_ap(dets, gts, ignore=ign)
        assert ours["ap"] == pytest.approx(theirs[0]) and ours["recall"] == pytest.approx(theirs[1])


# ---------------------------------------------------------------- samples


def test_categories_by_iou():
    assert ds.categorize([0.9, 0.65, 0.64, 0.4, 0.39, 0.3, 0.29, 0.0]).tolist() == \
        [ds.POS, ds.POS, ds.PART, ds.PART, 99, 99, ds.NEG, ds.NEG]
    gt = np.array([[0, 0, 10, 10]], float)
    boxes = np.array([[0, 0, 10, 10],      # IoU 1 -> positive
                      [1, 0, 11, 10],      # 90 / 110 = 0.818 -> positive
                      [0, 0, 10, 5],       # 50 / 100 = 0.5 -> part
                      [5, 0, 15, 10],      # 50 / 150 = 0.333 -> unused
                      [8, 8, 18, 18],      # 4 / 196 -> negative
                      [40, 40, 50, 50]])   # 0 -> negative, but in an ignore region
    cat, j = ds.label_boxes(boxes, gt, ignore=np.array([[38, 38, 52, 52]], float))
    assert cat.tolist() == [ds.POS, ds.POS, ds.PART, 99, ds.NEG, 99]
    assert j.tolist() == [0] * 6


def test_random_windows_land_in_their_category():
    gt = np.array([[30, 40, 70, 90], [120, 20, 150, 56]], float)
    ignore = np.array([[160, 100, 190, 130]], float)
    win, cat, j = ds.random_windows(gt, ignore, 200, 150, np.random.default_rng(0), neg=60, near_neg=6,
                                    tries=40, max_pos=5, max_part=5)
    assert (win[:, 2] - win[:, 0] == win[:, 3] - win[:, 1]).all() and (win[:, 2] - win[:, 0] >= 12).all()
    from training.evaluate_detector import box_iou
    o = box_iou(win, gt)
    pos, part, neg = cat == ds.POS, cat == ds.PART, cat == ds.NEG
    assert pos.sum() >= 4 and part.sum() >= 4 and neg.sum() >= 20
    assert (o[pos, j[pos]] >= 0.65).all()
    assert ((o[part, j[part]] >= 0.4) & (o[part, j[part]] < 0.65)).all()
    assert (o[neg].max(1) < 0.3).all() and (box_iou(win[neg], ignore).max(1) < 0.3).all()
    inside = (win[neg, :2] >= 0).all(1) & (win[neg, 2] <= 200) & (win[neg, 3] <= 150)
    assert inside.all()


def test_targets_decode_like_the_detector():
    gt = np.array([[3.0, 5.0, 27.0, 33.0]])
    # P-Net: a 24 px window at (0, 0) is the cell box (2, 2, 24, 24), offsets in units of 22
    box, unit = ds.window_to_box(np.array([[0, 0, 24, 24]]), "pnet")
    assert box.tolist() == [[2, 2, 24, 24]] and unit.tolist() == [22]
    t = ds.regression_targets(box, unit, gt)
    back = calibrate_boxes(torch.tensor(box, dtype=torch.float32), torch.tensor(t), plus_one=False)
    assert np.allclose(back.numpy(), gt, atol=1e-4)
    # R/O-Net: box (10, 10, 33, 33) is cut as pixels 9..33 (24 px) and offsets are in units of 24
    box, unit = ds.window_to_box(np.array([[9, 9, 33, 33]]), "onet")
    assert box.tolist() == [[10, 10, 33, 33]] and unit.tolist() == [24]
    assert ds.box_to_window(box).tolist() == [[9, 9, 33, 33]]
    t = ds.regression_targets(box, unit, gt)
    back = calibrate_boxes(torch.tensor(box, dtype=torch.float32), torch.tensor(t))
    assert np.allclose(back.numpy(), gt, atol=1e-4)
    # landmarks: FaceDetector.output decodes x = unit * p + x1 - 1
    lm = np.array([[[15, 18], [25, 18], [20, 24], [16, 29], [24, 29]]], float)
    p = ds.landmark_targets(box, unit, lm)
    assert np.allclose(unit[0] * p[0, :5] + box[0, 0] - 1, lm[0, :, 0])
    assert np.allclose(unit[0] * p[0, 5:] + box[0, 1] - 1, lm[0, :, 1])


def test_scene_samples_shapes_and_labels():
    rng = np.random.default_rng(1)
    rgb = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    gt = np.array([[40, 30, 80, 80]], np.float32)
    props = np.array([[40, 32, 80, 72], [100, 60, 130, 90], [0, 0, 30, 30]], np.float32)
    s = ds.scene_samples(rgb, gt, np.zeros((0, 4)), "rnet", rng, props)
    assert s.images.shape[1:] == (24, 24, 3) and s.images.dtype == np.uint8
    assert s.mined.sum() == 3 and set(s.cls[s.mined].tolist()) == {ds.POS, ds.NEG}
    assert np.all(s.reg[s.cls == ds.NEG] == 0) and np.abs(s.reg[s.cls == ds.POS]).max() < 0.5


def test_mtfl_entries_drop_broken_lines(tmp_path):
    (tmp_path / "x.txt").write_text(
        "a.jpg 34.3 47.3 40.4 34.0 45.0 34.8 36.2 46.0 50.8 52.1\n"     # a centred face: kept
        "b.jpg 32.0 48.5 36.5 33.5 48.0 3.0 3.5 14.5 19.0 20.0\n")       # y shifted out: dropped
    e = ds.mtfl_entries(tmp_path, "x.txt")
    assert [p.name for p, _ in e] == ["a.jpg"] and e[0][1].shape == (5, 2)
    box = ds.landmark_box(e[0][1])
    assert box[0] < 34 and box[2] > 47 and box[1] < 34 and box[3] > 52


# ---------------------------------------------------------------- mask synthesis

LM = np.array([[80, 80], [120, 80], [100, 104], [84, 124], [116, 124]], float)
"""A frontal face: eyes at y 80, nose tip at y 104, mouth at y 124 (eye-mouth distance 44)."""


@pytest.mark.parametrize("template", ["surgical", "cloth", "KN95"])
def test_mask_lands_between_nose_and_chin(template):
    img = np.full((220, 200, 3), 128, np.uint8)
    out, cov = ms.draw_mask(img, LM, template, incorrect=False, recolour=False)
    assert out.shape == img.shape and (out != img).any()
    chin = 124 + ms.CHIN * 44
    ys, xs = np.nonzero(cov > 0.5)
    assert cov[104, 100] > 0.9 and cov[124, 100] > 0.9             # nose tip and mouth covered
    assert cov[80, 80] < 0.05 and cov[80, 120] < 0.05                # eyes free
    assert ys.min() > 80 and ys.max() < chin + 12                    # between the eyes' line and the chin
    assert abs(xs.mean() - 100) < 8                                  # centred on the face
    assert 104 - 10 < ys.mean() < chin


def test_incorrect_mask_uncovers_the_nose():
    img = np.full((220, 200, 3), 128, np.uint8)
    _, cov = ms.draw_mask(img, LM, "surgical", incorrect=True, recolour=False)
    assert cov[104, 100] < 0.05 and cov[100, 100] < 0.05             # nose uncovered
    assert cov[124, 100] > 0.9                                       # mouth still covered
    ys, _ = np.nonzero(cov > 0.5)
    assert ys.min() > 104


def test_turned_face_uses_side_template():
    turned = LM.copy()
    turned[2, 0] = 86                                               # nose near the left eye
    assert ms.yaw(turned) < -ms.YAW_VARIANT and ms.pick_variant("surgical", turned) == "surgical_left"
    assert ms.pick_variant("surgical", LM) == "surgical"


# ---------------------------------------------------------------- loss and OHEM


def test_forward_logits_match_forward():
    torch.manual_seed(0)
    for name, net, s in (("pnet", PNet(), 12), ("rnet", RNet(), 24), ("onet", ONet(), 48)):
        x = torch.randn(4, 3, s, s)
        logits, reg, lmk = td.forward_logits(net, x)
        out = net(x)
        prob = out[-1].reshape(-1)
        assert torch.allclose(torch.softmax(logits, 1)[:, 1], prob, atol=1e-6)
        assert torch.allclose(reg, out[0].reshape(4, 4), atol=1e-6)
        if name == "onet":
            assert torch.allclose(lmk, out[1], atol=1e-6)


def test_ohem_keeps_the_hardest_70_percent():
    # 10 face/non-face samples with logits (0, a) -> CE = log(1 + e^a) for label 0, log(1 + e^-a) for 1
    a = torch.arange(10, dtype=torch.float32) - 5          # -5 .. 4
    logits = torch.stack([torch.zeros(10), a], 1)
    cls = torch.tensor([0, 1] * 5)
    ce = [math.log1p(math.exp(v)) if c == 0 else math.log1p(math.exp(-v)) for v, c in zip(a.tolist(), cls.tolist())]
    hardest7 = sorted(ce, reverse=True)[:7]                # ceil(0.7 * 10) = 7
    assert td.ohem_cls_loss(logits, cls).item() == pytest.approx(sum(hardest7) / 7, rel=1e-5)
    # part faces and landmark samples take no part
    logits2 = torch.cat([logits, torch.tensor([[0.0, 9.0], [9.0, 0.0]])])
    cls2 = torch.cat([cls, torch.tensor([ds.PART, ds.LANDMARK])])
    assert td.ohem_cls_loss(logits2, cls2).item() == pytest.approx(sum(hardest7) / 7, rel=1e-5)
    # keep=1 is plain cross-entropy; 3 samples at 0.7 keep ceil(2.1) = 3
    assert td.ohem_cls_loss(logits, cls, keep=1.0).item() == pytest.approx(sum(ce) / 10, rel=1e-5)
    assert td.ohem_cls_loss(logits[:3], cls[:3]).item() == pytest.approx(sum(ce[:3]) / 3, rel=1e-5)


def test_multitask_loss_weights():
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    cls = torch.tensor([ds.POS, ds.PART, ds.NEG, ds.LANDMARK])
    reg = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 1.0, 0], [5.0, 5, 5, 5], [7.0, 7, 7, 7]])
    lmk = torch.zeros(4, 10)
    lmk[3, 0] = 2.0
    lmk[0, 0] = 9.0        # not a landmark sample: ignored
    zeros4, zeros10 = torch.zeros(4, 4), torch.zeros(4, 10)
    total, parts = td.multitask_loss("onet", logits, reg, lmk, cls, zeros4, zeros10)
    # cls: two samples at CE log 2, both kept (ceil(1.4) = 2); box: pos 1, part 2 -> mean 1.5;
    # landmark: 4 -> O-Net weights 1 / 0.5 / 1
    assert parts["cls"] == pytest.approx(math.log(2)) and parts["box"] == pytest.approx(1.5)
    assert parts["landmark"] == pytest.approx(4.0)
    assert total.item() == pytest.approx(math.log(2) + 0.5 * 1.5 + 4.0)
    total, _ = td.multitask_loss("rnet", logits, reg, None, cls, zeros4, zeros10)
    assert total.item() == pytest.approx(math.log(2) + 0.5 * 1.5)


# ---------------------------------------------------------------- tiny end-to-end run


def _tiny_scenes():
    scenes = ds.dlib_scenes(DLIB)[:3]
    for s in scenes:
        s.landmarks = np.full((len(s.boxes), 5, 2), np.nan)
    return scenes


def test_tiny_training_run_lowers_the_loss(tmp_path):
    torch.set_num_threads(2)
    scenes = _tiny_scenes()
    samples = td.build_samples("pnet", scenes, None, seed=0, progress=False)
    counts = samples.counts()
    assert counts["pos"] > 10 and counts["neg"] > 50
    net = PNet()
    torch.manual_seed(0)
    hist = td.train_net("pnet", net, samples, epochs=6, lr=3e-3, batch=64, seed=0,
                        log_path=tmp_path / "log.csv", progress=False)
    assert hist[-1]["loss"] < hist[0]["loss"] * 0.9
    assert (tmp_path / "log.csv").read_text().startswith("net,epoch,step,loss")
    d = td.save_fine_tuned("pnet", net, tmp_path)
    from pipeline.engine.weights import load_net
    again = load_net("pnet", tmp_path)
    x = torch.randn(2, 3, 12, 12)
    assert torch.allclose(again(x)[1], net(x)[1])
    assert "fine-tuned from the original MTCNN" in (d / "config.json").read_text()


def test_onet_samples_with_landmarks():
    rng = np.random.default_rng(0)
    entries = ds.mtfl_entries()[:6]
    s = ds.landmark_samples(entries, "onet", rng, mask_prob=0.5)
    assert len(s) >= 5 and (s.cls == ds.LANDMARK).all() and s.images.shape[1:] == (48, 48, 3)
    # eyes in the upper half, mouth in the lower half of the crop
    assert (s.lmk[:, 5:7] < 0.55).all() and (s.lmk[:, 8:10] > 0.5).all()


def test_frozen_blocks_stay_fixed():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = 64
    samples = ds.SampleSet((rng.random((n, 48, 48, 3)) * 255).astype(np.uint8),
                           np.array([ds.POS, ds.NEG, ds.PART, ds.LANDMARK] * (n // 4), np.int8),
                           rng.normal(0, 0.1, (n, 4)).astype(np.float32),
                           rng.random((n, 10)).astype(np.float32), np.zeros(n, bool), np.zeros(n, bool))
    torch.manual_seed(0)
    net = ONet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    td.train_net("onet", net, samples, epochs=1, lr=1e-3, batch=32, progress=False)
    after = net.state_dict()
    frozen = [k for k in before if k.split(".")[0] in ("conv1", "prelu1", "conv2", "prelu2")]
    assert len(frozen) == 6 and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["conv3.weight"], after["conv3.weight"])
    assert not torch.equal(before["dense6_3.weight"], after["dense6_3.weight"])
    assert all(p.requires_grad for p in net.parameters()) and not net.training


def test_lowres_augmentation():
    rng = np.random.default_rng(0)
    imgs = np.zeros((40, 48, 48, 3), np.uint8)
    imgs[:, ::2] = 255                                     # stripes: lost when the resolution drops
    out = ds.lowres(imgs, rng, prob=0.5)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(imgs, out)])
    assert 10 <= changed.sum() <= 30 and out.shape == imgs.shape and out.dtype == np.uint8
    assert np.abs(out[changed].astype(int).mean() - 127.5) < 15          # same brightness
    assert out[changed].std() < imgs.std() and np.array_equal(out[~changed], imgs[~changed])
    assert np.array_equal(ds.lowres(imgs, rng, prob=0.0), imgs)


def test_detector_evaluation_stores_or_keeps_the_fine_tuning_verdict(tmp_path):
    from training.evaluate_detector import evaluate
    from training.paths import WEIGHTS
    out = tmp_path / "detector_metrics.json"
    kw = dict(weights=WEIGHTS, out=out, limit=2, progress=False, log_dir=None, timing=False)
    assert evaluate(**kw, fine_tuning={"verdict": "ok"})["fine_tuning"] == {"verdict": "ok"}
    assert json.loads(out.read_text())["fine_tuning"] == {"verdict": "ok"}
    assert evaluate(**kw)["fine_tuning"] == {"verdict": "ok"}      # same weights: kept
    assert "fine_tuning" not in evaluate(**{**kw, "out": tmp_path / "other.json"})


def test_mining_runs_at_its_own_thread_count_and_keys_its_cache_by_it(tmp_path, monkeypatch):
    """The mining pass's outputs depend on torch's thread count (O-Net landmarks differ in the
    last bits), so it always runs at MINE_THREADS, whatever the caller set, gives the caller's
    setting back, and a cache mined at another count is not reused."""
    seen = []
    monkeypatch.setattr(td, "read_image", lambda path: np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(td, "cascade_outputs", lambda det, img, boxes, cfg: (
        seen.append(torch.get_num_threads()) or {n: np.zeros((0, 4), np.float32) for n in
                                                 ("p", "r", "o", "o_scores", "o_landmarks", "gt_landmarks", "gt_scores")}))
    scenes = [ds.Scene("a", tmp_path / "a.jpg", np.zeros((0, 4), np.float32), np.zeros(0, int), "ilc")]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        td.mine_scenes(scenes, cache=tmp_path, progress=False, weights=td.WEIGHTS)
        assert seen == [td.MINE_THREADS] and torch.get_num_threads() == 2
        td.mine_scenes(scenes, cache=tmp_path, progress=False, weights=td.WEIGHTS)
        assert len(seen) == 1                                  # cached
        other = 3 - td.MINE_THREADS                            # 1 <-> 2
        monkeypatch.setattr(td, "MINE_THREADS", other)
        td.mine_scenes(scenes, cache=tmp_path, progress=False, weights=td.WEIGHTS)
        assert seen[1:] == [other]                             # another thread count: mined again
    finally:
        torch.set_num_threads(before)


def test_camera_share_reaches_the_camera_copies(tmp_path, monkeypatch):
    """--camera-share is the share of scenes copied as camera frames (it was ignored: the copies
    used ds.CAMERA_SHARE, 0, whatever was asked)."""
    class Stop(Exception):
        pass

    asked = []

    def camera_variants(scenes, seed, share=ds.CAMERA_SHARE, **kw):
        asked.append(share)
        raise Stop
    monkeypatch.setattr(td, "training_scenes", lambda data, seed: ([], []))
    monkeypatch.setattr(td, "mine_scenes", lambda scenes, **kw: {})
    monkeypatch.setattr(ds, "masked_variants", lambda scenes, seed: [])
    monkeypatch.setattr(ds, "camera_variants", camera_variants)
    with pytest.raises(Stop):
        td.run_all(tmp_path / "out", nets=(), replace_weights=False, evaluate=False, progress=False,
                   camera_share=0.35)
    assert asked == [0.35]
