"""Short test videos made of real photos from shared/data: a camera panning across a group
photo, and single faces (cut from real photos) walking across a plain background, with gaps.
Every clip knows how many people are really in it."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from tests.support.data import DATA, DLIB

ILC = DATA / "scenes" / "ilc2021"
GROUP_PHOTO = DLIB / "2008_002506.jpg"      # 3 people, faces ~85-100 px
# single-face photos (VOC-annotated): one face each, distinct people
WALKERS = ("01db7651291d60133c0e3ece7ff87074",   # without_mask
           "0e8348d3a43992b83ee43657c0fafb48",   # with_mask
           "0d6a0cb3eccd61f5a661352bae5bd9e2")   # with_mask


def read_rgb(path) -> np.ndarray:
    from pipeline.media.images import read_image
    return read_image(path)


def face_patch(stem: str, face_px: int = 80) -> np.ndarray:
    """The face of an ilc2021 photo with some context around it, scaled so that the face is
    about face_px wide."""
    import cv2
    root = ET.parse(ILC / "annotations" / f"{stem}.xml").getroot()
    b = [int(float(root.find(f"object/bndbox/{k}").text)) for k in ("xmin", "ymin", "xmax", "ymax")]
    img = read_rgb(ILC / "images" / f"{stem}.jpg")
    w, h = b[2] - b[0], b[3] - b[1]
    x1, y1 = max(0, b[0] - w // 2), max(0, b[1] - h // 2)
    x2, y2 = min(img.shape[1], b[2] + w // 2), min(img.shape[0], b[3] + h // 2)
    patch = img[y1:y2, x1:x2]
    s = face_px / w
    return cv2.resize(patch, (max(1, int(patch.shape[1] * s)), max(1, int(patch.shape[0] * s))),
                      interpolation=cv2.INTER_AREA)


def background(w=320, h=240, seed=0) -> np.ndarray:
    """A plain wall with a little texture and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 150 + 25 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    img = np.stack([base, base * 0.95, base * 0.9], axis=2) + rng.normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def paste(canvas: np.ndarray, patch: np.ndarray, cx: float, cy: float) -> np.ndarray:
    out = canvas.copy()
    ph, pw = patch.shape[:2]
    x1, y1 = int(round(cx - pw / 2)), int(round(cy - ph / 2))
    sx1, sy1 = max(0, -x1), max(0, -y1)
    dx1, dy1 = max(0, x1), max(0, y1)
    dx2, dy2 = min(out.shape[1], x1 + pw), min(out.shape[0], y1 + ph)
    if dx2 > dx1 and dy2 > dy1:
        out[dy1:dy2, dx1:dx2] = patch[sy1:sy1 + dy2 - dy1, sx1:sx1 + dx2 - dx1]
    return out


def pan_clip(n: int = 16, window=(300, 225), x_end: int = 200) -> list[np.ndarray]:
    """A camera panning left to right across the 3-person group photo: the left person leaves
    the view and the right one enters it. 3 people."""
    img = read_rgb(GROUP_PHOTO)
    w, h = window
    y = (img.shape[0] - h) // 2
    return [np.ascontiguousarray(img[y:y + h, int(round(x)):int(round(x)) + w])
            for x in np.linspace(0, x_end, n)]


def walk(patch, n: int, x_from: float, x_to: float, y: float, bg) -> list[np.ndarray]:
    return [paste(bg, patch, x, y + 3 * np.sin(k / 2)) for k, x in enumerate(np.linspace(x_from, x_to, n))]


def door_clip(fps: int = 6) -> tuple[list[np.ndarray], int, list[str]]:
    """Person A walks past left to right (1 s), nobody for 3 s, A comes back (1 s), 0.5 s
    later person B comes in from the left (1 s). With a 2 s timeout that is 3 people. Returns frames, people,
    and the real labels in order of appearance."""
    bg = background()
    a, b = face_patch(WALKERS[0]), face_patch(WALKERS[1])
    frames = walk(a, fps, 90, 230, 120, bg)
    frames += [bg] * (3 * fps)
    frames += walk(a, fps, 100, 240, 115, bg)
    frames += [bg] * (fps // 2)
    frames += walk(b, fps, 60, 200, 125, bg)
    return frames, 3, ["no_mask", "no_mask", "mask"]


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """frames (RGB uint8, same size) -> an H.264 mp4 (mpeg4 when x264 is missing)."""
    import av
    from fractions import Fraction
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        try:
            st = out.add_stream("libx264", rate=fps)
            st.options = {"crf": "18", "preset": "veryfast"}
        except Exception:
            st = out.add_stream("mpeg4", rate=fps)
            st.bit_rate = 4_000_000
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.time_base = Fraction(1, fps)
        for k, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = k
            for pkt in st.encode(vf):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path
