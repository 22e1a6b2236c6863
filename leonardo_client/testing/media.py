"""The files the fake serves: small gradient PNGs, one-colour JPEGs, an MP4-shaped payload, patterned blobs."""

from __future__ import annotations

import struct
import zlib
from typing import Tuple

BLOB_PERIOD = 251  # byte i of every blob is i % 251
BLOB_CHUNK = 64 * 1024
BLOB_PATTERN = bytes(i % BLOB_PERIOD for i in range(BLOB_CHUNK + BLOB_PERIOD))


def preview_size(width: int, height: int) -> Tuple[int, int]:
    """The requested size scaled down to at most 256 px on the long side (>= 8 each)."""
    scale = min(1.0, 256.0 / max(width, height, 1))
    return max(8, int(round(max(1, width) * scale))), max(8, int(round(max(1, height) * scale)))


def _box(kind: bytes, data: bytes, crc: bool = False) -> bytes:
    """A PNG chunk (with its CRC) or an MP4 box: length, tag, data."""
    tail = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF) if crc else b""
    return struct.pack(">I", len(data) + (0 if crc else 8)) + kind + data + tail


def render_png(seed: str, width: int, height: int) -> bytes:
    """A valid 8-bit RGB PNG: a diagonal gradient between two colours taken from seed."""
    h1, h2 = zlib.crc32(seed.encode("utf-8")), zlib.crc32(b"leonardo:" + seed.encode("utf-8"))
    start, end = [h.to_bytes(4, "little")[:3] for h in (h1, h2)]  # (red, green, blue): the hash's low 3 bytes
    steps = width + height - 1  # one colour per diagonal, from start to end
    line = bytes(int(round(a + (b - a) * (k / max(1, steps - 1)))) for k in range(steps) for a, b in zip(start, end))
    rows = b"".join(b"\x00" + line[3 * y : 3 * (y + width)] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", zlib.compress(rows, 6)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_box(tag, data, crc=True) for tag, data in chunks)


def render_jpeg(seed: str, width: int, height: int) -> bytes:
    """A valid baseline JPEG of one colour taken from seed (the LCM operations answer JPEG data URLs)."""
    r, g, b = zlib.crc32(seed.encode("utf-8")).to_bytes(4, "little")[:3]
    ycbcr = (0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
             128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    # Quantisation 1: an 8x8 block's DC is 8 x (value - 128). Each DC size has a 4-bit code, an EOB the code "0".
    bits = ""
    for value in ycbcr:
        dc = int(round(8 * (value - 128)))
        size = abs(dc).bit_length()
        magnitude = bin((dc if dc >= 0 else dc + (1 << size) - 1) + (1 << size))[3:]  # size bits; negatives inverted
        bits += format(size, "04b") + magnitude + "0"
    bits += "00000" * 3 * (((width + 7) // 8) * ((height + 7) // 8) - 1)  # each later block: DC unchanged, EOB
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    segments = [
        (0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        (0xDB, b"\x00" + b"\x01" * 64),
        (0xC0, struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes((i, 0x11, 0)) for i in (1, 2, 3))),
        (0xC4, b"\x00\x00\x00\x00\x0c" + bytes(12) + bytes(range(12))),  # DC: 12 codes of 4 bits
        (0xC4, b"\x10\x01" + bytes(15) + b"\x00"),  # AC: EOB alone, 1 bit
        (0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
    ]
    marked = b"".join(struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data for marker, data in segments)
    return b"\xff\xd8" + marked + scan + b"\xff\xd9"


def render_mp4(seed: str) -> bytes:
    """A small payload that starts like an MP4 file (ftyp box), then free and mdat boxes."""
    h = zlib.crc32(seed.encode("utf-8"))
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", b"") + _box(b"mdat", bytes((h + i * 131) % 256 for i in range(2048)))
