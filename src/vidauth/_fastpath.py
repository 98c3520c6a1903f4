"""A lean ``vidauth token`` for the common case: default profile, SQLite store, token valid.

It reads the same settings as :mod:`vidauth.config` (environment over ``./.env``), the same
rows as :mod:`vidauth.store`, and decrypts with the same keys. It answers only when everything
is plain; otherwise it returns None and the full command runs (refresh, errors, PostgreSQL,
profiles). ``tests/test_fastpath.py`` checks it agrees with the full path.
"""

from __future__ import annotations

import os
import sqlite3
import time

MIN_VALIDITY = 60.0
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_NAMES = (
    "PANOPTO_SERVER",
    "PANOPTO_CLIENT_ID",
    "VIDAUTH_HOME",
    "VIDAUTH_DATABASE_URL",
    "VIDAUTH_SECRET_KEY",
    "VIDAUTH_PROFILE",
)


def _settings() -> dict[str, str] | None:
    values: dict[str, str] = {}
    if os.path.isfile(".env"):
        from dotenv import dotenv_values

        values.update({k.upper(): v for k, v in dotenv_values(".env").items() if v is not None})
    for name in _NAMES:  # pydantic-settings matches names case-insensitively
        for key, value in os.environ.items():
            if key.upper() == name:
                values[name] = value
    return values


def _server(value: str) -> str | None:
    text = value.strip()
    if text.startswith("https://"):
        text = text[len("https://") :]
    elif "://" in text:
        return None  # http (loopback only) and odd schemes: let the full path decide
    text = text.rstrip("/")
    host, _, port = text.partition(":")
    if not host or not set(host) <= _HOST_CHARS or host.startswith(("-", ".")) or ".." in host:
        return None
    if port and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        return None
    return "https://" + text


def cached_token() -> str | None:
    """The stored access token when it is valid for a minute more, else None."""
    try:
        env = _settings()
    except Exception:
        return None
    if env is None or env.get("VIDAUTH_PROFILE", "default") not in ("", "default"):
        return None
    server = _server(env.get("PANOPTO_SERVER", ""))
    client_id = env.get("PANOPTO_CLIENT_ID", "").strip()
    if not server or not client_id:
        return None
    if env.get("VIDAUTH_HOME"):
        home = os.path.expanduser(env["VIDAUTH_HOME"])
    else:
        from platformdirs import user_data_dir

        home = user_data_dir("vidauth", appauthor=False)
    url = env.get("VIDAUTH_DATABASE_URL") or f"sqlite:///{os.path.join(home, 'vidauth.db')}"
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not os.path.isfile(path):
        return None
    key = f"panopto|{server}|{client_id}"
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            row = conn.execute(
                "SELECT a.status, t.access_token, t.expires_at FROM accounts a "
                "JOIN tokens t ON t.account_id = a.id WHERE a.profile_key = ? "
                "ORDER BY a.last_login_at DESC, a.id DESC LIMIT 1",
                (key,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if row is None or row[0] != "active" or row[2] is None:
        return None
    if row[2] - time.time() < MIN_VALIDITY:
        return None
    keys = [k.strip() for k in env.get("VIDAUTH_SECRET_KEY", "").split(",") if k.strip()]
    if not keys:
        try:
            with open(os.path.join(home, "secret.key")) as fh:
                keys = [fh.read().strip()]
        except OSError:
            return None
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet

    try:
        return MultiFernet([Fernet(k) for k in keys]).decrypt(bytes(row[1])).decode("utf-8")
    except (InvalidToken, ValueError, TypeError):
        return None
