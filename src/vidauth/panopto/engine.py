"""The upload engine: parallel, bounded, resumable multipart uploads to Panopto.

One :class:`UploadEngine` serves any number of files; their parts share one pool of
``parallel`` workers, so at most ``parallel`` parts are in flight (and in memory, read from the
file at their offset as they are sent). Every acknowledged part is committed to the store, so
running the same upload again resumes it (reconciled with S3 ListParts)::

    engine = UploadEngine(va.api_client(), va.token_manager(), va.store.db, UploadOptions(),
                          account_id=va.account().id, server=va.profile.server)
    result = engine.upload(UploadJob(Path("talk.mp4"), folder_id), progress=print)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vidauth.errors import RemoteServiceError, UsageError, VidauthError
from vidauth.http import AccessTokenSource, RetryPolicy
from vidauth.panopto.files import (
    FilePart,
    check_media_file,
    fingerprint,
    part_count,
    part_range,
    part_size,
)
from vidauth.panopto.manifest import MANIFEST_NAME, build_manifest
from vidauth.panopto.rest import PanoptoRest, SessionUploadState, state_name
from vidauth.panopto.target import S3Clients, UploadTarget, parse_upload_target, prewarm
from vidauth.store.db import Database
from vidauth.store.uploads import UploadRecord, UploadState, UploadStore

DEFAULT_PARALLEL = 8


class UploadInterrupted(VidauthError):
    """The upload was stopped on request (cancellation hook, Ctrl-C); it can be resumed."""

    exit_code = 130


@dataclass
class UploadOptions:
    """How uploads run."""

    parallel: int = DEFAULT_PARALLEL
    """Parts in flight, shared by every file of the engine."""
    part_size_mib: int | None = None
    """Whole MiB, 5..25; None picks 8 MiB or what the file size needs."""
    signature: str = "s3"
    """boto3 signature version: ``s3``, ``s3v4`` or ``unsigned``."""
    wait: bool = True
    """Wait until Panopto has processed the upload."""
    force: bool = False
    """Accept files without a video/audio extension."""
    token_min_validity: float = 300.0
    """Seconds a token must have left before each part."""
    part_attempts: int = 6
    """Attempts per part (and per other S3 call) before giving up."""
    poll_initial: float = 1.0
    poll_max: float = 10.0
    poll_timeout: float = 4 * 3600.0


@dataclass(frozen=True)
class UploadJob:
    """One file to upload to one folder."""

    path: Path
    folder_id: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class UploadEvent:
    """Progress, delivered to the ``progress`` callback (from worker threads too).

    ``kind``: started, resumed, restarted, part, uploaded, processing, complete, failed.
    """

    kind: str
    path: str
    total: int
    bytes_done: int = 0
    record_id: int | None = None
    upload_id: str | None = None
    message: str | None = None
    session_id: str | None = None
    viewer_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for ``--json`` event lines)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class UploadResult:
    """How one file's upload ended."""

    path: str
    state: str
    record_id: int | None = None
    upload_id: str | None = None
    session_id: str | None = None
    viewer_url: str | None = None
    message: str | None = None
    bytes_sent: int = 0
    resumed: bool = False
    error: VidauthError | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the file reached the expected state (complete, or processing when not
        waiting)."""
        return self.error is None and self.state in (UploadState.COMPLETE, UploadState.PROCESSING)

    @property
    def exit_code(self) -> int:
        """0 when ok, else the error's exit code."""
        if self.ok:
            return 0
        return self.error.exit_code if self.error else 4

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        data = {k: v for k, v in self.__dict__.items() if k != "error"}
        data["ok"] = self.ok
        if self.error is not None:
            data["error"] = str(self.error)
        return data


Progress = Callable[[UploadEvent], None]


class _Run:
    """The mutable state of one file's upload while parts are in flight."""

    def __init__(self, record: UploadRecord, target: UploadTarget, s3: Any, size: int) -> None:
        self.record = record
        self.target = target
        self.s3 = s3
        self.key = target.key(record.object_key)
        self.size = size
        self.parts: dict[int, tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.failed = threading.Event()
        self.bytes_sent = 0

    @property
    def bytes_done(self) -> int:
        return sum(size for _, size in self.parts.values())


def _s3_status(exc: BaseException) -> tuple[int, str]:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status, str(exc.response.get("Error", {}).get("Code") or "")
    return 0, type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status, code = _s3_status(exc)
        return status >= 500 or status in (408, 429) or code in ("RequestTimeout", "SlowDown")
    return isinstance(exc, HTTPClientError | ConnectionError)


def _no_such_upload(exc: BaseException) -> bool:
    status, code = _s3_status(exc)
    return status == 404 or code in ("NoSuchUpload", "NoSuchSessionUpload")


def _open_for_reading(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


class UploadEngine:
    """Uploads files to Panopto; usable from the CLI, the demo or a worker process.

    ``api`` is an authenticated client for the Panopto site (``Vidauth.api_client()``);
    ``token_source`` keeps the account's token fresh during long transfers; ``cancel`` stops
    every upload of the engine at the next part boundary (they stay resumable).
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
    ) -> None:
        self.rest = api if isinstance(api, PanoptoRest) else PanoptoRest(api)
        self.token_source = token_source
        self.store = UploadStore(db)
        self.options = options or UploadOptions()
        if self.options.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        self.account_id = account_id
        self.server = server
        self.retry_policy = retry_policy or RetryPolicy(
            attempts=self.options.part_attempts, base_delay=0.5, max_delay=10.0, max_total=600.0
        )
        self.cancel_event = cancel or threading.Event()
        # How the bytes that are sent are read: the service passes an opener that refuses a
        # file swapped since it was checked (vidauth.service.shared_files).
        self.open_file = open_file or _open_for_reading
        self.s3 = S3Clients(self.options.signature, self.options.parallel + 2)
        self._pool = cf.ThreadPoolExecutor(self.options.parallel, thread_name_prefix="vidauth-part")
        # Small calls that overlap the transfer (boto3's warm-up, the manifest), off the part pool.
        self._side = cf.ThreadPoolExecutor(2, thread_name_prefix="vidauth-side")
        self._side.submit(prewarm)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the part workers and close S3 connections."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._side.shutdown(wait=True, cancel_futures=True)
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
        workers = min(len(jobs), max(2, self.options.parallel))
        with cf.ThreadPoolExecutor(workers, thread_name_prefix="vidauth-file") as files:
            futures = [files.submit(self._upload, job, emit) for job in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:  # Ctrl-C: stop every file at its next part boundary
                self.cancel_event.set()
                raise

    def resume(self, record_id: int, progress: Progress | None = None) -> UploadResult:
        """Resume a recorded upload by its record id."""
        record = self._record(record_id)
        job = UploadJob(Path(record.file_path), record.folder_id, record.title, record.description)
        return self.upload(job, progress)

    def cancel(self, record_id: int) -> UploadRecord:
        """Cancel an upload: abort its multipart upload and DELETE the sessionUpload."""
        record = self._record(record_id)
        if record.state == UploadState.CANCELLED:
            return record
        if record.state == UploadState.COMPLETE:
            raise UsageError(
                f"upload {record.id} has finished (session {record.session_id}): "
                "delete the session in Panopto instead"
            )
        self._abort_multipart(record)
        if record.session_upload_id:
            response = self.rest.delete_session_upload(record.session_upload_id)
            if response.status_code == 409:
                raise UsageError(
                    f"upload {record.id} was already processed by Panopto: delete the session "
                    "in Panopto instead"
                )
            if not response.is_success and response.status_code != 404:
                raise RemoteServiceError(
                    f"cancelling upload {record.session_upload_id} failed: HTTP "
                    f"{response.status_code}; try `vidauth uploads cancel {record.id}` again"
                )
        self.store.update(record.id, state=UploadState.CANCELLED, message="cancelled")
        return self._record(record.id)

    def find(self, ident: str) -> UploadRecord:
        """A recorded upload by record id or sessionUpload ID."""
        record = self.store.find(ident)
        if record is None or (
            self.account_id is not None and record.account_id not in (None, self.account_id)
        ):
            raise UsageError(f"no upload {ident}: list uploads with `vidauth uploads`")
        return record

    # -- one file -------------------------------------------------------------------------------

    def _record(self, record_id: int) -> UploadRecord:
        record = self.store.get(record_id)
        if record is None:
            raise UsageError(f"no upload {record_id}: list uploads with `vidauth uploads`")
        return record

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
                    "failed",
                    str(job.path),
                    0,
                    record_id=result.record_id,
                    upload_id=result.upload_id,
                    message=str(exc),
                )
            )
        return result

    def _run(self, job: UploadJob, emit: Progress, result: UploadResult) -> None:
        path = check_media_file(job.path, force=self.options.force)
        result.path = str(path)
        stat = path.stat()
        size = stat.st_size
        chosen = part_size(size, self.options.part_size_mib, str(path))
        print_ = str(path)
        record = self.store.find_resumable(self.account_id, job.folder_id, str(path))
        if record is not None:
            changed = (
                record.file_size != size
                or record.file_mtime != stat.st_mtime
                or record.fingerprint != fingerprint(path, size)
            )
            if changed:
                emit(
                    UploadEvent(
                        "restarted",
                        print_,
                        size,
                        record_id=record.id,
                        upload_id=record.session_upload_id,
                        message=f"{path.name} changed since upload {record.id} was interrupted: "
                        "starting over",
                    )
                )
                self._discard(record, "the file changed; started over")
                record = None
            else:
                record = self._check_remote(record, emit, size)
        if record is None:
            record = self._create(job, path, size, stat.st_mtime, chosen, emit)
        else:
            result.resumed = True
        result.record_id, result.upload_id = record.id, record.session_upload_id
        if record.state == UploadState.UPLOADING:
            self._transfer(record, path, size, emit, result)
            record = self._record(record.id)
        self._finish(record, size, emit, result)

    def _create(
        self, job: UploadJob, path: Path, size: int, mtime: float, chosen: int, emit: Progress
    ) -> UploadRecord:
        session_upload = self.rest.create_session_upload(job.folder_id)
        record = self.store.create(
            account_id=self.account_id,
            server=self.server,
            folder_id=job.folder_id,
            session_upload_id=str(session_upload["ID"]),
            upload_target=str(session_upload["UploadTarget"]),
            object_key=path.name,
            file_path=str(path),
            file_size=size,
            file_mtime=mtime,
            fingerprint=fingerprint(path, size),
            part_size=chosen,
            title=job.title or path.stem,
            description=job.description,
            state=UploadState.UPLOADING,
        )
        emit(
            UploadEvent(
                "started",
                str(path),
                size,
                record_id=record.id,
                upload_id=record.session_upload_id,
            )
        )
        return record

    def _check_remote(self, record: UploadRecord, emit: Progress, size: int) -> UploadRecord | None:
        """Where Panopto is with a recorded upload; None when it must start over."""
        assert record.session_upload_id is not None
        try:
            remote = self.rest.get_session_upload(record.session_upload_id)
        except UsageError:  # 404: gone
            remote = {"State": SessionUploadState.DELETED, "Message": "no longer exists"}
        state = remote.get("State")
        if state == SessionUploadState.UPLOADING:
            return record
        if state in (
            SessionUploadState.UPLOAD_COMPLETE,
            SessionUploadState.PROCESSING,
            SessionUploadState.COMPLETE,
        ):
            if record.state != UploadState.PROCESSING:
                self.store.update(record.id, state=UploadState.PROCESSING)
            return self._record(record.id)
        emit(
            UploadEvent(
                "restarted",
                record.file_path,
                size,
                record_id=record.id,
                upload_id=record.session_upload_id,
                message=f"upload {record.id} is {state_name(state)} at Panopto: starting over",
            )
        )
        self._discard(record, f"Panopto State {state}; started over")
        return None

    def _discard(self, record: UploadRecord, why: str) -> None:
        """Best-effort cleanup of a stale upload (abort, cancel), then mark it cancelled."""
        self._abort_multipart(record)
        if record.session_upload_id:
            with contextlib.suppress(VidauthError):
                self.rest.delete_session_upload(record.session_upload_id)
        self.store.update(record.id, state=UploadState.CANCELLED, message=why)

    def _abort_multipart(self, record: UploadRecord) -> None:
        if not (record.upload_target and record.s3_upload_id):
            return
        target = parse_upload_target(record.upload_target)
        s3 = self.s3.get(target.endpoint)
        with contextlib.suppress(Exception):
            s3.abort_multipart_upload(
                Bucket=target.bucket,
                Key=target.key(record.object_key),
                UploadId=record.s3_upload_id,
            )

    # -- transfer -------------------------------------------------------------------------------

    def _transfer(
        self, record: UploadRecord, path: Path, size: int, emit: Progress, result: UploadResult
    ) -> None:
        assert record.upload_target is not None
        target = parse_upload_target(record.upload_target)
        run = _Run(record, target, self.s3.get(target.endpoint), size)
        count = part_count(size, record.part_size)
        assembled = False
        if record.s3_upload_id is None:
            created = self._s3_call(
                run,
                "starting the multipart upload",
                run.s3.create_multipart_upload,
                Bucket=target.bucket,
                Key=run.key,
            )
            record = run.record = self._set(record, s3_upload_id=str(created["UploadId"]))
        else:
            assembled = self._reconcile(run, count)
            emit(
                UploadEvent(
                    "resumed",
                    record.file_path,
                    size,
                    run.bytes_done,
                    record.id,
                    record.session_upload_id,
                    message=f"resuming upload {record.id}: "
                    f"{len(run.parts)} of {count} parts already there",
                )
            )
        manifest = build_manifest(record.title, record.object_key, description=record.description)
        # The manifest does not depend on the media: send it while the parts go.
        manifest_sent = self._side.submit(
            self._s3_call,
            run,
            "uploading the manifest",
            run.s3.put_object,
            Bucket=target.bucket,
            Key=target.key(MANIFEST_NAME),
            Body=manifest,
            ContentType="application/xml",
        )
        try:
            if not assembled:
                self._assemble(run, record, path, count, emit, result)
        finally:
            if not manifest_sent.cancel():
                cf.wait([manifest_sent])
        manifest_sent.result()
        emit(
            UploadEvent(
                "uploaded", record.file_path, size, size, record.id, record.session_upload_id
            )
        )

    def _assemble(
        self,
        run: _Run,
        record: UploadRecord,
        path: Path,
        count: int,
        emit: Progress,
        result: UploadResult,
    ) -> None:
        """Send the missing parts, then CompleteMultipartUpload."""
        target = run.target
        missing = [n for n in range(1, count + 1) if n not in run.parts]
        fd = self.open_file(path)
        try:
            self._send_parts(run, fd, missing, emit)
        finally:
            result.bytes_sent = run.bytes_sent
            os.close(fd)
        ordered = [
            {"PartNumber": n, "ETag": run.parts[n][0]} for n in sorted(run.parts) if n <= count
        ]
        self._s3_call(
            run,
            "assembling the uploaded parts",
            run.s3.complete_multipart_upload,
            Bucket=target.bucket,
            Key=run.key,
            UploadId=record.s3_upload_id,
            MultipartUpload={"Parts": ordered},
        )

    def _set(self, record: UploadRecord, **fields: Any) -> UploadRecord:
        self.store.update(record.id, **fields)
        return self._record(record.id)

    def _reconcile(self, run: _Run, count: int) -> bool:
        """Take the parts S3 holds (ListParts); True when the object is already assembled."""
        record = run.record
        expected = {n: part_range(n, run.size, record.part_size)[1] for n in range(1, count + 1)}
        found: dict[int, tuple[str, int]] = {}
        marker = 0
        try:
            while True:
                page = self._s3_call(
                    run,
                    "listing the uploaded parts",
                    run.s3.list_parts,
                    Bucket=run.target.bucket,
                    Key=run.key,
                    UploadId=record.s3_upload_id,
                    PartNumberMarker=marker,
                    raw_errors=True,
                )
                for part in page.get("Parts", []):
                    number, part_bytes = int(part["PartNumber"]), int(part["Size"])
                    if expected.get(number) == part_bytes:
                        found[number] = (str(part["ETag"]), part_bytes)
                if not page.get("IsTruncated"):
                    break
                marker = int(page.get("NextPartNumberMarker") or 0)
        except Exception as exc:
            if not _no_such_upload(exc):
                raise
            head = self._head(run)
            if head == run.size:
                return True
            raise RemoteServiceError(
                f"upload {record.id}'s multipart upload no longer exists at the target: "
                f"cancel it with `vidauth uploads cancel {record.id}` and upload again"
            ) from None
        run.parts = found
        self.store.replace_parts(record.id, found)
        return False

    def _head(self, run: _Run) -> int | None:
        try:
            answer = run.s3.head_object(Bucket=run.target.bucket, Key=run.key)
        except Exception:
            return None
        return int(answer.get("ContentLength") or 0)

    def _send_parts(self, run: _Run, fd: int, numbers: list[int], emit: Progress) -> None:
        futures = [self._pool.submit(self._send_part, run, fd, n, emit) for n in numbers]
        try:
            done, _ = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception()), None)
            if failure is not None:
                run.failed.set()
                cf.wait(futures)
                raise failure
        except BaseException:
            run.failed.set()
            for future in futures:
                future.cancel()
            raise

    def _stopped(self, run: _Run) -> None:
        if self.cancel_event.is_set():
            raise UploadInterrupted(
                f"upload {run.record.id} stopped: run the same command again to resume"
            )
        if run.failed.is_set():
            raise UploadInterrupted("stopped after another part failed")

    def _send_part(self, run: _Run, fd: int, number: int, emit: Progress) -> None:
        record = run.record
        offset, length = part_range(number, run.size, record.part_size)
        attempt = 0
        while True:
            attempt += 1
            self._stopped(run)
            if self.token_source is not None:
                self.token_source.access_token(self.options.token_min_validity)
            try:
                answer = run.s3.upload_part(
                    Bucket=run.target.bucket,
                    Key=run.key,
                    UploadId=record.s3_upload_id,
                    PartNumber=number,
                    Body=FilePart(fd, offset, length),
                    ContentLength=length,
                )
            except Exception as exc:
                if not self._may_retry(exc, attempt):
                    raise self._s3_failure(run, f"uploading part {number}", exc, attempt) from None
                self._pause(run, attempt)
                continue
            break
        etag = str(answer["ETag"])
        self.store.add_part(record.id, number, etag, length)
        with run.lock:
            run.parts[number] = (etag, length)
            run.bytes_sent += length
            done = run.bytes_done
        emit(
            UploadEvent(
                "part", record.file_path, run.size, done, record.id, record.session_upload_id
            )
        )

    def _may_retry(self, exc: BaseException, attempt: int) -> bool:
        return _retryable(exc) and attempt < self.options.part_attempts

    def _pause(self, run: _Run, attempt: int) -> None:
        delay = self.retry_policy.backoff(attempt)
        if self.cancel_event.wait(delay) or run.failed.is_set():
            self._stopped(run)

    def _s3_call(
        self, run: _Run, what: str, call: Callable[..., Any], raw_errors: bool = False, **kw: Any
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            self._stopped(run)
            try:
                return call(**kw)
            except Exception as exc:
                if self._may_retry(exc, attempt):
                    self._pause(run, attempt)
                    continue
                if raw_errors and _no_such_upload(exc):
                    raise
                raise self._s3_failure(run, what, exc, attempt) from None

    def _s3_failure(self, run: _Run, what: str, exc: BaseException, attempts: int) -> VidauthError:
        if isinstance(exc, VidauthError):
            return exc
        status, code = _s3_status(exc)
        name = Path(run.record.file_path).name
        again = f"run the same command again to resume, or `vidauth uploads cancel {run.record.id}`"
        if status:
            return RemoteServiceError(
                f"{what} of {name} failed: the upload target answered {code or 'an error'} "
                f"(HTTP {status}) after {attempts} attempt(s); {again}"
            )
        return RemoteServiceError(
            f"{what} of {name} failed: could not reach the upload target ({code}) after "
            f"{attempts} attempt(s); check your network and {again}"
        )

    # -- completion ---------------------------------------------------------------------------

    def _finish(
        self, record: UploadRecord, size: int, emit: Progress, result: UploadResult
    ) -> None:
        assert record.session_upload_id is not None
        if record.state == UploadState.UPLOADING:
            remote = self.rest.get_session_upload(record.session_upload_id)
            self.rest.finish_session_upload(remote)
            record = self._set(record, state=UploadState.PROCESSING)
        result.state = UploadState.PROCESSING
        emit(
            UploadEvent(
                "processing", record.file_path, size, size, record.id, record.session_upload_id
            )
        )
        if not self.options.wait:
            return
        upload_id = record.session_upload_id
        assert upload_id is not None
        for remote in self._poll(upload_id):
            state = remote.get("State")
            if state == SessionUploadState.COMPLETE:
                session_id = str(remote.get("SessionId") or "")
                viewer = self._viewer_url(session_id)
                self._set(
                    record, state=UploadState.COMPLETE, session_id=session_id, viewer_url=viewer
                )
                result.state, result.session_id, result.viewer_url = (
                    UploadState.COMPLETE,
                    session_id,
                    viewer,
                )
                emit(
                    UploadEvent(
                        "complete",
                        record.file_path,
                        size,
                        size,
                        record.id,
                        record.session_upload_id,
                        session_id=session_id,
                        viewer_url=viewer,
                    )
                )
                return
            if state in SessionUploadState.FAILED:
                name = state_name(state)
                message = str(remote.get("Message") or name)
                final = (
                    UploadState.CANCELLED
                    if state == SessionUploadState.UPLOAD_CANCELLED
                    else UploadState.FAILED
                )
                self._set(record, state=final, message=message)
                result.state = final
                raise RemoteServiceError(
                    f"Panopto could not process {Path(record.file_path).name}: {message} "
                    f"(State {state} {name}); fix the file and upload it again"
                )

    def _poll(self, upload_id: str) -> Iterator[dict[str, Any]]:
        """GET the sessionUpload with backoff (1 s growing to 10 s) until the caller stops."""
        delay = self.options.poll_initial
        deadline = time.monotonic() + self.options.poll_timeout
        while True:
            yield self.rest.get_session_upload(upload_id)
            if time.monotonic() > deadline:
                raise RemoteServiceError(
                    f"upload {upload_id} is still processing after "
                    f"{self.options.poll_timeout:.0f} s; check it later with `vidauth uploads`"
                )
            if self.cancel_event.wait(delay):
                raise UploadInterrupted(
                    f"stopped waiting for upload {upload_id}: run the same command again to wait"
                )
            delay = min(delay * 1.5, self.options.poll_max)

    def _viewer_url(self, session_id: str) -> str | None:
        if not session_id:
            return None
        try:
            return self.rest.session(session_id).viewer_url
        except VidauthError:
            base = (self.server or "").rstrip("/")
            return f"{base}/Panopto/Pages/Viewer.aspx?id={session_id}" if base else None
