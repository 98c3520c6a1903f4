"""The errors vidauth raises on purpose, each mapped to the CLI's exit code.

Every message is one line that names the cause and the fix. Messages never carry a token, code,
client secret or password: callers pass only names and public values into them.
"""

from __future__ import annotations


class VidauthError(Exception):
    """Base class: an expected failure the CLI reports as one line with ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(VidauthError):
    """A missing, malformed or contradictory setting, or a usage mistake (exit 2)."""

    exit_code = 2


class UsageError(ConfigError):
    """The command's arguments are wrong: a missing file, an unknown folder (exit 2)."""


class SignInRequired(VidauthError):
    """No usable grant: never signed in, refused, or the refresh token was revoked (exit 3)."""

    exit_code = 3


class AuthorizationDenied(SignInRequired):
    """The person or the authorization server refused the request (exit 3)."""


class PermissionDenied(SignInRequired):
    """The API refused the call even with a fresh token (exit 3)."""


class RemoteServiceError(VidauthError):
    """The remote service kept failing after retries, or answered something unusable (exit 4)."""

    exit_code = 4


class OAuthError(VidauthError):
    """An RFC 6749 error answered by an authorization server.

    ``error`` is the registered code (``invalid_grant`` …); the message adds the likely fix.
    """

    exit_code = 3

    def __init__(self, error: str, message: str, *, description: str | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.description = description


class StoreError(VidauthError):
    """The token store cannot be read: wrong key, unreadable database (exit 2)."""

    exit_code = 2
