"""Where a refreshed grant goes when the database cannot take it: files in the home directory.

A rotated refresh token that is lost is a user signed out, so the token store keeps a grant it
could not write (already encrypted with the store's key) in two places: a per-account *slot*,
``SLOT_BYTES`` allocated before the refresh is sent and overwritten in place, so that it needs no
new blocks on a full disk; and, where there is room, a file of its own, written atomically. The
next use of the account puts the grant back (:meth:`vidauth.store.tokens.TokenStore.
restore_recovery`). Both are mode 0600 and named by a digest of the database URL and account id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from pathlib import Path

#: Size of each account's recovery slot (an encrypted grant is a few KiB).
SLOT_BYTES = 64 * 1024
_SLOT_HEADER = struct.Struct(">8sQ")
_SLOT_MAGIC = b"VAGRANT1"

log = logging.getLogger("vidauth.store")


class GrantRecoveryFiles:
    """The recovery file and slot of each account of one database, in ``home``."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.home = home
        self.database_url = database_url

    def file_path(self, account_id: int) -> Path:
        """Where a grant the database could not take is kept for this account."""
        digest = hashlib.sha256(f"{self.database_url}|{account_id}".encode()).hexdigest()[:16]
        return self.home / f"recovered-grant-{digest}.fernet"

    def slot_path(self, account_id: int) -> Path:
        """The account's recovery slot: a file of ``SLOT_BYTES`` allocated before a refresh is
        sent, overwritten in place, so that a refreshed grant can be kept on a full disk."""
        path = self.file_path(account_id)
        return path.with_name(path.name.replace("recovered-", "slot-"))

    def prepare_slot(self, account_id: int) -> None:
        """Allocate the account's recovery slot if it is not there (best effort)."""
        slot = self.slot_path(account_id)
        if slot.exists():
            return
        try:
            fd = os.open(slot, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, SLOT_BYTES)  # the blocks, not a sparse file
            os.fsync(fd)
        except OSError as exc:
            log.warning("could not allocate the recovery slot %s (%s)", slot, exc.strerror)
            os.close(fd)
            slot.unlink(missing_ok=True)
            return
        os.close(fd)

    def keep(self, account_id: int, blob: bytes) -> Path | None:
        """Write ``blob`` into the slot, then also as a file of its own if there is room; the
        path of the better copy, or None when both failed."""
        in_slot = self._write_slot(account_id, blob)
        path = self.file_path(account_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not write the recovery file %s (%s)", path, exc.strerror or exc)
            tmp.unlink(missing_ok=True)
            return in_slot
        return path

    def read(self, account_id: int) -> bytes | None:
        """The kept blob (the file's, else the slot's), or None when nothing is kept."""
        path = self.file_path(account_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not read the recovery file %s (%s)", path, exc.strerror or exc)
        return self._read_slot(account_id)

    def discard(self, account_id: int) -> None:
        """Forget what is kept: the file goes, the slot is emptied (its blocks stay)."""
        self.file_path(account_id).unlink(missing_ok=True)
        self._clear_slot(account_id)

    def _write_slot(self, account_id: int, blob: bytes) -> Path | None:
        """Write ``blob`` into the allocated slot in place; None when there is no room."""
        slot = self.slot_path(account_id)
        if len(blob) + _SLOT_HEADER.size > SLOT_BYTES:
            return None
        try:
            fd = os.open(slot, os.O_WRONLY | os.O_NOFOLLOW)  # never O_CREAT: no new blocks
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < SLOT_BYTES:
                return None
            os.pwrite(fd, _SLOT_HEADER.pack(_SLOT_MAGIC, len(blob)) + blob, 0)
            os.fsync(fd)
        except OSError as exc:
            log.warning("could not write the recovery slot %s (%s)", slot, exc.strerror)
            return None
        finally:
            os.close(fd)
        return slot

    def _read_slot(self, account_id: int) -> bytes | None:
        try:
            with self.slot_path(account_id).open("rb") as fh:
                head = fh.read(_SLOT_HEADER.size)
                if len(head) < _SLOT_HEADER.size:
                    return None
                magic, length = _SLOT_HEADER.unpack(head)
                if magic != _SLOT_MAGIC or not 0 < length <= SLOT_BYTES:
                    return None
                return fh.read(length)
        except OSError:
            return None

    def _clear_slot(self, account_id: int) -> None:
        try:
            fd = os.open(self.slot_path(account_id), os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            os.pwrite(fd, _SLOT_HEADER.pack(_SLOT_MAGIC, 0), 0)
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
