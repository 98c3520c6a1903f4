"""Transfer: send a plan's missing parts through the gate of parts in flight.

Each attempt holds a slot of :class:`~vidauth.panopto.parallelism.PartSlots` (released while a
retry waits) and reports to its controller: acknowledged bytes (throughput), and throttling
(503, SlowDown, timeouts), so the number in flight follows the link. Each part is read from the
file at its offset as it is sent (memory stays below parts in flight times part size), retried under
the one policy with a fresh token before every attempt, and recorded in the store as soon as the
target acknowledges it, so a crash loses at most the parts in flight (resuming needs only that
record). The first part that fails for good stops its siblings.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidauth.http import AccessTokenSource
from vidauth.panopto.files import FilePart, part_range
from vidauth.panopto.parallelism import PartSlots, throttling
from vidauth.panopto.plan import TransferPlan
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.upload_types import Progress, UploadEvent
from vidauth.store.uploads import UploadStore


def open_for_reading(path: Path) -> int:
    """The default opener of the file whose parts are sent (a read-only descriptor)."""
    return os.open(path, os.O_RDONLY)


class PartTransfer:
    """Sends parts on a shared pool of ``pool``'s workers (shared by every file)."""

    def __init__(
        self,
        pool: cf.Executor,
        caller: S3Caller,
        store: UploadStore,
        slots: PartSlots,
        token_source: AccessTokenSource | None = None,
        token_min_validity: float = 300.0,
        *,
        open_file: Callable[[Path], int] | None = None,
    ) -> None:
        self.pool = pool
        self.caller = caller
        self.store = store
        self.slots = slots
        self.token_source = token_source
        self.token_min_validity = token_min_validity
        self.open_file = open_file or open_for_reading

    def send(
        self,
        plan: TransferPlan,
        path: Path,
        stop: Stop,
        emit: Progress,
        sent: Callable[[int], None] | None = None,
    ) -> int:
        """Send the missing parts; answers the bytes sent now (CompleteMultipartUpload is the
        finisher's step, :meth:`~vidauth.panopto.finish.UploadFinisher.complete`).

        ``sent`` hears the bytes sent by this call even when it fails.
        """
        progress = _Progress(plan)
        if plan.round_trip is not None:
            self.slots.observe_round_trip(plan.round_trip)
        fd = self.open_file(path)
        try:
            self._send_parts(plan, fd, plan.missing, stop, emit, progress)
        finally:
            os.close(fd)
            if sent is not None:
                sent(progress.bytes_sent)
        return progress.bytes_sent

    def _send_parts(
        self,
        plan: TransferPlan,
        fd: int,
        numbers: list[int],
        stop: Stop,
        emit: Progress,
        progress: _Progress,
    ) -> None:
        futures = [
            self.pool.submit(self._send_part, plan, fd, n, stop, emit, progress) for n in numbers
        ]
        try:
            done, _ = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception()), None)
            if failure is not None:
                stop.failed.set()
                cf.wait(futures)
                raise failure
        except BaseException:
            stop.failed.set()
            for future in futures:
                future.cancel()
            raise

    def _fresh_token(self) -> None:
        if self.token_source is not None:
            self.token_source.access_token(self.token_min_validity)

    def _send_part(
        self,
        plan: TransferPlan,
        fd: int,
        number: int,
        stop: Stop,
        emit: Progress,
        progress: _Progress,
    ) -> None:
        record = plan.record
        offset, length = part_range(number, plan.size, record.part_size)

        controller = self.slots.controller

        def upload_part() -> Any:  # a fresh body per attempt: each reads from the offset
            with self.slots.slot(length, stop):
                try:
                    answer = plan.s3.upload_part(
                        Bucket=plan.target.bucket,
                        Key=plan.key,
                        UploadId=record.s3_upload_id,
                        PartNumber=number,
                        Body=FilePart(fd, offset, length),
                        ContentLength=length,
                    )
                except Exception as exc:
                    if throttling(exc):
                        controller.throttled()
                    raise
            controller.part_done(length)
            return answer

        answer = self.caller.call(
            stop,
            f"uploading part {number}",
            Path(record.file_path).name,
            upload_part,
            before=self._fresh_token,
        )
        etag = str(answer["ETag"])
        self.store.add_part(record.id, number, etag, length)
        done = progress.add(number, etag, length)
        emit(
            UploadEvent(
                "part", record.file_path, plan.size, done, record.id, record.session_upload_id
            )
        )


class _Progress:
    """The parts acknowledged so far (shared by the part threads of one file)."""

    def __init__(self, plan: TransferPlan) -> None:
        self.plan = plan
        self.lock = threading.Lock()
        self.bytes_sent = 0

    def add(self, number: int, etag: str, length: int) -> int:
        """Record an acknowledged part; answers the bytes the target now holds."""
        with self.lock:
            self.plan.parts[number] = (etag, length)
            self.bytes_sent += length
            return self.plan.bytes_done
