"""Plan and resume: what one file's upload starts from.

:class:`UploadPlanner` picks the part size, finds a recorded upload of the same file, starts
over when the file changed (size, mtime, fingerprint) or Panopto dropped the sessionUpload,
creates the sessionUpload otherwise, and — before parts go — opens the multipart upload or
takes the parts the store recorded (cross-checked with ListParts only where the host answers
it: :mod:`vidauth.panopto.optional`). It sends no parts. The upload's first S3 call is where
the signature scheme is settled (:mod:`vidauth.panopto.signature`).
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mode
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidauth.errors import ErrorCode, UsageError, VidauthError
from vidauth.panopto.files import (
    check_media_file,
    fingerprint,
    fingerprint_fd,
    part_count,
    part_range,
    part_size,
)
from vidauth.panopto.optional import LIST_PARTS, OptionalCalls
from vidauth.panopto.rest import PanoptoRest, SessionUploadState, state_name
from vidauth.panopto.s3calls import S3Caller, Stop, call_refused, no_such_upload, signature_refusal
from vidauth.panopto.signature import SignatureNegotiator, upload_host
from vidauth.panopto.target import S3Clients, UploadTarget, parse_upload_target
from vidauth.panopto.upload_types import EventKind, Progress, UploadEvent, UploadJob, UploadOptions
from vidauth.store.uploads import UploadRecord, UploadState, UploadStep, UploadStore


@dataclass
class FilePlan:
    """One file's upload as the store and Panopto know it before any part is sent."""

    record: UploadRecord
    path: Path
    size: int
    resumed: bool = False


@dataclass
class TransferPlan:
    """The multipart upload parts go to, and the parts the target already holds."""

    record: UploadRecord
    target: UploadTarget
    s3: Any
    key: str
    size: int
    count: int
    parts: dict[int, tuple[str, int]] = field(default_factory=dict)
    step: str = UploadStep.CREATED
    """How far the upload had got (:class:`~vidauth.store.uploads.UploadStep`)."""
    signature: str = "s3"
    """The signature scheme the target accepted (``s3`` is the client ``s3`` signs with)."""
    round_trip: float | None = None
    """Seconds the first S3 call took: the target's round trip, to space the parts' starts."""

    @property
    def bytes_done(self) -> int:
        """Bytes in the parts the target holds."""
        return sum(size for _, size in self.parts.values())

    @property
    def missing(self) -> list[int]:
        """Part numbers still to send."""
        return [n for n in range(1, self.count + 1) if n not in self.parts]


def not_found(record_id: int | str) -> UsageError:
    """No recorded upload with that id."""
    return UsageError(
        f"no upload {record_id}", code=ErrorCode.UPLOAD_NOT_FOUND, record_id=str(record_id)
    )


class UploadPlanner:
    """Decides where each file's upload starts: new, resumed, or started over."""

    def __init__(
        self,
        rest: PanoptoRest,
        store: UploadStore,
        s3: S3Clients,
        caller: S3Caller,
        options: UploadOptions,
        signatures: SignatureNegotiator,
        *,
        account_id: int | None = None,
        server: str | None = None,
        hold: Callable[[int], None] | None = None,
        open_file: Callable[[Path], int] | None = None,
        optional: OptionalCalls | None = None,
    ) -> None:
        self.open_file = open_file
        """When given (the service's checked opener), the file is known only through the
        descriptors it returns: never opened, stat'ed or resolved by path."""
        self.rest = rest
        # Takes the upload's lease before anything touches it (raises when another runs it).
        self.hold = hold or (lambda _record_id: None)
        self.optional = optional or OptionalCalls(None)
        self.store = store
        self.s3 = s3
        self.signatures = signatures
        self.caller = caller
        self.options = options
        self.account_id = account_id
        self.server = server

    def record(self, record_id: int) -> UploadRecord:
        """The recorded upload ``record_id`` (UsageError when there is none)."""
        record = self.store.get(record_id)
        if record is None:
            raise not_found(record_id)
        return record

    def plan(self, job: UploadJob, emit: Progress) -> FilePlan:
        """Check the file and find or create its upload (a sessionUpload and a record)."""
        if self.open_file is None:
            path = check_media_file(job.path, force=self.options.force)
            stat = path.stat()
            known = None
        else:
            path = job.path
            stat, known = self._checked(path)
        size = stat.st_size
        chosen = part_size(size, self.options.part_size_mib, str(path))
        record = self.store.find_resumable(self.account_id, job.folder_id, str(path))
        if record is not None:
            self.hold(record.id)
            if self.changed(record, path, size, stat.st_mtime, known):
                emit(
                    UploadEvent(
                        EventKind.RESTARTED,
                        str(path),
                        size,
                        record_id=record.id,
                        upload_id=record.session_upload_id,
                        message=f"{path.name} changed since upload {record.id} was interrupted: "
                        "starting over",
                    )
                )
                self.discard(record, "the file changed; started over")
                record = None
            else:
                record = self._check_remote(record, emit, size)
        if record is None:
            return FilePlan(
                self._create(job, path, size, stat.st_mtime, chosen, emit, known), path, size
            )
        return FilePlan(record, path, size, resumed=True)

    def _checked(self, path: Path) -> tuple[os.stat_result, str]:
        """fstat and fingerprint of the file ``open_file`` opens: one descriptor for both."""
        assert self.open_file is not None
        fd = self.open_file(path)
        try:
            info = os.fstat(fd)
            if not stat_mode.S_ISREG(info.st_mode) or info.st_size == 0:
                raise UsageError(f"{path.name} is not a non-empty regular file")
            return info, fingerprint_fd(fd, info.st_size)
        finally:
            os.close(fd)

    @staticmethod
    def changed(
        record: UploadRecord, path: Path, size: int, mtime: float, known: str | None = None
    ) -> bool:
        """Whether the file differs from the one the record was started with (``known``: its
        fingerprint, already computed from a checked descriptor)."""
        return (
            record.file_size != size
            or record.file_mtime != mtime
            or record.fingerprint != (known or fingerprint(path, size))
        )

    def _create(
        self,
        job: UploadJob,
        path: Path,
        size: int,
        mtime: float,
        chosen: int,
        emit: Progress,
        known: str | None = None,
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
            fingerprint=known or fingerprint(path, size),
            part_size=chosen,
            title=job.title or path.stem,
            description=job.description,
            state=UploadState.UPLOADING,
        )
        self.hold(record.id)
        emit(
            UploadEvent(
                EventKind.STARTED,
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
            return self.record(record.id)
        emit(
            UploadEvent(
                EventKind.RESTARTED,
                record.file_path,
                size,
                record_id=record.id,
                upload_id=record.session_upload_id,
                message=f"upload {record.id} is {state_name(state)} at Panopto: starting over",
            )
        )
        self.discard(record, f"Panopto State {state}; started over")
        return None

    def discard(self, record: UploadRecord, why: str) -> None:
        """Best-effort cleanup of a stale upload (abort, cancel), then mark it cancelled."""
        self.abort_multipart(record)
        if record.session_upload_id:
            with contextlib.suppress(VidauthError):
                self.rest.delete_session_upload(record.session_upload_id)
        self.store.update(record.id, state=UploadState.CANCELLED, message=why)

    def abort_multipart(self, record: UploadRecord) -> None:
        """Abort the record's multipart upload, if it has one (best effort)."""
        if not (record.upload_target and record.s3_upload_id):
            return
        target = parse_upload_target(record.upload_target)
        s3 = self.s3.get(target.endpoint, self.signatures.scheme(upload_host(target.endpoint)))
        with contextlib.suppress(Exception):
            s3.abort_multipart_upload(
                Bucket=target.bucket,
                Key=target.key(record.object_key),
                UploadId=record.s3_upload_id,
            )

    # -- the multipart upload --------------------------------------------------------------

    def prepare(self, record: UploadRecord, size: int, stop: Stop, emit: Progress) -> TransferPlan:
        """Open the multipart upload, or take the parts the store recorded (cross-checked with
        ListParts where the host answers it) and the step the upload had reached."""
        assert record.upload_target is not None
        target = parse_upload_target(record.upload_target)
        key = target.key(record.object_key)
        plan = TransferPlan(record, target, None, key, size, part_count(size, record.part_size))
        plan.step = record.step or UploadStep.CREATED
        if record.s3_upload_id is None:
            self.open_multipart(plan, stop)
            return plan
        host = upload_host(target.endpoint)
        plan.signature = self.signatures.scheme(host)
        plan.s3 = self.s3.get(target.endpoint, plan.signature)
        plan.parts = self._recorded_parts(plan)
        if not UploadStep.reached(plan.step, UploadStep.COMPLETING):
            self.reconcile(plan, stop)
        emit(
            UploadEvent(
                EventKind.RESUMED,
                record.file_path,
                size,
                plan.bytes_done,
                record.id,
                record.session_upload_id,
                message=f"resuming upload {record.id}: "
                f"{len(plan.parts)} of {plan.count} parts already there",
            )
        )
        return plan

    def open_multipart(self, plan: TransferPlan, stop: Stop) -> None:
        """CreateMultipartUpload for the media (the upload's first S3 call, where the signature
        is settled); records it and the step ``parts``, and forgets any recorded parts."""
        name = Path(plan.record.file_path).name

        def create(s3: Any, refused: Any) -> Any:
            return self.caller.call(
                stop,
                "starting the multipart upload",
                name,
                s3.create_multipart_upload,
                passthrough=refused,
                Bucket=plan.target.bucket,
                Key=plan.key,
            )

        created = self._first_call(plan, create)
        self.store.replace_parts(plan.record.id, {})
        self.store.update(
            plan.record.id, s3_upload_id=str(created["UploadId"]), step=UploadStep.PARTS
        )
        plan.record = self.record(plan.record.id)
        plan.step = UploadStep.PARTS
        plan.parts = {}

    def _recorded_parts(self, plan: TransferPlan) -> dict[int, tuple[str, int]]:
        """The parts the store recorded whose sizes match the plan."""
        expected = {
            n: part_range(n, plan.size, plan.record.part_size)[1] for n in range(1, plan.count + 1)
        }
        return {
            n: (etag, size)
            for n, (etag, size) in self.store.parts(plan.record.id).items()
            if expected.get(n) == size
        }

    def _first_call(self, plan: TransferPlan, call: Any) -> Any:
        """The upload's first S3 call, ``call(client, passthrough)``, under the signature the
        host takes; sets ``plan.s3``, ``plan.signature`` and ``plan.round_trip``."""
        endpoint = plan.target.endpoint

        def attempt(scheme: str) -> Any:
            plan.s3 = self.s3.get(endpoint, scheme)
            started = time.monotonic()
            answer = call(plan.s3, lambda exc: signature_refusal(exc, scheme))
            plan.round_trip = time.monotonic() - started
            return answer

        answer, plan.signature = self.signatures.first_call(upload_host(endpoint), attempt)
        return answer

    def reconcile(self, plan: TransferPlan, stop: Stop) -> None:
        """Cross-check the recorded parts with ListParts, where the host answers it.

        The store's record of acknowledged parts (number, size, ETag) is what resuming needs;
        ListParts only refines it (a part the target lost is sent again; one it holds but the
        store missed is kept). A host that refuses ListParts (:func:`call_refused`) is not asked
        again. ``NoSuchUpload`` — the only answer that means the multipart upload is gone —
        opens a new one, and every part goes again.
        """
        record = plan.record
        host = upload_host(plan.target.endpoint)
        if not self.optional.may_try(host, LIST_PARTS):
            return
        expected = {
            n: part_range(n, plan.size, record.part_size)[1] for n in range(1, plan.count + 1)
        }
        found: dict[int, tuple[str, int]] = {}
        marker = 0

        def list_page(s3: Any, refused: Any = None) -> Any:
            return self.caller.call(
                stop,
                "listing the uploaded parts",
                Path(record.file_path).name,
                s3.list_parts,
                raw_errors=True,
                passthrough=lambda exc: call_refused(exc) or bool(refused and refused(exc)),
                Bucket=plan.target.bucket,
                Key=plan.key,
                UploadId=record.s3_upload_id,
                PartNumberMarker=marker,
            )

        try:
            while True:
                page = list_page(plan.s3) if marker else self._first_call(plan, list_page)
                for part in page.get("Parts", []):
                    number, part_bytes = int(part["PartNumber"]), int(part["Size"])
                    if expected.get(number) == part_bytes:
                        found[number] = (str(part["ETag"]), part_bytes)
                if not page.get("IsTruncated"):
                    break
                marker = int(page.get("NextPartNumberMarker") or 0)
        except Exception as exc:
            if call_refused(exc) and not isinstance(exc, VidauthError):
                self.optional.refused(host, LIST_PARTS, exc)
                return  # unknown: trust the store
            if not no_such_upload(exc) or isinstance(exc, VidauthError):
                raise
            self.open_multipart(plan, stop)
            return
        self.optional.worked(host, LIST_PARTS)
        plan.parts = found
        self.store.replace_parts(record.id, found)
