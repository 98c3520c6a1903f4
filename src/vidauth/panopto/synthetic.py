"""A small but valid video made from synthetic frames: an uncompressed RGB24 AVI.

No download and no external tool: the RIFF structure (``hdrl`` with ``avih``/``strh``/``strf``,
``movi`` with one ``00db`` chunk per frame, ``idx1``) is written with :mod:`struct`.
"""

from __future__ import annotations

import struct
from pathlib import Path

_AVIF_HASINDEX = 0x10


def _chunk(fourcc: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return fourcc + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def _frame(index: int, frames: int, width: int, height: int) -> bytes:
    """A BGR bottom-up frame: a colour gradient with a bar sweeping across."""
    stride = (width * 3 + 3) & ~3
    bar = (index * width) // max(frames, 1)
    rows = []
    for y in range(height):
        green = (255 * y) // max(height - 1, 1)
        row = bytearray()
        for x in range(width):
            if abs(x - bar) < max(2, width // 20):
                row += b"\xff\xff\xff"
            else:
                row += bytes(((255 * x) // max(width - 1, 1), green, (index * 16) % 256))
        row += b"\0" * (stride - width * 3)
        rows.append(bytes(row))
    return b"".join(rows)


def make_test_video(
    path: Path, seconds: float = 2.0, width: int = 160, height: int = 120, fps: int = 10
) -> Path:
    """Write an uncompressed RGB24 AVI of ``seconds`` at ``fps`` to ``path``; answer ``path``."""
    if width <= 0 or height <= 0 or fps <= 0 or seconds <= 0:
        raise ValueError("width, height, fps and seconds must be positive")
    frames = max(1, round(seconds * fps))
    frame_size = ((width * 3 + 3) & ~3) * height
    avih = struct.pack(
        "<10I4I",
        1_000_000 // fps,  # microseconds per frame
        frame_size * fps,  # max bytes per second
        0,
        _AVIF_HASINDEX,
        frames,
        0,
        1,  # streams
        frame_size,
        width,
        height,
        0,
        0,
        0,
        0,
    )
    strh = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh",
        b"vids",
        b"DIB ",
        0,
        0,
        0,
        0,
        1,  # scale
        fps,  # rate
        0,
        frames,
        frame_size,
        0xFFFFFFFF,
        0,
        0,
        0,
        width,
        height,
    )
    strf = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, frame_size, 0, 0, 0, 0)
    hdrl = _list(
        b"hdrl",
        _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)),
    )
    movi_body = bytearray()
    index = bytearray()
    for n in range(frames):
        offset = len(movi_body) + 4  # from the 'movi' fourcc
        movi_body += _chunk(b"00db", _frame(n, frames, width, height))
        index += struct.pack("<4sIII", b"00db", 0x10, offset, frame_size)
    body = hdrl + _list(b"movi", bytes(movi_body)) + _chunk(b"idx1", bytes(index))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"AVI " + body)
    return path
