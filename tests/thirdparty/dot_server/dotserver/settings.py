"""Settings for a minimal Django OAuth Toolkit provider, all from the environment.

DOT_DATA_DIR                 directory for the SQLite database and the OIDC signing key
                             (default: tests/thirdparty/dot_server/.data, git-ignored)
DOT_ACCESS_TOKEN_SECONDS     access-token lifetime (default 300)
DOT_REFRESH_TOKEN_SECONDS    refresh-token lifetime (default: none, DOT's default)
DOT_OIDC_ENABLED             "1" (default) or "0"

The user and the application are created by `manage.py bootstrap_dot` (see its help).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("DOT_DATA_DIR") or HERE.parent / ".data")
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _oidc_private_key() -> str:
    """An RSA key made on first use and kept in DATA_DIR, so every process of one run shares it."""
    path = DATA_DIR / "oidc-rsa.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.replace(path)
    return path.read_text()


SECRET_KEY = "vidauth-thirdparty-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "dotserver.urls"
WSGI_APPLICATION = None
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "oauth2_provider",
    "dotserver",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "dot.sqlite3"),
    }
}

# A fast hasher (Django's own advice for tests): DOT hashes the client secret with it too, and
# checks it on every client-authenticated request; PBKDF2 would add ~0.4 s to each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Plain http on loopback: no secure cookies.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

_oidc = os.environ.get("DOT_OIDC_ENABLED", "1") not in ("0", "false", "")
_refresh = os.environ.get("DOT_REFRESH_TOKEN_SECONDS")

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DOT_ACCESS_TOKEN_SECONDS", "300")),
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(_refresh) if _refresh else None,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "REQUEST_APPROVAL_PROMPT": "force",
    "SCOPES": {
        **({"openid": "OpenID Connect scope"} if _oidc else {}),
        "read": "Reading scope",
        "write": "Writing scope",
    },
    "DEFAULT_SCOPES": ["read", "write"],
    "OIDC_ENABLED": _oidc,
    **({"OIDC_RSA_PRIVATE_KEY": _oidc_private_key()} if _oidc else {}),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"oauth2_provider": {"handlers": ["console"], "level": "INFO"}},
}
