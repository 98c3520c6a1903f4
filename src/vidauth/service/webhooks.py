"""Signed notifications to the backend's ``callback_url``, kept in an outbox table.

Each POST follows Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` (the
same on every delivery of one notification, so a receiver can drop a redelivery),
``webhook-timestamp`` (unix seconds of this delivery) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">``. The HMAC key is the submitting API
key's webhook secret (:mod:`vidauth.service.webhook_secrets`) as its UTF-8 bytes, so the stock
verifiers take it as ``"whsec_" + base64(secret)`` (:func:`standard_secret`). The older
``X-Vidauth-Timestamp`` / ``X-Vidauth-Signature: sha256=<hex of HMAC("<timestamp>.<body>")>``
headers are sent too, for receivers written against them (deprecated; see CHANGELOG.md). The
body names the ``tenant``. The address is checked at each delivery
(:mod:`vidauth.service.webhook_targets`). Receivers verify, compare in constant time and reject
timestamps older than a few minutes. Failed deliveries are rescheduled with the one retry
policy's backoff (capped at ``MAX_BACKOFF``, up to ``VIDAUTH_WEBHOOK_ATTEMPTS``); any worker may
deliver any row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vidauth._times import now_rfc3339
from vidauth._urls import check_transport
from vidauth.retry import parse_retry_after
from vidauth.service.context import ServiceContext
from vidauth.service.errors import split_job_error
from vidauth.service.models import Job, Webhook
from vidauth.service.webhook_secrets import row_secret
from vidauth.service.webhook_targets import TargetRefused, post_pinned

log = logging.getLogger("vidauth.service.webhooks")

ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_HEADER = "X-Vidauth-Signature"  # deprecated: the Standard Webhooks headers replace it
TIMESTAMP_HEADER = "X-Vidauth-Timestamp"
EVENT_HEADER = "X-Vidauth-Event"
CLAIM_SECONDS = 60.0
MAX_BACKOFF = 3600.0


def standard_secret(secret: str) -> str:
    """``secret`` in the ``whsec_<base64>`` form Standard Webhooks verifiers take."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def message_id(row_id: int, body: bytes) -> str:
    """The ``webhook-id`` of outbox row ``row_id``: the same on each of its deliveries."""
    digest = hashlib.sha256(str(row_id).encode() + b"." + body).digest()
    return "msg_" + base64.urlsafe_b64encode(digest[:18]).decode()


def sign_standard(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of
    ``"<id>.<timestamp>.<body>"``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, msg_id: str, timestamp: str, body: bytes) -> dict[str, str]:
    """The signature headers of one delivery: Standard Webhooks', and the deprecated
    ``X-Vidauth-*`` pair."""
    return {
        ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: timestamp,
        STANDARD_SIGNATURE_HEADER: sign_standard(secret, msg_id, timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The deprecated ``X-Vidauth-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance: float = 300
) -> bool:
    """Check a received notification (what a receiver does; used by the tests)."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def job_payload(job: Job, event: str) -> dict[str, Any]:
    """The JSON a notification carries about a job (``error_code``: the stable code)."""
    error_code, error = split_job_error(job.error)
    return {
        "event": f"upload.{event}",
        "tenant": job.tenant,
        "upload_id": job.id,
        "external_user_id": job.external_user_id,
        "state": job.state,
        "bytes_total": job.bytes_total,
        "bytes_sent": job.bytes_sent,
        "session_id": job.session_id,
        "viewer_url": job.viewer_url,
        "error": error,
        "error_code": error_code,
        "sent_at": now_rfc3339(),
    }


def enqueue(session: Session, job: Job, event: str) -> None:
    """Add a notification about ``job`` to the outbox (in the caller's transaction)."""
    if not job.callback_url:
        return
    body = json.dumps(job_payload(job, event), separators=(",", ":"), sort_keys=True)
    session.add(
        Webhook(
            job_id=job.id,
            api_key_id=job.api_key_id,
            url=job.callback_url,
            body=body,
            next_attempt_at=0.0,
        )
    )


class WebhookSender:
    """Delivers due outbox rows; rows are claimed with SKIP LOCKED so senders do not collide."""

    def __init__(self, ctx: ServiceContext, client: httpx.Client | None = None) -> None:
        self.ctx = ctx
        self.client = client or httpx.Client(timeout=10.0, follow_redirects=False)

    def _claim(self, limit: int) -> list[tuple[int, str, str, int]]:
        now = time.time()
        db = self.ctx.db
        with db.write_session() as session:
            query = (
                select(Webhook)
                .where(
                    Webhook.delivered_at.is_(None),
                    or_(Webhook.failed.is_(False), Webhook.failed.is_(None)),
                    Webhook.next_attempt_at <= now,
                )
                .order_by(Webhook.id)
                .limit(limit)
            )
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            for row in rows:
                row.next_attempt_at = now + CLAIM_SECONDS
            return [(r.id, r.url, r.body, r.attempts) for r in rows]

    def deliver_due(self, limit: int = 20) -> int:
        """Send what is due; answers how many were delivered."""
        delivered = 0
        for row_id, url, body, attempts in self._claim(limit):
            secret = row_secret(self.ctx, row_id)
            if not secret:
                self._record(row_id, attempts + 1, False, "no webhook secret for its API key")
                continue
            ok, error, retry_after = self._post(
                secret, url, body.encode(), message_id(row_id, body.encode())
            )
            self._record(row_id, attempts + 1, ok, error, retry_after)
            delivered += ok
        return delivered

    def _post(
        self, secret: str, url: str, body: bytes, msg_id: str
    ) -> tuple[bool, str | None, float | None]:
        """(delivered, why not, the receiver's Retry-After)."""
        problem = check_transport(url)
        if problem:
            return False, problem, None
        timestamp = str(int(time.time()))
        event = json.loads(body).get("event", "")
        headers = {
            "Content-Type": "application/json",
            **signed_headers(secret, msg_id, timestamp, body),
            EVENT_HEADER: event,
            "User-Agent": "vidauth-webhooks/0.1",
        }
        try:
            allow = self.ctx.service.webhook_allow_networks
            response = post_pinned(self.client, url, allow, body, headers)
        except TargetRefused as exc:
            return False, f"refused: {exc}", None
        except httpx.HTTPError as exc:
            return False, type(exc).__name__, None
        if response.is_success:
            return True, None, None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return False, f"HTTP {response.status_code}", retry_after

    def _record(
        self,
        row_id: int,
        attempts: int,
        ok: bool,
        error: str | None,
        retry_after: float | None = None,
    ) -> None:
        with self.ctx.db.session() as session:
            row = session.get(Webhook, row_id)
            if row is None:
                return
            row.attempts = attempts
            if ok:
                row.delivered_at = time.time()
                row.last_error = None
                return
            row.last_error = error
            if attempts >= self.ctx.service.webhook_attempts:
                row.failed = True
                log.warning(
                    "giving up on webhook %d after %d attempts: %s", row_id, attempts, error
                )
            else:
                policy = self.ctx.va.retry_policy
                delay = policy.backoff(attempts, retry_after, max_delay=MAX_BACKOFF)
                row.next_attempt_at = time.time() + delay

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
