"""Build the app's bundled samples in pipeline/samples/ (about 1 MB in all): three photos and
a short clip for the Video page.

    python -m training.make_samples [--out pipeline/samples] [--no-label-check] [--clip-only]

Only sets whose licence allows redistribution are used:
  * crops/fmd            (MIT)            - masked and unmasked face crops
  * synthetic/maskedfacenet (CC BY-NC-SA 4.0, Cabani et al., "MaskedFace-Net") - masks worn wrong
  * scenes/dlib_faces    (Boost 1.0)      - a group photo without masks
Never scenes/ilc2021 (no licence).

The collage shows all three classes. Candidates are taken in sorted file order and kept when
the detector finds exactly one confident face in the collage cell and (unless --no-label-check)
the committed classifier gives it the intended label, so the demo shows what it should. The
chosen files and their licences are written to SOURCES.md next to the images.

The clip (sample_clip.mp4, H.264 through PyAV) shows six people, with a mask, without and with
one below the nose, passing a camera from right to left. Its faces are a fixed list
(CLIP_PEOPLE, picked once the same way), so the clip does not change when the weights do;
drawing and encoding are deterministic (one encoder thread). After writing it, the script runs
it through pipeline.streams.video.process_video, as the Video page does, and stops with an error unless
more than one class of people is found. --clip-only rebuilds just the clip and its section of
SOURCES.md, leaving the photos as they are.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import av
import numpy as np
from PIL import Image

from pipeline.settings import SAMPLES_DIR
from training.paths import DATA

OUT = SAMPLES_DIR
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


CLIP_NAME = "sample_clip.mp4"
CLIP_SIZE = (640, 360)      # width, height
CLIP_FPS = 12
CLIP_SECONDS = 6.0
CLIP_SPEED = 190.0          # px/s, right to left: each person is in view for about 4 s
CLIP_CRF = 23               # libx264 quality (the app's own default): about 75 kB in all
CLIP_PEOPLE = (
    # (file under DATA, what it shows, x of the face centre at t=0, y of the centre, height px)
    ("crops/fmd/with_mask/0_0_0_copy_4_2.jpg", "mask", 110, 170, 176),
    ("synthetic/maskedfacenet/images/01098_Mask_Mouth_Chin.jpg", "incorrect", 340, 190, 170),
    ("crops/fmd/without_mask/0_0_chenhaomin_0023.jpg", "no_mask", 570, 172, 172),
    ("crops/fmd/with_mask/0_0_0_copy_51.jpg", "mask", 800, 188, 176),
    ("synthetic/maskedfacenet/images/01103_Mask_Mouth_Chin.jpg", "incorrect", 1030, 170, 170),
    ("crops/fmd/without_mask/0_0_chenhe_0031.jpg", "no_mask", 1260, 186, 172),
)
CLIP_WHAT = ("six people passing a camera from right to left, two with a mask, two with it below "
             "the nose, two without; 6 s, 640x360, 12 fps, H.264, no sound")


def clip_backdrop() -> np.ndarray:
    """A plain wall, lighter at the top (no texture: it costs few bits and holds no face)."""
    w, h = CLIP_SIZE
    top, bottom = np.array([226, 229, 234], np.float32), np.array([190, 195, 204], np.float32)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3)).round().astype(np.uint8)


def clip_sprite(path: Path, height: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    width = round(img.size[0] * height / img.size[1])
    return np.asarray(img.resize((width, height), Image.LANCZOS))


def paste(frame: np.ndarray, sprite: np.ndarray, cx: float, cy: float) -> None:
    """Paste sprite centred at (cx, cy), clipped to the frame."""
    sh, sw = sprite.shape[:2]
    fh, fw = frame.shape[:2]
    x0, y0 = int(round(cx - sw / 2)), int(round(cy - sh / 2))
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(fw, x0 + sw), min(fh, y0 + sh)
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = sprite[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]


def clip_frames():
    """The clip's RGB frames: each person moves left at CLIP_SPEED with a small walking bob."""
    backdrop = clip_backdrop()
    sprites = [(clip_sprite(DATA / rel, height), x, y) for rel, _, x, y, height in CLIP_PEOPLE]
    for k in range(round(CLIP_SECONDS * CLIP_FPS)):
        t = k / CLIP_FPS
        frame = backdrop.copy()
        for i, (sprite, x, y) in enumerate(sprites):
            paste(frame, sprite, x - CLIP_SPEED * t, y + 4 * math.sin(2 * math.pi * 1.7 * t + i))
        yield frame


def write_clip(path: Path, frames) -> None:
    """H.264 mp4 (yuv420p, faststart) through PyAV, with the encoder the app uses."""
    from pipeline.streams.video import h264_encoder
    encoder = h264_encoder()
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream(encoder, rate=CLIP_FPS)
        stream.width, stream.height = CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1                     # same bytes on every run
        if encoder == "libx264":
            stream.options = {"crf": str(CLIP_CRF), "preset": "slow", "tune": "stillimage"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def check_clip(engine, path: Path) -> dict:
    """Run the clip through the Video page's path; more than one class of people, or exit."""
    import tempfile

    from pipeline.people.counter import PeopleCounter
    from pipeline.streams.video import process_video
    with tempfile.TemporaryDirectory() as tmp:
        s = process_video(path, Path(tmp) / "out.mp4", engine, people=PeopleCounter(source="sample"))
    people = {c: n for c, n in s.people_counts.items() if n}
    if len(people) < 2:
        raise SystemExit(f"the sample clip shows people of one class only: {people}")
    return {"frames": s.frames_written, "people": s.people, "people_counts": people}


def make_clip(engine, out: Path) -> dict:
    write_clip(out / CLIP_NAME, clip_frames())
    return check_clip(engine, out / CLIP_NAME)


def clip_entry() -> dict:
    return {"what": CLIP_WHAT, "parts": [[rel for rel, *_ in CLIP_PEOPLE]]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-label-check", action="store_true",
                    help="do not require the classifier to label the picks right (for a dev classifier)")
    ap.add_argument("--skip", type=int, default=40, help="skip the first N candidates of each pool")
    ap.add_argument("--clip-only", action="store_true",
                    help="rebuild only the sample clip (and its part of SOURCES.md)")
    a = ap.parse_args(argv)

    from pipeline.engine.mask_detector import MaskDetector
    engine = MaskDetector.load("cpu")
    a.out.mkdir(parents=True, exist_ok=True)
    if a.clip_only:
        clip = make_clip(engine, a.out)
        update_sources(a.out, CLIP_NAME, clip_entry())
        print(json.dumps({"files": [CLIP_NAME], "clip": clip,
                          "total_bytes": (a.out / CLIP_NAME).stat().st_size}, indent=1))
        return
    check = not a.no_label_check
    picks = {c: pick(engine, c, 2, check, a.skip) for c in POOLS}
    used = {c: iter(v) for c, v in picks.items()}
    slots = [[next(used[c]) for c in row] for row in LAYOUT]

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
    clip = make_clip(engine, a.out)
    files[CLIP_NAME] = clip_entry()
    write_sources(a.out, files)
    total = sum((a.out / n).stat().st_size for n in files)
    print(json.dumps({"files": list(files), "faces_found": check_counts, "clip": clip,
                      "total_bytes": total}, indent=1))


def _source_of(rel: str) -> str:
    if rel.startswith("crops/fmd"):
        return "fmd"
    if rel.startswith("synthetic/maskedfacenet"):
        return "mfn"
    return "dlib"


def source_section(name: str, info: dict) -> list[str]:
    """The lines of one file's section of SOURCES.md: what it is, its parts, their licences."""
    keys = sorted({_source_of(r) for row in info["parts"] for r in row})
    lines = [f"## `{name}`", "", info["what"] + ".", "", "| part | from |", "|---|---|"]
    for row in info["parts"]:
        for r in row:
            lines.append(f"| `{r}` | {LICENCES[_source_of(r)][0]} |")
    return lines + ["", "Licence: " + "; ".join(f"{LICENCES[k][1]} ({LICENCES[k][2]})" for k in keys) + ".", ""]


def sections_of(path: Path) -> dict[str, list[str]]:
    """{file name: lines} of the per-file sections of an existing SOURCES.md."""
    out: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("## "):
            name = line[3:].strip()
            current = name.strip("`") if name.startswith("`") else None
            if current is not None:
                out[current] = []
        if current is not None:
            out[current].append(line)
    return out


def update_sources(out: Path, name: str, info: dict) -> None:
    """Rewrite SOURCES.md with one file's section new and the others as they were."""
    sections = sections_of(out / "SOURCES.md")
    sections[name] = source_section(name, info)
    write_sections(out, sections)


def write_sources(out: Path, files: dict) -> None:
    write_sections(out, {name: source_section(name, info) for name, info in files.items()})


def write_sections(out: Path, sections: dict[str, list[str]]) -> None:
    lines = ["# Bundled samples: sources and licences", "",
             "Made by `python -m training.make_samples` from the project's training data "
             "(`../shared/data`). Only sets whose licence allows redistribution are used; nothing from "
             "`scenes/ilc2021` (no licence). The faces come from the same public sets the classifier "
             "was trained on, so these samples show the app working; they are not a test of it.", ""]
    for section in sections.values():
        lines += section
    lines += ["## Licence texts", "",
              "- MIT License: `../shared/data/crops/fmd/LICENSE` (Copyright (c) 2021 chandrikadeb7). "
              "Permission is granted to use, copy, modify and distribute with this notice.",
              "- Boost Software License 1.0: `../shared/data/scenes/dlib_faces/LICENSE.txt`; "
              "https://www.boost.org/LICENSE_1_0.txt",
              "- CC BY-NC-SA 4.0: https://creativecommons.org/licenses/by-nc-sa/4.0/ . "
              "Attribution: Cabani et al., \"MaskedFace-Net\" (https://github.com/cabani/MaskedFace-Net). "
              "Non-commercial use only; adaptations (the collages and the clip that contain these faces) "
              "are shared under the same licence.", ""]
    (out / "SOURCES.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
