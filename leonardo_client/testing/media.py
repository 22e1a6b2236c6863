"""The files the fake serves: small gradient PNGs, an MP4-shaped payload, patterned blobs."""

from __future__ import annotations

import struct
import zlib
from typing import Tuple

MAX_PREVIEW_SIDE = 256  # a served image is at most this many pixels on its long side
MIN_PREVIEW_SIDE = 8
BLOB_PERIOD = 251  # byte i of every blob is i % 251
BLOB_CHUNK = 64 * 1024
BLOB_PATTERN = bytes(i % BLOB_PERIOD for i in range(BLOB_CHUNK + BLOB_PERIOD))


def preview_size(width: int, height: int) -> Tuple[int, int]:
    """The requested size scaled down to at most 256 px on the long side (>= 8 each)."""
    width, height = max(1, width), max(1, height)
    scale = min(1.0, float(MAX_PREVIEW_SIDE) / max(width, height))
    return (
        max(MIN_PREVIEW_SIDE, int(round(width * scale))),
        max(MIN_PREVIEW_SIDE, int(round(height * scale))),
    )


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def render_png(seed: str, width: int, height: int) -> bytes:
    """A valid 8-bit RGB PNG: a diagonal gradient between two colours taken from seed."""
    h1 = zlib.crc32(seed.encode("utf-8"))
    h2 = zlib.crc32(b"leonardo:" + seed.encode("utf-8"))
    start = (h1 & 0xFF, (h1 >> 8) & 0xFF, (h1 >> 16) & 0xFF)
    end = (h2 & 0xFF, (h2 >> 8) & 0xFF, (h2 >> 16) & 0xFF)
    steps = width + height - 1
    line = bytearray()
    for k in range(steps):
        t = k / float(steps - 1) if steps > 1 else 0.0
        line.extend(int(round(a + (b - a) * t)) for a, b in zip(start, end))
    rows = b"".join(b"\x00" + bytes(line[3 * y : 3 * (y + width)]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 6))
        + _chunk(b"IEND", b"")
    )


def render_mp4(seed: str) -> bytes:
    """A small payload that starts like an MP4 file (ftyp box), then free and mdat boxes."""
    ftyp_payload = b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    ftyp = struct.pack(">I", 8 + len(ftyp_payload)) + b"ftyp" + ftyp_payload
    free = struct.pack(">I", 8) + b"free"
    h = zlib.crc32(seed.encode("utf-8"))
    mdat_payload = bytes((h + i * 131) % 256 for i in range(2048))
    return ftyp + free + struct.pack(">I", 8 + len(mdat_payload)) + b"mdat" + mdat_payload
