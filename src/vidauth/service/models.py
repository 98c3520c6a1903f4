"""The service's tables (migrations 0003 and 0005): API keys, connections, pending sign-ins,
jobs, webhooks; idempotency keys (0008).

Times a lease or an expiry is compared against are epoch seconds (``Float``), written and read
by vidauth's processes; keep the machines' clocks in sync (NTP) — a lease tolerates seconds of
skew, not minutes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vidauth.store.models import Base, utcnow


class JobState:
    """A service upload's ``state`` as the API reports it."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING_FOR_CONSENT = "waiting_for_consent"

    ALL = (QUEUED, UPLOADING, PROCESSING, COMPLETE, FAILED, CANCELLED, WAITING_FOR_CONSENT)
    RUNNING = frozenset({UPLOADING, PROCESSING})
    FINAL = frozenset({COMPLETE, FAILED, CANCELLED})


class ApiKey(Base):
    """An API key: only its SHA-256 is stored."""

    __tablename__ = "service_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The key's own webhook signing secret, encrypted with the token store's key.
    webhook_secret: Mapped[bytes | None] = mapped_column(LargeBinary)


class Connection(Base):
    """A backend user (tenant + external id) and the stored account their tokens live in."""

    __tablename__ = "service_connections"
    __table_args__ = (
        UniqueConstraint("tenant", "external_user_id", name="uq_service_connections_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255))
    external_user_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingSignin(Base):
    """A connect link handed out: looked up by SHA-256 of ``state``; nonce/verifier encrypted."""

    __tablename__ = "service_pending_signins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255))
    external_user_id: Mapped[str] = mapped_column(String(255))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    code_verifier: Mapped[bytes | None] = mapped_column(LargeBinary)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float)
    #: SHA-256 of the token in the start link (``/connect/start?s=…``), which works once.
    start_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    #: The Panopto authorize URL the start page redirects to (it carries ``state``): encrypted.
    authorize_url: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: SHA-256 of the cookie the start page set: the callback must come from that browser.
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float | None] = mapped_column(Float)
    expected_username: Mapped[str | None] = mapped_column(String(255))
    #: The API key that handed the link out (0013): revoking it ends the link.
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    #: Whom the link is for, as the backend names the user (0015): the start page shows it.
    display_name: Mapped[str | None] = mapped_column(String(200))


class Job(Base):
    """One upload requested through the API, run by a worker under a lease."""

    __tablename__ = "service_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    external_user_id: Mapped[str] = mapped_column(String(255), index=True)
    file_path: Mapped[str] = mapped_column(Text)
    owns_file: Mapped[bool] = mapped_column(Boolean, default=False)
    folder: Mapped[str] = mapped_column(String(1024))
    folder_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    record_id: Mapped[int | None] = mapped_column(Integer)
    session_upload_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    viewer_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The API key that submitted the job: its webhook secret signs the notifications.
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    #: ``"<st_dev>:<st_ino>:<size>:<mtime_ns>"`` of a shared file as checked at submit time.
    file_identity: Mapped[str | None] = mapped_column(String(128))


class Webhook(Base):
    """A signed notification waiting to be delivered (an outbox row)."""

    __tablename__ = "service_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(40), index=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    delivered_at: Mapped[float | None] = mapped_column(Float)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` of ``POST /v1/uploads`` (migration 0008): the request it was
    first used with (a hash), the upload it made, and the answer once there is one."""

    __tablename__ = "service_idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant", "key", name="uq_service_idempotency_keys_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    upload_id: Mapped[str] = mapped_column(String(40))
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while in progress
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    claimed_at: Mapped[float] = mapped_column(Float)
