"""The upload engine: parallel, bounded, resumable multipart uploads to Panopto.

:class:`UploadEngine` is a thin facade over three pieces with one job each, which the CLI and
the service's worker both drive through it:

- :class:`~vidauth.panopto.plan.UploadPlanner` — part size, resume or start over;
- :class:`~vidauth.panopto.transfer.PartTransfer` — the parts in flight and their retries;
- :class:`~vidauth.panopto.finish.UploadFinisher` — Complete, manifest, ``State: 1``, polling.

One engine serves any number of files; their parts share one gate of parts in flight, adapted
to the link or pinned (:mod:`~vidauth.panopto.parallelism`), and one choice of S3 signature
per upload host (:mod:`~vidauth.panopto.signature`).
Every S3 call retries under the same :class:`~vidauth.retry.RetryPolicy` as token and API
calls::

    engine = UploadEngine(va.api_client(), va.token_manager(), va.store.db, UploadOptions(),
                          account_id=va.account().id, server=va.profile.server,
                          retry_policy=va.retry_policy)
    result = engine.upload(UploadJob(Path("talk.mp4"), folder_id), progress=print)
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from vidauth.errors import ErrorCode, RemoteServiceError, UsageError, VidauthError
from vidauth.http import AccessTokenSource
from vidauth.panopto.files import check_media_file
from vidauth.panopto.finish import UploadFinisher
from vidauth.panopto.leases import LeaseKeeper
from vidauth.panopto.optional import OptionalCalls
from vidauth.panopto.pacing import shared_pacer
from vidauth.panopto.parallelism import controller_for
from vidauth.panopto.plan import UploadPlanner, not_found
from vidauth.panopto.rest import PanoptoRest
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.signature import SignatureNegotiator, upload_host
from vidauth.panopto.target import S3Clients, prewarm
from vidauth.panopto.transfer import PartTransfer, open_for_reading
from vidauth.panopto.upload_types import (
    DEFAULT_PARALLEL,
    EventKind,
    Progress,
    UploadEvent,
    UploadInterrupted,
    UploadJob,
    UploadOptions,
    UploadResult,
)
from vidauth.retry import RetryPolicy
from vidauth.store.db import Database
from vidauth.store.host_calls import HostCallStore
from vidauth.store.plateaus import PlateauStore
from vidauth.store.signatures import SignatureHostStore
from vidauth.store.uploads import UploadRecord, UploadState, UploadStep, UploadStore

__all__ = [
    "DEFAULT_PARALLEL",
    "Progress",
    "UploadEngine",
    "UploadEvent",
    "UploadInterrupted",
    "UploadJob",
    "UploadOptions",
    "UploadResult",
]


class UploadEngine:
    """Uploads files to Panopto; usable from the CLI, the demo or a worker process.

    ``api`` is an authenticated client for the Panopto site (``Vidauth.api_client()``);
    ``token_source`` keeps the account's token fresh during long transfers; ``retry_policy``
    bounds every S3 retry (default: the policy's defaults); ``cancel`` stops every upload of the
    engine at the next part boundary (they stay resumable); ``leases`` makes the engine hold each
    upload's lease while it runs it, so that another process leaves it alone.
    """

    def __init__(
        self,
        api: httpx.Client | PanoptoRest,
        token_source: AccessTokenSource | None,
        db: Database,
        options: UploadOptions | None = None,
        *,
        account_id: int | None = None,
        server: str | None = None,
        retry_policy: RetryPolicy | None = None,
        cancel: threading.Event | None = None,
        open_file: Callable[[Path], int] | None = None,
        leases: LeaseKeeper | None = None,
        gate: Callable[[int, str], None] | None = None,
    ) -> None:
        self.rest = api if isinstance(api, PanoptoRest) else PanoptoRest(api)
        self.store = UploadStore(db)
        self.options = options or UploadOptions()
        if self.options.parallel is not None and self.options.parallel < 1:
            raise UsageError(
                f"parallel parts must be at least 1, not {self.options.parallel}",
                option="parallel",
                value=self.options.parallel,
            )
        self.account_id = account_id
        self.server = server
        self.retry_policy = retry_policy or RetryPolicy()
        self.cancel_event = cancel or threading.Event()
        # Checked before Complete and before State 1 (the point of no return): a cancel asked
        # by another process (or, in the service, of the job) stops the upload there.
        self.gate = gate or self._store_gate
        self.signatures = SignatureNegotiator(self.options.signature, SignatureHostStore(db))
        self.optional = OptionalCalls(HostCallStore(db))
        self.parallelism, self.slots = controller_for(self.options.parallel)
        workers = self.parallelism.maximum
        self.s3 = S3Clients(workers + 2)
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="vidauth-part")
        # boto3's warm-up overlaps the sessionUpload's creation, and each file's manifest its
        # parts, off the part pool.
        self._side = cf.ThreadPoolExecutor(4, thread_name_prefix="vidauth-side")
        self._side.submit(self._prepare_s3_client)
        caller = S3Caller(self.retry_policy)
        self.planner = UploadPlanner(
            self.rest,
            self.store,
            self.s3,
            caller,
            self.options,
            self.signatures,
            account_id=account_id,
            server=server,
            hold=leases.hold if leases else None,
            open_file=open_file,
            optional=self.optional,
        )
        self.leases = leases
        # How the bytes that are sent are read: the service passes an opener that refuses a
        # file swapped since it was checked (vidauth.service.shared_files).
        self.open_file = open_file or open_for_reading
        self.transfer = PartTransfer(
            self._pool,
            caller,
            self.store,
            self.slots,
            token_source,
            self.options.token_min_validity,
            open_file=self.open_file,
            pacer=shared_pacer(self.options.bwlimit),
            plateaus=PlateauStore(db),
        )
        self.finisher = UploadFinisher(
            self.rest,
            self.store,
            caller,
            self.options,
            self.cancel_event,
            server=server,
            gate=lambda record_id, point: self.gate(record_id, point),
            part_slot=self.slots.slot,
        )

    def _prepare_s3_client(self) -> None:
        """Build the S3 client of the expected upload host while the REST calls go (Panopto's
        UploadTarget is ``{server}/Panopto/Upload/<ID>``), with the scheme the host will get
        first; another host costs only the import and model loading done here anyway."""
        if not self.server:
            prewarm()
            return
        endpoint = self.server.rstrip("/") + "/Panopto"
        self.s3.get(endpoint, self.signatures.scheme(upload_host(endpoint)))

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the part workers and close S3 connections."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._side.shutdown(wait=True, cancel_futures=True)
        if self.leases is not None:  # after the parts in flight have stopped
            self.leases.close()
        self.s3.close()

    def __enter__(self) -> UploadEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.cancel_event.set()
        self.close()

    # -- public API -----------------------------------------------------------------------------

    def upload(self, job: UploadJob, progress: Progress | None = None) -> UploadResult:
        """Upload (or resume) one file; raises a VidauthError when it does not succeed."""
        result = self._upload(job, progress or (lambda _e: None))
        if result.error is not None:
            raise result.error
        return result

    def upload_many(
        self, jobs: list[UploadJob], progress: Progress | None = None
    ) -> list[UploadResult]:
        """Upload files concurrently (sharing the part workers); one result per job, in order.

        Every file is checked before any sessionUpload is created. Failures of one file are
        reported in its result (``error``) and do not stop the others.
        """
        for job in jobs:
            check_media_file(job.path, force=self.options.force)
        emit = progress or (lambda _e: None)
        if len(jobs) == 1:
            return [self._upload(jobs[0], emit)]
        workers = min(len(jobs), max(2, self.parallelism.limit))
        with cf.ThreadPoolExecutor(workers, thread_name_prefix="vidauth-file") as files:
            futures = [files.submit(self._upload, job, emit) for job in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:  # Ctrl-C: stop every file at its next part boundary
                self.cancel_event.set()
                raise

    def cancel(self, record_id: int) -> UploadRecord:
        """Cancel an upload: abort its multipart upload and DELETE the sessionUpload.

        A process running it (this one or another) stops before Complete or State 1; once
        State 1 is being sent (the point of no return) the cancel is refused: it will be
        published."""
        record = self.planner.record(record_id)
        if record.state == UploadState.CANCELLED:
            return record
        if record.state == UploadState.COMPLETE:
            raise UsageError(
                f"upload {record.id} has finished (session {record.session_id})",
                code=ErrorCode.UPLOAD_ALREADY_PROCESSED,
                record_id=record.id,
                session_id=record.session_id,
            )
        if not self.store.request_cancel(record.id):
            raise UsageError(
                f"upload {record.id} is past the point of no return (State 1 was sent): "
                "Panopto will publish it",
                code=ErrorCode.UPLOAD_ALREADY_PROCESSED,
                record_id=record.id,
            )
        self.planner.abort_multipart(record)
        if record.session_upload_id:
            response = self.rest.delete_session_upload(record.session_upload_id)
            if response.status_code == 409:
                raise UsageError(
                    f"upload {record.id} was already processed by Panopto",
                    code=ErrorCode.UPLOAD_ALREADY_PROCESSED,
                    record_id=record.id,
                )
            if not response.is_success and response.status_code != 404:
                raise RemoteServiceError(
                    f"cancelling upload {record.session_upload_id} failed: HTTP "
                    f"{response.status_code}",
                    code=ErrorCode.CANCEL_FAILED,
                    record_id=record.id,
                    status=response.status_code,
                )
        self.store.update(record.id, state=UploadState.CANCELLED, message="cancelled")
        return self.planner.record(record.id)

    def _store_gate(self, record_id: int, point: str) -> None:
        """The default gate: the upload's own row (a cancel asked by another process)."""
        if point == "finish":
            passed = self.store.pass_point_of_no_return(record_id)
        else:
            passed = not self.store.cancel_requested_of(record_id)
        if not passed:
            raise cancelled(record_id)

    def find(self, ident: str) -> UploadRecord:
        """A recorded upload by record id or sessionUpload ID."""
        record = self.store.find(ident)
        if record is None or (
            self.account_id is not None and record.account_id not in (None, self.account_id)
        ):
            raise not_found(ident)
        return record

    # -- one file: plan, transfer, finish -------------------------------------------------------

    def _upload(self, job: UploadJob, emit: Progress) -> UploadResult:
        result = UploadResult(path=str(job.path), state=UploadState.UPLOADING)
        try:
            self._run(job, emit, result)
        except VidauthError as exc:
            result.error = exc
            result.message = str(exc)
            if result.state not in (UploadState.FAILED, UploadState.CANCELLED):
                result.state = UploadState.UPLOADING if result.record_id else "not-started"
            emit(
                UploadEvent(
                    EventKind.FAILED,
                    str(job.path),
                    0,
                    record_id=result.record_id,
                    upload_id=result.upload_id,
                    message=str(exc),
                )
            )
        if self.leases is not None and result.record_id is not None:
            self.leases.release(result.record_id)
        return result

    def _run(self, job: UploadJob, emit: Progress, result: UploadResult) -> None:
        for attempt in (1, 2):
            plan = self.planner.plan(job, emit)
            record, size = plan.record, plan.size
            result.path, result.resumed = str(plan.path), plan.resumed
            result.record_id, result.upload_id = record.id, record.session_upload_id
            if record.state == UploadState.UPLOADING:
                self._transfer(record, plan.path, size, emit, result)
                record = self.planner.record(record.id)
            try:
                self.finisher.finish(record, size, emit, result)
                return
            except RemoteServiceError as exc:
                if attempt == 2 or not missing_media(exc, record):
                    raise
            # A Complete taken as done (NoSuchUpload to a resent one) was not: Panopto says the
            # media is missing. The file goes again, once, in a new sessionUpload.
            emit(
                UploadEvent(
                    EventKind.RESTARTED,
                    record.file_path,
                    size,
                    record_id=record.id,
                    upload_id=record.session_upload_id,
                    message=f"Panopto did not find the media of upload {record.id}: "
                    "sending the file again",
                )
            )
            result.state = UploadState.UPLOADING

    def _transfer(
        self, record: UploadRecord, path: Path, size: int, emit: Progress, result: UploadResult
    ) -> None:
        stop = Stop(self.cancel_event, record.id)
        plan = self.planner.prepare(record, size, stop, emit)
        # The manifest's three round trips go beside the parts, not after Complete; its step is
        # recorded in order, after Complete's (a crash before that sends it again: same key).
        early = None
        if not UploadStep.reached(plan.step, UploadStep.COMPLETING):
            early = self._side.submit(self.finisher.put_manifest, plan, stop)
        # Each step is recorded before (Complete) or after it is taken, so that a rerun after a
        # crash at any moment starts from the step reached.
        try:
            if not UploadStep.reached(plan.step, UploadStep.COMPLETING):
                self.transfer.send(
                    plan, path, stop, emit, sent=partial(setattr, result, "bytes_sent")
                )
            if not UploadStep.reached(plan.step, UploadStep.ASSEMBLED):
                self.gate(record.id, "complete")
                self.finisher.complete(plan, stop)
        except BaseException:
            if early is not None and not early.cancel():
                stop.failed.set()  # the manifest stops at its next call too
            raise
        if not UploadStep.reached(plan.step, UploadStep.MANIFEST):
            self.finisher.send_manifest(plan, stop, early)
        emit(
            UploadEvent(
                EventKind.UPLOADED,
                record.file_path,
                size,
                size,
                record.id,
                record.session_upload_id,
            )
        )


def cancelled(record_id: int) -> UploadInterrupted:
    """The upload stops because a cancel was asked for it."""
    return UploadInterrupted(f"upload {record_id} was cancelled", record_id=record_id)


def missing_media(exc: RemoteServiceError, record: UploadRecord) -> bool:
    """Whether processing failed (State 5) for want of the media file: its message names the
    file's object key (Panopto's wording is not documented; the sandbox says "…names
    'talk.mp4', which was not uploaded")."""
    if exc.code != ErrorCode.PROCESSING_FAILED or exc.facts.get("state") != 5:
        return False
    message = str(exc.facts.get("panopto_message") or "")
    return record.object_key in message
