"""The one way vidauth writes a moment: RFC 3339 with an explicit offset, to the second.

``2026-12-04T02:55:40+00:00`` in the CLI's JSON, the service's answers and webhook bodies alike.
SQLite hands back the store's timezone-aware columns without their zone; the store only ever
writes UTC (:func:`vidauth.store.models.utcnow`), so a naive value is read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime | float | None) -> str | None:
    """``moment`` (a datetime, or seconds since the epoch) as RFC 3339 with an offset; None
    stays None."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        value = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    else:
        value = datetime.fromtimestamp(float(moment), UTC)
    return value.isoformat(timespec="seconds")


def now_rfc3339() -> str:
    """The current moment, in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds")
