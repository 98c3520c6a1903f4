"""Transfer: send a plan's missing parts through the gate of parts in flight.

Each attempt holds a slot of :class:`~vidauth.panopto.parallelism.PartSlots` (released while a
retry waits) and reports to its controller: acknowledged bytes (throughput), and throttling
(503, SlowDown, timeouts), so the number in flight follows the link. Each part is read from the
file at its offset as it is sent (memory stays below parts in flight times part size), retried under
the one policy with a fresh token before every attempt, and recorded in the store as soon as the
target acknowledges it, so a crash loses at most the parts in flight (resuming needs only that
record). The first part that fails for good stops its siblings. CompleteMultipartUpload is the
finisher's step.

Each body reports its reads to the file's :class:`~vidauth.panopto.progress.ByteMeter` (progress
counts the bytes read for sending, not the parts acknowledged) and books them with the process's
:class:`~vidauth.panopto.pacing.Pacer` when a bandwidth limit is set.
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
from vidauth.panopto.pacing import Pacer, parts_for
from vidauth.panopto.parallelism import PartSlots, throttling
from vidauth.panopto.plan import TransferPlan
from vidauth.panopto.progress import ByteMeter
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.signature import upload_host
from vidauth.panopto.upload_types import EventKind, Progress, UploadEvent
from vidauth.store.plateaus import PlateauStore
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
        pacer: Pacer | None = None,
        plateaus: PlateauStore | None = None,
    ) -> None:
        self.pool = pool
        self.pacer = pacer
        self.plateaus = plateaus
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
        record = plan.record
        meter = ByteMeter(
            record.file_path,
            plan.size,
            plan.bytes_done,
            emit,
            record_id=record.id,
            upload_id=record.session_upload_id,
        )
        if plan.round_trip is not None:
            self.slots.observe_round_trip(plan.round_trip)
        host = upload_host(plan.target.endpoint)
        if self.pacer is not None:
            self.slots.controller.limit_to(
                parts_for(self.pacer.rate, record.part_size), "the bandwidth limit needs no more"
            )
        if self.plateaus is not None:
            remembered = self.plateaus.get(host)
            if remembered is not None:
                self.slots.controller.start_near(remembered)
        fd = self.open_file(path)
        try:
            self._send_parts(plan, fd, plan.missing, stop, emit, progress, meter)
        finally:
            os.close(fd)
            if sent is not None:
                sent(progress.bytes_sent)
        plateau = self.slots.controller.plateau()
        if self.plateaus is not None and plateau is not None:
            self.plateaus.remember(host, plateau)
        return progress.bytes_sent

    def _send_parts(
        self,
        plan: TransferPlan,
        fd: int,
        numbers: list[int],
        stop: Stop,
        emit: Progress,
        progress: _Progress,
        meter: ByteMeter,
    ) -> None:
        futures = [
            self.pool.submit(self._send_part, plan, fd, n, stop, emit, progress, meter)
            for n in numbers
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
        meter: ByteMeter,
    ) -> None:
        record = plan.record
        offset, length = part_range(number, plan.size, record.part_size)

        controller = self.slots.controller

        def upload_part() -> Any:  # a fresh body per attempt: each reads from the offset
            with self.slots.slot(length, stop):
                body = MeteredPart(fd, offset, length, meter, self.pacer)
                try:
                    answer = plan.s3.upload_part(
                        Bucket=plan.target.bucket,
                        Key=plan.key,
                        UploadId=record.s3_upload_id,
                        PartNumber=number,
                        Body=body,
                        ContentLength=length,
                    )
                except Exception as exc:
                    body.give_back()  # the next attempt reads them again
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
                EventKind.PART,
                record.file_path,
                plan.size,
                done,
                record.id,
                record.session_upload_id,
            )
        )


class MeteredPart(FilePart):
    """A part's body that reports its reads to ``meter`` and paces them with ``pacer``.

    Only bytes beyond the furthest point read so far count: a body rewound (to sign or hash
    it, or by a retry inside botocore) gives its bytes back, and reading them again counts
    them again, so the meter never counts a byte twice.
    """

    def __init__(
        self, fd: int, offset: int, length: int, meter: ByteMeter, pacer: Pacer | None
    ) -> None:
        super().__init__(fd, offset, length)
        self.meter = meter
        self.pacer = pacer
        self.counted = 0
        self.paced = 0

    def read(self, amount: int | None = -1) -> bytes:
        """Up to ``amount`` bytes, paced and counted."""
        data = super().read(amount)
        pos = self.tell()
        if self.pacer is not None and pos > self.paced:
            # paced once per attempt: a body read to hash it, then rewound and sent, crosses
            # the link once
            self.pacer.take(pos - self.paced)
            self.paced = pos
        new = pos - self.counted
        if new > 0:
            self.counted += new
            self.meter.read(new)
        return data

    def seek(self, where: int, whence: int = os.SEEK_SET) -> int:
        """Move within the window; moving back gives the bytes after the new place back."""
        pos = super().seek(where, whence)
        if pos < self.counted:
            self.meter.give_back(self.counted - pos)
            self.counted = pos
        return pos

    def give_back(self) -> None:
        """The attempt failed: every byte counted will be read again."""
        self.meter.give_back(self.counted)
        self.counted = 0


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
