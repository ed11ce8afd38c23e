"""Safe image decoding for the CLI and the pages. Never trusts the file: sizes are checked
from the header before pixels are decoded, and every failure is an ImageError with a message a
person can act on.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Largest image file accepted (50 MB)."""
MAX_PIXELS = 40_000_000
"""Largest image accepted, in pixels (40 MP, e.g. 7300 x 5475). Larger images are refused."""
MIN_SIDE = 12
"""Smallest side accepted: P-Net's window."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageError(ValueError):
    """An input that is not a usable image. str(err) is the user-facing reason."""


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded image bytes -> HxWx3 uint8 RGB, EXIF orientation applied.

    Raises ImageError for empty, oversized, truncated, corrupt or unsupported data.
    """
    if not data:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: the file is {len(data) / 1e6:.0f} MB; the limit is "
                         f"{MAX_FILE_BYTES / 1e6:.0f} MB")
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
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{path}: no such file")
    if not p.is_file():
        raise ImageError(f"{path}: not a file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: the file is {size / 1e6:.0f} MB; the limit is "
                         f"{MAX_FILE_BYTES / 1e6:.0f} MB")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read the file ({e.strerror or e})") from None
    return decode_image(data, str(path))


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
