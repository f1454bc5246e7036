"""Decode untrusted image bytes into an RGB array, or fail with a typed error.

Every photo that reaches faceshot (an upload, a file on disk, a camera frame)
passes through :func:`load_image`: byte and pixel limits are checked *before*
the pixels are decoded, so a tiny file that claims 30000x30000 pixels costs
nothing; EXIF orientation is applied so phone photos are upright; greyscale,
palette, RGBA, CMYK and 16-bit images all become 8-bit RGB.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from models.errors import ImageTooLarge, InvalidImage

DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

# Never decode a truncated file into half a picture; report it instead.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def size_text(n: int) -> str:
    """A size as people read it (15 MB, 23.4 MB; MB = 2**20 bytes, as the limits are set)."""
    return f"{n / 2**20:.3g} MB" if n >= 2**20 / 10 else f"{n / 2**10:.3g} KB"


def check_photo_size(size: int, max_bytes: int, what: str = "The photo", **details) -> None:
    """The one photo-size rule and its message: uploads, base64 bodies, files on disk (``what`` names the file)."""
    if size > max_bytes:
        raise ImageTooLarge(f"{what} is {size_text(size)}; the limit is {size_text(max_bytes)}.",
                            {"bytes": size, "max_bytes": max_bytes, **details})


def load_image(
    source: bytes | bytearray | memoryview | str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Return an ``(H, W, 3)`` uint8 RGB array, upright according to EXIF; over the pixel limit: refused."""
    return load_image_within(source, max_bytes=max_bytes, max_pixels=max_pixels, shrink_jpeg=False)[0]


def load_image_within(
    source: bytes | bytearray | memoryview | str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shrink_jpeg: bool = True,
) -> tuple[np.ndarray, int]:
    """The RGB array and the factor its sides were divided by to fit ``max_pixels`` (1: full size).

    A JPEG over the pixel limit (a phone's 48 MP photo) is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT
    scaling, so the full-size pixels are never held; other formats over the limit are refused, as are JPEGs
    that would not fit even at 1/8. Coordinates found in the array are the original's divided by the factor.
    """
    data = _read_bytes(source, max_bytes)
    if not data:
        raise InvalidImage("The file is empty.", {"bytes": 0})
    check_photo_size(len(data), max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size  # read from the header, nothing decoded yet
            if width <= 0 or height <= 0:
                raise InvalidImage("The image has no pixels.", {"width": width, "height": height})
            factor = 1
            if width * height > max_pixels:
                factor = _jpeg_reduction(img, max_pixels) if shrink_jpeg else None
                if factor is None:
                    raise ImageTooLarge(
                        f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels.",
                        {"width": width, "height": height, "max_pixels": max_pixels},
                    )
                img.draft(None, (-(-width // factor), -(-height // factor)))
                if img.size[0] * img.size[1] > max_pixels:  # libjpeg chose another scale: never decode past it
                    raise ImageTooLarge(
                        f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels.",
                        {"width": width, "height": height, "max_pixels": max_pixels},
                    )
                factor = round(width / img.size[0])
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb_array(img), factor
    except (InvalidImage, ImageTooLarge):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            f"The image has more pixels than the limit of {max_pixels}.", {"max_pixels": max_pixels, "reason": str(exc)}
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("The file is not an image in a format faceshot reads.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, ZeroDivisionError, struct.error) as exc:
        # Pillow reports truncated or corrupt data through a zoo of exception types.
        raise InvalidImage(f"The image could not be decoded: {exc}") from exc


def _jpeg_reduction(img: Image.Image, max_pixels: int) -> int | None:
    """The smallest of libjpeg's scale divisors (2, 4, 8) that brings a JPEG within ``max_pixels``."""
    if img.format != "JPEG":
        return None
    width, height = img.size
    return next((f for f in (2, 4, 8) if -(-width // f) * -(-height // f) <= max_pixels), None)


def _read_bytes(source, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    try:
        check_photo_size(path.stat().st_size, max_bytes, str(path))
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidImage(f"No such file: {path}") from exc
    except IsADirectoryError as exc:
        raise InvalidImage(f"{path} is a directory, not an image.") from exc


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit or float greyscale: stretch the value range into 8 bits.
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = ((arr - lo) * scale).clip(0, 255).astype(np.uint8)
        return np.repeat(arr8[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidImage(f"Unsupported image layout {arr.shape}.")
    return np.ascontiguousarray(arr)
