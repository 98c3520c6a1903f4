"""Logging that cannot leak secrets: every record is scrubbed before any handler sees it.

Three layers, applied to every log record of the process (vidauth's, uvicorn's, httpx's, the
root logger's) at every level, TRACE included:

- values registered as secret (:func:`register_secret`: tokens, codes, client secrets, API
  keys, webhook secrets, link tokens) are masked wherever they appear;
- the values of query parameters that carry credentials (``code``, ``state``, ``s``, ``t``,
  ``token``…) and of ``Bearer`` credentials are masked by pattern, registered or not;
- uvicorn's request lines lose their query strings, and its TRACE dumps of ASGI scopes and
  messages lose ``query_string`` and the values of ``authorization``/``cookie`` headers.

:func:`install_redaction` puts this in place (a log-record factory, and the filter on every
handler there is); :func:`configure_logging` calls it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

_secrets: OrderedDict[str, None] = OrderedDict()
_by_length: list[str] = []  # _secrets, longest first; rebuilt when _secrets changes
_guard = threading.Lock()
MASK = "[redacted]"
#: Secrets remembered; the oldest are forgotten first (short-lived link tokens, mostly).
MAX_SECRETS = 5_000

#: Query parameters that carry credentials (after ? or &, also percent-encoded) …
_QUERY_SECRET = re.compile(
    r"(?i)((?:[?&]|%3F|%26)(?:code|state|s|t|token|access_token|refresh_token|id_token|"
    r"client_secret|password|api_key|key|nonce|code_verifier)(?:=|%3D))[^&\s'\"#<>]+"
)
#: … and names that say what they hold wherever they appear (``refresh_token=…``).
_NAMED_SECRET = re.compile(
    r"(?i)(\b(?:access_token|refresh_token|id_token|client_secret|password|api_key|"
    r"code_verifier)[\"']?\s*[=:]\s*[\"']?)[^&\s'\"#<>,}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s'\",]+")
#: Header pairs printed as Python reprs (httpcore's DEBUG lines): (b'cookie', b'…').
_HEADER_PAIR = re.compile(
    r"(?i)(\(b?['\"](?:set-cookie|cookie|authorization|proxy-authorization)['\"],\s*b?['\"])"
    r"[^'\"]*"
)
_SECRET_HEADERS = {b"authorization", b"cookie", b"set-cookie", b"proxy-authorization"}


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log record (values under 6 chars ignored)."""
    if value and len(value) >= 6:
        with _guard:
            known = value in _secrets
            _secrets[value] = None
            _secrets.move_to_end(value)
            while len(_secrets) > MAX_SECRETS:
                _secrets.popitem(last=False)
                known = False
            if not known:
                _by_length[:] = sorted(_secrets, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every registered secret and every credential-shaped value masked."""
    with _guard:
        values = tuple(_by_length)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _NAMED_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _HEADER_PAIR.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def _without_query(path: Any) -> Any:
    if isinstance(path, str) and "?" in path:
        return path.split("?", 1)[0]
    return path


def _clean_asgi(value: Any) -> Any:
    """An ASGI scope or message (uvicorn's TRACE lines) without query strings or secrets in
    headers; anything else unchanged."""
    if not isinstance(value, dict):
        return value
    clean = dict(value)
    if clean.get("query_string"):
        clean["query_string"] = MASK.encode()
    headers = clean.get("headers")
    if isinstance(headers, list | tuple):
        clean["headers"] = [
            (name, MASK.encode())
            if isinstance(name, bytes) and name.lower() in _SECRET_HEADERS
            else (name, val)
            for name, val in (h if len(h) == 2 else (h, b"") for h in headers)
        ]
    return clean


def scrub_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place so that nothing secret can be printed from it."""
    args = record.args
    # uvicorn's coloured copy of the message, formatted from the same arguments: dropped.
    record.__dict__.pop("color_message", None)
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        # '%s - "%s %s HTTP/%s" %d': the request line without its query string. The
        # arguments stay (uvicorn's access formatter unpacks them), each one scrubbed.
        args = (args[0], args[1], _without_query(args[2]), args[3], args[4])
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        record.msg = redact(str(record.msg))
    else:
        if isinstance(args, tuple):
            args = tuple(_clean_asgi(a) for a in args)
        elif isinstance(args, dict):
            args = _clean_asgi(args)
        record.args = args
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep what can be shown of it
            message = str(record.msg)
        record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """Scrubs each record (:func:`scrub_record`); put on handlers, so that records propagated
    from any logger pass it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_vidauth_scrubbed", False):
            scrub_record(record)
            record._vidauth_scrubbed = True
        return True


_factory_lock = threading.Lock()
_installed = False


def install_redaction() -> None:
    """Scrub every log record the process creates, and put the filter on every handler.

    The record factory covers loggers and handlers configured later (uvicorn configures its
    own when it starts); the handler filters cover records made by other factories.
    Idempotent.
    """
    global _installed
    with _factory_lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                scrub_record(record)
                record._vidauth_scrubbed = True
                return record

            logging.setLogRecordFactory(factory)
            _installed = True
    loggers: list[logging.Logger] = [logging.getLogger()]
    for name in list(logging.Logger.manager.loggerDict):
        logger = logging.getLogger(name)
        if logger.handlers:
            loggers.append(logger)
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when the handler was
    made: a command run in-process (a test, an embedding program) may swap and close stderr,
    and a worker thread logging later must not write to the closed one."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: int = logging.WARNING) -> None:
    """vidauth's loggers to stderr at ``level``; httpx's request lines stay quiet."""
    install_redaction()
    root = logging.getLogger("vidauth")
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler: logging.Handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_unless_verbose() -> Iterator[None]:
    """Within the block, vidauth's log lines reach stderr only when ``-v`` asked for them.

    For commands that report everything themselves (``vidauth doctor``'s table): the retry
    warnings of :mod:`vidauth.http` still happen, but are shown only at INFO level or below.
    """
    root = logging.getLogger("vidauth")
    if root.getEffectiveLevel() <= logging.INFO:
        yield
        return
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    saved = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, saved, strict=True):
            handler.setLevel(level)
