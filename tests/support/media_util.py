"""Test media made from real photos: short videos (moving crop), broken videos, frames."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from tests.support.data import DLIB  # noqa: E402
GROUP3 = DLIB / "2008_002506.jpg"      # 3 people, no masks; dlib's XML boxes 3 faces
NO_FACES = DLIB / "dogs.jpg"           # dogs, no people


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size else img


def moving_crop_frames(photo: Path = GROUP3, n: int = 20, size=(320, 240), step: int = 4):
    """n RGB frames of `size`: a window panning across the photo (faces stay in view)."""
    img = read_rgb(photo)
    w, h = size
    cw, ch = int(img.shape[1] * 0.9), int(img.shape[0] * 0.9)
    for k in range(n):
        x = min(img.shape[1] - cw, k * step)
        y = min(img.shape[0] - ch, k * step // 2)
        yield np.ascontiguousarray(cv2.resize(img[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA))


def write_video(path: Path, frames, fps: int = 10, codec: str = "libx264", fmt: str = "mp4") -> Path:
    """RGB frames -> a video file. codec "ffv1" (fmt "matroska") stores the frames losslessly."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = {"mjpeg": "yuvj420p", "ffv1": "bgr0"}.get(codec, "yuv420p")
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return Path(path)


def jpeg_copy(rgb: np.ndarray, quality: int) -> np.ndarray:
    """An RGB frame after a JPEG round trip at `quality` (20: blocky enough for the camera weights)."""
    ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])


def mixed_clip(path: Path, blocky: tuple[int, ...], n: int = 10, size=(320, 240)) -> tuple[Path, list[np.ndarray]]:
    """A lossless clip (FFV1) of n panning frames of the group photo, the frames numbered in
    `blocky` as JPEG-20 copies: per frame, "auto" would switch weight sets. -> (path, frames)."""
    frames = [jpeg_copy(f, 20) if k in blocky else f for k, f in enumerate(moving_crop_frames(n=n, size=size))]
    return write_video(path, frames, codec="ffv1", fmt="matroska"), frames


def make_test_video(path: Path, n: int = 20, size=(320, 240), fps: int = 10, **kw) -> Path:
    return write_video(path, moving_crop_frames(n=n, size=size), fps=fps, **kw)


def corrupt_packets(src: Path, dst: Path, bad=(5,)) -> Path:
    """Copy an MJPEG .avi, replacing the given packets with garbage (each fails to decode)."""
    rng = np.random.default_rng(0)
    with av.open(str(src)) as ic, av.open(str(dst), "w", format="avi") as oc:
        ist = ic.streams.video[0]
        ost = oc.add_stream_from_template(ist)
        for i, p in enumerate(ic.demux(ist)):
            if p.size == 0:
                continue
            if i in bad:
                q = av.Packet(b"\xff\xd8" + rng.integers(0, 256, p.size, dtype=np.uint8).tobytes())
                q.pts, q.dts, q.time_base = p.pts, p.dts, p.time_base
                p = q
            p.stream = ost
            oc.mux(p)
    return Path(dst)


def zero_frame_video(path: Path) -> Path:
    """A valid AVI container with an MJPEG video stream and no frames."""
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mjpeg", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        c.start_encoding()
    return Path(path)


def no_stream_mp4(path: Path) -> Path:
    """An mp4 whose muxer wrote no stream (an encoder was opened, no frame ever sent)."""
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    return Path(path)
