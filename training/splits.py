"""The held-out ILC image split shared by both stages.

The mask classifier (training.train_classifier) validates on a stratified, duplicate-group-aware
split of the ILC faces: `grouping.stratified_group_split(labels, groups, VAL_FRAC, SEED)`
over the faces of `classifier_data.list_ilc()`, where all faces of one image share a group and
near-duplicate images (dHash within DUP_HAMMING bits) share one too. Every face of an image
therefore falls on the same side, so that face split *is* an image split.

`ilc_split()` recomputes exactly that split from the same functions and constants (ILC is the
first source, so its seed is SEED + 0, as in split_faces), for the detector:
its fine-tuning uses only the training images, and its evaluation only the validation images.
The image hashes are cached in runs/cache (gitignored).

usage: python -m training.splits      (prints the split's sizes)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from training import classifier_data as cd
from training.grouping import duplicate_groups, dhash, stratified_group_split
from training.paths import DATA

SEED = 1234
"""The one seed of every training stage and split (training.train_classifier, train_detector,
cross_validate)."""
VAL_FRAC = 0.18
"""Share of each class's faces (whole duplicate groups) held out for validation."""

def split_faces(faces: cd.FaceSet, val_frac: float = VAL_FRAC, seed: int = SEED) -> np.ndarray:
    """-> bool [N] validation mask: a stratified group split within each source (photos removed
    from a source since keep their place: classifier_data.SPLIT_PLACEHOLDERS)."""
    val = np.zeros(len(faces), bool)
    for k, s in enumerate(cd.SOURCES):
        sel = np.nonzero(faces.source == s)[0]
        if len(sel):
            labels, groups, extra = cd.with_placeholders(faces, sel, s)
            val[sel] = stratified_group_split(labels, groups, val_frac, seed + k)[:len(sel)]
    return val


def validation_faces(config):
    """The ILC validation faces of the classifier's split, cut for a classifier of this
    ClassifierConfig -> (FaceSet of all ILC faces, indices [N] of the ILC validation faces)."""
    # split_faces splits each source on its own: the ILC split does not depend on the others
    faces = cd.cached_faceset(cd.list_all(DATA, ("ilc",)), config, progress=False)
    val = split_faces(faces, VAL_FRAC, SEED)
    return faces, np.nonzero(val & (faces.source == "ilc"))[0]


def image_hashes(records, cache_dir: Path = cd.CACHE_DIR) -> np.ndarray:
    """dHash of every record's decoded image (cd.load_rgb, as the classifier) -> uint64 [N]."""
    key = hashlib.sha256(json.dumps([str(r.path) for r in records]).encode()).hexdigest()[:16]
    f = Path(cache_dir) / f"scene_dhash_{key}.npy"
    if f.exists():
        return np.load(f)
    h = np.array([dhash(cd.load_rgb(r.path)) for r in records], np.uint64)
    f.parent.mkdir(parents=True, exist_ok=True)
    np.save(f, h)
    return h


def scene_split(source: str = "ilc", data: Path = DATA, seed: int = SEED, val_frac: float = VAL_FRAC):
    """-> (train records, validation records) of one scene source (classifier_data.list_scene:
    "ilc", "adi", "mac"): the same photos the classifier validates on for that source
    (split_faces seeds it with SEED + its index in SOURCES; photos removed since keep their
    place: classifier_data.SPLIT_PLACEHOLDERS)."""
    records = cd.list_scene(data, source)
    groups = duplicate_groups(image_hashes(records))
    face_groups = np.concatenate([np.full(len(r.labels), g) for r, g in zip(records, groups)])
    labels = np.concatenate([r.labels for r in records])
    image_of_face = np.concatenate([np.full(len(r.labels), i) for i, r in enumerate(records)])
    names = [records[i].path.name for i in image_of_face]
    labels_p, groups_p, _ = cd.placeholder_groups(labels, face_groups, image_of_face, names, source)
    val_face = stratified_group_split(labels_p, groups_p, val_frac, seed + cd.SOURCES.index(source))[:len(labels)]
    val_img = np.zeros(len(records), bool)
    val_img[image_of_face[val_face]] = True
    assert not (val_img[image_of_face] != val_face).any(), "a split image has faces on both sides"
    return ([r for r, v in zip(records, val_img) if not v], [r for r, v in zip(records, val_img) if v])


def ilc_split(data: Path = DATA, seed: int = SEED, val_frac: float = VAL_FRAC):
    """scene_split of ILC: the detector fine-tunes on its training photos and is judged on its
    validation photos, the classifier's."""
    return scene_split("ilc", data, seed, val_frac)


def main():
    tr, va = ilc_split()
    n = lambda rs: sum(len(r.labels) for r in rs)
    print(f"ILC split (seed {SEED}, val_frac {VAL_FRAC}): train {len(tr)} images / {n(tr)} faces, "
          f"validation {len(va)} images / {n(va)} faces")


if __name__ == "__main__":
    main()
