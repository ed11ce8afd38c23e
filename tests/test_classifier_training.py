"""Fast, offline checks of the classifier training code (training.train_classifier and helpers)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.engine.classifier import face_crops
from pipeline.engine.config import ClassifierConfig
from pipeline.engine.nets import MaskClassifier
from pipeline.records import CLASSES
from training import classifier_data as cd
from training import grouping
from training.augment import NO_AUGMENT, AugmentConfig, make_batch
from training.metrics import evaluate, majority_baseline, metrics_from_cm
from training.paths import DATA
from training.train_classifier import class_weights, train, train_epoch, weighted_loss

needs_data = pytest.mark.skipif(not (DATA / "crops" / "fmd").is_dir(), reason="training data absent")


# ---------------------------------------------------------------- metrics


def test_metrics_hand_worked_confusion_matrix():
    cm = np.array([[5, 1, 0],    # true mask
                   [2, 3, 1],    # true no_mask
                   [0, 1, 2]])   # true incorrect
    m = metrics_from_cm(cm)
    pc = m["per_class"]
    assert pc["mask"]["precision"] == pytest.approx(5 / 7)
    assert pc["mask"]["recall"] == pytest.approx(5 / 6)
    assert pc["mask"]["f1"] == pytest.approx(10 / 13)
    assert pc["no_mask"]["precision"] == pytest.approx(3 / 5)
    assert pc["no_mask"]["recall"] == pytest.approx(1 / 2)
    assert pc["no_mask"]["f1"] == pytest.approx(6 / 11)
    assert pc["incorrect"]["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(10 / 15)
    assert m["macro_f1"] == pytest.approx((10 / 13 + 6 / 11 + 2 / 3) / 3)
    assert m["binary_accuracy"] == pytest.approx(12 / 15)  # 5 mask->mask + 7 among the rest
    # the same via label lists
    y_true = [0] * 6 + [1] * 6 + [2] * 3
    y_pred = [0] * 5 + [1] + [0, 0, 1, 1, 1, 2] + [1, 2, 2]
    assert evaluate(y_true, y_pred)["confusion_matrix"] == cm.tolist()
    base = majority_baseline(y_true)  # tie 6/6: argmax picks mask
    assert base["predicts"] == "mask"
    assert base["accuracy"] == pytest.approx(6 / 15)
    assert base["binary_accuracy"] == pytest.approx(6 / 15)
    assert base["macro_f1"] == pytest.approx((2 * 0.4 / 1.4) / 3)
    assert base["binary_majority_accuracy"] == pytest.approx(9 / 15)  # "not mask" is 9 of 15
    # macro-F1 skips a class absent from both truth and predictions, keeps a predicted one
    assert evaluate([0, 0, 1], [0, 0, 1])["macro_f1"] == pytest.approx(1.0)
    assert evaluate([0, 0, 1], [0, 2, 1])["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


# ---------------------------------------------------------------- split


def test_duplicate_groups_and_split_keep_pairs_together():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 60, dtype=np.int64).astype(np.uint64)
    mirror = rng.integers(0, 2**63, 60, dtype=np.int64).astype(np.uint64)
    hashes = base.copy()
    hashes[1] = hashes[0] ^ np.uint64(0b10110)          # near-duplicate of 0 (3 bits)
    hashes[3] = mirror[2] ^ np.uint64(1 << 40)           # mirrored copy of 2 (1 bit)
    groups = grouping.duplicate_groups(hashes, mirror)
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len(np.unique(groups)) == 58
    labels = np.arange(60) % 3
    labels[1], labels[3] = labels[0], labels[2]
    for seed in range(20):
        val = grouping.stratified_group_split(labels, groups, 0.3, seed)
        assert val[0] == val[1] and val[2] == val[3]
        assert 0 < val.sum() < 60


def test_training_decodes_images_as_the_app_does(tmp_path):
    """load_rgb and the app's read_image give the same pixels: EXIF orientation applied, and
    transparency on white (a plain convert("RGB") keeps the colour under alpha 0: red here)."""
    from PIL import Image

    from pipeline.media.images import read_image
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255                      # red everywhere, but transparent on the left half
    rgba[:, 30:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6                        # rotated: the sides swap
    Image.fromarray(rgba[..., :3]).save(tmp_path / "b.jpg", exif=exif)
    for name in ("a.png", "b.jpg"):
        np.testing.assert_array_equal(cd.load_rgb(tmp_path / name), read_image(tmp_path / name))
    assert (cd.load_rgb(tmp_path / "a.png")[:, :30] == 255).all()
    assert cd.load_rgb(tmp_path / "b.jpg").shape == (60, 40, 3)


@needs_data
def test_real_mirrored_copy_is_grouped():
    img = cd.load_rgb(next((DATA / "crops" / "fmd" / "with_mask").glob("*.jpg")))
    other = cd.load_rgb(next((DATA / "crops" / "fmd" / "without_mask").glob("*.jpg")))
    imgs = [img, img[:, ::-1], other]
    groups = grouping.duplicate_groups([grouping.dhash(i) for i in imgs], [grouping.dhash(i[:, ::-1]) for i in imgs])
    assert groups[0] == groups[1] != groups[2]


@pytest.mark.skipif(not (DATA / "landmarks" / "mtfl").is_dir() or not (DATA / "masks").is_dir(),
                    reason="training data absent")
def test_synthetic_source_pairs_one_face_with_and_without_a_mask(tmp_path):
    """list_syn: each MTFL face gives no_mask, mask and incorrect records in one group; the three
    images differ only on the lower face, and the incorrect one shows more of the nose."""
    from training import detector_samples as ds

    recs = cd.list_syn(n=4, cache_dir=tmp_path)
    assert len(recs) == 12
    assert [CLASSES[int(r.labels[0])] for r in recs[:3]] == ["no_mask", "mask", "incorrect"]
    assert len({r.group for r in recs}) == 4 and recs[0].group == recs[1].group == recs[2].group
    files = {r.path for r in recs}
    assert all(f.parent == cd.syn_folder(4, cache_dir=tmp_path) and f.exists() for f in files)
    stamp = {f: f.stat().st_mtime_ns for f in files}
    assert cd.list_syn(n=4, cache_dir=tmp_path)[0].path == recs[0].path   # reused, not redrawn
    assert all(f.stat().st_mtime_ns == stamp[f] for f in files)

    entries = ds.mtfl_entries(DATA / "landmarks" / "mtfl")
    for k in range(4):
        bare, good, low = (cd.load_rgb(r.path).astype(float) for r in recs[3 * k:3 * k + 3])
        lm = entries[int(recs[3 * k].path.stem.split("_")[0])][1]
        eyes_y, mouth_y = lm[:2, 1].mean(), lm[3:, 1].mean()
        x1, x2 = int(lm[0, 0]), int(lm[1, 0]) + 1
        eyes = lambda im: im[int(eyes_y) - 3:int(eyes_y) + 3, x1:x2]
        mouth = lambda im: im[int(mouth_y) - 2:int(mouth_y) + 3, int(lm[3, 0]):int(lm[4, 0]) + 1]
        nx, ny = lm[2].round().astype(int)
        nose = lambda im: im[ny - 3:ny + 2, nx - 3:nx + 4]
        diff = lambda a, b: np.abs(a - b).mean()
        assert diff(eyes(good), eyes(bare)) < 8 and diff(eyes(low), eyes(bare)) < 8   # eyes untouched
        assert diff(mouth(good), mouth(bare)) > 15 and diff(mouth(low), mouth(bare)) > 15  # mouth covered
        assert diff(nose(low), nose(bare)) < diff(nose(good), nose(bare))               # nose shows
    fs = cd.build_faceset(recs, ClassifierConfig(), progress=False)
    assert len(np.unique(fs.group)) == 4 and fs.group[0] == fs.group[1] == fs.group[2]


# ---------------------------------------------------------------- crops and training


def test_unaugmented_batch_matches_inference_crops():
    """A context crop + NO_AUGMENT gives (nearly) the inference crop of the same face box."""
    rng = np.random.default_rng(1)
    config = ClassifierConfig()
    img = (rng.random((1, 3, 300, 400)) * 255).astype(np.float32)
    img = torch.from_numpy(img)
    img = torch.nn.functional.avg_pool2d(img, 9, 1, 4)  # smooth, so resampling paths agree
    boxes = torch.tensor([[100.0, 80.0, 180.0, 176.0], [250.0, 40.0, 290.0, 90.0]])
    want = face_crops(img, boxes, config)
    ctx = cd.crop_and_resize(img, cd._context_windows(boxes, config), cd.CONTEXT_SIZE)
    ctx = ctx.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    got = make_batch(ctx, cd.boxes_in_context(boxes, config).numpy(), np.arange(2),
                     config.crop_size, config.margin, rng, NO_AUGMENT)
    assert got.shape == want.shape
    assert (got - want).abs().mean() < 0.02  # about 1 grey level in normalised units


@needs_data
def test_tiny_training_run_loss_goes_down():
    torch.manual_seed(0)
    config = ClassifierConfig()
    recs = cd.list_fmd()
    recs = recs[:8] + recs[-8:]                       # 8 with_mask, 8 without_mask
    faces = cd.build_faceset(recs, config, progress=False)
    net = MaskClassifier(config)
    net.reset_parameters()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    idx = np.arange(len(faces))
    sw = np.ones(len(faces), np.float32)
    cw = class_weights(faces.labels)
    rng = np.random.default_rng(0)
    x = make_batch(faces.context, faces.ctx_boxes, idx, config.crop_size, config.margin, rng, NO_AUGMENT)
    y = torch.from_numpy(faces.labels)

    def eval_loss():
        net.eval()
        with torch.no_grad():
            return float(weighted_loss(net(x), y, torch.ones(len(y)), cw))

    before = eval_loss()
    step = 0
    for _ in range(6):
        _, _, step = train_epoch(net, opt, faces, idx, sw, cw, rng, NO_AUGMENT, 16, step,
                                 1000, 1, 2e-3, progress=False)
    assert eval_loss() < before * 0.7


@pytest.mark.slow
@needs_data
def test_train_end_to_end_writes_loadable_weights(tmp_path):
    """The whole train() on 4 images per source, 1 epoch: weights load through pipeline.engine.weights."""
    from pipeline.engine.weights import load_net

    faces_recs = cd.list_all(limit=4)
    aug = AugmentConfig()
    result = train(epochs=1, out=tmp_path / "classifier", report=tmp_path / "val.json",
                   limit=4, val_frac=0.5, batch=16, aug=aug, log_dir=tmp_path, progress=False,
                   use_cache=False)
    assert len(faces_recs) == 4 * len(cd.SOURCES)
    net = load_net("classifier", tmp_path)
    assert sum(p.numel() for p in net.parameters()) < 250_000
    rep = json.loads((tmp_path / "val.json").read_text())
    assert rep["n_val_faces"] + rep["n_train_faces"] == sum(len(r.labels) for r in faces_recs)
    assert set(rep["validation"]["ilc_by_face_size"]) == {"0-20px", "20-40px", ">=40px"}
    assert list((tmp_path).glob("classifier_*.csv"))
    assert result["best_epoch"] == 1


@needs_data
def test_weight_average_is_updated_every_step():
    """train_epoch's ema_net: with decay 0 it is the trained net; with decay near 1 it stays
    near the starting weights while the net moves away."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    config = ClassifierConfig()
    recs = cd.list_fmd()
    faces = cd.build_faceset(recs[:4] + recs[-4:], config, progress=False)
    idx = np.arange(len(faces))
    sw = np.ones(len(faces), np.float32)
    cw = class_weights(faces.labels)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])
    for decay in (0.0, 0.999):
        torch.manual_seed(0)
        net = MaskClassifier(config)
        net.reset_parameters()
        start = flat(net).clone()
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        ema.update_parameters(net)        # the first update copies: the average starts here
        train_epoch(net, opt, faces, idx, sw, cw, np.random.default_rng(0), NO_AUGMENT, 4, 0,
                    100, 1, 2e-3, progress=False, ema_net=ema)
        moved = float((flat(net) - start).norm())
        assert moved > 0
        if decay == 0.0:
            assert torch.allclose(flat(ema.module), flat(net), atol=1e-6)
            for a, b in zip(ema.module.buffers(), net.buffers()):
                assert torch.allclose(a.float(), b.float(), atol=1e-5)
        else:
            assert float((flat(ema.module) - start).norm()) < 0.05 * moved


def test_class_weights_are_one_minus_share_and_never_zero():
    cw = class_weights(np.array([0, 0, 0, 1]))
    assert torch.allclose(cw, torch.tensor([0.25, 0.75, 1.0]))
    # sample weights count: two faces of weight 1 against one of weight 2
    assert torch.allclose(class_weights(np.array([0, 0, 1]), np.array([1.0, 1.0, 2.0])),
                          torch.tensor([0.5, 0.5, 1.0]))
    # a one-class subset: the loss stays finite instead of 0/0
    y = torch.zeros(4, dtype=torch.long)
    cw = class_weights(y.numpy())
    assert cw.tolist() == [1.0, 1.0, 1.0]
    loss = weighted_loss(torch.randn(4, 3), y, torch.ones(4), cw)
    assert torch.isfinite(loss)
