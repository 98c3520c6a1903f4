"""Unit tests: part sizes, manifests, UploadTarget parsing, FilePart, the synthetic video."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from vidauth.cli.errors import sentence
from vidauth.errors import ErrorCode, RemoteServiceError, UsageError
from vidauth.panopto.files import (
    FilePart,
    MiB,
    check_media_file,
    part_count,
    part_range,
    part_size,
)
from vidauth.panopto.manifest import UCS_NAMESPACE, build_manifest
from vidauth.panopto.synthetic import make_test_video
from vidauth.panopto.target import parse_upload_target

GiB = 1024 * MiB


def test_part_size_for_200_gib_is_21_mib() -> None:
    size = 200 * GiB
    chosen = part_size(size)
    assert chosen == 21 * MiB
    assert part_count(size, chosen) <= 10_000
    assert part_count(size, 20 * MiB) > 10_000


def test_part_size_defaults_limits_and_errors() -> None:
    assert part_size(100) == 8 * MiB
    assert part_size(100, 5) == 5 * MiB
    assert part_size(23 * MiB * 10_000) == 23 * MiB <= 25_000_000
    with pytest.raises(UsageError, match="at most 10000 parts"):
        part_size(23 * MiB * 10_000 + 1)
    with pytest.raises(UsageError, match="5 to 23 MiB"):
        part_size(100, 4)
    with pytest.raises(UsageError, match="5 to 23 MiB"):
        part_size(100, 24)  # 25,165,824 bytes: above Panopto's 25,000,000
    with pytest.raises(UsageError, match="part size 20 MiB is too small") as small:
        part_size(200 * GiB, 20)
    assert small.value.code == ErrorCode.PART_SIZE_INVALID
    assert small.value.facts["needed_mib"] == 21
    assert sentence(small.value).endswith("; use --part-size 21 or more")


def test_part_ranges_cover_the_file() -> None:
    size = 17 * MiB + 3
    ranges = [part_range(n, size, 5 * MiB) for n in range(1, part_count(size, 5 * MiB) + 1)]
    assert ranges[-1] == (15 * MiB, 2 * MiB + 3)
    assert sum(length for _, length in ranges) == size


def test_manifest_escapes_and_round_trips() -> None:
    from vidauth_sandbox.ucs import parse_manifest, safe_fromstring

    title = "Q&A <live> \"quoted\" 'single' — ünïcødé 講義 ]]>"
    data = build_manifest(title, "a&b <c>.mp4", description="x < y & z")
    root = safe_fromstring(data)
    ns = {"u": UCS_NAMESPACE}
    assert root.tag == f"{{{UCS_NAMESPACE}}}Session"
    assert root.findtext("u:Title", namespaces=ns) == title
    assert root.findtext("u:Videos/u:Video/u:File", namespaces=ns) == "a&b <c>.mp4"
    assert root.findtext("u:Videos/u:Video/u:Start", namespaces=ns) == "PT0S"
    assert root.findtext("u:Videos/u:Video/u:Type", namespaces=ns) == "Primary"
    parsed = parse_manifest(data)
    assert parsed.title == title and parsed.description == "x < y & z"


def test_upload_target_split() -> None:
    target = parse_upload_target("https://x.panopto.com/Panopto/Upload/1234-abcd")
    assert target.endpoint == "https://x.panopto.com/Panopto"
    assert (target.bucket, target.prefix) == ("Upload", "1234-abcd")
    assert target.key("a.mp4") == "1234-abcd/a.mp4"
    assert parse_upload_target("http://127.0.0.1:81/Upload/p").endpoint == "http://127.0.0.1:81"
    with pytest.raises(RemoteServiceError, match="unusable UploadTarget"):
        parse_upload_target("https://x.panopto.com/")


def test_file_part_reads_its_window(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    fd = os.open(path, os.O_RDONLY)
    try:
        part = FilePart(fd, 100, 50)
        assert len(part) == 50
        assert part.read(10) == bytes(range(100, 110))
        assert part.read() == bytes(range(110, 150))
        assert part.read() == b""
        part.seek(0)
        assert part.read(-1) == bytes(range(100, 150))
        assert part.seek(0, os.SEEK_END) == 50 and part.tell() == 50
    finally:
        os.close(fd)


def test_check_media_file(tmp_path: Path) -> None:
    good = tmp_path / "a.MP4"
    good.write_bytes(b"x")
    assert check_media_file(good) == good.resolve()
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"x")
    with pytest.raises(UsageError, match="not a video or audio file") as not_media:
        check_media_file(notes)
    assert not_media.value.code == ErrorCode.FILE_NOT_MEDIA
    assert "--force" not in not_media.value.message
    assert sentence(not_media.value).endswith("; pass --force to upload it anyway")
    assert check_media_file(notes, force=True)
    with pytest.raises(UsageError, match="no such file"):
        check_media_file(tmp_path / "missing.mp4")
    with pytest.raises(UsageError, match="is a directory"):
        check_media_file(tmp_path)
    empty = tmp_path / "e.mp4"
    empty.touch()
    with pytest.raises(UsageError, match="empty"):
        check_media_file(empty)


def _riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    found = []
    pos = start
    while pos < end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        found.append((fourcc, pos + 8, size))
        pos += 8 + size + (size & 1)
    assert pos == end
    return found


def test_synthetic_video_is_a_valid_avi(tmp_path: Path) -> None:
    path = make_test_video(tmp_path / "clip.avi", seconds=1.5, width=32, height=24, fps=4)
    data = path.read_bytes()
    riff, size, kind = struct.unpack_from("<4sI4s", data)
    assert (riff, kind, size + 8) == (b"RIFF", b"AVI ", len(data))
    top = _riff_chunks(data, 12, len(data))
    assert [c[0] for c in top] == [b"LIST", b"LIST", b"idx1"]
    hdrl_start = top[0][1]
    assert data[hdrl_start : hdrl_start + 4] == b"hdrl"
    avih = _riff_chunks(data, hdrl_start + 4, hdrl_start + top[0][2])[0]
    assert avih[0] == b"avih"
    usec, _, _, flags, frames, _, streams, _, width, height = struct.unpack_from(
        "<10I", data, avih[1]
    )
    assert (usec, frames, streams, width, height) == (250_000, 6, 1, 32, 24)
    assert flags & 0x10  # AVIF_HASINDEX
    movi_start = top[1][1]
    assert data[movi_start : movi_start + 4] == b"movi"
    frames_found = _riff_chunks(data, movi_start + 4, movi_start + top[1][2])
    frame_size = ((32 * 3 + 3) & ~3) * 24
    assert [(c[0], c[2]) for c in frames_found] == [(b"00db", frame_size)] * 6
    assert top[2][2] == 16 * 6
    assert check_media_file(path)


def test_a_file_that_cannot_be_uploaded_at_all_has_its_own_code(tmp_path: Path) -> None:
    from vidauth.errors import ErrorCode, UsageError
    from vidauth.panopto.files import check_media_file

    empty = tmp_path / "empty.mp4"
    empty.touch()
    for path in (empty, tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(UsageError) as info:
            check_media_file(path)
        assert info.value.code == ErrorCode.FILE_UNUSABLE, path
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(UsageError) as info:
        check_media_file(notes)
    assert info.value.code == ErrorCode.FILE_NOT_MEDIA
