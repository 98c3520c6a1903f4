"""API keys: ``vda_<random>`` handed out once, stored as SHA-256, checked in constant time.

Every key belongs to a tenant; everything a request does is scoped to that tenant. Each request
looks its key up by the (unique, indexed) hash, so a revoked key stops working at once on every
instance — there is no cache to wait out. When it was last used is written at most once a
minute per key and instance.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from vidauth.logs import register_secret
from vidauth.service.models import ApiKey
from vidauth.store.crypto import TokenCipher
from vidauth.store.db import Database
from vidauth.store.models import utcnow

log = logging.getLogger("vidauth.service")

KEY_PREFIX = "vda_"
LAST_USED_EVERY = 60.0


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and tenant."""

    key_id: int
    name: str
    tenant: str


@dataclass(frozen=True)
class KeyInfo:
    """What ``vidauth apikey list`` shows of a key: never the key, its hash or secrets."""

    id: int
    name: str
    tenant: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    has_webhook_secret: bool


def _key_info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        row.id,
        row.name,
        row.tenant,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
        row.webhook_secret is not None,
    )


def hash_key(key: str) -> str:
    """The stored form of a key (hex SHA-256; keys carry 256 random bits, so no salt needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(
    db: Database,
    name: str,
    tenant: str,
    *,
    webhook_secret: str | None = None,
    cipher: TokenCipher | None = None,
) -> str:
    """Create a key for ``tenant`` and return it (the only time it is ever visible).

    ``webhook_secret`` (encrypted with ``cipher``) signs the notifications of its uploads.
    """
    if webhook_secret is not None and cipher is None:
        raise ValueError("a webhook secret is stored encrypted: pass the store's cipher")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    sealed = cipher.encrypt(webhook_secret) if cipher is not None and webhook_secret else None
    with db.session() as session:
        session.add(
            ApiKey(
                name=name,
                tenant=tenant,
                key_hash=hash_key(key),
                prefix=key[:10],
                webhook_secret=sealed,
            )
        )
    return key


def list_api_keys(db: Database, include_revoked: bool = False) -> list[KeyInfo]:
    """Every key (oldest first), without anything secret."""
    with db.session() as session:
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return [_key_info(row) for row in session.scalars(query)]


def revoke_api_key(db: Database, key_id: int) -> KeyInfo | None:
    """Revoke a key (it stops working with the next request); None when there is no such key.
    Revoking a revoked key changes nothing."""
    with db.write_session() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _key_info(row)


def key_is_live(db: Database, key_id: int) -> bool:
    """Whether the API key ``key_id`` exists and is not revoked (links it handed out end with
    it)."""
    with db.session() as session:
        row = session.get(ApiKey, key_id)
        return row is not None and row.revoked_at is None


class KeyChecker:
    """Looks a presented key up by hash on every request and compares in constant time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._noted: dict[int, float] = {}
        self._lock = threading.Lock()

    def check(self, presented: str) -> Caller | None:
        """The caller for a presented key, or None (unknown or revoked)."""
        if not presented or len(presented) > 200:
            return None
        digest = hash_key(presented)
        with self.db.session() as session:
            row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if (
                row is None
                or row.revoked_at is not None
                or not hmac.compare_digest(row.key_hash, digest)
            ):
                return None
            caller = Caller(row.id, row.name, row.tenant)
            last_used = row.last_used_at
        register_secret(presented)
        self._note_use(caller.key_id, last_used)
        return caller

    def _note_use(self, key_id: int, last_used: datetime | None) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._noted.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
                return
            self._noted[key_id] = now
        stamp = utcnow()
        if last_used is not None:
            if last_used.tzinfo is None:  # SQLite hands naive datetimes back
                last_used = last_used.replace(tzinfo=stamp.tzinfo)
            if stamp - last_used < timedelta(seconds=LAST_USED_EVERY):
                return
        try:
            with self.db.session() as session:
                session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=stamp)
                )
        except SQLAlchemyError as exc:  # bookkeeping only: never fail the request for it
            log.info("recording when API key %d was used failed (%s)", key_id, type(exc).__name__)
