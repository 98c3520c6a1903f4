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


def _signature(facts: Facts) -> str:
    if facts.get("explicit"):
        return (
            "leave out --signature (and the profile's `signature` key) to let vidauth find the "
            "scheme it accepts, or choose another"
        )
    return "report this to your Panopto administrator"


def _folder(facts: Facts) -> str:
    if facts.get("similar"):
        return "give the exact name or the folder id"
    if facts.get("name") is not None:
        return "list folders with `vidauth folders --search`"
    return "check the id with `vidauth folders`"


#: an OAuth error's registered code → the command that fixes it
OAUTH_COMMANDS: dict[str, str] = {
    "access_denied": "run `vidauth login`",
    "invalid_grant": "run `vidauth login`",
    "invalid_token": "run `vidauth login`",
    "insufficient_scope": "run `vidauth login`",
    "interaction_required": "run `vidauth login`",
    "login_required": "run `vidauth login`",
    "account_selection_required": "run `vidauth login`",
    "consent_required": "run `vidauth login`",
    "expired_token": "run `vidauth login --device`",
    "unsupported_token_type": "`vidauth logout` deletes it locally",
    "invalid_request": "`vidauth doctor` checks the profile",
}


def _oauth(facts: Facts) -> str:
    return OAUTH_COMMANDS.get(str(facts.get("oauth_error")), "")


def _denied(facts: Facts) -> str:
    if not facts.get("refused"):  # refused by the server's checks, not by the person
        return ""
    device = " --device" if facts.get("device") else ""
    return f"run `vidauth login{device}` again and choose Allow"


def _timeout(facts: Facts) -> str:
    if facts.get("device"):
        return "run `vidauth login --device` again and approve sooner"
    return "run `vidauth login` again (or raise --timeout) and finish the sign-in in the browser"


def _store(facts: Facts) -> str:
    if facts.get("reason") == "no_key":
        return "or run `vidauth logout --all` to start over"
    if facts.get("reason") == "wrong_key":
        return "or run `vidauth logout` and sign in again"
    return ""


#: a library input (the ``option`` fact of a usage or configuration error) → the CLI's flag
OPTION_FLAGS: dict[str, str] = {
    "parallel": "--parallel",
    "signature": "--signature",
    "folder": "--folder",
    "username": "--username",
    "env_file": "--env-file",
}


def _option(facts: Facts) -> str:
    flag = OPTION_FLAGS.get(str(facts.get("option")))
    return f"({flag})" if flag else ""


def _part_size(facts: Facts) -> str:
    if facts.get("needed_mib") is not None:
        return f"use --part-size {facts['needed_mib']} or more"
    return "choose a whole number in that range for --part-size"


def _remote(facts: Facts) -> str:
    return "(`vidauth doctor` checks it)" if facts.get("token_endpoint") else ""


#: code → (separator, advice from the error's facts)
ADVICE: dict[ErrorCode, tuple[str, Callable[[Facts], str]]] = {
    ErrorCode.USAGE: (" ", _option),
    ErrorCode.CONFIG_INVALID: (" ", _option),
    ErrorCode.FILE_NOT_MEDIA: ("; ", lambda f: "pass --force to upload it anyway"),
    ErrorCode.PART_SIZE_INVALID: ("; ", _part_size),
    ErrorCode.REDIRECT_NOT_LOOPBACK: (
        ": ",
        lambda f: "use http://localhost:PORT/PATH, or --no-browser and paste the URL",
    ),
    ErrorCode.HOME_UNWRITABLE: (" ", lambda f: "(or pass --home)"),
    ErrorCode.REMOTE_FAILED: (" ", _remote),
    ErrorCode.NOT_SIGNED_IN: (": ", lambda f: "run `vidauth login`"),
    ErrorCode.SIGN_IN_EXPIRED: (": ", lambda f: "run `vidauth login` again"),
    ErrorCode.SIGN_IN_TIMEOUT: (": ", _timeout),
    ErrorCode.AUTHORIZATION_DENIED: ("; ", _denied),
    ErrorCode.STORE_UNREADABLE: (", ", _store),
    ErrorCode.PERMISSION_DENIED: (
        ": ",
        lambda f: "check you have access, or run `vidauth login` again",
    ),
    ErrorCode.ACCOUNT_NOT_FOUND: (": ", lambda f: "see `vidauth status`"),
    ErrorCode.FOLDER_NOT_FOUND: ("; ", _folder),
    ErrorCode.UPLOAD_NOT_FOUND: (": ", lambda f: "list uploads with `vidauth uploads`"),
    ErrorCode.UPLOAD_ALREADY_PROCESSED: (": ", lambda f: "delete the session in Panopto instead"),
    ErrorCode.UPLOAD_TARGET_FAILED: ("; ", _cancel_or_resume),
    ErrorCode.MULTIPART_UPLOAD_GONE: (
        ": ",
        lambda f: f"cancel it with `vidauth uploads cancel {f.get('record_id')}` and upload again",
    ),
    ErrorCode.SIGNATURE_REFUSED: (": ", _signature),
    ErrorCode.CANCEL_FAILED: (
        "; ",
        lambda f: f"try `vidauth uploads cancel {f.get('record_id')}` again",
    ),
    ErrorCode.PROCESSING_FAILED: ("; ", lambda f: "fix the file and upload it again"),
    ErrorCode.PROCESSING_TIMEOUT: ("; ", lambda f: "check it later with `vidauth uploads`"),
    ErrorCode.OAUTH_ERROR: ("; ", _oauth),
    ErrorCode.UPLOAD_RUNNING: (
        ": ",
        lambda f: "let it finish, or stop that process and run the same command again",
    ),
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
    ErrorCode.SIGN_IN_TIMEOUT: 3,
    ErrorCode.AUTHORIZATION_DENIED: 3,
    ErrorCode.PERMISSION_DENIED: 3,
    ErrorCode.OAUTH_ERROR: 3,
    ErrorCode.REMOTE_FAILED: 4,
    ErrorCode.UPLOAD_TARGET_FAILED: 4,
    ErrorCode.MULTIPART_UPLOAD_GONE: 4,
    ErrorCode.SIGNATURE_REFUSED: 4,
    ErrorCode.CANCEL_FAILED: 4,
    ErrorCode.PROCESSING_FAILED: 4,
    ErrorCode.PROCESSING_TIMEOUT: 4,
    ErrorCode.UPLOAD_INTERRUPTED: 130,
    ErrorCode.UPLOAD_RUNNING: 2,
    ErrorCode.REFRESH_OUTCOME_UNKNOWN: 4,
    ErrorCode.TOKEN_RESPONSE_INVALID: 4,
    ErrorCode.STORE_UNWRITABLE: 2,
    ErrorCode.GRANT_NOT_SAVED: 2,
    ErrorCode.FILE_NOT_MEDIA: 2,
    ErrorCode.PART_SIZE_INVALID: 2,
    ErrorCode.FOLDER_AMBIGUOUS: 2,
    ErrorCode.REDIRECT_NOT_LOOPBACK: 2,
    ErrorCode.HOME_UNWRITABLE: 2,
}


def _choice_sentence(exc: VidauthError) -> str | None:
    """``--flag value: choose one of …`` for a usage error that lists the valid choices."""
    flag = OPTION_FLAGS.get(str(exc.facts.get("option")))
    choices = exc.facts.get("choices")
    if exc.code != ErrorCode.USAGE or flag is None or not choices:
        return None
    return f"{flag} {exc.facts.get('value')}: choose one of {', '.join(map(str, choices))}"


def sentence(exc: VidauthError) -> str:
    """The one line the CLI prints for ``exc``: its message and, for its code, what to run."""
    choice = _choice_sentence(exc)
    if choice is not None:
        return choice
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
