"""The upload spooler's write path, with the kernel taking less than it was given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidauth.service import ingest


def test_flush_finishes_partial_writes_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev
    calls: list[int] = []

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        # Like a kernel under pressure: at most 5 bytes, sometimes ending mid-buffer.
        first = bytes(buffers[0])[:5]
        calls.append(len(first))
        return real_writev(fd, [first])

    monkeypatch.setattr(ingest.os, "writev", short_writev)
    sink = ingest._Sink(tmp_path, max_file_bytes=1000)
    target = tmp_path / "out.bin"
    sink._fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    pieces = [b"abcdefgh", b"", b"ij", b"klmnopqrstuvwxyz0123"]
    for piece in pieces:
        sink.on_part_data(b"<" + piece + b">", 1, 1 + len(piece))
    sink.flush()
    sink.close()
    assert target.read_bytes() == b"".join(pieces)
    assert len(calls) > len(pieces)  # it really went through several short writes
    assert sink.received.file_size == sum(map(len, pieces))
