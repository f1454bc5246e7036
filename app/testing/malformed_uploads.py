"""Malformed uploads made from real photos with a seeded RNG: one generator for the test and the bench.

``cases(rng, n)`` yields ``(label, bytes)``; the label names the seed photo and
the mutation so a failing case can be rebuilt. Mutations: bit flips, truncation,
corrupted JPEG SOF / PNG IHDR fields (with and without a fixed-up CRC), huge
dimension claims, a damaged EXIF block, random bytes (bare or behind a known
format's magic), zero-length files and GIFs with many frames.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lfw"

# magic numbers of formats Pillow opens: random bytes behind each reach that format's parser
MAGICS = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"BM", b"II*\x00", b"MM\x00*",
          b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"RIFF\x00\x10\x00\x00WEBPVP8L", b"\x00\x00\x01\x00", b"8BPS",
          b"P6\n", b"P5\n250 250\n255\n", b"icns", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51",
          b"DDS ", b"qoif", b"\x0a\x05\x01\x08", b"SIMPLE  =", b"#define", b"/* XPM */", b"\x59\xa6\x6a\x95",
          b"FORM", b"\x01\xda", b"gimp xcf", b"\x00\x00\x00\x1cftypavif", b"\x00\x00\x00\x18ftypheic"]


def seed_images() -> list[tuple[str, bytes]]:
    """Real photos in the formats an upload may come in (JPEG as is; others re-encoded)."""
    jpegs = sorted(FIXTURES.glob("*/*.jpg"))[:6]
    out = [(p.name, p.read_bytes()) for p in jpegs]
    img = Image.open(jpegs[0]).convert("RGB")

    def enc(im, fmt, **kw):
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate
    out += [
        ("rgb.png", enc(img, "PNG")),
        ("gray.png", enc(img.convert("L"), "PNG")),
        ("rgba.png", enc(img.convert("RGBA"), "PNG")),
        ("palette.png", enc(img.convert("P"), "PNG")),
        ("i16.png", enc(Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257), "PNG")),
        ("progressive.jpg", enc(img, "JPEG", progressive=True, quality=80)),
        ("exif.jpg", enc(img, "JPEG", exif=exif.tobytes())),
        ("img.gif", enc(img, "GIF")),
        ("img.bmp", enc(img, "BMP")),
        ("img.tiff", enc(img, "TIFF")),
        ("img.webp", enc(img, "WEBP", quality=70)),
    ]
    return out


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bit_flips(rng, data: bytes) -> tuple[str, bytes]:
    b = bytearray(data)
    n = int(rng.integers(1, 33))
    for pos in rng.integers(0, len(b), n):
        b[pos] ^= 1 << int(rng.integers(0, 8))
    return f"bitflip{n}", bytes(b)


def header_flips(rng, data: bytes) -> tuple[str, bytes]:
    """Flips within the first 600 bytes, where headers and tables live."""
    b = bytearray(data)
    n = int(rng.integers(1, 9))
    for pos in rng.integers(0, min(600, len(b)), n):
        b[pos] = int(rng.integers(0, 256))
    return f"headerbytes{n}", bytes(b)


def truncate(rng, data: bytes) -> tuple[str, bytes]:
    cut = int(rng.integers(1, len(data)))
    return f"truncate{cut}", data[:cut]


def _jpeg_sof(data: bytes) -> int | None:
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        i = data.find(marker)
        if i >= 0:
            return i
    return None


def jpeg_sof(rng, data: bytes) -> tuple[str, bytes] | None:
    i = _jpeg_sof(data)
    if i is None:
        return None
    b = bytearray(data)
    field = rng.choice(["height", "width", "both_huge", "zero", "precision", "components", "length"])
    h = i + 5
    if field == "height":
        b[h : h + 2] = struct.pack(">H", int(rng.integers(0, 65536)))
    elif field == "width":
        b[h + 2 : h + 4] = struct.pack(">H", int(rng.integers(0, 65536)))
    elif field == "both_huge":
        b[h : h + 4] = struct.pack(">HH", 65500, 65500)
    elif field == "zero":
        b[h : h + 4] = b"\x00\x00\x00\x00"
    elif field == "precision":
        b[i + 4] = int(rng.choice([0, 1, 12, 16, 255]))
    elif field == "components":
        b[h + 4] = int(rng.choice([0, 2, 4, 5, 255]))
    else:
        b[i + 2 : i + 4] = struct.pack(">H", int(rng.choice([0, 1, 2, 65535])))
    return f"jpeg_sof_{field}", bytes(b)


def png_ihdr(rng, data: bytes) -> tuple[str, bytes] | None:
    if not data.startswith(b"\x89PNG"):
        return None
    b = bytearray(data)
    field = rng.choice(["width", "height", "huge", "zero", "bitdepth", "colortype", "interlace", "compression"])
    if field == "width":
        b[16:20] = struct.pack(">I", int(rng.integers(0, 1 << 31)))
    elif field == "height":
        b[20:24] = struct.pack(">I", int(rng.integers(0, 1 << 31)))
    elif field == "huge":
        b[16:24] = struct.pack(">II", 65535, 65535)
    elif field == "zero":
        b[16:24] = bytes(8)
    elif field == "bitdepth":
        b[24] = int(rng.choice([0, 3, 7, 9, 32, 255]))
    elif field == "colortype":
        b[25] = int(rng.choice([1, 5, 7, 255]))
    elif field == "interlace":
        b[28] = int(rng.choice([1, 2, 255]))
    else:
        b[26] = int(rng.choice([1, 255]))
    fix = bool(rng.integers(0, 2))
    if fix:  # past the CRC check, into the decoder
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    return f"png_ihdr_{field}{'_crcfixed' if fix else ''}", bytes(b)


def png_chunks(rng, data: bytes) -> tuple[str, bytes] | None:
    """Odd ancillary chunks after IHDR: text bombs, broken ICC, EXIF garbage, many tiny IDATs."""
    if not data.startswith(b"\x89PNG"):
        return None
    kind = rng.choice(["ztxt_bomb", "iccp_bad", "exif_garbage", "idat_split", "plte_short", "huge_length"])
    head, rest = data[:33], data[33:]
    if kind == "ztxt_bomb":
        extra = _png_chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"A" * 5_000_000, 9))
    elif kind == "iccp_bad":
        extra = _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(rng.bytes(300)))
    elif kind == "exif_garbage":
        extra = _png_chunk(b"eXIf", b"MM\x00*" + rng.bytes(200))
    elif kind == "plte_short":
        extra = _png_chunk(b"PLTE", rng.bytes(5))
    elif kind == "huge_length":
        extra = struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + rng.bytes(40)
    else:  # the first IDAT cut into 1-byte chunks
        i = rest.find(b"IDAT") - 4
        if i < 0:
            return None
        (n,) = struct.unpack(">I", rest[i : i + 4])
        body = rest[i + 8 : i + 8 + min(n, 400)]
        extra = b"".join(_png_chunk(b"IDAT", body[j : j + 1]) for j in range(len(body)))
        return "png_idat_split", head + extra + rest[i + 8 + min(n, 400) + (4 if n <= 400 else 0):]
    return f"png_{kind}", head + extra + rest


def exif_damage(rng, data: bytes) -> tuple[str, bytes] | None:
    """Bytes changed inside a JPEG's APP1 (EXIF) segment: broken IFD offsets, counts and types."""
    i = data.find(b"Exif\x00\x00")
    if i < 0:
        return None
    (length,) = struct.unpack(">H", data[i - 2 : i])
    b = bytearray(data)
    n = int(rng.integers(1, 9))
    for pos in rng.integers(i + 6, i - 2 + length, n):
        b[pos] = int(rng.choice([0, 0xFF, int(rng.integers(0, 256))]))
    return f"exif_damage{n}", bytes(b)


def huge_claim(rng, _data: bytes) -> tuple[str, bytes]:
    """Tiny files whose headers claim enormous (or degenerate) sizes, in several formats."""
    w, h = (int(v) for v in rng.choice([[65535, 65535], [100_000, 1], [1, 100_000], [7000, 7000], [0, 5],
                                          [1 << 30, 1 << 30]]))
    fmt = rng.choice(["png", "bmp", "gif", "jpeg", "tiff"])
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        out = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
               + _png_chunk(b"IEND", b""))
    elif fmt == "bmp":
        out = (b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54)
               + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16))
    elif fmt == "gif":
        out = (b"GIF89a" + struct.pack("<HHBBB", w & 0xFFFF, h & 0xFFFF, 0, 0, 0) + b","
               + struct.pack("<HHHHB", 0, 0, w & 0xFFFF, h & 0xFFFF, 0) + b"\x02\x02\x44\x01\x00;")
    elif fmt == "tiff":
        entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
                   (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
        ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\x00" * 4
        out = b"II*\x00" + struct.pack("<I", 24) + bytes(16) + ifd
    else:
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h & 0xFFFF, w & 0xFFFF, 1) + b"\x01\x11\x00"
        out = b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + rng.bytes(64) + b"\xff\xd9"
    return f"huge_{fmt}_{w}x{h}", out


def random_bytes(rng, _data: bytes) -> tuple[str, bytes]:
    n = int(rng.choice([1, 2, 7, 64, 1000, 20_000]))
    if rng.integers(0, 3) == 0:
        return f"random{n}", rng.bytes(n)
    magic = MAGICS[int(rng.integers(0, len(MAGICS)))]
    return f"magic{MAGICS.index(magic)}+random{n}", magic + rng.bytes(n)


def zero_length(_rng, _data: bytes) -> tuple[str, bytes]:
    return "empty", b""


def many_frame_gif(rng, _data: bytes) -> tuple[str, bytes]:
    """An animated GIF of many small frames (random noise), sometimes with a damaged frame."""
    frames = int(rng.choice([50, 300, 1000]))
    size = int(rng.choice([16, 64]))
    base = Image.open(next(iter(sorted(FIXTURES.glob("*/*.jpg"))))).convert("RGB").resize((size, size))
    imgs = [base] + [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                     for _ in range(min(frames, 20) - 1)]
    imgs = (imgs * (frames // len(imgs) + 1))[:frames]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=10, loop=0)
    data = buf.getvalue()
    if rng.integers(0, 2):
        b = bytearray(data)
        for pos in rng.integers(len(b) // 2, len(b), 8):
            b[pos] ^= 0xFF
        return f"gif{frames}x{size}_damaged", bytes(b)
    return f"gif{frames}x{size}", data


MUTATORS = [bit_flips, header_flips, truncate, jpeg_sof, png_ihdr, png_chunks, exif_damage, huge_claim,
            random_bytes, zero_length, many_frame_gif]
WEIGHTS = np.array([4, 3, 3, 3, 3, 2, 2, 2, 3, 0.3, 0.7])


def cases(rng: np.random.Generator, n: int, seeds: list[tuple[str, bytes]] | None = None):
    """``n`` malformed uploads as (label, bytes)."""
    seeds = seeds or seed_images()
    p = WEIGHTS / WEIGHTS.sum()
    made = 0
    while made < n:
        name, data = seeds[int(rng.integers(0, len(seeds)))]
        mutate = MUTATORS[int(rng.choice(len(MUTATORS), p=p))]
        out = mutate(rng, data)
        if out is None:  # that mutation does not apply to this format
            continue
        label, mutated = out
        made += 1
        yield f"{name}:{label}", mutated


def assert_error_shape(body) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str), err
    assert isinstance(err["details"], dict), err
