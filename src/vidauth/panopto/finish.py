"""Finish and poll: the manifest, ``State: 1``, waiting for Panopto, and the viewer URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidauth.errors import ErrorCode, RemoteServiceError, VidauthError
from vidauth.panopto.manifest import MANIFEST_NAME, build_manifest
from vidauth.panopto.plan import TransferPlan
from vidauth.panopto.rest import PanoptoRest, SessionUploadState, state_name
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.upload_types import (
    Progress,
    UploadEvent,
    UploadInterrupted,
    UploadOptions,
    UploadResult,
)
from vidauth.store.uploads import UploadRecord, UploadState, UploadStore


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
    ) -> None:
        self.rest = rest
        self.store = store
        self.caller = caller
        self.options = options
        self.cancel = cancel
        self.server = server

    def send_manifest(self, plan: TransferPlan, stop: Stop) -> None:
        """PUT the UCS manifest next to the media (it does not depend on the media's bytes)."""
        record = plan.record
        manifest = build_manifest(record.title, record.object_key, description=record.description)
        self.caller.call(
            stop,
            "uploading the manifest",
            Path(record.file_path).name,
            plan.s3.put_object,
            Bucket=plan.target.bucket,
            Key=plan.target.key(MANIFEST_NAME),
            Body=manifest,
            ContentType="application/xml",
        )

    def finish(self, record: UploadRecord, size: int, emit: Progress, result: UploadResult) -> None:
        """Mark the upload complete (State 1) and, when waiting, poll until Panopto is done."""
        assert record.session_upload_id is not None
        if record.state == UploadState.UPLOADING:
            remote = self.rest.get_session_upload(record.session_upload_id)
            self.rest.finish_session_upload(remote)
            self.store.update(record.id, state=UploadState.PROCESSING)
        result.state = UploadState.PROCESSING
        emit(
            UploadEvent(
                "processing", record.file_path, size, size, record.id, record.session_upload_id
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
