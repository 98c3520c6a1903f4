"""How the service speaks about errors: HTTP statuses, ``{"error", "detail"}``, job errors.

The library's :class:`~vidauth.errors.VidauthError` carries a machine code and one line; here a
code becomes an HTTP status and a body, and a job's error is stored as its code and its line
apart, as the API and webhook payloads give them. Nothing here (or in
the library's lines) tells a backend's user to run a command.
"""

from __future__ import annotations

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

    def columns(self) -> dict[str, str | None]:
        """The job row's ``error_code`` and ``error``."""
        return {"error_code": str(self.code) if self.code else None, "error": self.detail}


def error_columns(error: JobError | None) -> dict[str, str | None]:
    """The job row's ``error_code`` and ``error`` for ``error``; both None for none."""
    return error.columns() if error else {"error_code": None, "error": None}


CANCELLED = JobError(None, "cancelled")
