"""``Idempotency-Key`` on ``POST /v1/uploads``: a retried request never makes a second upload.

A backend whose request timed out cannot know whether the upload was queued, so it sends the
request again with the same key. The first request with a key *claims* it: a row in
``service_idempotency_keys``, unique per (tenant, key), so that of two racing requests exactly
one wins, on PostgreSQL and SQLite alike; the row names the upload id the winner is about to
create, and once the upload is queued the answer (status and body) is stored in it. Another
request with the same key and the same request — the hash of the normalized form fields and of
the file (name, size, and SHA-256 computed while it streams) — gets that first answer again;
with a different request, 422 ``idempotency_key_reused``; while the first is still being
handled it waits up to :data:`WAIT_SECONDS`, then 409 ``idempotency_key_in_progress`` with
``Retry-After``.

Only an accepted upload is kept. A refused request (a bad field, ``not_connected``, a database
error) queued nothing, so its claim is released and the same key may be sent again once the
cause is fixed. A claim whose request died with its process is taken over after
:data:`STALE_SECONDS`, unless the upload it names exists: then that upload is the answer. (Only
a request stalled for longer than that between its claim and queueing its upload — a few
milliseconds of database work — could still queue a second one.)
Keys are kept :data:`KEEP_SECONDS` (24 h): an older key counts as new, and a sweep run from the
request path at most every :data:`SWEEP_SECONDS` deletes the old rows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from vidauth.service.api_models import ErrorBody
from vidauth.service.ingest import Received
from vidauth.service.models import IdempotencyKey, Job
from vidauth.store.db import Database

log = logging.getLogger("vidauth.service")

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEEP_SECONDS = 24 * 3600.0
WAIT_SECONDS = 5.0
STALE_SECONDS = 60.0
SWEEP_SECONDS = 600.0
RETRY_AFTER_SECONDS = 1

#: Printable ASCII; a space only inside (HTTP drops a value's surrounding spaces).
KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)

_KEY_DESCRIPTION = (
    "Makes retries safe: a request with the same key and the same fields and file as an "
    "earlier accepted one gets that first answer again (same status and body, with "
    "`Idempotent-Replayed: true`) and queues nothing. Keys are per tenant and kept 24 hours. "
    "1 to 255 printable ASCII characters; a UUID is a good key."
)

#: Merged into the route's ``openapi_extra``: the header parameter.
OPENAPI_EXTRA: dict[str, Any] = {
    "parameters": [
        {
            "name": KEY_HEADER,
            "in": "header",
            "required": False,
            "description": _KEY_DESCRIPTION,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": KEY_PATTERN,
            },
        }
    ]
}

#: Merged into the route's ``responses``: what the key adds to them.
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "The upload is queued (with an Idempotency-Key used before: the first "
        "answer again).",
        "headers": {
            "Location": {"description": "The upload's URL.", "schema": {"type": "string"}},
            REPLAYED_HEADER: {
                "description": "`true` when this is the stored answer to an earlier request "
                "with the same Idempotency-Key.",
                "schema": {"type": "string", "enum": ["true"]},
            },
        },
    },
    409: {
        "model": ErrorBody,
        "description": "The request conflicts with the current state (`detail` says what to "
        "do); or `idempotency_key_in_progress`: the first request with this Idempotency-Key "
        "is still being handled; send it again after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait (with `idempotency_key_in_progress`).",
                "schema": {"type": "integer"},
            }
        },
    },
    422: {
        "model": ErrorBody,
        "description": "`idempotency_key_reused`: the Idempotency-Key was first used with a "
        "different request; use a new key for a new upload.",
    },
}


class IdempotencyError(Exception):
    """An answer of ``status`` with ``{"error", "detail"}`` (and ``headers``)."""

    def __init__(
        self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})


def request_key(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; 400 unless it is a valid key."""
    values = request.headers.getlist(KEY_HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise IdempotencyError(400, "invalid_request", f"send one {KEY_HEADER} header, not several")
    if not _KEY.fullmatch(values[0]):
        raise IdempotencyError(
            400,
            "invalid_request",
            f"{KEY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID is a good key)",
        )
    return values[0]


def request_hash(form: Received) -> str:
    """What makes two requests "the same": the form fields as the route reads them (trimmed;
    empty ones are absent) and the file's name, size and SHA-256."""
    fields = {}
    for name, value in form.fields.items():
        normal = value if name == "description" else value.strip()
        if normal:
            fields[name] = normal
    file = None
    if form.file_path is not None:
        file = {"name": form.filename, "size": form.file_size, "sha256": form.sha256}
    text = json.dumps(
        {"v": 1, "fields": fields, "file": file},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Stored:
    """The stored first answer to a key."""

    status: int
    body: str
    upload_id: str


_CLAIMED = "claimed"
_BUSY = "busy"
_AGAIN = "again"


class IdempotencyKeys:
    """The claim protocol on ``service_idempotency_keys`` (thread-safe; short transactions)."""

    def __init__(
        self,
        db: Database,
        *,
        keep_seconds: float = KEEP_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        stale_seconds: float = STALE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.keep_seconds = keep_seconds
        self.wait_seconds = wait_seconds
        self.stale_seconds = stale_seconds
        self.clock = clock
        self._sweep_lock = threading.Lock()
        self._swept_at = float("-inf")

    async def once(
        self,
        key: str | None,
        tenant: str,
        upload_id: str,
        form: Received,
        accept: Callable[[], Awaitable[Response]],
    ) -> Response:
        """``accept()`` (which queues upload ``upload_id``) at most once per (tenant, key);
        without a key, simply ``accept()``."""
        if key is None:
            return await accept()
        digest = request_hash(form)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.02
        while True:
            outcome = await anyio.to_thread.run_sync(self.claim, tenant, key, digest, upload_id)
            if isinstance(outcome, _Stored):
                return _replay(outcome)
            if outcome == _CLAIMED:
                break
            if outcome == _AGAIN:
                continue
            if time.monotonic() >= deadline:
                raise IdempotencyError(
                    409,
                    "idempotency_key_in_progress",
                    f"the first request with {KEY_HEADER} {key!r} is still being handled; "
                    f"send it again in {RETRY_AFTER_SECONDS} s",
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.25)
        try:
            response = await accept()
        except Exception:
            with anyio.CancelScope(shield=True):
                settled = await anyio.to_thread.run_sync(self.settle, tenant, key, upload_id)
            if settled is not None:  # queued after all (the answer failed): that is the answer
                return _replay(settled)
            raise
        # Shielded: once the upload is queued, its answer must be stored even if the client
        # goes away now (a claim left open would be settled from the upload anyway).
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                self.complete, tenant, key, upload_id, response.status_code, bytes(response.body)
            )
        return response

    # -- the steps, each one transaction (on a worker thread) -------------------------------

    def claim(self, tenant: str, key: str, digest: str, upload_id: str) -> _Stored | str:
        """Claim the key for ``upload_id``: ``_CLAIMED``, the stored answer, ``_BUSY`` (another
        request holds it) or ``_AGAIN`` (it was just released or expired); 422 when the key was
        first used with another request."""
        now = self.clock()
        self._maybe_sweep(now)
        try:
            with self.db.write_session() as session:
                session.add(
                    IdempotencyKey(
                        tenant=tenant,
                        key=key,
                        request_hash=digest,
                        upload_id=upload_id,
                        created_at=now,
                        claimed_at=now,
                    )
                )
            return _CLAIMED
        except IntegrityError:
            pass  # (tenant, key) exists: see what it holds
        with self.db.write_session() as session:
            row = session.scalars(
                select(IdempotencyKey)
                .where(IdempotencyKey.tenant == tenant, IdempotencyKey.key == key)
                .with_for_update()
            ).first()
            if row is None:
                return _AGAIN
            if row.created_at < now - self.keep_seconds:
                session.delete(row)
                return _AGAIN
            if not hmac.compare_digest(row.request_hash, digest):
                raise IdempotencyError(
                    422,
                    "idempotency_key_reused",
                    f"{KEY_HEADER} {key!r} was first used with a different request (other "
                    "fields or another file); use a new key for a new upload",
                )
            if row.status_code is not None:
                return _Stored(row.status_code, row.response_body or "", row.upload_id)
            if row.claimed_at >= now - self.stale_seconds:
                return _BUSY
            # The request holding it died: its upload is the answer if it was queued …
            stored = _answer_from_upload(session, row)
            if stored is not None:
                return stored
            # … otherwise this request takes the claim over.
            row.upload_id, row.claimed_at = upload_id, now
            return _CLAIMED

    def complete(self, tenant: str, key: str, upload_id: str, status: int, body: bytes) -> None:
        """Store the answer of the claim ``upload_id`` holds."""
        with self.db.write_session() as session:
            done = session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.tenant == tenant,
                    IdempotencyKey.key == key,
                    IdempotencyKey.upload_id == upload_id,
                    IdempotencyKey.status_code.is_(None),
                )
                .values(status_code=status, response_body=body.decode())
            )
        if not done.rowcount:  # type: ignore[attr-defined]
            log.warning("an idempotency claim was taken over before its answer was stored")

    def settle(self, tenant: str, key: str, upload_id: str) -> _Stored | None:
        """After ``accept()`` failed: the answer if upload ``upload_id`` was queued anyway,
        else None, releasing the claim so that the key may be used again."""
        with self.db.write_session() as session:
            row = session.scalars(
                select(IdempotencyKey)
                .where(
                    IdempotencyKey.tenant == tenant,
                    IdempotencyKey.key == key,
                    IdempotencyKey.upload_id == upload_id,
                    IdempotencyKey.status_code.is_(None),
                )
                .with_for_update()
            ).first()
            if row is None:
                return None
            stored = _answer_from_upload(session, row)
            if stored is None:
                session.delete(row)
            return stored

    def sweep(self, now: float | None = None) -> int:
        """Delete the keys older than ``keep_seconds``; their count."""
        cutoff = (self.clock() if now is None else now) - self.keep_seconds
        with self.db.write_session() as session:
            result = session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _maybe_sweep(self, now: float) -> None:
        with self._sweep_lock:
            if now - self._swept_at < SWEEP_SECONDS:
                return
            self._swept_at = now
        self.sweep(now)


def _answer_from_upload(session: Any, row: IdempotencyKey) -> _Stored | None:
    """Store and answer the 202 of ``row``'s upload when it exists (its request died after
    queueing it); None when it does not."""
    job = session.get(Job, row.upload_id)
    if job is None or job.tenant != row.tenant:
        return None
    # The same body, byte for byte, as the route's 202.
    body = bytes(JSONResponse({"upload_id": job.id, "state": job.state}).body).decode()
    row.status_code, row.response_body = 202, body
    return _Stored(202, body, job.id)


def _replay(stored: _Stored) -> Response:
    headers = {REPLAYED_HEADER: "true"}
    if stored.status == 202:
        headers["Location"] = f"/v1/uploads/{stored.upload_id}"
    return Response(stored.body, stored.status, headers=headers, media_type="application/json")


def install(app: FastAPI, db: Database) -> IdempotencyKeys:
    """Answer :class:`IdempotencyError` in ``app`` as vidauth's error body; the key store."""

    async def _idempotency_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IdempotencyError)
        return JSONResponse(
            {"error": exc.error, "detail": exc.detail}, exc.status, headers=exc.headers
        )

    app.add_exception_handler(IdempotencyError, _idempotency_error)
    return IdempotencyKeys(db)
