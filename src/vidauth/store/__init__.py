"""Persistent state: accounts, encrypted tokens, uploads and the audit log."""

from __future__ import annotations

from vidauth.store.db import Database
from vidauth.store.tokens import AccountInfo, LockedGrant, TokenSet, TokenStore

__all__ = ["AccountInfo", "Database", "LockedGrant", "TokenSet", "TokenStore"]
