"""Safe image decoding for the CLI and the pages. Never trusts the file: sizes are checked
from the header before pixels are decoded, and every failure is an ImageError with a message a
person can act on.
"""
from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIB = 1024 * 1024
"""Every size limit of the project is stated in MiB (2**20 bytes): Streamlit's maxUploadSize
counts in the same unit."""
MAX_FILE_BYTES = 50 * MIB
"""Largest image file accepted (50 MiB)."""
MAX_PIXELS = 40_000_000
"""Largest image accepted, in pixels (40 MP, e.g. 7300 x 5475). Larger images are refused."""
MIN_SIDE = 12
"""Smallest side accepted: P-Net's window."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageError(ValueError):
    """An input that is not a usable image. str(err) is the user-facing reason."""


class NotRegularFileError(OSError):
    """A path that exists but is not a regular file (a folder, FIFO, socket or device).
    str(err) is "not a regular file: a named pipe (FIFO)" and the like."""


def mib(n_bytes: float) -> str:
    """A size as people read it next to a limit: "50 MiB", "52.4 MiB"."""
    v = n_bytes / MIB
    return f"{v:.0f} MiB" if v == round(v) else f"{v:.1f} MiB"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def open_regular_file(path: str | Path):
    """Open path for binary reading only if it is a regular file (symlinks followed).

    Never blocks: the path is checked with stat() before it is opened, so a FIFO without a
    writer, a device or a socket is refused without opening it, and the open itself is
    non-blocking and checked again with fstat() (the path could change in between).
    Raises FileNotFoundError, NotRegularFileError or another OSError."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(f"not a regular file: {_kind(st.st_mode)}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"not a regular file: {_kind(st.st_mode)}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded image bytes -> HxWx3 uint8 RGB, EXIF orientation applied.

    Raises ImageError for empty, oversized, truncated, corrupt or unsupported data.
    """
    if not data:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: the file is {mib(len(data))}; the limit is {mib(MAX_FILE_BYTES)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{name}: the image is {w}x{h} = {w * h / 1e6:.0f} MP; the limit "
                                 f"is {MAX_PIXELS / 1e6:.0f} MP. Downscale it and try again")
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a supported image (jpg, png, webp or bmp expected)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(f"{name}: the image is too large to decode safely "
                         f"(limit {MAX_PIXELS / 1e6:.0f} MP)") from None
    except OSError as e:  # truncated or corrupt data
        raise ImageError(f"{name}: the image data is corrupt or truncated ({e})") from None
    except Exception as e:  # any other decoder failure
        raise ImageError(f"{name}: could not decode the image ({type(e).__name__})") from None
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"{name}: the image is {img.size[0]}x{img.size[1]}; each side must be at "
                         f"least {MIN_SIDE} px")
    return to_rgb(img)


def to_rgb(img: Image.Image) -> np.ndarray:
    """A decoded PIL image -> HxWx3 uint8 RGB: transparency composited on white, 16- and 32-bit
    grey scaled to 8 bits, any other mode converted. The one conversion of the app and training."""
    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, rgba).convert("RGB")
        elif img.mode.startswith("I;16") or img.mode == "I":
            arr = np.asarray(img, dtype=np.float64)
            arr = (arr / max(arr.max(), 1) * 255).astype(np.uint8)
            img = Image.fromarray(arr).convert("RGB")
        else:
            img = img.convert("RGB")
    return np.array(img, dtype=np.uint8, copy=True)


def read_image(path: str | Path) -> np.ndarray:
    """Image file -> HxWx3 uint8 RGB. Raises ImageError with a clear reason."""
    try:
        with open_regular_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ImageError(f"{path}: the file is {mib(size)}; the limit is {mib(MAX_FILE_BYTES)}")
            data = fh.read(MAX_FILE_BYTES + 1)     # decode_image refuses it if it grew meanwhile
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except NotRegularFileError as e:
        raise ImageError(f"{path}: {e}") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read the file ({e.strerror or e})") from None
    return decode_image(data, str(path))


def image_size(path: str | Path) -> tuple[int, int]:
    """An image file's (width, height) as read_image returns it (EXIF orientation applied),
    from its header, without decoding the pixels. Raises ImageError when it is not an image."""
    try:
        with open_regular_file(path) as fh, Image.open(fh) as img:
            w, h = img.size
            turned = img.getexif().get(0x0112) in (5, 6, 7, 8)   # orientations that swap the sides
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (NotRegularFileError, UnidentifiedImageError, OSError) as e:
        raise ImageError(f"{path}: cannot read the image size ({e})") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: the image is too large to read safely") from None
    return (h, w) if turned else (w, h)


def expand_paths(paths: list[str]) -> list[str]:
    """CLI paths -> image paths in input order; a folder expands to its image files, sorted.
    Paths that are neither are passed through so that they get an error line."""
    out = []
    for p in paths:
        q = Path(p)
        if q.is_dir():
            out += [str(f) for f in sorted(q.iterdir())
                    if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        else:
            out.append(p)
    return out
