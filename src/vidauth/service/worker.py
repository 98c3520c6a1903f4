"""The worker: claims upload jobs from the database and runs them with the upload engine.

``vidauth worker`` runs one in its own process; ``vidauth serve`` runs one on threads unless
``--no-worker``. Each worker runs up to ``VIDAUTH_WORKER_JOBS`` jobs at a time, renews their
leases every ``VIDAUTH_HEARTBEAT_SECONDS``, and delivers due webhooks. Failures are sorted into:

- the user must connect again (``invalid_grant``): the job waits (``waiting_for_consent``);
- permanent (no such folder, Panopto could not process the file): ``failed``;
- transient (network, the database restarting, Panopto 5xx): rescheduled with the one retry
  policy's backoff (capped at ``MAX_RETRY_DELAY``), resuming from the parts already
  acknowledged, up to ``VIDAUTH_JOB_ATTEMPTS`` claims.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vidauth.errors import ErrorCode, UsageError, VidauthError
from vidauth.panopto.api import EngineAccount, build_engine
from vidauth.panopto.engine import (
    UploadEngine,
    UploadEvent,
    UploadInterrupted,
    UploadJob,
    UploadOptions,
    cancelled,
)
from vidauth.panopto.rest import PanoptoRest
from vidauth.panopto.upload_types import EventKind
from vidauth.service.connect import connection_account
from vidauth.service.context import ServiceContext
from vidauth.service.errors import CANCELLED, JobError, error_columns
from vidauth.service.expiry import ExpiryTimer
from vidauth.service.ingest import remove_owned_file
from vidauth.service.jobs import JobQueue, JobView
from vidauth.service.models import JobState
from vidauth.service.shared_files import opener_for
from vidauth.service.webhooks import WebhookSender
from vidauth.store.uploads import UploadState, UploadStore

log = logging.getLogger("vidauth.service.worker")

MAX_RETRY_DELAY = 60.0


def worker_name() -> str:
    """``host:pid:random`` — written into the leases this worker holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Active:
    job_id: str
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: bool = False
    cancel_requested: bool = False


class _Permanent(Exception):
    """A failure retrying will not fix; ``error`` is what the job stores."""

    def __init__(self, error: VidauthError | ErrorCode, detail: str | None = None) -> None:
        self.error = JobError.of(error, detail)
        super().__init__(self.error.detail)


class _WaitForConsent(Exception):
    """The account's grant is gone: the job waits until the user connects again."""


#: Codes of a request the job made that retrying cannot fix: the job fails.
PERMANENT_CODES = frozenset(
    {
        ErrorCode.USAGE,
        ErrorCode.FILE_UNUSABLE,
        ErrorCode.FILE_NOT_MEDIA,
        ErrorCode.PART_SIZE_INVALID,
        ErrorCode.FOLDER_AMBIGUOUS,
        ErrorCode.FOLDER_NOT_FOUND,
        ErrorCode.UPLOAD_NOT_FOUND,
        ErrorCode.ACCOUNT_NOT_FOUND,
        ErrorCode.UPLOAD_ALREADY_PROCESSED,
        ErrorCode.UPLOAD_RUNNING,
    }
)
#: Codes saying the sign-in is not usable: the job waits for consent when the account is no
#: longer active; otherwise it is retried (or fails, for a refusal of the folder).
SIGN_IN_CODES = frozenset(
    {
        ErrorCode.NOT_SIGNED_IN,
        ErrorCode.SIGN_IN_EXPIRED,
        ErrorCode.SIGN_IN_TIMEOUT,
        ErrorCode.AUTHORIZATION_DENIED,
        ErrorCode.PERMISSION_DENIED,
    }
)

_UPLOADING_KINDS = frozenset(
    {EventKind.STARTED, EventKind.RESUMED, EventKind.RESTARTED, EventKind.PART}
)
_PROCESSING_KINDS = frozenset({EventKind.UPLOADED, EventKind.PROCESSING})


class Worker:
    """Runs jobs on ``jobs`` threads until ``stop()``."""

    def __init__(self, ctx: ServiceContext, jobs: int | None = None) -> None:
        self.ctx = ctx
        self.queue = JobQueue(ctx)
        self.name = worker_name()
        self.slots = jobs or ctx.service.worker_jobs
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._active: dict[str, _Active] = {}
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.webhooks = WebhookSender(ctx)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Worker:
        """Start the job, heartbeat and webhook threads."""
        self.ctx.store  # noqa: B018 - migrate before the threads race to
        targets = [(self._job_loop, f"vidauth-job-{i}") for i in range(self.slots)]
        targets += [
            (self._heartbeat_loop, "vidauth-heartbeat"),
            (self._webhook_loop, "vidauth-hooks"),
        ]
        for target, name in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker %s started with %d job slot(s)", self.name, self.slots)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, interrupt running uploads (they stay resumable) and wait."""
        self.stop_event.set()
        self.wake.set()
        with self._active_lock:
            for active in self._active.values():
                active.cancel.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.webhooks.close()

    def run_forever(self) -> None:
        """Run until interrupted (SIGINT/SIGTERM)."""
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            self.stop()

    # -- loops ----------------------------------------------------------------------------

    def _job_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                job = self.queue.claim(self.name)
            except Exception as exc:  # the database is away: wait and try again
                log.warning("claiming a job failed (%s); retrying", _brief(exc))
                job = None
            if job is None:
                self.wake.wait(self.ctx.service.poll_seconds)
                self.wake.clear()
                continue
            self.run_job(job)

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.ctx.service.heartbeat_seconds):
            with self._active_lock:
                running = list(self._active.values())
            for active in running:
                try:
                    ours, cancel = self.queue.renew(active.job_id, self.name)
                except Exception as exc:
                    log.warning("renewing the lease of %s failed (%s)", active.job_id, _brief(exc))
                    continue
                if not ours:
                    log.warning("lost the lease of %s; stopping it", active.job_id)
                    active.lost = True
                    active.cancel.set()
                elif cancel:
                    active.cancel_requested = True
                    active.cancel.set()

    def _webhook_loop(self) -> None:
        expiry = ExpiryTimer(self.ctx)
        while not self.stop_event.wait(self.ctx.service.poll_seconds):
            try:
                expiry.tick()  # uploads that waited for consent too long: failed, told
                self.webhooks.deliver_due(wait=False)
            except Exception as exc:
                log.warning("delivering webhooks failed (%s)", _brief(exc))

    # -- one job --------------------------------------------------------------------------

    def run_job(self, job: JobView) -> None:
        """Run a claimed job to an end state, or give it back for a retry."""
        active = _Active(job.id, cancel_requested=job.cancel_requested)
        with self._active_lock:
            self._active[job.id] = active
        try:
            self._execute(job, active)
        except _Permanent as exc:
            self._end(job, active, JobState.FAILED, **exc.error.columns())
        except Exception as exc:
            if active.lost:
                return
            if job.attempts >= self.ctx.service.job_attempts:
                self._end(job, active, JobState.FAILED, **_gave_up(exc, job.attempts).columns())
                return
            delay = self.ctx.va.retry_policy.backoff(job.attempts, max_delay=MAX_RETRY_DELAY)
            log.warning("job %s: %s; retrying in %.0fs", job.id, _brief(exc), delay)
            with contextlib.suppress(Exception):
                self.queue.release(job.id, self.name, delay, _retrying(exc))
        finally:
            with self._active_lock:
                self._active.pop(job.id, None)

    def _end(self, job: JobView, active: _Active, state: str, **fields: object) -> None:
        if active.lost:
            return
        if self.queue.finish(job.id, self.name, state, **fields) and state in JobState.FINAL:
            remove_owned_file(job)

    def _complete(
        self, job: JobView, active: _Active, session_id: str | None, viewer_url: str | None
    ) -> None:
        self._end(
            job,
            active,
            JobState.COMPLETE,
            session_id=session_id,
            viewer_url=viewer_url,
            bytes_sent=job.bytes_total,
            **error_columns(None),
        )

    def _execute(self, job: JobView, active: _Active) -> None:
        """Steps: the account, a cancel before anything started, an upload that already
        ended, then the upload itself."""
        account_id = connection_account(self.ctx, job.tenant, job.external_user_id)
        if account_id is None or self.ctx.store.account_status(account_id) != "active":
            self._wait_for_consent(job, active, account_id)
            return
        if job.cancel_requested and job.record_id is None:
            self._end(job, active, JobState.CANCELLED, **CANCELLED.columns())
            return
        if self._ended_before(job, active):
            return
        try:
            self._upload(job, active, account_id)
        except _WaitForConsent:
            self._wait_for_consent(job, active, account_id)

    def _ended_before(self, job: JobView, active: _Active) -> bool:
        """Whether the job's upload record already ended (its worker died before saying so):
        complete ends the job; failed raises :class:`_Permanent`."""
        record = UploadStore(self.ctx.db).get(job.record_id) if job.record_id else None
        if record is None:
            return False
        if record.state == UploadState.COMPLETE:
            self._complete(job, active, record.session_id, record.viewer_url)
            return True
        if record.state == UploadState.FAILED:
            raise _Permanent(
                ErrorCode.PROCESSING_FAILED, record.message or "Panopto could not process it"
            )
        return False

    def _upload(self, job: JobView, active: _Active, account_id: int) -> None:
        """Send the job's file with the engine :func:`build_engine` wires for the account."""
        try:  # a file given by path: still the very file checked at submit time
            open_file = opener_for(
                self.ctx.service.shared_dir, job.tenant, job.file_path, job.file_identity
            )
        except UsageError as exc:
            raise _Permanent(exc) from None
        manager = self.ctx.token_manager(account_id)
        progress = _JobProgress(self, job, active)
        with self.ctx.api_client(manager) as api:
            engine = build_engine(
                self.ctx.va,
                self._options(),
                cancel=active.cancel,
                account=EngineAccount(account_id, api, manager),
                open_file=open_file,
                gate=lambda record_id, point: self._gate(job, active, record_id, point),
            )
            try:
                with engine:
                    # inside the try: resolving the folder may be the first call to find the
                    # grant revoked, which makes the job wait for consent rather than fail
                    folder_id = job.folder_id or self._resolve_folder(job, engine.rest)
                    result = engine.upload(
                        UploadJob(Path(job.file_path), folder_id, job.title, job.description),
                        progress=progress,
                    )
            except UploadInterrupted:
                self._interrupted(job, active, engine, progress.record_id)
                return
            except VidauthError as exc:
                self._sort(exc, account_id, progress.record_id)
                raise
        self._complete(job, active, result.session_id, result.viewer_url)

    def _options(self) -> UploadOptions:
        service = self.ctx.service
        return UploadOptions(
            parallel=service.upload_parallel,
            part_size_mib=service.part_size_mib,
            bwlimit=service.upload_bwlimit,
            wait=True,
            force=True,
            token_min_validity=service.token_min_validity,
            poll_initial=0.5,
            poll_max=service.processing_poll_max,
        )

    def _sort(self, exc: VidauthError, account_id: int, record_id: int | None) -> None:
        """Map an upload's error, by its code, to the job's outcome: wait for consent, fail
        (:class:`_Permanent`), or return to let it be retried."""
        if exc.code in SIGN_IN_CODES:
            if self.ctx.store.account_status(account_id) != "active":
                raise _WaitForConsent from None
            if exc.code == ErrorCode.PERMISSION_DENIED:
                raise _Permanent(exc) from None
            return
        if exc.code in PERMANENT_CODES:
            raise _Permanent(exc) from None
        failed = UploadStore(self.ctx.db).get(record_id) if record_id else None
        if failed is not None and failed.state == UploadState.FAILED:
            raise _Permanent(exc) from None

    def _gate(self, job: JobView, active: _Active, record_id: int, point: str) -> None:
        """Before Complete and before State 1 (the point of no return), not only on the
        heartbeat: a cancel that was accepted stops the upload here."""
        if not self.queue.pass_gate(job.id, record_id, point):
            active.cancel_requested = True
            active.cancel.set()
            raise cancelled(record_id)

    def _resolve_folder(self, job: JobView, rest: PanoptoRest) -> str:
        try:
            folder = rest.resolve_folder(job.folder)
        except UsageError as exc:
            raise _Permanent(exc) from None
        self.queue.update_owned(job.id, self.name, folder_id=folder.id)
        return folder.id

    def _wait_for_consent(self, job: JobView, active: _Active, account_id: int | None) -> None:
        why = (
            JobError.of(ErrorCode.NOT_SIGNED_IN, "the user has not connected Panopto")
            if account_id is None
            else JobError.of(
                ErrorCode.SIGN_IN_EXPIRED,
                "Panopto refused the stored sign-in: the user must connect again",
            )
        )
        self._end(job, active, JobState.WAITING_FOR_CONSENT, **why.columns())

    def _interrupted(
        self, job: JobView, active: _Active, engine: UploadEngine, record_id: int | None
    ) -> None:
        if active.lost:
            return
        if active.cancel_requested:
            if record_id is not None:
                with contextlib.suppress(VidauthError):
                    engine.cancel(record_id)
            self._end(job, active, JobState.CANCELLED, **CANCELLED.columns())
            return
        # Shutting down: hand the job back at once so another worker resumes it.
        with contextlib.suppress(Exception):
            self.queue.release(job.id, self.name, 0.0, None)


class _JobProgress:
    """Mirrors the engine's events into the job row (fenced by the lease)."""

    def __init__(self, worker: Worker, job: JobView, active: _Active) -> None:
        self.worker = worker
        self.job = job
        self.active = active
        self.record_id: int | None = job.record_id
        self._lock = threading.Lock()

    def __call__(self, event: UploadEvent) -> None:
        fields: dict[str, object] = {}
        with self._lock:
            if event.record_id is not None and event.record_id != self.record_id:
                self.record_id = event.record_id
                fields.update(record_id=event.record_id, session_upload_id=event.upload_id)
        if event.kind in _UPLOADING_KINDS:
            fields.update(state=JobState.UPLOADING, bytes_sent=event.bytes_done)
        elif event.kind in _PROCESSING_KINDS:
            fields.update(state=JobState.PROCESSING, bytes_sent=event.total)
        if not fields:
            return
        try:
            ours = self.worker.queue.update_owned(self.job.id, self.worker.name, **fields)
        except Exception as exc:  # the database is briefly away; the engine's store decides
            log.warning("recording progress of %s failed (%s)", self.job.id, _brief(exc))
            return
        if not ours:
            self.active.lost = True
            self.active.cancel.set()


def _gave_up(exc: BaseException, attempts: int) -> JobError:
    """The error of a job that failed every attempt."""
    if isinstance(exc, VidauthError):
        return JobError.of(exc, f"gave up after {attempts} attempt(s): {exc.message}")
    return JobError.of(ErrorCode.UNEXPECTED, f"gave up after {attempts} attempt(s): {_brief(exc)}")


def _retrying(exc: BaseException) -> JobError:
    """The error of a job waiting for its next attempt."""
    if isinstance(exc, VidauthError):
        return JobError.of(exc, f"retrying: {exc.message}")
    return JobError.of(ErrorCode.UNEXPECTED, f"retrying: {_brief(exc)}")


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
