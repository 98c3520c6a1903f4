"""Checks of what callers send: user ids, upload ids and text fields (400 or 404 naming it)."""

from __future__ import annotations

import re

from vidauth.service.routes.answers import ApiError
from vidauth.service.text_fields import character_problem

MAX_ID_LENGTH = 255
_UPLOAD_ID = re.compile(r"up_[0-9a-f]{24}")


def check_user_id(external_user_id: str) -> str:
    """The id without surrounding spaces; 400 unless it is what USER_ID_SCHEMA documents."""
    value = external_user_id.strip()
    if not value or len(external_user_id) > MAX_ID_LENGTH:
        raise ApiError(
            400,
            "invalid_request",
            f"external_user_id must be 1 to {MAX_ID_LENGTH} printable characters",
        )
    check_text("external_user_id", external_user_id)
    return value


def check_text(name: str, value: str) -> None:
    """400 naming the field unless ``value`` passes the one rule for text (text_fields)."""
    problem = character_problem(name, value)
    if problem:
        raise ApiError(400, "invalid_request", problem)


def optional_text(name: str, value: str | None, limit: int) -> str | None:
    """``value`` without surrounding spaces; 400 naming the field unless it is 1 to ``limit``
    printable characters (the one rule for text, text_fields)."""
    if value is None:
        return None
    value = value.strip(" ")
    check_text(name, value)
    if not value or len(value) > limit:
        raise ApiError(400, "invalid_request", f"{name} must be 1 to {limit} printable characters")
    return value


def check_upload_id(upload_id: str) -> None:
    """404 for anything that cannot be an upload id (NUL, any odd character, any length)."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")
