"""How the service speaks about errors: HTTP statuses, ``{"error", "detail"}``, job errors.

The library's :class:`~vidauth.errors.VidauthError` carries a machine code and one line; here a
code becomes an HTTP status and a body, and a job's stored error becomes ``"<code>: <detail>"``
so that the API and webhook payloads can give the code apart from the line. Nothing here (or in
the library's lines) tells a backend's user to run a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidauth.errors import ErrorCode, VidauthError

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.USAGE: 400,
    ErrorCode.FILE_UNUSABLE: 400,
    ErrorCode.FILE_NOT_MEDIA: 415,
    ErrorCode.PART_SIZE_INVALID: 400,
    ErrorCode.FOLDER_AMBIGUOUS: 400,
    ErrorCode.FOLDER_NOT_FOUND: 404,
    ErrorCode.UPLOAD_NOT_FOUND: 404,
    ErrorCode.ACCOUNT_NOT_FOUND: 404,
    ErrorCode.UPLOAD_ALREADY_PROCESSED: 409,
    ErrorCode.NOT_SIGNED_IN: 409,
    ErrorCode.SIGN_IN_EXPIRED: 409,
    ErrorCode.AUTHORIZATION_DENIED: 409,
    ErrorCode.PERMISSION_DENIED: 409,
}
"""Codes a request can cause; everything else (remote failures, the service's own
configuration) is 503: worth retrying later."""

_CODED = re.compile(r"^([a-z_]+): (.*)$", re.DOTALL)
_CODES = frozenset(code.value for code in ErrorCode)


def http_status(exc: VidauthError) -> int:
    """The HTTP status answering ``exc``."""
    return HTTP_STATUS.get(exc.code, 503)


@dataclass(frozen=True)
class JobError:
    """Why a job stopped or waits: a machine code (None for a plain note such as
    ``cancelled``) and one line."""

    code: ErrorCode | None
    detail: str

    @classmethod
    def of(cls, exc: VidauthError | ErrorCode, detail: str | None = None) -> JobError:
        """The error of ``exc`` (or of a bare code), with ``detail`` instead of its line."""
        if isinstance(exc, VidauthError):
            return cls(exc.code, detail if detail is not None else exc.message)
        return cls(exc, detail or exc.value)

    def stored(self) -> str:
        """The job row's ``error`` column: ``"<code>: <one line>"``."""
        return f"{self.code}: {self.detail}" if self.code else self.detail


CANCELLED = JobError(None, "cancelled")


def job_error(exc: VidauthError | ErrorCode, detail: str | None = None) -> str:
    """A job's stored error: ``"<code>: <one line>"``."""
    return JobError.of(exc, detail).stored()


def split_job_error(text: str | None) -> tuple[str | None, str | None]:
    """(code, detail) of a stored job error; (None, text) when it carries no code."""
    if not text:
        return None, text
    match = _CODED.match(text)
    if match and match.group(1) in _CODES:
        return match.group(1), match.group(2)
    return None, text
