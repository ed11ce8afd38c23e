"""The detector's training and validation data: the split shared with the classifier (a removed
photo keeps its place), camera copies of scenes, P-Net's mined hard negatives, and the
validation views. Fast and offline (shared data only), except one marked slow."""
import numpy as np
import pytest

from tests.support.data import DATA
from training import classifier_data as cd
from training import detector_samples as ds
from training.grouping import stratified_group_split


def _toy_split(n_images=40, seed=5):
    rng = np.random.default_rng(seed)
    faces_per = rng.integers(1, 4, n_images)
    image = np.repeat(np.arange(n_images), faces_per)
    labels = rng.integers(0, 3, len(image))
    names = [f"img_{i:02d}.jpg" for i in image]
    return image, labels, names


def test_a_removed_photo_keeps_its_place_so_no_other_photo_changes_side(monkeypatch):
    image, labels, names = _toy_split()
    full = stratified_group_split(labels, image, 0.2, 7)
    gone = 7
    keep = image != gone
    removed_labels = tuple(cd.CLASSES[int(v)] for v in labels[image == gone])
    monkeypatch.setattr(cd, "SPLIT_PLACEHOLDERS", {"ilc": (("img_07", removed_labels),)})
    img = image[keep]
    lab, grp, extra = cd.placeholder_groups(labels[keep], img, img, [n for n, k in zip(names, keep) if k], "ilc")
    assert extra == len(removed_labels)
    after = stratified_group_split(lab, grp, 0.2, 7)[:keep.sum()]
    assert np.array_equal(after, full[keep])
    # without the placeholder the split moves: the stand-in is what keeps it
    plain = stratified_group_split(labels[keep], img, 0.2, 7)
    assert not np.array_equal(plain, full[keep])


def test_camera_copies_are_smaller_and_degraded_but_keep_faces_findable():
    scenes = ds.dlib_scenes()
    cam = ds.camera_variants(scenes, seed=3, share=1.0)
    assert len(cam) == sum(len(s.boxes) > 0 for s in scenes)
    for c in cam[:3]:
        assert c.degrade and ds.CAMERA_SCALE[0] <= c.scale <= 1.0 and c.key.endswith("#cam")
        side = np.median(np.minimum(c.boxes[:, 2] - c.boxes[:, 0], c.boxes[:, 3] - c.boxes[:, 1]))
        assert side * c.scale >= ds.CAMERA_MIN_FACE - 1e-3 or c.scale == 1.0
        rgb, boxes, _ = ds.render(c)
        orig = ds.render(ds.Scene(c.key, c.path, c.boxes, c.labels, "dlib"))[0]
        assert abs(rgb.shape[1] - orig.shape[1] * c.scale) <= 1
        assert np.allclose(boxes[:, 2] - boxes[:, 0], (c.boxes[:, 2] - c.boxes[:, 0]) * rgb.shape[1] / orig.shape[1],
                           rtol=1e-4) or c.flip
        assert rgb.dtype == np.uint8 and rgb.shape[2] == 3


def test_pnet_learns_from_its_own_false_proposals():
    rng = np.random.default_rng(1)
    rgb = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    gt = np.array([[40, 30, 80, 70]], np.float32)
    props = np.array([[41, 31, 79, 71], [100, 60, 130, 95], [5, 5, 25, 22]], np.float32)
    plain = ds.scene_samples(rgb, gt, np.zeros((0, 4)), "pnet", np.random.default_rng(2))
    s = ds.scene_samples(rgb, gt, np.zeros((0, 4)), "pnet", np.random.default_rng(2), props)
    assert s.images.shape[1:] == (12, 12, 3) and len(s) == len(plain) + 3
    assert s.mined.sum() == 3
    assert set(s.cls[s.mined].tolist()) == {ds.POS, ds.NEG}
    assert np.all(s.reg[s.mined & (s.cls == ds.NEG)] == 0)
    # a mined positive's target decodes to the GT box the way P-Net's output is decoded
    k = np.nonzero(s.mined & (s.cls == ds.POS))[0][0]
    side = 40.0     # the square window around [41, 31, 79, 71]
    win = np.array([[40, 31, 40 + side, 31 + side]])
    box, unit = ds.window_to_box(win, "pnet")
    decoded = box + s.reg[k] * unit[:, None]
    assert np.allclose(decoded, gt, atol=1e-3)


def test_detector_views_shrink_the_ilc_validation_photos_to_a_21px_median():
    from training.evaluate_detector import image_of, short_side, view_sets
    sets = view_sets(limit=4)
    assert set(sets) == {"ilc_small", "ilc_degraded", "crowds"}
    small, degraded = sets["ilc_small"][1], sets["ilc_degraded"][1]
    assert [r.path for r in small] == [r.path for r in degraded]
    a, b = image_of(small[0]), image_of(degraded[0])
    assert a.shape == b.shape and not np.array_equal(a, b)
    full = cd.load_rgb(small[0].path)
    assert abs(a.shape[1] - full.shape[1] * small[0].factor) <= 1
    assert np.allclose(short_side(small[0].boxes), short_side(next(r for r in cd.list_ilc(DATA) if r.path == small[0].path).boxes) * small[0].factor, rtol=0.02)
    assert len(sets["crowds"][1]) == 4 and all(r.path.parent.parent.name == "adityap27" for r in sets["crowds"][1])


@pytest.mark.slow
def test_detector_holds_out_exactly_the_classifier_validation_photos():
    from pipeline.engine.config import ClassifierConfig
    from training.splits import ilc_split, validation_faces
    _, val = ilc_split()
    faces, idx = validation_faces(ClassifierConfig())
    assert {faces.paths[faces.image[i]] for i in idx} == {str(r.path) for r in val}


def test_box_conventions_map_a_sources_boxes_onto_the_detectors(monkeypatch):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (30, 2))
    side = rng.uniform(12, 80, (30, 1))
    det = np.concatenate([xy, xy + side * np.array([[0.9, 1.1]])], 1).astype(np.float32)
    # a source that draws boxes 1.3x wider, 1.2x taller and shifted up by 0.1 of the height
    w, h = det[:, 2] - det[:, 0], det[:, 3] - det[:, 1]
    cx, cy = (det[:, 0] + det[:, 2]) / 2, (det[:, 1] + det[:, 3]) / 2 - 0.1 * h
    gt = np.stack([cx - 0.65 * w, cy - 0.6 * h, cx + 0.65 * w, cy + 0.6 * h], 1)
    conv, n = ds.measure_box_convention([gt[:15], gt[15:]], [det[:15], det[15:]])
    assert n == 30 and np.allclose(conv, (1.3, 1.2, 0.0, -0.1), atol=2e-3)
    monkeypatch.setitem(ds.BOX_CONVENTION, "toy", conv)
    assert np.allclose(ds.to_detector_boxes(gt, "toy"), det, atol=0.05)
    assert np.array_equal(ds.to_detector_boxes(gt, "ilc"), gt.astype(np.float32))     # the reference
