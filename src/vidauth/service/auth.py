"""API keys: ``vda_<random>`` handed out once, stored as SHA-256, checked in constant time.

Every key belongs to a tenant; everything a request does is scoped to that tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from vidauth.service.models import ApiKey
from vidauth.store.db import Database

KEY_PREFIX = "vda_"
_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and tenant."""

    key_id: int
    name: str
    tenant: str


def hash_key(key: str) -> str:
    """The stored form of a key (hex SHA-256; keys carry 256 random bits, so no salt needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(db: Database, name: str, tenant: str) -> str:
    """Create a key for ``tenant`` and return it (the only time it is ever visible)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.session() as session:
        session.add(ApiKey(name=name, tenant=tenant, key_hash=hash_key(key), prefix=key[:10]))
    return key


class KeyChecker:
    """Looks keys up by hash (cached briefly) and compares the hashes in constant time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()

    def check(self, presented: str) -> Caller | None:
        """The caller for a presented key, or None."""
        if not presented or len(presented) > 200:
            return None
        digest = hash_key(presented)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        caller: Caller | None = None
        with self.db.session() as session:
            row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if (
                row is not None
                and row.revoked_at is None
                and hmac.compare_digest(row.key_hash, digest)
            ):
                caller = Caller(row.id, row.name, row.tenant)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + _CACHE_SECONDS, caller)
        return caller
