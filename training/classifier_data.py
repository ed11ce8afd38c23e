"""Face records of every source (listings) and crop precomputation for the mask classifier.

Every face becomes a record (source, image path, face box, label, group). Faces are cut out
with the same code that inference uses (pipeline.engine.classifier.classifier_windows +
pipeline.engine.crops.crop_and_resize):

* `context_crops` cuts, once, a larger square window around each face (the classifier window
  grown `CONTEXT` times, resampled to `CONTEXT_SIZE` px, uint8). Training jitters the box and
  augments from these (training.augment), so no JPEG is decoded during training.
* `exact_crops` cuts the validation crops exactly as `pipeline.engine.classifier.face_crops` does at
  inference, one call per image with all of that image's boxes.

Duplicates: a dHash of every image, and of its mirror for crop datasets, groups near-copies
(training.grouping). All faces of one image share a group; a split never puts one group on both
sides.
"""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from pipeline.engine.classifier import classifier_windows, face_crops
from pipeline.engine.config import ClassifierConfig
from pipeline.engine.crops import crop_and_resize
from pipeline.media.images import image_size, to_rgb
from pipeline.records import CLASSES

from training import detector_samples as ds
from training import mask_synthesis as ms
from training.grouping import DUP_HAMMING, dhash, duplicate_groups
from training.paths import DATA, ROOT

LABEL_MAP = {
    "with_mask": "mask", "con_mascarilla": "mask",
    "without_mask": "no_mask",
    "with_incorrect_mask": "incorrect", "mascarilla_mal_puesta": "incorrect",
    "mask_weared_incorrect": "incorrect",
}
"""Dataset label -> product label (pipeline.records.CLASSES)."""

SOURCES = ("ilc", "fmd", "mfn", "syn", "adi", "mac")
"""ilc: scenes/ilc2021 (real scenes, the main set); fmd: crops/fmd (real face crops);
mfn: synthetic/maskedfacenet (FFHQ faces with drawn masks); syn: our own MaskTheFace masks drawn
on MTFL faces (`list_syn`); adi: scenes/adityap27 (real news and street photos, crowds, small
faces); mac: scenes/macwin (web and stock photos, mostly large faces). New sources go at the
end: split_faces seeds each source by its index here, so the earlier sources' splits do not
move."""
SCENE_SOURCES = ("ilc", "adi", "mac")
"""Whole photos with face boxes (no edge padding, no mirror hashing)."""
TWO_CLASS_SOURCES = ("adi", "mac")
"""Sources labelled with_mask / without_mask only. Their `mask` label means "mask or
incorrect" (a mask below the nose is usually labelled with_mask there): training scores it
with p(mask) + p(incorrect) (training.train_classifier.weighted_loss), validation with the
binary view only."""
SCENE_FOLDERS = {"ilc": "ilc2021", "adi": "adityap27", "mac": "macwin"}
SPLIT_PLACEHOLDERS = {"ilc": (("a98a020b", ("mask",)),)}
"""Photos removed from a source after its split was fixed (data README: ILC photo a98a020b…,
one masked face, removed 2026-12-02): each keeps its place in the split's group order (its file
name's sort position, its labels, a group of its own), so every other photo stays on the side
of the split it was on when the release was trained (without it, 146 of the 728 ILC
validation faces would be faces the release trained on)."""

CONTEXT = 1.75
"""Side of the stored context window, as a multiple of the classifier window's side."""
CONTEXT_SIZE = 112
"""Pixels of the stored context window (112 / 1.75 = 64 = crop_size: no resolution lost)."""
CROP_INSET = {"fmd": 0.115, "mfn": 0.18}
"""Crop datasets: the nominal face box is the whole image inset by this fraction per side. fmd
images are mostly tight face crops: the box's classifier window (grown by margin 0.15) is
about the whole image. The aligned FFHQ faces of mfn fill less of theirs: a tighter box."""
PAD = 0.6
"""Crop datasets are edge-padded (replicated) by this fraction of their size before context
cropping, so jittered windows do not show black borders that, in these sources only, would be
a label cue (black is kept for the scene set, where it means the image edge, as at inference)."""
SYN_FACES = 1500
"""MTFL faces (a seeded draw from landmarks/mtfl's training list) that each give three `syn`
records: bare (no_mask), a mask worn correctly (mask), the same mask below the nose (incorrect)."""
SYN_SEED = 2027
SYN_JPEG_QUALITY = 95
CACHE_DIR = ROOT / "runs" / "cache"


@dataclass
class ImageRecord:
    source: str
    path: Path
    boxes: np.ndarray       # float32 [K, 4] x1 y1 x2 y2, pixels of the image as decoded
    labels: np.ndarray      # int64 [K], index into CLASSES
    group: str | None = None  # duplicate group key; None: found by image hashing


# ---------------------------------------------------------------- reading


def load_rgb(path: Path) -> np.ndarray:
    """Decode like the app (EXIF orientation applied, then pipeline.media.images.to_rgb) ->
    HxWx3 uint8 RGB, without the app's limits on size (the training photos are trusted files)."""
    with Image.open(path) as img:
        return to_rgb(ImageOps.exif_transpose(img))


def parse_voc(xml_path: Path) -> tuple[tuple[int, int], list[tuple[str, list[float]]]]:
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    wh = (int(size.find("width").text), int(size.find("height").text)) if size is not None else (0, 0)
    objs = []
    for o in root.iter("object"):
        b = o.find("bndbox")
        objs.append((o.find("name").text.strip(),
                     [float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]))
    return wh, objs


def list_ilc(data: Path = DATA) -> list[ImageRecord]:
    return list_scene(data, "ilc")


def list_scene(data: Path, source: str) -> list[ImageRecord]:
    """A scene folder (images/*.jpg + annotations/*.xml, PASCAL VOC) -> one record per image
    with at least one labelled face."""
    root = data / "scenes" / SCENE_FOLDERS[source]
    out = []
    for xml in sorted((root / "annotations").glob("*.xml")):
        _, objs = parse_voc(xml)
        objs = [(n, b) for n, b in objs if n in LABEL_MAP and b[2] > b[0] and b[3] > b[1]]
        if not objs:
            continue
        img = root / "images" / (xml.stem + ".jpg")
        if not img.exists():
            continue
        out.append(ImageRecord(source, img, np.array([b for _, b in objs], np.float32),
                               np.array([CLASSES.index(LABEL_MAP[n]) for n, _ in objs], np.int64)))
    return out


def _whole_image_box(path: Path, inset: float) -> np.ndarray:
    w, h = image_size(path)
    return np.array([[w * inset, h * inset, w * (1 - inset), h * (1 - inset)]], np.float32)


def list_fmd(data: Path = DATA) -> list[ImageRecord]:
    root = data / "crops" / "fmd"
    out = []
    for folder in ("with_mask", "without_mask"):
        label = CLASSES.index(LABEL_MAP[folder])
        for p in sorted((root / folder).iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"):
                out.append(ImageRecord("fmd", p, _whole_image_box(p, CROP_INSET["fmd"]),
                                       np.array([label], np.int64)))
    return out


def _mfn_label(stem: str) -> str:
    """MaskedFace-Net file names say how the mask is worn: NNNNN_Mask (correct) or
    NNNNN_Mask_Chin / _Mask_Mouth_Chin / _Mask_Nose_Mouth (incorrect)."""
    return "con_mascarilla" if stem.split("_", 1)[-1] == "Mask" else "mascarilla_mal_puesta"


def list_mfn(data: Path = DATA) -> list[ImageRecord]:
    """The VOC boxes of this set outline the mask (lower face), not the face, so the face box
    is the (inset) whole image, which the aligned FFHQ face fills. Label: the VOC's when it has
    one consistent label, else the file name's (22 images have no XML; the two always agree)."""
    root = data / "synthetic" / "maskedfacenet"
    out = []
    for img in sorted((root / "images").glob("*.jpg")):
        xml = root / "annotations" / (img.stem + ".xml")
        names = {n for n, _ in parse_voc(xml)[1] if n in LABEL_MAP} if xml.exists() else set()
        name = names.pop() if len(names) == 1 else _mfn_label(img.stem)
        out.append(ImageRecord("mfn", img, _whole_image_box(img, CROP_INSET["mfn"]),
                               np.array([CLASSES.index(LABEL_MAP[name])], np.int64)))
    return out


def syn_folder(n: int = SYN_FACES, seed: int = SYN_SEED, cache_dir: Path | None = None) -> Path:
    """Where list_syn writes its images: a folder keyed by everything that shapes them."""
    key = json.dumps([n, seed, SYN_JPEG_QUALITY, ms.TEMPLATE_NAMES, ms.BRIDGE, ms.CHIN, ms.HALF_WIDTH,
                      ms.BOTTOM_WIDTH, ms.INCORRECT_TOP, ms.YAW_VARIANT])
    return Path(cache_dir or CACHE_DIR) / f"syn_{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def list_syn(data: Path = DATA, n: int = SYN_FACES, seed: int = SYN_SEED,
             cache_dir: Path | None = None) -> list[ImageRecord]:
    """Synthetic masks on real faces, made by us (the issue's "synthetic masks"): n MTFL faces
    (80x80 crops with 5 landmarks, a seeded draw from the training list), each written three
    times into `syn_folder` (runs/cache, gitignored; made once, then reused): as it is
    (no_mask), with a MaskTheFace template placed on its landmarks (mask), and with the same
    template and colour dropped below the nose (incorrect; training.mask_synthesis). The three
    differ only where the mask is, so they teach exactly what separates the classes; they share
    one duplicate group, so a split keeps them together. Face box: the square box the original
    MTCNN puts around these landmarks (training.detector_samples.landmark_box), so crops look
    like detector crops."""

    entries = ds.mtfl_entries(data / "landmarks" / "mtfl")
    pick = np.random.default_rng(seed).permutation(len(entries))[:n]
    folder = syn_folder(n, seed, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("no_mask", "mask", "incorrect")
    out = []
    for i in pick:
        path, lm = entries[i]
        files = [folder / f"{i:05d}_{k}.jpg" for k in names]
        if not all(f.exists() for f in files):
            rgb = load_rgb(path)
            template = ms.TEMPLATE_NAMES[int(np.random.default_rng([seed, int(i)]).integers(len(ms.TEMPLATE_NAMES)))]
            images = [rgb] + [ms.draw_mask(rgb, lm, template, incorrect, np.random.default_rng([seed, int(i), 1]))[0]
                              for incorrect in (False, True)]
            for f, im in zip(files, images):
                tmp = f.with_suffix(".tmp.jpg")
                cv2.imwrite(str(tmp), cv2.cvtColor(im, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, SYN_JPEG_QUALITY])
                tmp.replace(f)
        box = ds.landmark_box(lm).astype(np.float32)[None]
        out += [ImageRecord("syn", f, box.copy(), np.array([CLASSES.index(k)], np.int64), group=f"mtfl{i}")
                for f, k in zip(files, names)]
    return out


def list_all(data: Path = DATA, sources=SOURCES, limit: int | None = None) -> list[ImageRecord]:
    """All image records of `sources`; `limit` keeps the first n per source (for tests)."""
    readers = {"ilc": list_ilc, "fmd": list_fmd, "mfn": list_mfn,
               "syn": lambda d: list_syn(d, n=-(-limit // 3) if limit else SYN_FACES),
               "adi": lambda d: list_scene(d, "adi"), "mac": lambda d: list_scene(d, "mac")}
    out = []
    for s in sources:
        recs = readers[s](data)
        out += recs[:limit] if limit else recs
    return out


# ---------------------------------------------------------------- split


def with_placeholders(faces: "FaceSet", sel: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels and split groups of faces `sel` (one source, in file order) with that source's
    SPLIT_PLACEHOLDERS appended as faces of their own groups, the groups numbered in order of
    their first photo as duplicate_groups numbers them. -> (labels, groups, n appended)."""
    names = [Path(faces.paths[i]).name for i in faces.image[sel]]
    return placeholder_groups(faces.labels[sel], faces.group[sel], faces.image[sel], names, source)


def placeholder_groups(labels: np.ndarray, groups: np.ndarray, image: np.ndarray, names: list[str],
                       source: str) -> tuple[np.ndarray, np.ndarray, int]:
    """with_placeholders on plain arrays: per face its label, duplicate group, image index (in
    file order) and image file name. Shared by the classifier's split (split_faces) and the
    detector's (ilc_split), so both hold out the same photos."""
    places = SPLIT_PLACEHOLDERS.get(source, ())
    if not places:
        return labels, groups, 0
    img = image - image.min()
    first = {}
    for g, i in zip(groups, img):
        first[g] = min(first.get(g, i), i)
    gmin = np.array([first[g] for g in groups], np.int64)
    extra_labels, extra_pos = [], []
    for prefix, labs in places:
        if any(n.startswith(prefix) for n in names):    # still there: nothing to stand in for
            continue
        pos = len({n for n in names if n < prefix})     # photos before it in file order
        gmin = np.where(gmin >= pos, gmin + 1, gmin)
        extra_pos = [p + (p >= pos) for p in extra_pos] + [pos] * len(labs)
        extra_labels += [CLASSES.index(c) for c in labs]
    return (np.r_[labels, np.array(extra_labels, np.int64)],
            np.r_[gmin, np.array(extra_pos, np.int64)], len(extra_labels))


# ---------------------------------------------------------------- crops


def _context_windows(boxes: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    win = classifier_windows(boxes, config)
    c = (win[:, :2] + win[:, 2:]) / 2
    half = (win[:, 2:3] - win[:, 0:1]) * CONTEXT / 2
    return torch.cat([c - half, c + half], dim=1)


def boxes_in_context(boxes: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """Face boxes [N,4] in image pixels -> the same boxes in pixels of their context crop."""
    ctx = _context_windows(boxes, config)
    scale = CONTEXT_SIZE / (ctx[:, 2:3] - ctx[:, 0:1])
    return (boxes - ctx[:, [0, 1, 0, 1]]) * scale


@dataclass
class FaceSet:
    """All faces, flat. context: uint8 [N, CONTEXT_SIZE, CONTEXT_SIZE, 3] RGB; ctx_boxes: face
    boxes in context pixels [N, 4]; boxes: face boxes in image pixels; size: short side of the
    face box in image pixels; image: index of the image record; group: duplicate group (unique
    across sources)."""

    source: np.ndarray
    image: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    size: np.ndarray
    group: np.ndarray
    context: np.ndarray
    ctx_boxes: np.ndarray
    paths: list

    def __len__(self):
        return len(self.labels)


def build_faceset(records: list[ImageRecord], config: ClassifierConfig,
                  progress: bool = True) -> FaceSet:
    """Decode every image once: hash it (and its mirror for crop sources), cut context crops."""
    from tqdm import tqdm

    n_faces = sum(len(r.labels) for r in records)
    context = np.zeros((n_faces, CONTEXT_SIZE, CONTEXT_SIZE, 3), np.uint8)
    ctx_boxes = np.zeros((n_faces, 4), np.float32)
    hashes, mirrors = [], []
    k = 0
    for r in tqdm(records, desc="decode+crop", disable=not progress, mininterval=2):
        rgb = load_rgb(r.path)
        hashes.append(dhash(rgb))
        mirrors.append(dhash(rgb[:, ::-1]))
        boxes = torch.from_numpy(r.boxes)
        if r.source in SCENE_SOURCES:
            img, shift = rgb, 0.0
        else:  # edge-pad crop datasets (see PAD)
            p = int(round(max(rgb.shape[:2]) * PAD))
            img, shift = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_REPLICATE), float(p)
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
        crops = crop_and_resize(t, _context_windows(boxes + shift, config), CONTEXT_SIZE)
        m = len(r.labels)
        context[k:k + m] = crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        ctx_boxes[k:k + m] = boxes_in_context(boxes, config).numpy()
        k += m
    # duplicate groups per source, made unique across sources
    rec_source = np.array([r.source for r in records])
    rec_group = np.zeros(len(records), np.int64)
    hashes = np.array(hashes, np.uint64)
    mirrors = np.array(mirrors, np.uint64)
    offset = 0
    for s in SOURCES:
        idx = np.nonzero(rec_source == s)[0]
        if len(idx) == 0:
            continue
        keys = [records[i].group for i in idx]
        if all(k is not None for k in keys):   # groups given by the source (syn)
            g = np.unique(keys, return_inverse=True)[1].astype(np.int64)
        else:
            g = duplicate_groups(hashes[idx], None if s in SCENE_SOURCES else mirrors[idx])
        rec_group[idx] = g + offset
        offset += len(records)
    per_face = np.concatenate([np.full(len(r.labels), i) for i, r in enumerate(records)])
    boxes = np.concatenate([r.boxes for r in records]).astype(np.float32)
    wh = boxes[:, 2:] - boxes[:, :2]
    return FaceSet(source=rec_source[per_face], image=per_face,
                   labels=np.concatenate([r.labels for r in records]), boxes=boxes,
                   size=wh.min(1), group=rec_group[per_face], context=context,
                   ctx_boxes=ctx_boxes, paths=[str(r.path) for r in records])


def concat_facesets(sets: list[FaceSet]) -> FaceSet:
    """Join face sets (e.g. one per source): image indices and groups are re-based so they stay
    unique."""
    img_off, grp_off, parts = 0, 0, []
    for fs in sets:
        _, grp = np.unique(fs.group, return_inverse=True)
        parts.append((fs, fs.image + img_off, grp + grp_off))
        img_off += len(fs.paths)
        grp_off += int(grp.max()) + 1 if len(grp) else 0
    cat = lambda name: np.concatenate([getattr(fs, name) for fs, _, _ in parts])
    return FaceSet(source=cat("source"), image=np.concatenate([p[1] for p in parts]),
                   labels=cat("labels"), boxes=cat("boxes"), size=cat("size"),
                   group=np.concatenate([p[2] for p in parts]), context=cat("context"),
                   ctx_boxes=cat("ctx_boxes"), paths=[q for fs, _, _ in parts for q in fs.paths])


def cache_key(records: list[ImageRecord], config: ClassifierConfig) -> str:
    key = json.dumps([[str(r.path), r.boxes.tolist(), r.labels.tolist()] + ([r.group] if r.group else [])
                      for r in records]
                     + [config.margin, CONTEXT, CONTEXT_SIZE, PAD, "replicate", DUP_HAMMING])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cached_faceset(records: list[ImageRecord], config: ClassifierConfig, cache_dir: Path = CACHE_DIR,
                   progress: bool = True) -> FaceSet:
    """build_faceset per source, each stored in runs/cache (gitignored) under a key of its
    records and the crop settings, then joined."""
    sets = []
    for s in SOURCES:
        recs = [r for r in records if r.source == s]
        if not recs:
            continue
        f = Path(cache_dir) / f"faces_{s}_{cache_key(recs, config)}.npz"
        if f.exists():
            z = np.load(f, allow_pickle=False)
            sets.append(FaceSet(**{k: z[k] for k in z.files if k != "paths"}, paths=list(z["paths"])))
            continue
        fs = build_faceset(recs, config, progress)
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: v for k, v in fs.__dict__.items() if k != "paths"}, paths=np.array(fs.paths))
        tmp.replace(f)
        sets.append(fs)
    return concat_facesets(sets)


def exact_crops(faces: FaceSet, idx: np.ndarray, config: ClassifierConfig) -> torch.Tensor:
    """Normalised crops [len(idx), 3, S, S] of faces `idx`, made exactly as inference does:
    pipeline.engine.classifier.face_crops on the decoded image with all that image's listed boxes."""
    idx = np.asarray(idx)
    out = torch.zeros((len(idx), 3, config.crop_size, config.crop_size))
    for im in np.unique(faces.image[idx]):
        sel = np.nonzero(faces.image[idx] == im)[0]
        rgb = load_rgb(Path(faces.paths[im]))
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        out[sel] = face_crops(t, torch.from_numpy(faces.boxes[idx[sel]]), config)
    return out


def image_hashes(paths: list[str], cache_dir: Path = CACHE_DIR) -> tuple[np.ndarray, np.ndarray]:
    """dHash of each image and of its mirror -> (uint64 [N], uint64 [N]); cached in runs/cache
    under a key of the paths."""
    key = hashlib.sha256(json.dumps(list(map(str, paths))).encode()).hexdigest()[:16]
    f = Path(cache_dir) / f"dhash_{key}.npz"
    if f.exists():
        z = np.load(f)
        return z["hash"], z["mirror"]
    h, m = [], []
    for p in paths:
        rgb = load_rgb(Path(p))
        h.append(dhash(rgb))
        m.append(dhash(rgb[:, ::-1]))
    h, m = np.array(h, np.uint64), np.array(m, np.uint64)
    f.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f, hash=h, mirror=m)
    return h, m


def cross_source_duplicates(faces: FaceSet, sources=TWO_CLASS_SOURCES, against: str = "ilc",
                            max_dist: int = DUP_HAMMING) -> np.ndarray:
    """bool [N]: faces of `sources` whose image is a near-duplicate (dHash within max_dist
    bits, also mirrored) of any `against` image. Training drops them, so a photo that is in
    ILC's validation split cannot come back through another set (and the reverse)."""
    out = np.zeros(len(faces), bool)
    ref_img = np.unique(faces.image[faces.source == against])
    new_img = np.unique(faces.image[np.isin(faces.source, sources)])
    if not len(ref_img) or not len(new_img):
        return out
    rh, rm = image_hashes([faces.paths[i] for i in ref_img])
    nh, _ = image_hashes([faces.paths[i] for i in new_img])
    close = np.zeros(len(new_img), bool)
    for ref in (rh, rm):
        close |= (np.bitwise_count(nh[:, None] ^ ref[None, :]) <= max_dist).any(1)
    out[np.isin(faces.image, new_img[close])] = True
    return out
