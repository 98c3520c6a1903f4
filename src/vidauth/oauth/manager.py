"""Valid access tokens on demand, with single-flight refresh across threads and processes.

Panopto rotates refresh tokens on every use, so two refreshes of one grant would sign the account
out. Every refresh therefore happens under the store's lock for that account (a write transaction
on SQLite, a row lock on PostgreSQL) and a per-process lock in front of it; whoever gets the lock
re-reads the stored grant and refreshes only if it is still stale. The rotated refresh token is
committed before the new access token is handed out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from weakref import WeakValueDictionary

from vidauth.errors import ErrorCode, OAuthError, SignInRequired
from vidauth.oauth.token_endpoint import TokenEndpoint
from vidauth.store.tokens import TokenSet, TokenStore

DEFAULT_MIN_VALIDITY = 60.0

_process_locks: WeakValueDictionary[tuple[str, int], threading.Lock] = WeakValueDictionary()
_process_locks_guard = threading.Lock()


def _process_lock(store: TokenStore, account_id: int) -> threading.Lock:
    key = (store.db.url, account_id)
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            lock = threading.Lock()
            _process_locks[key] = lock
        return lock


Regrant = Callable[[], TokenSet]


class TokenManager:
    """Access tokens for one stored account.

    ``regrant`` fetches a new grant without a person (client credentials, the Panopto
    ID-provider password grant); it is used when the grant has no refresh token.
    """

    def __init__(
        self,
        store: TokenStore,
        endpoint: TokenEndpoint,
        account_id: int,
        *,
        min_validity: float = DEFAULT_MIN_VALIDITY,
        regrant: Regrant | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.account_id = account_id
        self.min_validity = min_validity
        self.regrant = regrant
        self.on_event = on_event
        self._lock = _process_lock(store, account_id)

    def access_token(self, min_validity: float | None = None) -> str:
        """A token with at least ``min_validity`` seconds left, refreshing when needed."""
        return self.tokens(min_validity).access_token

    def tokens(self, min_validity: float | None = None) -> TokenSet:
        """The whole token set, fresh for at least ``min_validity`` seconds."""
        need = self.min_validity if min_validity is None else min_validity
        current = self.store.load_tokens(self.account_id)
        if current is None:
            raise SignInRequired("not signed in", account_id=self.account_id)
        if current.is_fresh(need) and self.store.account_status(self.account_id) == "active":
            return current
        return self._refresh(need, rejected=None)

    def refreshed_after_rejection(self, rejected: str) -> str:
        """A different token after the API refused ``rejected`` (refresh unless done already)."""
        return self._refresh(float("inf"), rejected=rejected).access_token

    def _refresh(self, need: float, rejected: str | None) -> TokenSet:
        with self._lock:
            failure: OAuthError | None = None
            stale_refresh: str | None = None
            with self.store.lock_grant(self.account_id) as grant:
                current = grant.tokens
                if current is None:
                    raise SignInRequired("not signed in", account_id=self.account_id)
                if grant.account.status != "active":
                    raise _signin_expired(grant.account.username, self.account_id)
                if rejected is not None and current.access_token != rejected:
                    return current  # someone refreshed while we were refused
                if rejected is None and current.is_fresh(need):
                    return current  # someone refreshed while we waited for the lock
                if current.refresh_token is None:
                    if self.regrant is None:
                        raise SignInRequired(
                            "the access token expired and the grant has no refresh token (ask "
                            "for offline_access)",
                            code=ErrorCode.SIGN_IN_EXPIRED,
                            account_id=self.account_id,
                        )
                    new = self.regrant()
                    grant.replace(new, event="regranted")
                    self._emit("regranted")
                    return new
                stale_refresh = current.refresh_token
                try:
                    new = self.endpoint.refresh(current.refresh_token)
                except OAuthError as exc:
                    if exc.error != "invalid_grant":
                        raise
                    failure = exc
                else:
                    grant.replace(new)  # committed when the lock is released, before use
                    self._emit("refreshed")
                    return new
            return self._after_invalid_grant(stale_refresh, failure)

    def _after_invalid_grant(self, stale_refresh: str | None, failure: OAuthError) -> TokenSet:
        # Another process may have rotated the grant behind our back: look before giving up.
        latest = self.store.load_tokens(self.account_id)
        if latest is not None and latest.refresh_token != stale_refresh:
            return latest
        info = next((a for a in self.store.list_accounts() if a.id == self.account_id), None)
        self.store.set_status(self.account_id, "needs_signin", "refresh_failed", failure.error)
        self._emit("refresh_failed")
        raise _signin_expired(info.username if info else None, self.account_id)

    def _emit(self, event: str) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _signin_expired(username: str | None, account_id: int) -> SignInRequired:
    who = f" for {username}" if username else ""
    return SignInRequired(
        f"the sign-in{who} is no longer valid (the refresh token was refused)",
        code=ErrorCode.SIGN_IN_EXPIRED,
        account_id=account_id,
    )
