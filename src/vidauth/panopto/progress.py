"""Progress that tells the truth: bytes read from a file for sending, and the speed of the link.

A part's body reports every read (:class:`ByteMeter.read`) and, when it is rewound or its attempt
fails, gives the bytes back (:meth:`ByteMeter.give_back`), so a retried part counts its bytes
again rather than twice. The speed is the bytes read over a sliding window
(:data:`SPEED_WINDOW`), counting every read, given back or not: they all crossed the link.
Progress events (kind ``progress``) are sent at most every :data:`EMIT_EVERY` seconds per file.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from vidauth.panopto.upload_types import EventKind, UploadEvent

#: Seconds over which the speed is measured.
SPEED_WINDOW = 5.0
#: At most one progress event per file this often (seconds).
EMIT_EVERY = 0.25
#: Samples of the window are merged when closer than this (seconds).
_SAMPLE_SPACING = 0.05


class SpeedWindow:
    """Bytes per second over the last ``window`` seconds (not thread-safe: its owner locks)."""

    def __init__(self, window: float = SPEED_WINDOW) -> None:
        self.window = window
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, nbytes: int, now: float) -> None:
        """``nbytes`` more crossed the link at ``now``."""
        if not self._samples:
            self._samples.append((now, self.total))
        self.total += nbytes
        if now - self._samples[-1][0] < _SAMPLE_SPACING and len(self._samples) > 1:
            self._samples[-1] = (self._samples[-1][0], self.total)
        else:
            self._samples.append((now, self.total))
        self._forget(now)

    def _forget(self, now: float) -> None:
        edge = now - self.window
        while len(self._samples) > 1 and self._samples[1][0] <= edge:
            self._samples.popleft()

    def rate(self, now: float) -> float | None:
        """Bytes per second over the window, or None before a tenth of a second of data."""
        self._forget(now)
        if not self._samples:
            return None
        edge = now - self.window
        start, before = self._samples[0]
        if start < edge:  # the oldest sample is older than the window: take its edge
            if len(self._samples) > 1:
                (t0, b0), (t1, b1) = self._samples[0], self._samples[1]
                before = round(b0 + (b1 - b0) * (edge - t0) / (t1 - t0))
            start = edge
        span = now - start
        if span < 0.1:
            return None
        return (self.total - before) / span


class ByteMeter:
    """The bytes of one file read for sending (thread-safe; shared by its part threads).

    ``base``: bytes the target held before (a resumed upload); ``emit`` hears ``progress``
    events with ``bytes_done`` (base + bytes read, net of those given back) and ``rate``.
    """

    def __init__(
        self,
        path: str,
        total: int,
        base: int,
        emit: Callable[[UploadEvent], None],
        *,
        record_id: int | None = None,
        upload_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = EMIT_EVERY,
        window: float = SPEED_WINDOW,
    ) -> None:
        self.path = path
        self.total = total
        self.base = base
        self.emit = emit
        self.record_id = record_id
        self.upload_id = upload_id
        self.clock = clock
        self.every = every
        self.sent = 0
        self.speed = SpeedWindow(window)
        self._lock = threading.Lock()
        self._last_emit: float | None = None

    @property
    def bytes_done(self) -> int:
        """Bytes held by the target before, plus bytes read for sending now."""
        return min(self.total, self.base + self.sent)

    def read(self, nbytes: int) -> None:
        """``nbytes`` were read from the file for sending."""
        with self._lock:
            now = self.clock()
            self.sent += nbytes
            self.speed.add(nbytes, now)
            due = self._last_emit is None or now - self._last_emit >= self.every
            if due or self.bytes_done >= self.total:
                self._last_emit = now
                event = self._event(now)
            else:
                event = None
        if event is not None:
            self.emit(event)

    def give_back(self, nbytes: int) -> None:
        """``nbytes`` read before will be read again (a rewound body, a failed attempt)."""
        if nbytes <= 0:
            return
        with self._lock:
            self.sent -= nbytes
            event = self._event(self.clock())
        self.emit(event)

    def rate(self) -> float | None:
        """Bytes per second over the sliding window (None at the very start)."""
        with self._lock:
            return self.speed.rate(self.clock())

    def _event(self, now: float) -> UploadEvent:
        rate = self.speed.rate(now)
        return UploadEvent(
            EventKind.PROGRESS,
            self.path,
            self.total,
            self.bytes_done,
            self.record_id,
            self.upload_id,
            rate=None if rate is None else round(rate),
        )
