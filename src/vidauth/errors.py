"""The errors vidauth raises on purpose: a stable machine code, the facts, and one line.

The library says *what* happened (``code``, ``facts`` and a one-line ``message`` naming the cause);
it never tells anyone which command to run. The command line turns codes into its sentences and
exit codes (:mod:`vidauth.cli.errors`); the service turns them into HTTP statuses and
``{"error": code, "detail": message}`` bodies. Messages and facts never carry a token, code,
client secret or password: callers pass only names and public values into them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable identifiers of the failures vidauth reports (part of the service's API)."""

    UNEXPECTED = "unexpected"
    CONFIG_INVALID = "config_invalid"
    USAGE = "usage"
    FILE_UNUSABLE = "file_unusable"
    FOLDER_NOT_FOUND = "folder_not_found"
    ACCOUNT_NOT_FOUND = "account_not_found"
    UPLOAD_NOT_FOUND = "upload_not_found"
    UPLOAD_ALREADY_PROCESSED = "upload_already_processed"
    NOT_SIGNED_IN = "not_signed_in"
    SIGN_IN_EXPIRED = "sign_in_expired"
    SIGN_IN_TIMEOUT = "sign_in_timeout"
    AUTHORIZATION_DENIED = "authorization_denied"
    PERMISSION_DENIED = "permission_denied"
    OAUTH_ERROR = "oauth_error"
    STORE_UNREADABLE = "store_unreadable"
    REMOTE_FAILED = "remote_failed"
    UPLOAD_TARGET_FAILED = "upload_target_failed"
    MULTIPART_UPLOAD_GONE = "multipart_upload_gone"
    SIGNATURE_REFUSED = "signature_refused"
    CANCEL_FAILED = "cancel_failed"
    PROCESSING_FAILED = "processing_failed"
    PROCESSING_TIMEOUT = "processing_timeout"
    UPLOAD_INTERRUPTED = "upload_interrupted"
    UPLOAD_RUNNING = "upload_running"
    REFRESH_OUTCOME_UNKNOWN = "refresh_outcome_unknown"
    TOKEN_RESPONSE_INVALID = "token_response_invalid"  # noqa: S105 - an error code
    STORE_UNWRITABLE = "store_unwritable"
    GRANT_NOT_SAVED = "grant_not_saved"
    FILE_NOT_MEDIA = "file_not_media"
    PART_SIZE_INVALID = "part_size_invalid"
    FOLDER_AMBIGUOUS = "folder_ambiguous"
    REDIRECT_NOT_LOOPBACK = "redirect_not_loopback"
    HOME_UNWRITABLE = "home_unwritable"


class VidauthError(Exception):
    """Base class: an expected failure with a machine ``code``, ``facts`` and one line.

    ``exit_code`` is the class's default for callers that have no mapping of their own; the CLI
    decides from ``code`` (:func:`vidauth.cli.errors.exit_code`).
    """

    exit_code = 1
    default_code = ErrorCode.UNEXPECTED

    def __init__(self, message: str, *, code: ErrorCode | None = None, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.facts: dict[str, Any] = facts

    def __str__(self) -> str:
        return self.message


class ConfigError(VidauthError):
    """A missing, malformed or contradictory setting, or a usage mistake (exit 2)."""

    exit_code = 2
    default_code = ErrorCode.CONFIG_INVALID


class UsageError(ConfigError):
    """The command's arguments are wrong: a missing file, an unknown folder (exit 2)."""

    default_code = ErrorCode.USAGE


class SignInRequired(VidauthError):
    """No usable grant: never signed in, refused, or the refresh token was revoked (exit 3)."""

    exit_code = 3
    default_code = ErrorCode.NOT_SIGNED_IN


class AuthorizationDenied(SignInRequired):
    """The person or the authorization server refused the request (exit 3)."""

    default_code = ErrorCode.AUTHORIZATION_DENIED


class PermissionDenied(SignInRequired):
    """The API refused the call even with a fresh token (exit 3)."""

    default_code = ErrorCode.PERMISSION_DENIED


class RemoteServiceError(VidauthError):
    """The remote service kept failing after retries, or answered something unusable (exit 4)."""

    exit_code = 4
    default_code = ErrorCode.REMOTE_FAILED


class OAuthError(VidauthError):
    """An RFC 6749 error answered by an authorization server.

    ``error`` is the registered code (``invalid_grant`` …), also in ``facts["oauth_error"]``.
    """

    exit_code = 3
    default_code = ErrorCode.OAUTH_ERROR

    def __init__(
        self, error: str, message: str, *, description: str | None = None, **facts: Any
    ) -> None:
        super().__init__(message, oauth_error=error, **facts)
        self.error = error
        self.description = description


class StoreError(VidauthError):
    """The token store cannot be read: wrong key, unreadable database (exit 2)."""

    exit_code = 2
    default_code = ErrorCode.STORE_UNREADABLE
