"""Defer SIGTERM and SIGINT while the only copy of a rotated grant is in memory.

Between sending a refresh (the server rotates the refresh token) and committing the answer, being
killed loses the sign-in. :func:`deferred_termination` holds those signals back for that short,
bounded section and delivers them afterwards through the previous handlers. Signal handlers can
only be set from the main thread; elsewhere (the service's workers) it does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger("vidauth.signals")

DEFERRED = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def deferred_termination() -> Iterator[None]:
    """Run the block with SIGTERM/SIGINT held back; re-raise the first one received after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        if not received:
            log.warning(
                "finishing the token refresh before stopping (%s)", signal.strsignal(signum)
            )
        received.append(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in DEFERRED:
        with contextlib.suppress(ValueError, OSError):  # not the main interpreter
            previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(received[0])
