"""Checking media files before anything is created, fingerprints, and part-size choice."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from vidauth.errors import ErrorCode, UsageError

MiB = 1024 * 1024
MIN_PART_MIB = 5
#: Panopto's sample: parts "must be between 5MB and 25MB; Panopto server may fail if more than
#: 25MB". New plans keep every part at most 25,000,000 bytes: 23 MiB is the largest whole MiB
#: under it. Uploads planned before keep the part size they recorded.
MAX_PART_BYTES = 25_000_000
MAX_PART_MIB = MAX_PART_BYTES // MiB
MAX_PARTS = 10_000
DEFAULT_PART_MIB = 8
FINGERPRINT_SPAN = MiB

VIDEO_EXTENSIONS = frozenset(
    {
        *("mp4", "m4v", "mov", "mkv", "avi", "webm", "wmv", "mpg", "mpeg"),
        *("mp3", "m4a", "wav", "flv", "3gp", "ts", "mts"),
    }
)


def _unusable(message: str) -> UsageError:
    """A file that cannot be uploaded at all (missing, a directory, unreadable, empty)."""
    return UsageError(message, code=ErrorCode.FILE_UNUSABLE)


def check_media_file(path: Path, *, force: bool = False, name: str | None = None) -> Path:
    """The absolute path of a readable, non-empty media file, or a one-line UsageError.

    ``name`` is how errors call the file (default: its path), e.g. the name a client uploaded
    it under rather than where the service keeps it.
    """
    shown = name if name is not None else str(path)
    if not path.exists():
        raise _unusable(f"{shown}: no such file; check the path")
    if path.is_dir():
        raise _unusable(f"{shown} is a directory: give the video files in it instead")
    if not path.is_file():
        raise _unusable(f"{shown} is not a regular file: give a video file")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except PermissionError:
        raise _unusable(f"{shown}: permission denied reading it; check its permissions") from None
    except OSError as exc:
        raise _unusable(f"{shown}: cannot be read ({exc.strerror}); check the file") from None
    size = path.stat().st_size
    if size == 0:
        raise _unusable(f"{shown} is empty (0 bytes): nothing to upload")
    ext = path.suffix.lower().lstrip(".")
    if not force and ext not in VIDEO_EXTENSIONS:
        what = f".{ext}" if ext else "a file without extension"
        raise UsageError(
            f"{shown}: {what} is not a video or audio file (mp4, mov, mkv, …)",
            code=ErrorCode.FILE_NOT_MEDIA,
            path=shown,
            extension=ext,
        )
    part_size(size, None, shown)
    return path.resolve()


def part_size(size: int, requested_mib: int | None = None, name: str = "the file") -> int:
    """Bytes per part: whole MiB in 5..23 (at most 25,000,000 bytes), enough that ``size`` fits
    in 10 000 parts.

    Without a request: the larger of 8 MiB and the smallest size that fits.
    """
    needed_mib = max(MIN_PART_MIB, math.ceil(size / MAX_PARTS / MiB))
    if needed_mib > MAX_PART_MIB:
        limit = MAX_PART_MIB * MAX_PARTS * MiB
        raise UsageError(
            f"{name} is {size} bytes: Panopto takes at most {MAX_PARTS} parts of "
            f"{MAX_PART_MIB} MiB ({limit} bytes); split or compress it"
        )
    if requested_mib is None:
        return max(DEFAULT_PART_MIB, needed_mib) * MiB
    if not MIN_PART_MIB <= requested_mib <= MAX_PART_MIB:
        raise UsageError(
            f"part size {requested_mib} MiB: parts go from {MIN_PART_MIB} to {MAX_PART_MIB} MiB "
            f"(Panopto may fail parts above {MAX_PART_BYTES} bytes)",
            code=ErrorCode.PART_SIZE_INVALID,
            requested_mib=requested_mib,
            smallest_mib=MIN_PART_MIB,
            largest_mib=MAX_PART_MIB,
        )
    if requested_mib < needed_mib:
        raise UsageError(
            f"part size {requested_mib} MiB is too small for {name} ({size} bytes needs more "
            f"than {MAX_PARTS} parts of it)",
            code=ErrorCode.PART_SIZE_INVALID,
            requested_mib=requested_mib,
            smallest_mib=needed_mib,
            largest_mib=MAX_PART_MIB,
            needed_mib=needed_mib,
        )
    return requested_mib * MiB


def part_count(size: int, part_bytes: int) -> int:
    """How many parts ``size`` bytes make."""
    return max(1, math.ceil(size / part_bytes))


def part_range(number: int, size: int, part_bytes: int) -> tuple[int, int]:
    """(offset, length) of part ``number`` (from 1)."""
    offset = (number - 1) * part_bytes
    return offset, min(part_bytes, size - offset)


def fingerprint(path: Path, size: int) -> str:
    """sha256 of the size, the first MiB and the last MiB: cheap change detection."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            fh.seek(max(0, size - FINGERPRINT_SPAN))
            digest.update(fh.read(FINGERPRINT_SPAN))
    return digest.hexdigest()


def fingerprint_fd(fd: int, size: int) -> str:
    """:func:`fingerprint` of an open file, read with ``pread`` from the descriptor alone."""
    digest = hashlib.sha256(str(size).encode())
    digest.update(os.pread(fd, FINGERPRINT_SPAN, 0))
    if size > FINGERPRINT_SPAN:
        digest.update(os.pread(fd, FINGERPRINT_SPAN, max(0, size - FINGERPRINT_SPAN)))
    return digest.hexdigest()


class FilePart:
    """A read-only, seekable window on a file, read with ``os.pread`` as it is sent.

    boto3 streams it in small blocks, so a part never sits whole in memory.
    """

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd = fd
        self._offset = offset
        self._length = length
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def read(self, amount: int | None = -1) -> bytes:
        """Up to ``amount`` bytes (all that is left when negative or None)."""
        left = self._length - self._pos
        if amount is None or amount < 0 or amount > left:
            amount = left
        if amount <= 0:
            return b""
        data = os.pread(self._fd, amount, self._offset + self._pos)
        self._pos += len(data)
        return data

    def seek(self, where: int, whence: int = os.SEEK_SET) -> int:
        """Move within the window."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + where), self._length)
        return self._pos

    def tell(self) -> int:
        """The position within the window."""
        return self._pos

    def seekable(self) -> bool:
        """Always true (botocore rewinds bodies to retry or sign)."""
        return True

    def readable(self) -> bool:
        """Always true."""
        return True

    def close(self) -> None:
        """Nothing to release: the file descriptor belongs to the upload."""
