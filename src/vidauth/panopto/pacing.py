"""A bandwidth limit: one pacer shared by every part of a process that sends at a given rate.

:class:`Pacer` is a token bucket in the form of a virtual clock: each read of a part's body
books its bytes at the rate and waits until its turn, with a small burst allowance so that a
pause is not lost entirely but is not made up at once either. :func:`shared_pacer` answers the
one pacer of the process for a rate, so the parts of every file of a command, and every job of a
worker process, share the limit. The controller of parts in flight sees the throughput stop
growing at the limit and settles below it.

:func:`parse_rate` reads rclone's notation: bytes per second, or a number with ``K``, ``M``,
``G`` or ``T`` (powers of 1024: ``10M`` is 10 MiB/s); ``off`` or ``0`` mean no limit.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

#: Seconds of the rate a pacer lets through at once after a pause.
BURST_SECONDS = 0.05
#: The least burst in bytes, so that one read of a body never waits for itself.
MIN_BURST = 64 * 1024

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([BKMGT]?)\s*(?:i?B?)?(?:/s)?\s*$", re.I)


def parse_rate(text: str) -> int | None:
    """Bytes per second from ``10M``, ``512K``, ``1.5G`` or ``1000000``; None for ``off``/``0``.

    Raises ValueError for anything else.
    """
    if text.strip().lower() in ("off", "none", ""):
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"not a rate: {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value != value or value == float("inf"):
        raise ValueError(f"not a rate: {text!r}")
    rate = int(value)
    if rate == 0 and value > 0:
        raise ValueError(f"a rate below one byte per second: {text!r}")
    return rate or None


class Pacer:
    """At most ``rate`` bytes per second through :meth:`take` (thread-safe).

    ``clock`` and ``sleep`` are injectable so tests drive it without waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = burst if burst is not None else max(MIN_BURST, self.rate * BURST_SECONDS)
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None  # when the bytes booked so far will have gone

    def take(self, nbytes: int) -> float:
        """Wait until ``nbytes`` may go; answers the seconds waited."""
        if nbytes <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            start = now if self._next is None else max(self._next, now)
            self._next = start + nbytes / self.rate
            wait = self._next - now - self.burst / self.rate
        if wait > 0:
            self.sleep(wait)
            return wait
        return 0.0


_shared: dict[int, Pacer] = {}
_shared_lock = threading.Lock()


def shared_pacer(rate: int | None) -> Pacer | None:
    """The process's one pacer for ``rate`` bytes/s (None: no limit)."""
    if rate is None:
        return None
    with _shared_lock:
        pacer = _shared.get(rate)
        if pacer is None:
            pacer = _shared[rate] = Pacer(rate)
        return pacer
