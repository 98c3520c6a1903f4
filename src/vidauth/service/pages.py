"""Small server-rendered pages for people: the connect result and an uploads page.

The uploads page is opened with a signed, expiring link the API hands out
(``POST /v1/accounts/{id}/uploads-page``): ``/pages/uploads?t=<token>``, where the token is
``base64url(json{tenant, user, exp}) "." base64url(HMAC-SHA256)`` under a key derived from the
token store's key. It shows only that user's uploads and refreshes itself every few seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from vidauth.logs import register_secret

TEMPLATES = Path(__file__).with_name("templates")
REFRESH_SECONDS = 3

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def render(name: str, **context: Any) -> str:
    """Render a template (HTML-escaped)."""
    return _env.get_template(name).render(**context)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_page_token(
    key: bytes, tenant: str, external_user_id: str, lifetime: float, key_id: int | None = None
) -> tuple[str, float]:
    """A token for the uploads page of one user, and when it expires; ``key_id``: the API key
    that asked for it (the link ends when that key is revoked)."""
    expires_at = time.time() + lifetime
    data: dict[str, Any] = {"t": tenant, "u": external_user_id, "exp": int(expires_at)}
    if key_id is not None:
        data["k"] = key_id
    payload = _b64(json.dumps(data).encode())
    mac = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    register_secret(mac)
    return f"{payload}.{mac}", float(int(expires_at))


def read_page_token(key: bytes, token: str) -> tuple[str, str] | None:
    """(tenant, external_user_id) of a valid, unexpired token, else None."""
    payload, _, mac = token.partition(".")
    if not payload or not mac:
        return None
    signed = payload.encode("utf-8", "surrogateescape")
    expected = _b64(hmac.new(key, signed, hashlib.sha256).digest()).encode()
    # Bytes: compare_digest raises TypeError on non-ASCII str, and any bad token is a 403.
    if not hmac.compare_digest(expected, mac.encode("utf-8", "surrogateescape")):
        return None
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or float(data.get("exp", 0)) < time.time():
        return None
    register_secret(mac)
    return str(data["t"]), str(data["u"])


def page_token_key_id(token: str) -> int | None:
    """The API key id a token (already checked by :func:`read_page_token`) was made for."""
    try:
        data = json.loads(_unb64(token.partition(".")[0]))
        value = data.get("k") if isinstance(data, dict) else None
        return int(value) if value is not None else None
    except (ValueError, TypeError):
        return None
