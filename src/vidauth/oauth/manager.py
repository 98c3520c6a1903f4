"""Valid access tokens on demand, with single-flight refresh across threads and processes.

Panopto rotates refresh tokens on every use, so two refreshes of one grant would sign the account
out. A refresh is therefore *claimed* in the store first (a short transaction on the token row,
with a lease: :meth:`~vidauth.store.tokens.TokenStore.claim_refresh`), behind a per-process lock;
whoever holds the claim re-reads the grant, refreshes only if it is still stale, and writes the
answer in a second short transaction. Others poll until the claim is released (or its lease
lapses) and then find the new grant. No database lock is held during the HTTP call, so a hanging
token endpoint delays only this account's refresh, never other writes.

From sending the refresh to committing its answer, SIGTERM/SIGINT are deferred; a commit that
fails is retried while the new tokens are held, and if it keeps failing they go to an encrypted
recovery file restored at the next use. The rotated refresh token is committed before the new
access token is handed out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from weakref import WeakValueDictionary

from vidauth._signals import deferred_termination
from vidauth.errors import ErrorCode, OAuthError, SignInRequired, StoreError
from vidauth.oauth.token_endpoint import RefreshOutcomeUnknown, TokenEndpoint
from vidauth.store.tokens import RefreshClaim, StoreNotWritable, TokenSet, TokenStore, new_claimant

log = logging.getLogger("vidauth.oauth")

DEFAULT_MIN_VALIDITY = 60.0
#: A token that another thread or process refreshed while we waited is used when it has at
#: least this long left (whatever validity was asked for): refreshing again would only rotate
#: the grant once more for a token that lives no longer.
FRESH_FROM_ANOTHER = 1.0
#: Waits between tries to commit a refreshed grant the database refused (about 12 s in all).
SAVE_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0)
#: Waiting for another refresher's claim: first and longest poll interval, in seconds.
CLAIM_POLL_FIRST, CLAIM_POLL_MAX = 0.05, 0.5


class GrantNotSaved(StoreError):
    """A refresh succeeded (the server rotated the grant) but the store refused the new tokens
    after retries. ``recovery_file`` is where they were kept encrypted, or None (exit 2)."""

    default_code = ErrorCode.GRANT_NOT_SAVED

    def __init__(self, message: str, *, cause: str, recovery_file: str | None) -> None:
        super().__init__(message, cause=cause, recovery_file=recovery_file)
        self.cause = cause
        self.recovery_file = recovery_file


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
        self._claimant = new_claimant()
        #: How long a claim lasts: the token call's bound plus the commit retries, with margin.
        self.lease = endpoint.call_bound + sum(SAVE_RETRY_DELAYS) + 10.0

    def access_token(self, min_validity: float | None = None) -> str:
        """A token with at least ``min_validity`` seconds left, refreshing when needed."""
        return self.tokens(min_validity).access_token

    def tokens(self, min_validity: float | None = None) -> TokenSet:
        """The whole token set, fresh for at least ``min_validity`` seconds."""
        need = self.min_validity if min_validity is None else min_validity
        self.store.restore_recovery(self.account_id)
        current = self.store.load_tokens(self.account_id)
        if current is None:
            raise SignInRequired("not signed in", account_id=self.account_id)
        if current.is_fresh(need) and self.store.account_status(self.account_id) == "active":
            return current
        return self._refresh(need, rejected=None, stale=current.access_token)

    def refreshed_after_rejection(self, rejected: str) -> str:
        """A different token after the API refused ``rejected`` (refresh unless done already)."""
        return self._refresh(float("inf"), rejected=rejected).access_token

    def _refresh(self, need: float, rejected: str | None, stale: str | None = None) -> TokenSet:
        """Refresh unless another thread or process did since we looked at ``stale`` (the
        token found too old) or ``rejected`` (the token the API refused)."""

        def wanted(tokens: TokenSet | None, status: str) -> bool:
            if tokens is None or status != "active":
                return False
            if rejected is not None:
                return tokens.access_token == rejected  # else someone refreshed meanwhile
            if stale is not None and tokens.access_token != stale:
                # Someone refreshed while we waited: theirs is as new as ours would be, even
                # when ``need`` is longer than the server's tokens live.
                return not tokens.is_fresh(min(need, FRESH_FROM_ANOTHER))
            return not tokens.is_fresh(need)

        with self._lock:
            delay = CLAIM_POLL_FIRST
            while True:
                claim = self.store.claim_refresh(
                    self.account_id, self._claimant, self.lease, wanted
                )
                if claim.held:
                    return self._refresh_claimed(claim)
                if claim.busy_until is None:
                    if claim.tokens is None:
                        raise SignInRequired("not signed in", account_id=self.account_id)
                    if claim.status != "active":
                        raise _signin_expired(claim.username, self.account_id)
                    return claim.tokens
                time.sleep(delay)  # another thread or process is refreshing: wait for it
                delay = min(delay * 2, CLAIM_POLL_MAX)

    def _refresh_claimed(self, claim: RefreshClaim) -> TokenSet:
        current = claim.tokens
        assert current is not None  # claim_refresh claims only an existing grant
        saved = False
        failure: OAuthError | None = None
        try:
            if current.refresh_token is None:
                if self.regrant is None:
                    raise SignInRequired(
                        "the access token expired and the grant has no refresh token (ask "
                        "for offline_access)",
                        code=ErrorCode.SIGN_IN_EXPIRED,
                        account_id=self.account_id,
                    )
                new = self.regrant()  # no rotation: nothing is lost if this process dies
                self._save(claim, new, "regranted")
                saved = True
                self._emit("regranted")
                return new
            with deferred_termination():
                try:
                    new = self.endpoint.refresh(current.refresh_token)
                except OAuthError as exc:
                    if exc.error != "invalid_grant":
                        raise
                    failure = exc
                except RefreshOutcomeUnknown:
                    self._audit("refresh_outcome_unknown")
                    raise
                else:
                    self._save(claim, new, "refreshed")
                    saved = True
                    self._emit("refreshed")
                    self._name_if_missing(new)
                    return new
        finally:
            if not saved:
                self._release()
        return self._after_invalid_grant(current.refresh_token, failure)

    def _name_if_missing(self, tokens: TokenSet) -> None:
        """An account stored without a name (its ID token had none, as Panopto's) gets it from
        userinfo at its next refresh; best effort, never failing the refresh."""
        from vidauth.oauth.identity import names_from_userinfo

        try:
            info = next((a for a in self.store.list_accounts() if a.id == self.account_id), None)
            if info is None or (info.username and info.username != info.subject):
                return
            url = self.endpoint.profile.endpoints.userinfo_url
            named = names_from_userinfo(url, tokens, self.endpoint.client, info.subject)
            if named is not None and named.username:
                self.store.set_username(self.account_id, named.username)
        except Exception as exc:  # a name is a nicety: the refreshed token is what matters
            log.info("could not read the account's name from userinfo (%s)", type(exc).__name__)

    def _save(self, claim: RefreshClaim, new: TokenSet, event: str) -> None:
        """Commit ``new`` (retrying while the database refuses), else keep it in a recovery
        file; never drop a rotated grant silently."""
        last: StoreNotWritable | None = None
        for delay in (*SAVE_RETRY_DELAYS, None):
            try:
                self.store.finish_refresh(self.account_id, self._claimant, new, event)
                return
            except StoreNotWritable as exc:
                last = exc
                if delay is None:
                    break
                log.warning(
                    "could not save the refreshed grant (%s); retrying in %.1fs", exc.cause, delay
                )
                time.sleep(delay)
        assert last is not None
        path = self.store.save_recovery(self.account_id, claim.version, self._claimant, new)
        if path is not None:
            message = (
                f"the refreshed sign-in could not be saved to the store ({last.cause}); it is "
                f"kept encrypted in {path} and restored at the next use once the store can be "
                "written"
            )
        else:
            message = (
                f"the refreshed sign-in could not be saved to the store ({last.cause}) nor to a "
                "recovery file: free space (or fix the database), then sign in again"
            )
        raise GrantNotSaved(
            message, cause=last.cause, recovery_file=str(path) if path else None
        ) from None

    def _release(self) -> None:
        try:
            self.store.finish_refresh(self.account_id, self._claimant, None, None)
        except StoreError as exc:  # the lease lapses on its own
            log.warning("could not release the refresh claim (%s)", exc)

    def _audit(self, event: str) -> None:
        try:
            self.store.audit(self.account_id, event)
        except Exception as exc:  # an audit line must not hide the real error
            log.warning("could not record %s (%s)", event, type(exc).__name__)

    def _after_invalid_grant(
        self, stale_refresh: str | None, failure: OAuthError | None
    ) -> TokenSet:
        # Another process may have rotated the grant behind our back: look before giving up.
        latest = self.store.load_tokens(self.account_id)
        if latest is not None and latest.refresh_token != stale_refresh:
            return latest
        info = next((a for a in self.store.list_accounts() if a.id == self.account_id), None)
        error = failure.error if failure is not None else "invalid_grant"
        self.store.set_status(self.account_id, "needs_signin", "refresh_failed", error)
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
