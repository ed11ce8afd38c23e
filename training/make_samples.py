"""Build the app's bundled sample photos in pipeline/samples/ (under ~1 MB in all).

    python -m training.make_samples [--out pipeline/samples] [--no-label-check]

Only sets whose licence allows redistribution are used:
  * crops/fmd            (MIT)            - masked and unmasked face crops
  * synthetic/maskedfacenet (CC BY-NC-SA 4.0, Cabani et al., "MaskedFace-Net") - masks worn wrong
  * scenes/dlib_faces    (Boost 1.0)      - a group photo without masks
Never scenes/ilc2021 (no licence).

The collage shows all three classes. Candidates are taken in sorted file order and kept when
the detector finds exactly one confident face in the collage cell and (unless --no-label-check)
the committed classifier gives it the intended label, so the demo shows what it should. The
chosen files and their licences are written to SOURCES.md next to the images.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from training.paths import DATA, ROOT

OUT = ROOT / "pipeline" / "samples"
CELL = 300          # collage cell side, px
FACE = 220          # longest side of a crop inside its cell, px
BG = (228, 231, 236)

LICENCES = {
    "fmd": ("chandrikadeb7/Face-Mask-Detection @ 7e500749 (crops/fmd)", "MIT License",
            "Copyright (c) 2021 chandrikadeb7"),
    "mfn": ("MaskedFace-Net samples via marellanoc/MaskON @ a332fc10 (synthetic/maskedfacenet)",
            "CC BY-NC-SA 4.0 (Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International)",
            'Cabani, Hammoudi, Benhabiles, Melkemi, "MaskedFace-Net - A dataset of correctly/incorrectly '
            'masked face images in the context of COVID-19", Smart Health 19 (2021); faces from FFHQ (NVIDIA, '
            'CC BY-NC-SA 4.0)'),
    "dlib": ("davisking/dlib @ 3d40bf57 examples/faces (scenes/dlib_faces), images from PASCAL VOC 2011",
             "Boost Software License 1.0", "dlib examples"),
}

# (class wanted, source key, folder relative to DATA, filename glob)
POOLS = {
    "mask": ("fmd", "crops/fmd/with_mask", "*.jpg"),
    "incorrect": ("mfn", "synthetic/maskedfacenet/images", "*_Chin.jpg"),
    "no_mask": ("fmd", "crops/fmd/without_mask", "*.jpg"),
}
LAYOUT = [["mask", "incorrect", "no_mask"], ["no_mask", "mask", "incorrect"]]


def cell_image(path: Path) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    img.thumbnail((FACE, FACE), Image.LANCZOS)
    if max(img.size) < FACE:  # small crops are scaled up to the same size
        s = FACE / max(img.size)
        img = img.resize((round(img.size[0] * s), round(img.size[1] * s)), Image.LANCZOS)
    cell = Image.new("RGB", (CELL, CELL), BG)
    cell.paste(img, ((CELL - img.size[0]) // 2, (CELL - img.size[1]) // 2))
    return np.asarray(cell)


def accept(engine, cell: np.ndarray, wanted: str, check_label: bool) -> bool:
    faces = engine.detect(cell)
    if len(faces) != 1 or faces[0].score < 0.95 or faces[0].width < 80:
        return False
    return not check_label or (faces[0].label == wanted and faces[0].confidence >= 0.8)


def pick(engine, wanted: str, count: int, check_label: bool, skip: int = 0) -> list[Path]:
    _, folder, pattern = POOLS[wanted]
    chosen = []
    for p in sorted((DATA / folder).glob(pattern))[skip:]:
        try:
            ok = accept(engine, cell_image(p), wanted, check_label)
        except OSError:
            continue
        if ok:
            chosen.append(p)
            if len(chosen) == count:
                return chosen
    raise SystemExit(f"not enough {wanted} candidates in {folder}")


def collage(paths_by_slot: list[list[Path]]) -> Image.Image:
    rows = [np.concatenate([cell_image(p) for p in row], axis=1) for row in paths_by_slot]
    return Image.fromarray(np.concatenate(rows, axis=0))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-label-check", action="store_true",
                    help="do not require the classifier to label the picks right (for a dev classifier)")
    ap.add_argument("--skip", type=int, default=40, help="skip the first N candidates of each pool")
    a = ap.parse_args(argv)

    from pipeline.engine.mask_detector import MaskDetector
    engine = MaskDetector.load("cpu")
    check = not a.no_label_check
    picks = {c: pick(engine, c, 2, check, a.skip) for c in POOLS}
    used = {c: iter(v) for c, v in picks.items()}
    slots = [[next(used[c]) for c in row] for row in LAYOUT]
    a.out.mkdir(parents=True, exist_ok=True)

    files = {}
    img = collage(slots)
    name = "three_classes_collage.jpg"
    img.save(a.out / name, quality=88, optimize=True)
    files[name] = {"what": "collage of six faces: 2 mask, 2 incorrect, 2 no_mask",
                   "parts": [[str(p.relative_to(DATA)) for p in row] for row in slots]}

    group = DATA / "scenes/dlib_faces/2008_002506.jpg"
    name = "group_no_masks.jpg"
    Image.open(group).convert("RGB").save(a.out / name, quality=90, optimize=True)
    files[name] = {"what": "three people without masks (PASCAL VOC 2011 photo from dlib's examples)",
                   "parts": [[str(group.relative_to(DATA))]]}

    name = "masks_two_ways.jpg"
    pair = [[picks["mask"][0], picks["incorrect"][1]]]
    collage(pair).save(a.out / name, quality=88, optimize=True)
    files[name] = {"what": "a mask worn right next to one worn below the nose",
                   "parts": [[str(p.relative_to(DATA)) for p in row] for row in pair]}

    check_counts = {n: len(engine.detect(np.asarray(Image.open(a.out / n).convert("RGB")))) for n in files}
    write_sources(a.out, files)
    total = sum((a.out / n).stat().st_size for n in files)
    print(json.dumps({"files": list(files), "faces_found": check_counts, "total_bytes": total}, indent=1))


def _source_of(rel: str) -> str:
    if rel.startswith("crops/fmd"):
        return "fmd"
    if rel.startswith("synthetic/maskedfacenet"):
        return "mfn"
    return "dlib"


def write_sources(out: Path, files: dict) -> None:
    lines = ["# Bundled sample photos: sources and licences", "",
             "Made by `python -m training.make_samples` from the project's training data "
             "(`../shared/data`). Only sets whose licence allows redistribution are used; nothing from "
             "`scenes/ilc2021` (no licence). The faces come from the same public sets the classifier "
             "was trained on, so these samples show the app working; they are not a test of it.", ""]
    for name, info in files.items():
        keys = sorted({_source_of(r) for row in info["parts"] for r in row})
        lines += [f"## `{name}`", "", info["what"] + ".", ""]
        lines += ["| part | from |", "|---|---|"]
        for row in info["parts"]:
            for r in row:
                lines.append(f"| `{r}` | {LICENCES[_source_of(r)][0]} |")
        lines += ["", "Licence: " + "; ".join(f"{LICENCES[k][1]} ({LICENCES[k][2]})" for k in keys) + ".", ""]
    lines += ["## Licence texts", "",
              "- MIT License: `../shared/data/crops/fmd/LICENSE` (Copyright (c) 2021 chandrikadeb7). "
              "Permission is granted to use, copy, modify and distribute with this notice.",
              "- Boost Software License 1.0: `../shared/data/scenes/dlib_faces/LICENSE.txt`; "
              "https://www.boost.org/LICENSE_1_0.txt",
              "- CC BY-NC-SA 4.0: https://creativecommons.org/licenses/by-nc-sa/4.0/ . "
              "Attribution: Cabani et al., \"MaskedFace-Net\" (https://github.com/cabani/MaskedFace-Net). "
              "Non-commercial use only; adaptations (the collages that contain these faces) are shared "
              "under the same licence.", ""]
    (out / "SOURCES.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
