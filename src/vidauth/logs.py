"""Logging that cannot leak secrets: a filter masks every value registered as secret."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

_secrets: set[str] = set()
_guard = threading.Lock()
MASK = "[redacted]"


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log record (values under 6 chars ignored)."""
    if value and len(value) >= 6:
        with _guard:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret masked."""
    with _guard:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure_logging(level: int = logging.WARNING) -> None:
    """vidauth's loggers to stderr at ``level``; httpx's request lines stay quiet."""
    root = logging.getLogger("vidauth")
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
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
