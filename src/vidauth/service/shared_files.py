"""Files uploaded by ``path``: opened without following links, checked, re-checked before use.

Each tenant has its own directory, ``$VIDAUTH_SHARED_DIR/<tenant>/``; a ``path`` is relative to
it (or absolute inside it). Every component is opened with ``O_NOFOLLOW`` relative to the
directory before it (``openat``), so no symbolic link is followed anywhere, and ``..`` is
refused. At submit time the file's device and inode are recorded; the worker opens it the same
way again and refuses it unless it is the very same, unchanged file (device, inode, size and
mtime) — replacing it with a link (to ``/etc/passwd``, say) after the check makes the upload
fail; it never sends the other file. After that check the engine knows the file only by the
descriptors this module opens: its size, fingerprint and every byte sent come from them, never
from the path. Only regular files with a single link are taken (no FIFO, device or hard link),
and files are opened with ``O_NONBLOCK``, so no thread ever waits on one.

Every refusal is the same :class:`SharedFileError`, so a caller cannot tell "no such file" from
"outside your directory" (or from another tenant's file).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vidauth.errors import UsageError
from vidauth.panopto.files import VIDEO_EXTENSIONS
from vidauth.service.text_fields import character_problem

NOT_FOUND = "path: no such file in your shared directory"
_TENANT_DIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted in the directory must not hang the service.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class SharedFileError(UsageError):
    """The path cannot be used; always the same message (see the module docstring)."""

    def __init__(self, detail: str = NOT_FOUND) -> None:
        super().__init__(detail)


@dataclass(frozen=True)
class SharedFile:
    """A checked file: its lexical path, identity and size when it was checked."""

    path: Path
    identity: str
    size: int


def tenant_dir(shared_dir: Path, tenant: str) -> Path:
    """``shared_dir/<tenant>``; a tenant whose name is not a plain file name has none."""
    if not _TENANT_DIR.fullmatch(tenant) or tenant in (".", ".."):
        raise SharedFileError(
            "path uploads need a tenant name of letters, digits, '.', '_' and '-'"
        )
    return shared_dir / tenant


def _parts(root: Path, given: str) -> list[str]:
    """The components of ``given`` below ``root``; SharedFileError for anything else."""
    if not given or character_problem("path", given) or len(given) > 4096:
        raise SharedFileError()
    candidate = PurePosixPath(given)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(PurePosixPath(root))
        except ValueError:
            raise SharedFileError() from None
    parts = [p for p in candidate.parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise SharedFileError()
    return parts


def _open_beneath(root: Path, parts: list[str]) -> int:
    """An fd of ``root/parts…`` opened without following any link (OSError otherwise)."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _check_opened(fd: int, root: Path, name: str) -> os.stat_result:
    """fstat the opened file: a non-empty regular video file still under ``root``."""
    info = os.fstat(fd)
    # Only a regular file (a FIFO or device could block a reader or never end), with one
    # link: a hard link in the tenant's directory may name any file the service can read.
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0 or info.st_nlink != 1:
        raise SharedFileError()
    if Path(name).suffix.lower().lstrip(".") not in VIDEO_EXTENSIONS:
        raise SharedFileError()
    proc = f"/proc/self/fd/{fd}"
    if os.path.exists(proc):  # Linux: where the opened file really is
        real = Path(os.path.realpath(proc))
        if not real.is_relative_to(os.path.realpath(root)):
            raise SharedFileError()
    return info


def _identity(info: os.stat_result) -> str:
    # Size and mtime too: a file deleted and written again may get the same inode number.
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def _open_and_check(shared_dir: Path, tenant: str, given: str) -> tuple[int, os.stat_result, Path]:
    """Open ``given`` beneath the tenant's directory without following links and check what
    was opened: its descriptor, its stat and its path; SharedFileError otherwise."""
    root = tenant_dir(shared_dir, tenant)
    parts = _parts(root, given)
    try:
        fd = _open_beneath(root, parts)
    except (OSError, ValueError):
        raise SharedFileError() from None
    try:
        info = _check_opened(fd, root, parts[-1])
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    return fd, info, root.joinpath(*parts)


def check(shared_dir: Path, tenant: str, given: str) -> SharedFile:
    """Check a ``path`` given at submit time; the SharedFile to record with the job."""
    fd, info, path = _open_and_check(shared_dir, tenant, given)
    os.close(fd)
    return SharedFile(path, _identity(info), info.st_size)


def open_checked(shared_dir: Path, tenant: str, path: str, identity: str) -> int:
    """Open a job's shared file again for reading; SharedFileError unless it is the same,
    unchanged file (device, inode, size, mtime) checked at submit time. The caller closes it."""
    fd, info, _ = _open_and_check(shared_dir, tenant, path)
    try:
        if _identity(info) != identity:
            raise SharedFileError()
        os.set_blocking(fd, True)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    return fd


def opener_for(
    shared_dir: Path | None, tenant: str, path: str, identity: str | None
) -> Callable[[Path], int] | None:
    """For a job whose file came by ``path`` (``identity`` set): check the file now (a
    SharedFileError when it was swapped) and return the engine's ``open_file``, which checks it
    again as it opens it. None for files the service received itself."""
    if identity is None:
        return None
    if shared_dir is None:
        raise SharedFileError("path uploads need VIDAUTH_SHARED_DIR on the worker")
    os.close(open_checked(shared_dir, tenant, path, identity))

    def open_file(_engine_path: Path) -> int:
        # The engine's own path is ignored: it may have been resolved through a swapped link.
        return open_checked(shared_dir, tenant, path, identity)

    return open_file
