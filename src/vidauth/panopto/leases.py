"""Hold the lease of each upload an engine runs, so that a second run leaves it alone.

:class:`LeaseKeeper` takes an upload's lease before anything touches the upload (the planner's
resume checks included), renews every lease it holds from one heartbeat thread, and drops them
when the upload ends or the engine closes. A lease someone else holds raises
:class:`UploadRunning`, with the holder's pid and host as facts.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from vidauth.errors import ErrorCode, UsageError
from vidauth.store.db import Database
from vidauth.store.leases import Clock, Holder, LeaseStore

log = logging.getLogger("vidauth.upload")

#: Seconds a lease lives without a heartbeat; the heartbeat runs at a third of it.
LEASE_SECONDS = 30.0


class UploadRunning(UsageError):
    """Another process is running this upload now (exit 2 on the command line)."""

    default_code = ErrorCode.UPLOAD_RUNNING


class LeaseKeeper:
    """The leases of one engine: take, renew in the background, release."""

    def __init__(
        self, db: Database, ttl: float = LEASE_SECONDS, clock: Clock | None = None
    ) -> None:
        self.store = LeaseStore(db, clock) if clock else LeaseStore(db)
        self.holder = Holder()
        self.ttl = ttl
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, upload_id: int) -> None:
        """Take the lease of ``upload_id`` or raise :class:`UploadRunning`."""
        other = self.store.acquire(upload_id, self.holder, self.ttl)
        if other is not None:
            until = datetime.fromtimestamp(other.expires_at, UTC).isoformat(timespec="seconds")
            raise UploadRunning(
                f"upload {upload_id} is already running (process {other.pid} on {other.host})",
                code=ErrorCode.UPLOAD_RUNNING,
                record_id=upload_id,
                pid=other.pid,
                host=other.host,
                lease_expires_at=until,
            )
        with self._lock:
            self._held.add(upload_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name="vidauth-lease", daemon=True
                )
                self._thread.start()

    def release(self, upload_id: int) -> None:
        """Drop the lease of ``upload_id`` (if held)."""
        with self._lock:
            if upload_id not in self._held:
                return
            self._held.discard(upload_id)
        self.store.release(self.holder, upload_id)

    def close(self) -> None:
        """Stop the heartbeat and drop every lease still held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            held, self._held = self._held, set()
        if held:
            self.store.release(self.holder)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                if not self._held:
                    continue
            try:
                self.store.renew(self.holder, self.ttl)
            except Exception:  # a missed beat is retried; the lease has slack for two
                log.warning("could not renew the upload leases; retrying", exc_info=True)
