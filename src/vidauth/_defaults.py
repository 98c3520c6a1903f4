"""What every reader of vidauth's settings agrees on, importable without pydantic or SQLAlchemy.

:mod:`vidauth.config` (the full settings) and :mod:`vidauth._fastpath` (the lean ``vidauth
token``) both take their defaults, names and the store's profile key from here, so the two
cannot drift apart.
"""

from __future__ import annotations

import os

DEFAULT_PROFILE = "default"
DEFAULT_REDIRECT_URI = "http://localhost:9127/redirect"
#: The generated Fernet key, in VIDAUTH_HOME.
KEY_FILE_NAME = "secret.key"
#: The SQLite store, in VIDAUTH_HOME, when VIDAUTH_DATABASE_URL is not set.
DATABASE_FILE_NAME = "vidauth.db"
#: The dotenv file read from the current directory.
DOTENV_FILE = ".env"


def default_home() -> str:
    """The platform's user data directory for vidauth (``~/.local/share/vidauth`` on Linux)."""
    from platformdirs import user_data_dir

    return user_data_dir("vidauth", appauthor=False)


def home_dir(configured: str | None) -> str:
    """VIDAUTH_HOME (``~`` expanded) when set, else :func:`default_home`."""
    return os.path.expanduser(configured) if configured else default_home()


def default_database_url(home: str | os.PathLike[str]) -> str:
    """The SQLite store in ``home``."""
    return f"sqlite:///{os.path.join(home, DATABASE_FILE_NAME)}"


def split_keys(value: str) -> list[str]:
    """VIDAUTH_SECRET_KEY's comma-separated keys, newest first, blanks dropped."""
    return [k.strip() for k in value.split(",") if k.strip()]


def profile_key(provider: str, where: str, client_id: str) -> str:
    """The store's key for a profile's rows: provider, server (or issuer…) and client id."""
    return f"{provider}|{where}|{client_id}"
