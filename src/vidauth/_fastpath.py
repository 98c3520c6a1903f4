"""A lean ``vidauth token`` for the common case: default profile, SQLite store, token valid.

It answers only when everything is plain; otherwise it returns None and the full command runs
(refresh, errors, PostgreSQL, profiles). ``tests/test_fastpath.py`` checks it agrees with the
full path. What it shares with the rest of vidauth, rather than restating:

- the settings' names, defaults and the store's profile key (:mod:`vidauth._defaults`), and the
  URL rule (:mod:`vidauth._urls`), as :mod:`vidauth.config` uses them;
- the query, built from the store's own table objects by :func:`token_query`. Importing
  SQLAlchemy (or pydantic-settings) would cost several times the whole command, so the
  statement is kept here as SQLAlchemy compiles it for SQLite, the way ``store.migrate`` keeps
  its head revision: a test checks the two are equal, so a schema change cannot leave it behind.

It reads the environment over ``./.env`` itself, as pydantic-settings does (case-insensitive
names, python-dotenv's parser).
"""

from __future__ import annotations

import os
import sqlite3
import time

from vidauth import _defaults
from vidauth._urls import UrlError, checked_url, site_origin

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from sqlalchemy import Select

MIN_VALIDITY = 60.0
#: The variables read here; each is a field of :class:`vidauth.config.EnvSettings`.
VARIABLES = (
    "PANOPTO_SERVER",
    "PANOPTO_CLIENT_ID",
    "PANOPTO_CLIENT_SECRET",
    "PANOPTO_REDIRECT_URI",
    "VIDAUTH_HOME",
    "VIDAUTH_DATABASE_URL",
    "VIDAUTH_SECRET_KEY",
    "VIDAUTH_PROFILE",
)
#: ``token_query()`` compiled for SQLite (named parameters); tests/test_fastpath.py checks it.
LATEST_GRANT_SQL = (
    "SELECT accounts.status, tokens.access_token, tokens.expires_at \n"
    "FROM accounts JOIN tokens ON tokens.account_id = accounts.id \n"
    "WHERE accounts.profile_key = :profile_key "
    "ORDER BY accounts.last_login_at DESC, accounts.id DESC"
)


def token_query() -> Select[str, bytes, float | None]:
    """The newest sign-in of a profile (``:profile_key``): status, encrypted token, expiry —
    the order ``TokenStore.list_accounts`` uses."""
    from sqlalchemy import bindparam, select

    from vidauth.store.models import Account, Token

    return (
        select(Account.status, Token.access_token, Token.expires_at)
        .join(Token, Token.account_id == Account.id)
        .where(Account.profile_key == bindparam("profile_key"))
        .order_by(Account.last_login_at.desc(), Account.id.desc())
    )


def compiled_token_query() -> str:
    """:func:`token_query` as SQLite text, as ``LATEST_GRANT_SQL`` must read."""
    from sqlalchemy.dialects import sqlite

    return str(token_query().compile(dialect=sqlite.dialect(paramstyle="named")))


def read_variables() -> dict[str, str]:
    """The environment over ``./.env``, for :data:`VARIABLES` (upper-cased names)."""
    values: dict[str, str] = {}
    if os.path.isfile(_defaults.DOTENV_FILE):
        from dotenv import dotenv_values

        for key, value in dotenv_values(_defaults.DOTENV_FILE).items():
            if value is not None:
                values[key.upper()] = value
    for key, value in os.environ.items():  # pydantic-settings matches names case-insensitively
        if key.upper() in VARIABLES:
            values[key.upper()] = value
    return values


def default_profile_key(env: dict[str, str]) -> str | None:
    """The store key of the default profile, as ``config`` builds it; None to defer."""
    if env.get("VIDAUTH_PROFILE", _defaults.DEFAULT_PROFILE) not in ("", _defaults.DEFAULT_PROFILE):
        return None
    client_id = env.get("PANOPTO_CLIENT_ID", "").strip()
    if not client_id or not env.get("PANOPTO_CLIENT_SECRET", "").strip():
        return None  # the full path reports what is missing
    try:
        server = site_origin(env.get("PANOPTO_SERVER", ""))
        checked_url(
            env.get("PANOPTO_REDIRECT_URI") or _defaults.DEFAULT_REDIRECT_URI, fragment=False
        )
    except UrlError:
        return None
    return _defaults.profile_key("panopto", server, client_id)


def cached_token() -> str | None:
    """The stored access token when it is valid for a minute more, else None."""
    try:
        env = read_variables()
    except Exception:
        return None
    key = default_profile_key(env)
    if key is None:
        return None
    home = _defaults.home_dir(env.get("VIDAUTH_HOME"))
    url = env.get("VIDAUTH_DATABASE_URL") or _defaults.default_database_url(home)
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not os.path.isfile(path):
        return None
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            row = conn.execute(LATEST_GRANT_SQL, {"profile_key": key}).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if row is None or row[0] != "active" or row[2] is None:
        return None
    if row[2] - time.time() < MIN_VALIDITY:
        return None
    keys = _defaults.split_keys(env.get("VIDAUTH_SECRET_KEY", ""))
    if not keys and "VIDAUTH_SECRET_KEY" in env:
        return None  # set but empty: the full path says so
    if not keys:
        try:
            with open(os.path.join(home, _defaults.KEY_FILE_NAME)) as fh:
                keys = [fh.read().strip()]
        except OSError:
            return None
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet

    try:
        return MultiFernet([Fernet(k) for k in keys]).decrypt(bytes(row[1])).decode("utf-8")
    except (InvalidToken, ValueError, TypeError):
        return None
