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
import concurrent.futures as cf
import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vidauth._times import now_rfc3339
from vidauth._urls import check_transport
from vidauth.retry import parse_retry_after
from vidauth.service.context import ServiceContext
from vidauth.service.models import Job, Webhook
from vidauth.service.text_fields import character_problem
from vidauth.service.webhook_secrets import row_secret
from vidauth.service.webhook_targets import DeadlineExceeded, TargetRefused, post_pinned

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
        "error": job.error,
        "error_code": job.error_code,
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


#: At most this much of a receiver's answer is read (its status is what counts).
MAX_ANSWER_BYTES = 4096
#: Deliveries in flight at once per sender; at most one per tenant.
DELIVERY_THREADS = 4


class _Undeliverable(Exception):
    """The row can never be delivered as it is (its URL is unusable): fail it at once."""


class WebhookSender:
    """Delivers due outbox rows; rows are claimed with SKIP LOCKED so senders do not collide.

    Fair between tenants: at most one delivery per tenant is in flight, on a small pool, and
    each has a total deadline (``VIDAUTH_WEBHOOK_TIMEOUT``, not a per-read timeout), reads at
    most ``MAX_ANSWER_BYTES`` of the answer, and counts against ``VIDAUTH_WEBHOOK_ATTEMPTS``
    whatever goes wrong. A row whose URL can never work ends as failed at once.
    """

    def __init__(self, ctx: ServiceContext, client: httpx.Client | None = None) -> None:
        self.ctx = ctx
        self.deadline = ctx.service.webhook_timeout
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(self.deadline), follow_redirects=False
        )
        self._pool = cf.ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="vidauth-hook")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def _claim(self, limit: int, busy: set[str]) -> list[tuple[int, str, str, int, str]]:
        """Due rows, the oldest of each tenant not in ``busy``; at most ``limit``."""
        now = time.time()
        db = self.ctx.db
        with db.write_session() as session:
            query = (
                select(Webhook, Job.tenant)
                .outerjoin(Job, Job.id == Webhook.job_id)
                .where(
                    Webhook.delivered_at.is_(None),
                    or_(Webhook.failed.is_(False), Webhook.failed.is_(None)),
                    Webhook.next_attempt_at <= now,
                )
                .order_by(Webhook.id)
                .limit(max(limit * 20, 100))
            )
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=Webhook)
            chosen: list[tuple[Webhook, str]] = []
            tenants = set(busy)
            for row, tenant in session.execute(query):
                tenant = tenant or ""
                if tenant in tenants:
                    continue
                tenants.add(tenant)
                chosen.append((row, tenant))
                if len(chosen) >= limit:
                    break
            for row, _tenant in chosen:
                row.next_attempt_at = now + max(CLAIM_SECONDS, 2 * self.deadline)
            return [(r.id, r.url, r.body, r.attempts, t) for r, t in chosen]

    def deliver_due(self, limit: int = DELIVERY_THREADS, *, wait: bool = True) -> int:
        """Send what is due, at most one row per tenant at a time; answers how many were
        delivered (with ``wait=False``: how many were started, and returns at once)."""
        with self._lock:
            free = DELIVERY_THREADS - len(self._in_flight)
            busy = set(self._in_flight)
        if free <= 0:
            return 0
        claimed = self._claim(min(limit, free), busy)
        futures = []
        for row_id, url, body, attempts, tenant in claimed:
            with self._lock:
                self._in_flight.add(tenant)
            futures.append(self._pool.submit(self._deliver, row_id, url, body, attempts, tenant))
        if not wait:
            return len(futures)
        return sum(1 for f in futures if f.result())

    def _deliver(self, row_id: int, url: str, body: str, attempts: int, tenant: str) -> bool:
        """Deliver one claimed row and record the outcome; never raises."""
        try:
            secret = row_secret(self.ctx, row_id)
            if not secret:
                self._record(row_id, attempts + 1, False, "no webhook secret for its API key")
                return False
            try:
                ok, error, retry_after = self._post(
                    secret, url, body.encode(), message_id(row_id, body.encode())
                )
            except _Undeliverable as exc:
                self._record(row_id, attempts + 1, False, str(exc), permanent=True)
                return False
            self._record(row_id, attempts + 1, ok, error, retry_after)
            return ok
        except Exception as exc:  # counted like any failure; never a silent retry forever
            log.warning("webhook %d: delivery failed (%s)", row_id, type(exc).__name__)
            try:
                self._record(row_id, attempts + 1, False, type(exc).__name__)
            except Exception as again:
                log.warning("webhook %d: recording failed (%s)", row_id, type(again).__name__)
            return False
        finally:
            with self._lock:
                self._in_flight.discard(tenant)

    def _post(
        self, secret: str, url: str, body: bytes, msg_id: str
    ) -> tuple[bool, str | None, float | None]:
        """(delivered, why not, the receiver's Retry-After)."""
        try:
            parts = urlsplit(url)
            if not parts.hostname or parts.port == 0:
                raise ValueError("no host")
        except ValueError as exc:
            raise _Undeliverable(f"invalid URL ({exc})") from None
        problem = check_transport(url) or character_problem("callback_url", url)
        if problem:
            raise _Undeliverable(problem)
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
            status, retry_header = post_pinned(
                self.client, url, allow, body, headers, self.deadline, MAX_ANSWER_BYTES
            )
        except TargetRefused as exc:
            return False, f"refused: {exc}", None
        except httpx.InvalidURL as exc:
            raise _Undeliverable(f"invalid URL: {exc}") from None
        except DeadlineExceeded:
            return False, f"no answer within {self.deadline:g} s", None
        except httpx.HTTPError as exc:
            return False, type(exc).__name__, None
        if 200 <= status < 300:
            return True, None, None
        return False, f"HTTP {status}", parse_retry_after(retry_header)

    def _record(
        self,
        row_id: int,
        attempts: int,
        ok: bool,
        error: str | None,
        retry_after: float | None = None,
        *,
        permanent: bool = False,
    ) -> None:
        # A write session: on SQLite a deferred one that reads first fails at once ("database
        # is locked") when another writer commits between its read and its write.
        with self.ctx.db.write_session() as session:
            row = session.get(Webhook, row_id)
            if row is None:
                return
            row.attempts = attempts
            if ok:
                row.delivered_at = time.time()
                row.last_error = None
                return
            row.last_error = error
            if permanent or attempts >= self.ctx.service.webhook_attempts:
                row.failed = True
                log.warning(
                    "giving up on webhook %d after %d attempts: %s", row_id, attempts, error
                )
            else:
                policy = self.ctx.va.retry_policy
                delay = policy.backoff(attempts, retry_after, max_delay=MAX_BACKOFF)
                row.next_attempt_at = time.time() + delay

    def close(self) -> None:
        """Wait for deliveries in flight (each ends by its deadline); close the HTTP client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
