"""Tables. Token values are stored only as Fernet ciphertext (``LargeBinary``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the store writes."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for vidauth's tables."""


class Account(Base):
    """A signed-in identity at one profile (server + client id)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("profile_key", "subject", name="uq_accounts_profile_subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_key: Mapped[str] = mapped_column(String(512), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    server: Mapped[str | None] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    grant_type: Mapped[str] = mapped_column(String(64), default="authorization_code")
    status: Mapped[str] = mapped_column(String(32), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Token(Base):
    """The current grant of an account; one row per account, rewritten atomically."""

    __tablename__ = "tokens"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    access_token: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_type: Mapped[str] = mapped_column(String(32), default="Bearer")
    scope: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: A refresh in flight: until when (epoch seconds) and by whom; see TokenStore.claim_refresh.
    refresh_claimed_until: Mapped[float | None] = mapped_column(Float)
    refresh_claimant: Mapped[str | None] = mapped_column(String(128))
    #: The last refresh was sent but its answer was lost (0011): under strict rotation the
    #: refresh token may be spent, so the grant is not shown as refreshable until a new one.
    refresh_outcome_unknown: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class AuditEvent(Base):
    """What happened to an account: connected, refreshed, refresh_failed, revoked… (no values)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DiscoveryCacheEntry(Base):
    """A cached discovery document or JWKS (public data), keyed by its URL.

    ``body`` is the JSON text, or None after a failed fetch (then ``expires_at`` says when to
    try again). ``refetched_at`` is when an unknown key id last forced a JWKS refetch (a rate
    limit shared by every process using the store).
    """

    __tablename__ = "discovery_cache"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    refetched_at: Mapped[float | None] = mapped_column(Float)
