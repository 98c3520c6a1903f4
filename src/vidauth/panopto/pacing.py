"""A bandwidth limit: one pacer shared by every part of a process that sends at a given rate.

:class:`Pacer` is a token bucket in the form of a virtual clock: each read of a part's body
books its bytes at the rate and waits until its turn, with a small burst allowance so that a
pause is not lost entirely but is not made up at once either. :func:`shared_pacer` answers the
one pacer of the process for a rate, so the parts of every file of a command, and every job of a
worker process, share the limit. The parts in flight are bounded by what the limit needs
(:func:`parts_for`), and the controller adapts below that as it does on any link.

The limit's notation is read by :func:`vidauth.domain.rates.parse_rate`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

#: Seconds of the rate a pacer lets through at once after a pause.
BURST_SECONDS = 0.05
#: The least burst in bytes, so that one read of a body never waits for itself.
MIN_BURST = 64 * 1024


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


#: Seconds of the limit's bytes worth keeping in flight: enough to hide each part's round
#: trip, without leaving many half-sent parts to resend after a crash.
IN_FLIGHT_SECONDS = 4.0


def parts_for(rate: float, part_size: int) -> int:
    """Parts in flight a bandwidth limit of ``rate`` bytes/s needs with parts of ``part_size``:
    :data:`IN_FLIGHT_SECONDS` of bytes, plus one, at least two."""
    return max(2, math.ceil(rate * IN_FLIGHT_SECONDS / part_size) + 1)


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
