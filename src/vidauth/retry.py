"""The one retry policy: exponential backoff with full jitter, bounded in attempts and time.

Token, API and S3 calls retry in-process through :meth:`RetryPolicy.start`'s budget; the
service's worker and webhook sender reschedule durable retries with :meth:`RetryPolicy.backoff`.
:meth:`RetryPolicy.from_settings` builds it once from ``VIDAUTH_RETRY_ATTEMPTS`` /
``VIDAUTH_RETRY_MAX_SECONDS``. Whether a request may be replayed at all is the caller's rule
(:func:`may_replay`): a one-time code is only resent when it certainly never arrived.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Protocol

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RetryBounds(Protocol):
    """What configuration provides (``vidauth.config.RetrySettings``)."""

    @property
    def attempts(self) -> int: ...

    @property
    def max_seconds(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 120.0
    max_retry_after: float = 120.0

    @classmethod
    def from_settings(cls, bounds: RetryBounds) -> RetryPolicy:
        """The policy bounded by the configured attempts and seconds."""
        return cls(attempts=bounds.attempts, max_total=bounds.max_seconds)

    def backoff(
        self, attempt: int, retry_after: float | None = None, *, max_delay: float | None = None
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

        ``retry_after`` (the server's Retry-After) wins, capped at ``max_retry_after``;
        ``max_delay`` overrides the ceiling for durable retries scheduled in the database.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        top = self.max_delay if max_delay is None else max_delay
        ceiling = min(top, self.base_delay * (2 ** (max(attempt, 1) - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def start(self) -> RetryBudget:
        """A fresh budget for one call (its attempts and its clock)."""
        return RetryBudget(self)


@dataclass
class RetryBudget:
    """The attempts and time one call has left under its policy."""

    policy: RetryPolicy
    attempt: int = 0
    started: float = field(default_factory=time.monotonic)

    def begin(self) -> int:
        """Count an attempt; answers its number (from 1)."""
        self.attempt += 1
        return self.attempt

    def elapsed(self) -> float:
        """Seconds since the first attempt."""
        return time.monotonic() - self.started

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """How long to wait before the next attempt, or None when the budget is spent (out of
        attempts, or the wait would end past ``max_total``)."""
        if self.attempt >= self.policy.attempts or self.elapsed() > self.policy.max_total:
            return None
        delay = self.policy.backoff(self.attempt, retry_after)
        if self.elapsed() + delay > self.policy.max_total:
            return None
        return delay


def may_replay(mode: str, *, unsent: bool) -> bool:
    """Whether a failed request may be sent again under its replay ``mode``.

    ``never``: no; ``unsent``: only when the server certainly did not act on it (the connection
    failed before the request went out, or a 429) — one-time codes; ``idempotent`` / ``always``:
    yes.
    """
    if mode == "never":
        return False
    if mode == "unsent":
        return unsent
    return True


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
