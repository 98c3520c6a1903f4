"""Holding a chosen request, so that a test can act at an exact step boundary of an upload.

``sandbox.hold("CompleteMultipartUpload")`` makes the next such request wait, once it has
arrived and before it is carried out, until the test calls ``release()``; ``arrived`` tells the
test that it is there (then, e.g., it kills the client with ``kill -9``, deterministically and
without sleeps). Points: the S3 operations (``CreateMultipartUpload``, ``UploadPart``,
``CompleteMultipartUpload``, ``AbortMultipartUpload``) and ``State1`` (the sessionUpload PUT
with ``State: 1``); ``key`` restricts an S3 point to keys ending so (``.xml``: the manifest).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import anyio.to_thread

#: How long a held request waits at most for its release (a test that forgot it).
HOLD_LIMIT_S = 120.0


@dataclass
class Hold:
    """One held request: ``arrived`` is set when it is there; ``release()`` lets it go on."""

    point: str
    key: str | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Let the held request be carried out."""
        self.released.set()

    def wait_arrived(self, timeout: float = 60.0) -> bool:
        """Wait until the request is held; False on timeout."""
        return self.arrived.wait(timeout)


class Holds:
    """The holds set by a test (thread-safe); each holds one request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Hold] = []

    def hold(self, point: str, key: str | None = None) -> Hold:
        """Hold the next request at ``point`` (whose key ends with ``key``, if given)."""
        hold = Hold(point, key)
        with self._lock:
            self._pending.append(hold)
        return hold

    async def at(self, point: str, key: str = "") -> None:
        """Called by the server at ``point``: waits while a hold matches."""
        with self._lock:
            found = next(
                (
                    h
                    for h in self._pending
                    if h.point == point and (h.key is None or key.endswith(h.key))
                ),
                None,
            )
            if found is not None:
                self._pending.remove(found)
        if found is None:
            return
        found.arrived.set()
        await anyio.to_thread.run_sync(found.released.wait, HOLD_LIMIT_S)
