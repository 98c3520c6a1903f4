"""Tokens at rest: Fernet, behind MultiFernet so keys can rotate (newest first)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vidauth._defaults import KEY_FILE_NAME
from vidauth.errors import ConfigError, ErrorCode, StoreError

__all__ = ["KEY_FILE_NAME", "TokenCipher", "create_key_file", "key_file", "read_key_file"]


class TokenCipher:
    """Encrypts and decrypts token strings; the first key encrypts, every key decrypts."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                "VIDAUTH_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes): make "
                "one with python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, value: str) -> bytes:
        """Ciphertext of ``value`` under the newest key."""
        return self._fernet.encrypt(value.encode("utf-8"))

    def decrypt(self, blob: bytes) -> str:
        """Plain text of ``blob``; a StoreError (exit 2) when no configured key opens it."""
        try:
            return self._fernet.decrypt(bytes(blob)).decode("utf-8")
        except InvalidToken:
            raise StoreError(
                "the stored tokens cannot be decrypted with the configured key: set "
                "VIDAUTH_SECRET_KEY (or restore VIDAUTH_HOME/secret.key) to the key that "
                "encrypted them",
                reason="wrong_key",
            ) from None

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt ``blob`` under the newest key."""
        return self._fernet.rotate(bytes(blob))


def key_file(home: Path) -> Path:
    """Where the generated key lives."""
    return home / KEY_FILE_NAME


def read_key_file(home: Path) -> bytes | None:
    """The generated key, or None when there is none."""
    path = key_file(home)
    try:
        return path.read_bytes().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(
            f"cannot read the key {path} ({exc.strerror or exc}); check its permissions"
        ) from None


def create_key_file(home: Path) -> bytes:
    """Generate the key once, mode 0600, never overwriting one another process wrote first.

    The key is written to a private temporary file and hard-linked into place, so a reader
    never sees a half-written key and two processes starting at once agree on one key.
    """
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create {home} for the key ({exc.strerror or exc}): set VIDAUTH_HOME "
            "to a writable directory",
            code=ErrorCode.HOME_UNWRITABLE,
            directory=str(home),
        ) from None
    path = key_file(home)
    key = Fernet.generate_key()
    tmp = home / f".{KEY_FILE_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            existing = read_key_file(home)
            if not existing:
                raise StoreError(f"{path} is empty: delete it or restore the key") from None
            return existing
    finally:
        tmp.unlink(missing_ok=True)
    return key
