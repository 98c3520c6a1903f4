"""Finish and poll: the manifest, ``State: 1``, waiting for Panopto, and the viewer URL."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from vidauth.errors import ErrorCode, RemoteServiceError, VidauthError
from vidauth.panopto.manifest import MANIFEST_NAME, build_manifest
from vidauth.panopto.plan import TransferPlan
from vidauth.panopto.rest import PanoptoRest, SessionUploadState, state_name
from vidauth.panopto.s3calls import S3Caller, Stop, no_such_upload
from vidauth.panopto.upload_types import (
    EventKind,
    Progress,
    UploadEvent,
    UploadInterrupted,
    UploadOptions,
    UploadResult,
)
from vidauth.store.uploads import UploadRecord, UploadState, UploadStep, UploadStore

log = logging.getLogger("vidauth.upload")


class UploadFinisher:
    """Completes a transferred upload at Panopto and follows it to its end state."""

    def __init__(
        self,
        rest: PanoptoRest,
        store: UploadStore,
        caller: S3Caller,
        options: UploadOptions,
        cancel: threading.Event,
        *,
        server: str | None = None,
        gate: Callable[[int, str], None] | None = None,
        part_slot: Callable[[int, Stop], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.rest = rest
        #: The gate of parts in flight the manifest's one part passes (None: none).
        self.part_slot = part_slot or (lambda _nbytes, _stop: contextlib.nullcontext())
        #: Called with (record id, "finish") before State 1; raises to stop the upload.
        self.gate = gate
        self.store = store
        self.caller = caller
        self.options = options
        self.cancel = cancel
        self.server = server

    def complete(self, plan: TransferPlan, stop: Stop) -> None:
        """CompleteMultipartUpload with the recorded parts, recorded as steps ``completing`` (before
        it is sent) and ``assembled`` (after its answer).

        Without HeadObject there is no way to look at an assembled object, so a Complete whose
        answer was lost is simply sent again. ``NoSuchUpload`` to it means that the first one
        went through (or that the parts are gone): the upload goes on to the manifest and
        Panopto's processing judges; a State 5 that names missing media sends the file again
        (:meth:`UploadEngine._upload <vidauth.panopto.engine.UploadEngine>`).
        """
        record = plan.record
        self._step(plan, UploadStep.COMPLETING)
        ordered = [
            {"PartNumber": n, "ETag": plan.parts[n][0]}
            for n in sorted(plan.parts)
            if n <= plan.count
        ]
        try:
            self.caller.call(
                stop,
                "assembling the uploaded parts",
                Path(record.file_path).name,
                plan.s3.complete_multipart_upload,
                raw_errors=True,
                Bucket=plan.target.bucket,
                Key=plan.key,
                UploadId=record.s3_upload_id,
                MultipartUpload={"Parts": ordered},
            )
        except Exception as exc:
            if isinstance(exc, VidauthError) or not no_such_upload(exc):
                raise
            log.info(
                "upload %s: the target no longer knows its multipart upload; taking it as "
                "assembled by an earlier Complete (processing will tell)",
                record.id,
            )
        self._step(plan, UploadStep.ASSEMBLED)

    def send_manifest(
        self, plan: TransferPlan, stop: Stop, early: cf.Future[None] | None = None
    ) -> None:
        """Record step ``manifest`` once the manifest is at the target: ``early`` is
        :meth:`put_manifest` started beside the parts; it is waited for, and the manifest is
        sent here when it did not start or did not get through (or when there is none)."""
        if early is None or early.cancel() or early.exception() is not None:
            self.put_manifest(plan, stop)
        self._step(plan, UploadStep.MANIFEST)

    def put_manifest(self, plan: TransferPlan, stop: Stop) -> None:
        """Send the UCS manifest next to the media as a one-part multipart upload (as every
        public client does: nothing beyond the multipart calls is needed). Three round trips
        that depend on nothing but the multipart upload's target, so the engine sends them
        while the parts go; the step is recorded by :meth:`send_manifest`."""
        record = plan.record
        manifest = build_manifest(record.title, record.object_key, description=record.description)
        key = plan.target.key(MANIFEST_NAME)
        name = Path(record.file_path).name
        what = "uploading the manifest"
        created = self.caller.call(
            stop, what, name, plan.s3.create_multipart_upload, Bucket=plan.target.bucket, Key=key
        )
        upload_id = str(created["UploadId"])

        def upload_part(**kwargs: Any) -> Any:
            # a part in flight like the media's: within a pinned --parallel N, too
            with self.part_slot(len(manifest), stop):
                return plan.s3.upload_part(**kwargs)

        part = self.caller.call(
            stop,
            what,
            name,
            upload_part,
            Bucket=plan.target.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=1,
            Body=manifest,
            ContentLength=len(manifest),
        )
        self.caller.call(
            stop,
            what,
            name,
            plan.s3.complete_multipart_upload,
            Bucket=plan.target.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": str(part["ETag"])}]},
        )

    def _step(self, plan: TransferPlan, step: str) -> None:
        self.store.update(plan.record.id, step=step)
        plan.step = step

    def finish(self, record: UploadRecord, size: int, emit: Progress, result: UploadResult) -> None:
        """Mark the upload complete (State 1) and, when waiting, poll until Panopto is done."""
        assert record.session_upload_id is not None
        if record.state == UploadState.UPLOADING:
            if self.gate is not None:
                self.gate(record.id, "finish")  # the point of no return
            remote = self.rest.get_session_upload(record.session_upload_id)
            self.rest.finish_session_upload(remote)
            self.store.update(record.id, state=UploadState.PROCESSING)
        result.state = UploadState.PROCESSING
        emit(
            UploadEvent(
                EventKind.PROCESSING,
                record.file_path,
                size,
                size,
                record.id,
                record.session_upload_id,
            )
        )
        if not self.options.wait:
            return
        upload_id = record.session_upload_id
        for remote in self.poll(upload_id):
            state = remote.get("State")
            if state == SessionUploadState.COMPLETE:
                session_id = str(remote.get("SessionId") or "")
                viewer = self.viewer_url(session_id)
                self.store.update(
                    record.id,
                    state=UploadState.COMPLETE,
                    session_id=session_id,
                    viewer_url=viewer,
                )
                result.state, result.session_id, result.viewer_url = (
                    UploadState.COMPLETE,
                    session_id,
                    viewer,
                )
                emit(
                    UploadEvent(
                        EventKind.COMPLETE,
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
                self._failed(record, remote, result)

    def _failed(self, record: UploadRecord, remote: dict[str, Any], result: UploadResult) -> None:
        state = remote.get("State")
        name = state_name(state)
        message = str(remote.get("Message") or name)
        final = (
            UploadState.CANCELLED
            if state == SessionUploadState.UPLOAD_CANCELLED
            else UploadState.FAILED
        )
        self.store.update(record.id, state=final, message=message)
        result.state = final
        raise RemoteServiceError(
            f"Panopto could not process {Path(record.file_path).name}: {message} "
            f"(State {state} {name})",
            code=ErrorCode.PROCESSING_FAILED,
            record_id=record.id,
            state=state,
            panopto_message=message,
        )

    def poll(self, upload_id: str) -> Iterator[dict[str, Any]]:
        """GET the sessionUpload with backoff (``poll_initial`` growing to ``poll_max``) until
        the caller stops; UploadInterrupted on cancel, an error after ``poll_timeout``."""
        delay = self.options.poll_initial
        deadline = time.monotonic() + self.options.poll_timeout
        while True:
            yield self.rest.get_session_upload(upload_id)
            if time.monotonic() > deadline:
                raise RemoteServiceError(
                    f"upload {upload_id} is still processing after "
                    f"{self.options.poll_timeout:.0f} s",
                    code=ErrorCode.PROCESSING_TIMEOUT,
                    upload_id=upload_id,
                )
            if self.cancel.wait(delay):
                raise UploadInterrupted(
                    f"stopped waiting for upload {upload_id}; it is still processing",
                    upload_id=upload_id,
                )
            delay = min(delay * 1.5, self.options.poll_max)

    def viewer_url(self, session_id: str) -> str | None:
        """The session's viewer URL from the API, else the usual one on the server."""
        if not session_id:
            return None
        try:
            return self.rest.session(session_id).viewer_url
        except VidauthError:
            base = (self.server or "").rstrip("/")
            return f"{base}/Panopto/Pages/Viewer.aspx?id={session_id}" if base else None
