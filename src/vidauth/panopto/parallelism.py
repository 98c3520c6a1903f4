"""How many parts are in flight: adapted to the link, within a memory bound, or pinned.

:class:`InFlightController` decides the number (pure: it only sees a clock and what the
transfer reports). It starts at :data:`INITIAL_PARTS_IN_FLIGHT`, or at the plateau remembered
for the upload host (:meth:`InFlightController.start_near`), and doubles while the acknowledged
throughput keeps growing (by at least :data:`GROWTH_GAIN` per step), as TCP's slow start does; a
step that brings nothing is taken back and the number held, with a probe upwards by half every
:data:`PROBE_EVERY` measurements in case the link changed. The number reached is what
:meth:`InFlightController.plateau` answers, for the next upload to that host. A throttling
answer (503, SlowDown, a timeout, a dropped connection) halves it at once — once per burst, since
every part in flight tends to be refused together — and caps further growth below the number
that was throttled.
A pinned controller (``--parallel N``) never changes.

:class:`PartSlots` is the gate the part threads pass: at most ``limit`` parts at once, never more
than :data:`MEMORY_BOUND` bytes of parts (parts in flight times part size) when adapting, and starts
spaced a little apart. Parts that start together finish together (they share one link), then
all wait out their request latency at once and leave the link idle; spacing the starts by a
fraction of the round trip keeps some part sending while others wait.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

MiB = 1024 * 1024
#: Bytes of parts in flight at most while adapting (parts in flight times part size; parts
#: stream from the file, so this bounds the bytes at stake, not the memory).
MEMORY_BOUND = 512 * MiB
#: Parts in flight at most while adapting, whatever the part size.
MAX_PARTS_IN_FLIGHT = 64
#: The first guess: all 32 parts of a 256 MiB file at once. Growth is measured from
#: acknowledged parts (bytes read are no measure: a part just started reads its connection's
#: send buffer full at once, megabytes of it), so a cold start doubles only after a whole wave
#: of parts, at most once within such a file; a link that caps each connection (80 MB/s shared,
#: 4 MB/s a connection) needs 20 parts from the first second. It is harmless on a slower link:
#: the parts share it, memory does not grow (parts stream from the file), and throttling halves
#: it at once.
INITIAL_PARTS_IN_FLIGHT = 32
#: A step up is kept only when it raised throughput by this factor.
GROWTH_GAIN = 1.05
#: A measurement spans at least this long and at least ``limit`` acknowledged parts.
MIN_MEASUREMENT = 1.0
#: While holding, probe one step up after this many measurements.
PROBE_EVERY = 8
#: Starts are spaced by round trip / parts in flight, at most this much.
MAX_START_SPACING = 0.05

log = logging.getLogger("vidauth.upload")


@dataclass(frozen=True)
class Change:
    """One change of the number of parts in flight, for logs and tests."""

    at: float
    old: int
    new: int
    why: str


class InFlightController:
    """The number of parts in flight (``limit``), from throughput and throttling (thread-safe).

    ``maximum`` bounds it; ``pinned`` fixes it at ``maximum``. ``clock`` is injectable so tests
    drive it deterministically.
    """

    def __init__(
        self,
        maximum: int,
        *,
        pinned: bool = False,
        initial: int = INITIAL_PARTS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self.pinned = pinned
        self.limit = maximum if pinned else max(1, min(initial, maximum))
        self.clock = clock
        self.changes: list[Change] = []
        self._lock = threading.Lock()
        self._ceiling = maximum
        self._growing = True
        self._slow_start = True  # double while throughput grows; by half once it stopped
        self._measurements = 0
        self._rate_before: float | None = None  # throughput at the limit before the last step
        self._limit_before = self.limit
        self._held = 0
        self._last_backoff: float | None = None
        self._start: float | None = None
        self._bytes = 0
        self._parts = 0

    # -- what the transfer reports ------------------------------------------------------------

    def start_near(self, parts: int) -> None:
        """Start at ``parts`` in flight (the plateau remembered for the upload host) when that
        is more than now and nothing has been measured yet; growth goes on from there."""
        with self._lock:
            if self.pinned or self._measurements or self.changes:
                return
            new = max(1, min(self.maximum, parts))
            if new > self.limit:
                self._set(new, self.clock(), "the plateau remembered for this upload host")

    def limit_to(self, parts: int, why: str) -> None:
        """Never more than ``parts`` in flight from now on (e.g. all a bandwidth limit needs);
        a pinned number is left as it is."""
        with self._lock:
            if self.pinned:
                return
            bound = max(1, parts)
            self.maximum = min(self.maximum, bound)
            self._ceiling = min(self._ceiling, bound)
            if self.limit > bound:
                self._set(bound, self.clock(), why)

    def plateau(self) -> int | None:
        """The parts in flight worth starting with next time (None: nothing was measured)."""
        with self._lock:
            if self.pinned or not self._measurements:
                return None
            if self._growing and not self._slow_start:
                return min(self.limit, self._limit_before)  # probing: the number held before
            return self.limit

    def part_started(self) -> None:
        """A part attempt started (the first one starts the first measurement)."""
        with self._lock:
            if self._start is None:
                self._start = self.clock()

    def part_done(self, nbytes: int) -> None:
        """A part of ``nbytes`` was acknowledged."""
        with self._lock:
            now = self.clock()
            if self._start is None:
                self._start = now
            self._bytes += nbytes
            self._parts += 1
            elapsed = now - self._start
            if elapsed >= MIN_MEASUREMENT and self._parts >= self.limit:
                self._measured(self._bytes / elapsed, now)

    def throttled(self) -> None:
        """The target answered 503/SlowDown, or a part timed out or lost its connection."""
        with self._lock:
            now = self.clock()
            if self.pinned:
                return
            if self._last_backoff is not None and now - self._last_backoff < MIN_MEASUREMENT:
                return  # the same burst: its siblings are refused together
            self._last_backoff = now
            self._ceiling = max(1, self.limit - 1)
            self._growing = False
            self._slow_start = False
            self._held = 0
            self._rate_before = None
            self._set(max(1, self.limit // 2), now, "the target asked to slow down")

    # -- decisions -----------------------------------------------------------------------------

    def _measured(self, rate: float, now: float) -> None:
        self._start, self._bytes, self._parts = now, 0, 0
        if self.pinned:
            return
        self._measurements += 1
        if self._growing:
            if self._rate_before is not None and rate < self._rate_before * GROWTH_GAIN:
                self._growing, self._slow_start, self._held = False, False, 0
                self._set(self._limit_before, now, "more parts brought no more throughput")
                return
            self._step_up(rate, now, "throughput grew")
            return
        self._held += 1
        if self._held >= PROBE_EVERY:
            self._ceiling = min(self.maximum, self._ceiling + 1)
            self._growing = True
            self._step_up(rate, now, "probing for more throughput")

    def _step_up(self, rate: float, now: float, why: str) -> None:
        step = self.limit if self._slow_start else max(1, self.limit // 2)
        new = min(self._ceiling, self.limit + step)
        if new <= self.limit:
            self._growing, self._held = False, 0
            return
        self._rate_before, self._limit_before = rate, self.limit
        self._set(new, now, why)

    def _set(self, new: int, now: float, why: str) -> None:
        if new == self.limit:
            return
        change = Change(now, self.limit, new, why)
        self.changes.append(change)
        self.limit = new
        level = logging.INFO if new < change.old else logging.DEBUG
        log.log(level, "parts in flight %d -> %d: %s", change.old, new, why)


class StopCheck(Protocol):
    """What can stop a waiting part (:class:`vidauth.panopto.s3calls.Stop`)."""

    def check(self) -> None:
        """Raise when the part must not start."""


class PartSlots:
    """The gate of the part threads: ``controller.limit`` parts and ``memory_bound`` bytes at
    most (``None``: no byte bound), starts spaced by ``spacing`` seconds."""

    def __init__(
        self,
        controller: InFlightController,
        *,
        memory_bound: int | None = MEMORY_BOUND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller = controller
        self.memory_bound = memory_bound
        self.clock = clock
        self.spacing = MAX_START_SPACING
        self.in_flight = 0
        self.bytes_in_flight = 0
        self.peak = 0
        self._last_start: float | None = None
        self._cond = threading.Condition()

    def observe_round_trip(self, seconds: float) -> None:
        """Space starts by the target's round trip (e.g. CreateMultipartUpload's) / parts."""
        with self._cond:
            per_part = seconds / max(1, self.controller.limit)
            self.spacing = max(0.0, min(MAX_START_SPACING, per_part))

    def try_acquire(self, nbytes: int) -> float | None:
        """Take a slot for a part of ``nbytes``: 0.0 when taken, else how long to wait at most
        (None: until a slot is released)."""
        with self._cond:
            return self._try_acquire(nbytes)

    def _try_acquire(self, nbytes: int) -> float | None:
        if self.in_flight >= self.controller.limit:
            return None
        if (
            self.memory_bound is not None
            and self.in_flight
            and self.bytes_in_flight + nbytes > self.memory_bound
        ):
            return None
        now = self.clock()
        if self._last_start is not None:
            wait = self._last_start + self.spacing - now
            if wait > 0:
                return wait
        self.in_flight += 1
        self.bytes_in_flight += nbytes
        self.peak = max(self.peak, self.in_flight)
        self._last_start = now
        self.controller.part_started()
        return 0.0

    def release(self, nbytes: int) -> None:
        """Give a slot back."""
        with self._cond:
            self.in_flight -= 1
            self.bytes_in_flight -= nbytes
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self, nbytes: int, stop: StopCheck) -> Iterator[None]:
        """Hold a slot while the body runs; waiting re-checks ``stop`` at least twice a second."""
        with self._cond:
            while True:
                stop.check()
                wait = self._try_acquire(nbytes)
                if wait == 0.0:
                    break
                self._cond.wait(0.5 if wait is None else min(wait, 0.5))
        try:
            yield
        finally:
            self.release(nbytes)


def throttling(exc: BaseException) -> bool:
    """An answer that means "fewer requests at once": 503/429/SlowDown, a timeout, a dropped
    connection."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(exc.response.get("Error", {}).get("Code") or "")
        return status in (429, 503) or code in {
            "SlowDown",
            "RequestTimeout",
            "Throttling",
            "ThrottlingException",
            "TooManyRequests",
            "ServiceUnavailable",
            "RequestLimitExceeded",
        }
    return isinstance(exc, HTTPClientError | ConnectionError)


def controller_for(
    parallel: int | None, *, clock: Callable[[], float] = time.monotonic
) -> tuple[InFlightController, PartSlots]:
    """The controller and gate of an engine: pinned at ``parallel``, or adaptive when None."""
    if parallel is not None:
        controller = InFlightController(parallel, pinned=True, clock=clock)
        return controller, PartSlots(controller, memory_bound=None, clock=clock)
    controller = InFlightController(MAX_PARTS_IN_FLIGHT, clock=clock)
    return controller, PartSlots(controller, memory_bound=MEMORY_BOUND, clock=clock)
