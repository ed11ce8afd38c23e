"""Safe decoding: odd and bad images give ImageError with a clear reason."""
import io

import numpy as np
import pytest
from PIL import Image

from training.paths import ROOT
from pipeline.media.images import (MAX_PIXELS, ImageError, decode_image, expand_paths, image_size,
                                   read_image)


def encode(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_rgb_jpeg_png_webp_bmp():
    arr = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    for fmt in ("JPEG", "PNG", "WEBP", "BMP"):
        out = decode_image(encode(Image.fromarray(arr), fmt))
        assert out.shape == (40, 60, 3) and out.dtype == np.uint8 and out.flags.writeable


def test_exif_orientation_applied():
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :10] = 255  # white stripe on the left
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (60, 40, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # stripe now on top


def test_image_size_reads_the_header_as_read_image_sees_it(tmp_path):
    """(width, height) without decoding, EXIF orientation applied, as read_image's shape."""
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    for orientation, fmt in ((1, "JPEG"), (6, "JPEG"), (8, "JPEG"), (3, "JPEG"), (None, "PNG")):
        exif = img.getexif()
        if orientation:
            exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        path.write_bytes(encode(img, fmt, **({"exif": exif.tobytes()} if orientation else {})))
        h, w = read_image(path).shape[:2]
        assert image_size(path) == (w, h) == ((40, 60) if orientation in (6, 8) else (60, 40))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.jpg"):
        image_size(tmp_path / "bad.jpg")
    with pytest.raises(ImageError, match="no such file"):
        image_size(tmp_path / "missing.jpg")
    (tmp_path / "bomb.png").write_bytes(encode(Image.new("1", (20000, 20000))))   # 400 MP in its header
    with pytest.raises(ImageError, match="too large"):
        image_size(tmp_path / "bomb.png")


def test_modes_become_rgb():
    for img in (Image.new("L", (30, 30), 128), Image.new("RGBA", (30, 30), (255, 0, 0, 0)),
                Image.new("P", (30, 30)), Image.new("CMYK", (30, 30)),
                Image.fromarray(np.full((30, 30), 40000, np.uint16))):
        out = decode_image(encode(img, "TIFF" if img.mode == "CMYK" else "PNG"))
        assert out.shape == (30, 30, 3)
    # transparent pixels composite onto white
    assert decode_image(encode(Image.new("RGBA", (30, 30), (255, 0, 0, 0))))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not a supported image"),
    (encode(Image.new("RGB", (100, 100)), "JPEG")[:200], "corrupt or truncated"),
    (encode(Image.new("RGB", (5, 100))), "at least"),
])
def test_bad_inputs(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data, "x.jpg")


def test_pixel_bomb_refused_before_decoding():
    # a tiny PNG whose header claims 10000 x 10000 pixels
    data = encode(Image.new("1", (10000, 10000)))
    assert len(data) < 100_000
    with pytest.raises(ImageError, match="limit"):
        decode_image(data)
    assert 10000 * 10000 > MAX_PIXELS


def test_expand_paths_keeps_order_and_expands_folders(tmp_path):
    for n in ("b.jpg", "a.png", "c.txt"):
        (tmp_path / n).write_bytes(b"x")
    assert expand_paths(["z.jpg", str(tmp_path)]) == ["z.jpg", str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]


def test_size_limit_is_stated_in_mib_everywhere(tmp_path):
    """The limits are 2**20-byte MiB (as Streamlit's maxUploadSize counts); messages, the pages,
    the README and the Streamlit config say MiB with the same numbers."""
    import re
    import tomllib

    from pipeline.streams import video
    from pipeline.media.images import MAX_FILE_BYTES, MIB, read_image

    assert MAX_FILE_BYTES == 50 * MIB and video.MAX_VIDEO_BYTES == 200 * MIB
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:                      # sparse: no disk used
        fh.truncate(MAX_FILE_BYTES + MIB // 2)
    with pytest.raises(ImageError, match=r"the file is 50\.5 MiB; the limit is 50 MiB$"):
        read_image(big)
    with pytest.raises(ImageError, match=r"the limit is 50 MiB$"):
        decode_image(b"\0" * (MAX_FILE_BYTES + 1))
    root = ROOT
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * MIB == video.MAX_VIDEO_BYTES
    readme = (root / "README.md").read_text()
    assert "image files up to 50 MiB" in readme and "up to 200 MiB" in readme
    for rel in ("pages/1_Photo.py", "pages/2_Video.py", "pipeline/ui/session.py", "pipeline/media/images.py"):
        assert not re.search(r"\bMB\b", (root / rel).read_text()), rel


def test_read_image_refuses_a_fifo_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file: a named pipe"):
        read_image(fifo)
    with pytest.raises(ImageError, match="not a regular file: a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_upload_limit_mib_is_whole_mib_and_never_zero():
    """st.file_uploader's max_upload_size counts whole 2**20-byte MiB and refuses 0."""
    from pipeline.media.images import MIB
    from pipeline.ui.session import upload_limit_mib

    assert upload_limit_mib(50 * MIB) == 50 and upload_limit_mib(200 * MIB) == 200
    assert upload_limit_mib(MIB + MIB // 2) == 1 and upload_limit_mib(1000) == 1
