"""Untrusted bytes in, an upright RGB array or a typed error out."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.errors import ImageTooLarge, InvalidImage
from models.imageio import load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG claiming width x height whose pixel data is a few bytes (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_real_photo_decodes(photos):
    arr = load_image(photos["Emma_Watson"][0])
    assert arr.shape == (250, 250, 3) and arr.dtype == np.uint8


def test_zero_bytes():
    with pytest.raises(InvalidImage) as e:
        load_image(b"")
    assert e.value.code == "invalid_image"


def test_not_an_image():
    with pytest.raises(InvalidImage):
        load_image(b"this is a text file, not a photo\n" * 10)


def test_truncated_jpeg(photos):
    data = photos["Emma_Watson"][0].read_bytes()
    with pytest.raises(InvalidImage):
        load_image(data[: len(data) // 2])


def test_huge_png_header_is_refused_before_decoding():
    data = png_header_only(30000, 30000)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge) as e:
        load_image(data)
    assert e.value.code == "image_too_large"
    assert e.value.details["max_pixels"] > 0


def test_moderately_huge_png_header_reports_its_size():
    with pytest.raises(ImageTooLarge) as e:
        load_image(png_header_only(9000, 9000))  # over our 40 MP limit, under Pillow's own bomb guard
    assert e.value.details["width"] == 9000


def test_byte_limit(photos):
    with pytest.raises(ImageTooLarge):
        load_image(photos["Emma_Watson"][0].read_bytes(), max_bytes=1000)


def test_exif_orientation_is_applied(photos):
    img = Image.open(photos["Emma_Watson"][0]).crop((0, 0, 250, 150))  # landscape 250x150
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    arr = load_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert arr.shape[:2] == (250, 150)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16", "1", "LA"])
def test_modes_become_rgb(photos, mode):
    img = Image.open(photos["Emma_Watson"][0])
    if mode == "I;16":
        grey = np.asarray(img.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(grey.astype("<u2"))
        assert img.mode.startswith("I;16")
        fmt = "PNG"
    else:
        img = img.convert(mode)
        fmt = "TIFF" if mode == "CMYK" else "PNG"
    arr = load_image(_encode(img, fmt))
    assert arr.shape == (250, 250, 3) and arr.dtype == np.uint8
    assert arr.std() > 10  # the picture survived, not a blank


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    arr = load_image(_encode(img, "PNG"))
    assert (arr == 255).all()
