"""How the command line speaks about errors: a code's advice and its exit code.

The library raises :class:`~vidauth.errors.VidauthError` with a machine code and facts; only
here do those become the sentence a person reads (the library's one line, then what to run)
and the process's exit code (0 ok, 1 unexpected, 2 configuration or usage, 3 sign-in needed or
refused, 4 remote service failed after retries, 130 interrupted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vidauth.errors import ErrorCode, VidauthError

Facts = Mapping[str, Any]

RESUME = "run the same command again to resume"


def _cancel_or_resume(facts: Facts) -> str:
    again = RESUME
    if facts.get("record_id") is not None:
        again += f", or `vidauth uploads cancel {facts['record_id']}`"
    if facts.get("status") is None:  # never reached the target
        return f"check your network and {again}"
    return again


def _folder(facts: Facts) -> str:
    if facts.get("name") is not None:
        return "list folders with `vidauth folders --search`"
    return "check the id with `vidauth folders`"


#: code → (separator, advice from the error's facts)
ADVICE: dict[ErrorCode, tuple[str, Callable[[Facts], str]]] = {
    ErrorCode.NOT_SIGNED_IN: (": ", lambda f: "run `vidauth login`"),
    ErrorCode.SIGN_IN_EXPIRED: (": ", lambda f: "run `vidauth login` again"),
    ErrorCode.PERMISSION_DENIED: (
        ": ",
        lambda f: "check you have access, or run `vidauth login` again",
    ),
    ErrorCode.ACCOUNT_NOT_FOUND: (": ", lambda f: "see `vidauth status`"),
    ErrorCode.FOLDER_NOT_FOUND: (": ", _folder),
    ErrorCode.UPLOAD_NOT_FOUND: (": ", lambda f: "list uploads with `vidauth uploads`"),
    ErrorCode.UPLOAD_ALREADY_PROCESSED: (": ", lambda f: "delete the session in Panopto instead"),
    ErrorCode.UPLOAD_TARGET_FAILED: ("; ", _cancel_or_resume),
    ErrorCode.MULTIPART_UPLOAD_GONE: (
        ": ",
        lambda f: f"cancel it with `vidauth uploads cancel {f.get('record_id')}` and upload again",
    ),
    ErrorCode.CANCEL_FAILED: (
        "; ",
        lambda f: f"try `vidauth uploads cancel {f.get('record_id')}` again",
    ),
    ErrorCode.PROCESSING_FAILED: ("; ", lambda f: "fix the file and upload it again"),
    ErrorCode.PROCESSING_TIMEOUT: ("; ", lambda f: "check it later with `vidauth uploads`"),
    ErrorCode.UPLOAD_INTERRUPTED: (
        ": ",
        lambda f: RESUME if "record_id" in f or "upload_id" in f else "",
    ),
}

EXIT_CODES: dict[ErrorCode, int] = {
    ErrorCode.UNEXPECTED: 1,
    ErrorCode.CONFIG_INVALID: 2,
    ErrorCode.USAGE: 2,
    ErrorCode.FILE_UNUSABLE: 2,
    ErrorCode.ACCOUNT_NOT_FOUND: 2,
    ErrorCode.FOLDER_NOT_FOUND: 2,
    ErrorCode.UPLOAD_NOT_FOUND: 2,
    ErrorCode.UPLOAD_ALREADY_PROCESSED: 2,
    ErrorCode.STORE_UNREADABLE: 2,
    ErrorCode.NOT_SIGNED_IN: 3,
    ErrorCode.SIGN_IN_EXPIRED: 3,
    ErrorCode.AUTHORIZATION_DENIED: 3,
    ErrorCode.PERMISSION_DENIED: 3,
    ErrorCode.OAUTH_ERROR: 3,
    ErrorCode.REMOTE_FAILED: 4,
    ErrorCode.UPLOAD_TARGET_FAILED: 4,
    ErrorCode.MULTIPART_UPLOAD_GONE: 4,
    ErrorCode.CANCEL_FAILED: 4,
    ErrorCode.PROCESSING_FAILED: 4,
    ErrorCode.PROCESSING_TIMEOUT: 4,
    ErrorCode.UPLOAD_INTERRUPTED: 130,
}


def sentence(exc: VidauthError) -> str:
    """The one line the CLI prints for ``exc``: its message and, for its code, what to run."""
    entry = ADVICE.get(exc.code)
    if entry is None:
        return exc.message
    separator, advice = entry
    text = advice(exc.facts)
    return f"{exc.message}{separator}{text}" if text else exc.message


def exit_code(exc: VidauthError) -> int:
    """The process exit code for ``exc``: from its code; a code the CLI does not list keeps
    the error class's default."""
    if exc.code == ErrorCode.UNEXPECTED or exc.code not in EXIT_CODES:
        return exc.exit_code
    return EXIT_CODES[exc.code]
