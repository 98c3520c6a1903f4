"""The upload form's fields checked and turned into a queued job (``POST /v1/uploads``)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

from vidauth._urls import check_transport
from vidauth.errors import ErrorCode, UsageError
from vidauth.panopto.files import check_media_file
from vidauth.service import connect, shared_files
from vidauth.service.auth import Caller
from vidauth.service.context import ServiceContext
from vidauth.service.jobs import JobQueue, JobView
from vidauth.service.models import JobState
from vidauth.service.routes.answers import ApiError
from vidauth.service.routes.checks import check_text, check_user_id
from vidauth.service.webhook_secrets import key_secret
from vidauth.service.webhook_targets import TargetRefused, check_target

log = logging.getLogger("vidauth.service")

UPLOAD_FIELDS = frozenset(
    ("file", "path", "external_user_id", "folder", "title", "description", "callback_url")
)


def submit(ctx: ServiceContext, queue: JobQueue, who: Caller, job_id: str, form: Any) -> JobView:
    """Check the form and queue the job (runs on a thread)."""
    service = ctx.service
    fields: dict[str, str] = form.fields
    user = check_user_id(fields.get("external_user_id", ""))
    folder = fields.get("folder", "").strip()
    if not folder:
        raise ApiError(400, "invalid_request", "folder is required: a folder id or exact name")
    for name, value in fields.items():  # the form checked them already; keep the rule here
        if name != "path":  # shared_files' own check: the same rule, the same one answer
            check_text(name, value)
    callback_url = fields.get("callback_url", "").strip() or None
    if callback_url:
        _check_callback_url(ctx, who, callback_url)
    shared = fields.get("path", "").strip()
    if form.file_path is not None and shared:
        raise ApiError(400, "invalid_request", "send either file or path, not both")
    identity: str | None = None
    if form.file_path is not None:
        path: Path = form.file_path
        owns = True
        name = form.filename or path.name
        try:
            path = check_media_file(path, name=Path(name).name)
        except UsageError as exc:
            status = 415 if exc.code == ErrorCode.FILE_NOT_MEDIA else 400
            raise ApiError(status, "invalid_file", exc.message) from None
        size = path.stat().st_size
    elif shared:
        checked = _shared_file(service.shared_dir, who.tenant, shared)
        path, identity, size = checked.path, checked.identity, checked.size
        owns = False
        name = path.name
    else:
        raise ApiError(400, "invalid_request", "send the video in field file, or give path")
    status = connect.account_status(ctx, who.tenant, user)["status"]
    if status == connect.NOT_CONNECTED:
        raise ApiError(
            409,
            "not_connected",
            f"{user!r} has not connected Panopto: POST /v1/accounts/{{id}}/connect first",
        )
    title = fields.get("title", "").strip() or Path(name).stem or "Untitled"
    check_text("title", title)  # derived from the file name when not given
    return queue.submit(
        id=job_id,
        tenant=who.tenant,
        external_user_id=user,
        file_path=str(path),
        owns_file=owns,
        folder=folder[:1024],
        title=title[:1000],
        description=fields.get("description") or None,
        callback_url=callback_url,
        state=(JobState.QUEUED if status == connect.CONNECTED else JobState.WAITING_FOR_CONSENT),
        bytes_total=size,
        api_key_id=who.key_id,
        file_identity=identity,
    )


def storage_error(exc: OSError) -> ApiError:
    """The answer when the upload directory fails (full disk: 507; anything else: 503)."""
    log.error("writing an upload failed: %s", exc.strerror or type(exc).__name__)
    if exc.errno == errno.ENOSPC:
        return ApiError(
            507, "insufficient_storage", "the service's upload directory is full; try again later"
        )
    return ApiError(
        503, "storage_unavailable", "the service cannot store uploads right now; try again later"
    )


def _check_callback_url(ctx: ServiceContext, who: Caller, url: str) -> None:
    """400 unless notifications can be signed for this key and sent to ``url``'s address."""
    problem = check_transport(url)
    if problem:
        raise ApiError(400, "invalid_request", f"callback_url: {problem}")
    if not key_secret(ctx, who.key_id):
        raise ApiError(
            400,
            "invalid_request",
            "callback_url needs a webhook secret for this API key: the service's operator gives "
            "the key one, or sets VIDAUTH_WEBHOOK_SECRET on the service",
        )
    try:
        check_target(url, ctx.service.webhook_allow_networks)
    except TargetRefused as exc:
        raise ApiError(400, "invalid_request", f"callback_url: {exc}") from None


def _shared_file(shared_dir: Path | None, tenant: str, given: str) -> shared_files.SharedFile:
    """The checked file under the tenant's shared directory; one answer for every refusal."""
    if shared_dir is None:
        raise ApiError(
            400, "invalid_request", "path uploads need VIDAUTH_SHARED_DIR on the service"
        )
    try:
        return shared_files.check(shared_dir, tenant, given)
    except shared_files.SharedFileError as exc:
        raise ApiError(400, "invalid_file", str(exc)) from None
