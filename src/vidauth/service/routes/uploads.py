"""``/v1/uploads``: queue an upload (the video streamed to disk, or a shared file), list the
tenant's uploads, see one, cancel one."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from vidauth.service import idempotency, quota
from vidauth.service.api_models import (
    USER_ID_SCHEMA,
    Upload,
    UploadAccepted,
    UploadList,
    error_responses,
)
from vidauth.service.ingest import IngestError, receive_form, remove_owned_file
from vidauth.service.jobs import JobView, new_job_id, too_late_to_cancel
from vidauth.service.models import JobState
from vidauth.service.routes.answers import ApiError
from vidauth.service.routes.checks import check_upload_id, check_user_id
from vidauth.service.routes.deps import Auth, Ctx, Queue, run_sync
from vidauth.service.routes.upload_form import UPLOAD_FIELDS, storage_error, submit
from vidauth.service.text_fields import control_character_problem

router = APIRouter(tags=["uploads"])

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["external_user_id", "folder"],
                    "oneOf": [{"required": ["file"]}, {"required": ["path"]}],
                    "additionalProperties": False,
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The video (or give `path`).",
                        },
                        "path": {
                            "type": "string",
                            "pattern": r"\S",
                            "description": "A file under VIDAUTH_SHARED_DIR instead of `file`.",
                        },
                        "external_user_id": {"type": "string", **USER_ID_SCHEMA},
                        "folder": {
                            "type": "string",
                            "pattern": r"\S",
                            "description": "Folder id or exact name.",
                        },
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "callback_url": {
                            "type": "string",
                            "description": "Receives signed completion/failure POSTs.",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/v1/uploads",
    status_code=202,
    openapi_extra={**_UPLOAD_FORM, **idempotency.OPENAPI_EXTRA},
    response_model=UploadAccepted,
    responses={
        **error_responses(400, 401, 409, 413, 415, 503, 507),
        **idempotency.RESPONSES,
    },
)
async def create_upload(request: Request, who: Auth, ctx: Ctx, queue: Queue) -> Response:
    """Queue an upload: the video in field ``file`` (streamed to disk) or ``path``."""
    service = ctx.service
    key = idempotency.request_key(request)  # a bad key is refused before the body is read
    # The tenant's share of the spool, before a byte is read: one tenant cannot fill it.
    left, refused = await run_sync(quota.room, ctx, who.tenant)
    if refused is not None or left is None:
        raise ApiError(507, quota.QUOTA_ERROR, refused or "")
    job_id = new_job_id()
    job_dir = service.upload_dir / job_id
    try:
        await run_sync(lambda: job_dir.mkdir(parents=True, exist_ok=False))
    except OSError as exc:
        raise storage_error(exc) from None
    keep = False
    try:
        try:
            form = await receive_form(
                request,
                job_dir,
                min(service.max_upload_bytes, left),
                UPLOAD_FIELDS,
                control_character_problem,
                hash_file=key is not None,
            )
        except IngestError as exc:
            if exc.status == 413 and left < service.max_upload_bytes:
                # over the tenant's share rather than over the size limit
                raise ApiError(
                    507, quota.QUOTA_ERROR, quota.quota_full(service.tenant_spool_bytes)
                ) from None
            raise ApiError(exc.status, exc.error, exc.detail) from None
        except ClientDisconnect:
            raise ApiError(400, "invalid_request", "the client went away mid-upload") from None
        except OSError as exc:
            raise storage_error(exc) from None

        async def accept() -> Response:
            nonlocal keep
            job = await run_sync(submit, ctx, queue, who, job_id, form)
            keep = job.owns_file
            return JSONResponse(
                {"upload_id": job.id, "state": job.state},
                202,
                headers={"Location": f"/v1/uploads/{job.id}"},
            )

        keys: idempotency.IdempotencyKeys = request.app.state.idempotency_keys
        return await keys.once(key, who.tenant, job_id, form, accept)
    finally:
        if not keep:
            await run_sync(lambda: shutil.rmtree(job_dir, ignore_errors=True))


@router.get(
    "/v1/uploads",
    response_model=UploadList,
    responses=error_responses(400, 401, 422, 503),
)
async def list_uploads(
    who: Auth,
    queue: Queue,
    external_user_id: Annotated[str | None, Query(json_schema_extra=USER_ID_SCHEMA)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The tenant's uploads, newest first (optionally one user's)."""
    user = check_user_id(external_user_id) if external_user_id is not None else None
    jobs: list[JobView] = await run_sync(queue.list, who.tenant, user, limit)
    return {"uploads": [job.as_api() for job in jobs]}


@router.get(
    "/v1/uploads/{upload_id}",
    response_model=Upload,
    responses=error_responses(401, 404, 422, 503),
)
async def get_upload(upload_id: str, who: Auth, queue: Queue) -> dict[str, Any]:
    """State, progress, and where the video can be watched once complete."""
    check_upload_id(upload_id)
    job = await run_sync(queue.get, who.tenant, upload_id)
    if job is None:
        raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")
    result: dict[str, Any] = job.as_api()
    return result


@router.delete(
    "/v1/uploads/{upload_id}",
    response_model=Upload,
    responses=error_responses(401, 404, 409, 422, 503),
)
async def cancel_upload(upload_id: str, who: Auth, queue: Queue) -> dict[str, Any]:
    """Cancel an upload (a running one stops within seconds)."""
    check_upload_id(upload_id)
    job = await run_sync(queue.request_cancel, who.tenant, upload_id)
    if job is None:
        raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")
    if job.state == JobState.COMPLETE:
        raise ApiError(
            409,
            "already_complete",
            "the upload has finished; delete the session in Panopto instead",
        )
    if too_late_to_cancel(job):
        raise ApiError(
            409,
            "too_late_to_cancel",
            f"the upload is past the point of no return (state {job.state}): Panopto "
            "will publish it; delete the session in Panopto instead",
            {"state": job.state, "upload": job.as_api()},
        )
    if job.state == JobState.CANCELLED:
        await run_sync(remove_owned_file, job)
    result: dict[str, Any] = job.as_api()
    return result
