"""A token endpoint's answer, validated as untrusted input before anything is stored.

RFC 6749 §5.1 fixes the shape: ``access_token`` and ``token_type`` strings, ``expires_in`` a
number of seconds, ``refresh_token`` a string, ``scope`` a space-separated string (some servers
send a list). Anything else — ``expires_in`` of ``1e400`` or ``"NaN"``, a number where a token
belongs, an object for a scope — is refused with the field's name (never its value, which may be
a token), so a hostile or broken server cannot plant an infinite expiry or a wrong value.
"""

from __future__ import annotations

import math
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vidauth.domain.tokens import TokenSet
from vidauth.errors import ErrorCode, RemoteServiceError

#: The longest access-token lifetime taken at face value (ten years); beyond it is an error.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
#: Longest token accepted (JWT access tokens of large directories reach a few KiB).
MAX_TOKEN_CHARS = 65536


class InvalidTokenResponse(RemoteServiceError):
    """The token endpoint answered 200 with a body that is not a valid token response (exit 4).

    ``field`` names the offending field; the value is never kept.
    """

    default_code = ErrorCode.TOKEN_RESPONSE_INVALID

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


def _token_text(value: Any, *, required: bool) -> str | None:
    if value is None or (value == "" and not required):
        if required:
            raise ValueError("missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} instead of a string")
    if not value:
        raise ValueError("empty")
    if len(value) > MAX_TOKEN_CHARS:
        raise ValueError(f"longer than {MAX_TOKEN_CHARS} characters")
    if not all("\x21" <= c <= "\x7e" for c in value):
        raise ValueError("not printable ASCII without spaces")
    return value


class TokenResponse(BaseModel):
    """The fields vidauth uses from a token response; others are ignored."""

    model_config = ConfigDict(extra="ignore", validate_default=True)

    access_token: Any = None
    token_type: Any = None
    expires_in: Any = None
    refresh_token: Any = None
    id_token: Any = None
    scope: Any = None

    @field_validator("access_token")
    @classmethod
    def _access_token(cls, value: Any) -> str | None:
        return _token_text(value, required=True)

    @field_validator("refresh_token", "id_token")
    @classmethod
    def _optional_token(cls, value: Any) -> str | None:
        return _token_text(value, required=False)

    @field_validator("token_type")
    @classmethod
    def _token_type(cls, value: Any) -> str:
        if value is None:
            raise ValueError("missing (RFC 6749 §5.1 requires it)")
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} instead of a string")
        if value.lower() != "bearer":
            raise ValueError("not Bearer, the only type vidauth can send")
        return "Bearer"

    @field_validator("expires_in")
    @classmethod
    def _expires_in(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"a {type(value).__name__} instead of a number of seconds")
        try:
            seconds = float(value)  # Ingest sends a numeric string
        except (ValueError, OverflowError):
            raise ValueError("not a number of seconds") from None
        if not math.isfinite(seconds):
            raise ValueError("not a finite number of seconds")
        if not 1 <= seconds <= MAX_EXPIRES_IN:
            raise ValueError(f"outside 1..{MAX_EXPIRES_IN} seconds")
        return seconds

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            value = " ".join(value)
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} instead of a string")
        if len(value) > MAX_TOKEN_CHARS or not all(c == " " or c.isprintable() for c in value):
            raise ValueError("not a printable scope string")
        return value or None


def parse_token_response(data: Any, *, during: str, now: float | None = None) -> dict[str, Any]:
    """The validated fields of ``data`` with ``expires_at`` instead of ``expires_in``.

    Raises :class:`InvalidTokenResponse` naming the first bad field.
    """
    if not isinstance(data, dict):
        raise InvalidTokenResponse(
            f"{during} failed: the token endpoint answered a JSON "
            f"{type(data).__name__} instead of an object",
            field="(body)",
        )
    try:
        model = TokenResponse.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "(body)"
        reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidTokenResponse(
            f"{during} failed: the token endpoint's answer has an invalid {name} ({reason}); "
            "nothing was stored",
            field=name,
        ) from None
    now = time.time() if now is None else now
    return {
        "access_token": model.access_token,
        "token_type": model.token_type,
        "expires_at": None if model.expires_in is None else now + model.expires_in,
        "refresh_token": model.refresh_token,
        "id_token": model.id_token,
        "scope": model.scope,
    }


def token_set(
    data: Any, *, now: float | None = None, during: str = "reading the token response"
) -> TokenSet:
    """A :class:`~vidauth.domain.tokens.TokenSet` from a token endpoint's JSON, validated as
    untrusted input by :func:`parse_token_response`."""
    return TokenSet(**parse_token_response(data, during=during, now=now))
