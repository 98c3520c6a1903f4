"""Logging that cannot leak secrets: a filter masks every value registered as secret."""

from __future__ import annotations

import logging
import threading

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
