"""Connecting a backend user's Panopto account: the link, the callback, status and removal.

``state``, ``nonce`` and any PKCE verifier stay in the database (the row is found by the SHA-256
of ``state``; nonce and verifier are encrypted with the token store's key). A link lives
``VIDAUTH_CONNECT_SECONDS`` (10 minutes) and works once.

The link handed to the backend is vidauth's own start page (``/connect/start?s=…``), not
Panopto's. Opening it (GET) only shows whom the link is for, with "Continue to Panopto" and
"This link is not for me": a mail scanner that fetches the link, or a glance at a forwarded
one, uses nothing up. Continuing (POST, once) sets a cookie bound to this sign-in and redirects
to Panopto; declining ends the link. The callback is accepted only from a browser presenting
that cookie, so a Panopto link forwarded to someone else (Mallory's link, opened and allowed by
Bob) connects nothing. When the backend says which Panopto user it expects
(``expected_username``), a sign-in as anyone else is refused too, and the tokens it produced
are revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, select

from vidauth._times import rfc3339
from vidauth.errors import VidauthError
from vidauth.logs import register_secret
from vidauth.oauth.authorization_code import AuthorizationRequest
from vidauth.oauth.identity import identify
from vidauth.service.context import ServiceContext
from vidauth.service.models import ApiKey, Connection, PendingSignin
from vidauth.store.models import Account, Token, utcnow

log = logging.getLogger("vidauth.service")

CONNECTED = "connected"
NEEDS_RECONSENT = "needs_reconsent"
NOT_CONNECTED = "not_connected"


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


COOKIE_PREFIX = "vidauth_connect_"
START_PATH = "/connect/start"
WRONG_BROWSER = "wrong_browser"
WRONG_ACCOUNT = "wrong_account"


def cookie_name(state: str) -> str:
    """The cookie binding the sign-in with ``state`` to a browser (one per sign-in, so that
    two tabs connecting at once do not overwrite each other's)."""
    return COOKIE_PREFIX + _state_hash(state)[:16]


def start_connect(
    ctx: ServiceContext,
    tenant: str,
    external_user_id: str,
    expected_username: str | None = None,
    api_key_id: int | None = None,
    display_name: str | None = None,
) -> tuple[str, float]:
    """A new connect link (vidauth's start page) for the user, and when it expires; it ends
    early when ``api_key_id``, the key that asked for it, is revoked. The start page names the
    user by ``display_name``, else by ``external_user_id``."""
    request = AuthorizationRequest.create(ctx.profile, ctx.va.sign_in_scope())
    start = secrets.token_urlsafe(32)
    register_secret(start)
    now = time.time()
    expires_at = now + ctx.service.connect_seconds
    cipher = ctx.store.cipher
    with ctx.db.session() as session:
        session.execute(delete(PendingSignin).where(PendingSignin.expires_at < now - 86400))
        session.add(
            PendingSignin(
                state_hash=_state_hash(request.state),
                tenant=tenant,
                external_user_id=external_user_id,
                nonce=cipher.encrypt(request.nonce),
                code_verifier=(
                    cipher.encrypt(request.code_verifier) if request.code_verifier else None
                ),
                redirect_uri=request.redirect_uri,
                expires_at=expires_at,
                start_hash=_state_hash(start),
                authorize_url=cipher.encrypt(request.url),
                expected_username=expected_username,
                api_key_id=api_key_id,
                display_name=display_name,
            )
        )
    return f"{ctx.service.public_url}{START_PATH}?s={start}", expires_at


UNKNOWN = "this sign-in link is unknown; start again from your application"
OPENED = (
    "this sign-in link was already opened; ask your application for a new one "
    "and open it in the browser you sign in with"
)
DECLINED = (
    "this sign-in link was turned down as not meant for whoever opened it, so it no longer "
    "works; ask your application for a new one"
)
EXPIRED = "this sign-in link has expired; start again from your application"
REVOKED = "this sign-in link is no longer valid; start again from your application"


@dataclass(frozen=True)
class StartPage:
    """What the start page shows before anything is used: whom the link is for."""

    name: str
    expected_username: str | None
    expires_at: float


@dataclass(frozen=True)
class StartedSignin:
    """What continuing does: set ``cookie_name=cookie_value``, redirect to Panopto."""

    authorize_url: str
    cookie_name: str
    cookie_value: str
    max_age: int


def _start_problem(session: Any, row: PendingSignin | None, now: float) -> str | None:
    """Why the start link of ``row`` cannot be used any more, else None."""
    if row is None:
        return UNKNOWN
    if row.started_at is None and row.used_at is not None:
        return DECLINED  # only declining ends a link that was never continued
    if row.authorize_url is None:
        return UNKNOWN
    if not _key_live(session, row.api_key_id):
        return REVOKED
    if row.started_at is not None or row.used_at is not None:
        return OPENED
    if row.expires_at < now:
        return EXPIRED
    return None


@contextmanager
def _start_row(
    ctx: ServiceContext, start: str, now: float, *, write: bool
) -> Iterator[PendingSignin | str]:
    """The pending sign-in of start link ``start`` while it is usable, else why it is not.

    ``write``: in a write transaction with the row locked, to change it; else a plain read.
    """
    if not start or len(start) > 200:
        yield UNKNOWN
        return
    register_secret(start)
    query = select(PendingSignin).where(PendingSignin.start_hash == _state_hash(start))
    if write and not ctx.db.is_sqlite:
        query = query.with_for_update()
    with ctx.db.write_session() if write else ctx.db.session() as session:
        row = session.scalars(query).first()
        problem = _start_problem(session, row, now)
        if problem is not None:
            yield problem
            return
        assert row is not None  # else _start_problem said UNKNOWN
        yield row


def describe_start_link(ctx: ServiceContext, start: str) -> StartPage | str:
    """The start page (GET): whom the link is for, using nothing up; a reason string when the
    link cannot be used (unknown, opened or turned down already, expired, key revoked)."""
    with _start_row(ctx, start, time.time(), write=False) as row:
        if isinstance(row, str):
            return row
        return StartPage(
            name=row.display_name or row.external_user_id,
            expected_username=row.expected_username,
            expires_at=row.expires_at,
        )


def open_start_link(ctx: ServiceContext, start: str) -> StartedSignin | str:
    """Continue to Panopto (POST): bind the sign-in to this browser, once; a reason string
    when the link cannot be used (unknown, opened or turned down already, expired)."""
    now = time.time()
    browser = secrets.token_urlsafe(32)
    register_secret(browser)
    with _start_row(ctx, start, now, write=True) as row:
        if isinstance(row, str):
            return row
        assert row.authorize_url is not None  # else _start_problem said UNKNOWN
        row.started_at = now
        row.browser_hash = _state_hash(browser)
        url = ctx.store.cipher.decrypt(row.authorize_url)
        max_age = max(1, int(row.expires_at - now))
    state = _query_state(url)
    return StartedSignin(url, cookie_name(state), browser, max_age)


def decline_start_link(ctx: ServiceContext, start: str) -> str | None:
    """ "This link is not for me": end the link for good, connecting nothing; a reason string
    when it cannot be used any more (then nothing changes)."""
    now = time.time()
    with _start_row(ctx, start, now, write=True) as row:
        if isinstance(row, str):
            return row
        row.used_at = now
        # Nothing is left to reach Panopto with: the state it carries is never sent out.
        row.authorize_url = None
        tenant = row.tenant
    log.info("a connect link of tenant %s was turned down by whoever opened it", tenant)
    ctx.store.audit(None, "connect_declined", f"tenant={tenant}")
    return None


def _query_state(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("state", [""])[0]


@dataclass(frozen=True)
class ConnectOutcome:
    """What the callback page shows: ``status`` is connected, denied, error, wrong_browser or
    wrong_account."""

    status: str
    message: str
    tenant: str | None = None
    external_user_id: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class _Pending:
    tenant: str
    external_user_id: str
    nonce: str
    code_verifier: str | None
    redirect_uri: str
    expected_username: str | None


@dataclass(frozen=True)
class _Refused:
    """A pending sign-in that was found but may not finish: the outcome to show."""

    status: str
    message: str
    tenant: str
    external_user_id: str


def _same_browser(browser_hash: str | None, cookie: str | None) -> bool:
    if not browser_hash or not cookie:
        return False
    return hmac.compare_digest(browser_hash, _state_hash(cookie))


def _key_live(session: Any, api_key_id: int | None) -> bool:
    """Whether the API key that handed a link out still works (links without one: True)."""
    if api_key_id is None:
        return True
    key = session.get(ApiKey, api_key_id)
    return key is not None and key.revoked_at is None


def _consume(ctx: ServiceContext, state: str, cookie: str | None) -> _Pending | _Refused | str:
    """Use the pending sign-in once; a reason string when it cannot be used."""
    now = time.time()
    with ctx.db.write_session() as session:
        query = select(PendingSignin).where(PendingSignin.state_hash == _state_hash(state))
        if not ctx.db.is_sqlite:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None:
            return UNKNOWN
        if row.used_at is not None:
            return "this sign-in link was already used; start again from your application"
        if row.expires_at < now:
            return EXPIRED
        if not _key_live(session, row.api_key_id):
            return REVOKED
        row.used_at = now
        if not _same_browser(row.browser_hash, cookie):
            # Burnt either way: the code that came with it is never exchanged.
            return _Refused(
                WRONG_BROWSER,
                "this sign-in was started in another browser, so it was not accepted: open "
                "the link from your application in this browser and sign in again",
                row.tenant,
                row.external_user_id,
            )
        cipher = ctx.store.cipher
        return _Pending(
            tenant=row.tenant,
            external_user_id=row.external_user_id,
            nonce=cipher.decrypt(row.nonce),
            code_verifier=cipher.decrypt(row.code_verifier) if row.code_verifier else None,
            redirect_uri=row.redirect_uri,
            expected_username=row.expected_username,
        )


def finish_connect(
    ctx: ServiceContext, params: dict[str, str], cookies: dict[str, str] | None = None
) -> ConnectOutcome:
    """Handle the OAuth callback's query: exchange the code once and store the user's grant.

    ``cookies``: the request's cookies; the one the start page set must be among them.
    """
    state = params.get("state") or ""
    register_secret(state)
    register_secret(params.get("code"))
    if not state:
        return ConnectOutcome("error", "the sign-in answer has no state; start again")
    pending = _consume(ctx, state, (cookies or {}).get(cookie_name(state)))
    if isinstance(pending, str):
        return ConnectOutcome("error", pending)
    if isinstance(pending, _Refused):
        log.warning(
            "connect for a user of tenant %s refused: the callback came from another browser",
            pending.tenant,
        )
        ctx.store.audit(None, "connect_refused", f"{WRONG_BROWSER} tenant={pending.tenant}")
        return ConnectOutcome(
            pending.status,
            pending.message,
            tenant=pending.tenant,
            external_user_id=pending.external_user_id,
        )
    who = {"tenant": pending.tenant, "external_user_id": pending.external_user_id}
    error = params.get("error")
    if error:
        if error == "access_denied":
            return ConnectOutcome(
                "denied", "access was not granted: Panopto was not connected", **who
            )
        return ConnectOutcome("error", f"Panopto answered {error[:80]}; try again", **who)
    code = params.get("code")
    if not code:
        return ConnectOutcome("error", "the sign-in answer has no code; try again", **who)
    try:
        tokens = ctx.token_endpoint.exchange_code(code, pending.redirect_uri, pending.code_verifier)
        identity = identify(ctx.profile, tokens, ctx.http, pending.nonce)
        if not _expected(pending.expected_username, identity.names or (identity.username,)):
            return _wrong_account(ctx, pending, tokens)
        info = ctx.store.save_grant(
            profile_key=ctx.profile_key(pending.tenant, pending.external_user_id),
            subject=identity.subject,
            username=identity.username,
            server=ctx.profile.server,
            client_id=ctx.profile.client_id,
            tokens=tokens,
            grant_type="authorization_code",
        )
    except VidauthError as exc:
        log.warning("connect for a user of tenant %s failed: %s", pending.tenant, exc)
        return ConnectOutcome("error", f"connecting failed: {exc}", **who)
    _link(ctx, pending.tenant, pending.external_user_id, info.id)
    from vidauth.service.jobs import JobQueue

    JobQueue(ctx).resume_waiting(pending.tenant, pending.external_user_id)
    return ConnectOutcome("connected", "Panopto is connected", username=info.username, **who)


def _expected(expected: str | None, names: tuple[str | None, ...]) -> bool:
    """True when no username was expected, or the signed-in user's ``preferred_username``,
    then ``email`` (``names``), is it — case-insensitively: Panopto user names are not
    case-sensitive."""
    if expected is None:
        return True
    wanted = expected.casefold().encode()
    matches = [
        hmac.compare_digest(name.casefold().encode(), wanted) for name in names if name is not None
    ]
    return any(matches)


def _wrong_account(ctx: ServiceContext, pending: _Pending, tokens: Any) -> ConnectOutcome:
    """Someone else signed in than the backend expected: keep nothing, revoke what we got."""
    for value, kind in ((tokens.refresh_token, "refresh_token"), (tokens.access_token, None)):
        if value:
            try:
                ctx.token_endpoint.revoke(value, kind or "access_token")
            except VidauthError:
                log.info("revoking the tokens of a refused sign-in failed")
    log.warning(
        "connect for a user of tenant %s refused: signed in as another Panopto user than expected",
        pending.tenant,
    )
    ctx.store.audit(None, "connect_refused", f"{WRONG_ACCOUNT} tenant={pending.tenant}")
    return ConnectOutcome(
        WRONG_ACCOUNT,
        "you signed in to Panopto as a different user than your application expects, so "
        "nothing was connected: sign out of Panopto, then ask your application for a new "
        "sign-in link (each link works once) and sign in with your own account",
        tenant=pending.tenant,
        external_user_id=pending.external_user_id,
    )


def _link(ctx: ServiceContext, tenant: str, external_user_id: str, account_id: int) -> None:
    stale: int | None = None
    with ctx.db.write_session() as session:
        row = session.scalars(
            select(Connection).where(
                Connection.tenant == tenant, Connection.external_user_id == external_user_id
            )
        ).first()
        if row is None:
            session.add(
                Connection(tenant=tenant, external_user_id=external_user_id, account_id=account_id)
            )
        else:
            if row.account_id not in (None, account_id):
                stale = row.account_id
            row.account_id = account_id
            row.updated_at = utcnow()
    if stale is not None:  # the user connected a different Panopto identity
        ctx.store.delete_account(stale)


def connection_account(ctx: ServiceContext, tenant: str, external_user_id: str) -> int | None:
    """The stored account id of a backend user, if connected."""
    with ctx.db.session() as session:
        return session.scalar(
            select(Connection.account_id).where(
                Connection.tenant == tenant, Connection.external_user_id == external_user_id
            )
        )


def account_status(ctx: ServiceContext, tenant: str, external_user_id: str) -> dict[str, Any]:
    """``status`` (connected | needs_reconsent | not_connected), scopes, expiry — no token."""
    with ctx.db.session() as session:
        found = session.execute(
            select(Connection, Account, Token)
            .join(Account, Account.id == Connection.account_id)
            .outerjoin(Token, Token.account_id == Account.id)
            .where(Connection.tenant == tenant, Connection.external_user_id == external_user_id)
        ).first()
    if found is None or found[2] is None:
        return {"external_user_id": external_user_id, "status": NOT_CONNECTED}
    _connection, account, token = found
    status = CONNECTED if account.status == "active" else NEEDS_RECONSENT
    return {
        "external_user_id": external_user_id,
        "status": status,
        "username": account.username,
        "scopes": (token.scope or "").split(),
        "expires_at": rfc3339(token.expires_at),
        # Not after a refresh whose answer was lost: its refresh token may be spent.
        "refreshable": token.refresh_token is not None and not token.refresh_outcome_unknown,
        "refresh_outcome_unknown": bool(token.refresh_outcome_unknown),
        "connected_at": rfc3339(account.last_login_at),
    }


def disconnect(ctx: ServiceContext, tenant: str, external_user_id: str) -> bool:
    """Revoke the user's tokens at Panopto (best effort) and delete them; False when unknown."""
    account_id = connection_account(ctx, tenant, external_user_id)
    with ctx.db.write_session() as session:
        removed = session.execute(
            delete(Connection).where(
                Connection.tenant == tenant, Connection.external_user_id == external_user_id
            )
        ).rowcount  # type: ignore[attr-defined]
    if account_id is None:
        return bool(removed)
    tokens = ctx.store.load_tokens(account_id)
    if tokens is not None:
        try:
            if tokens.refresh_token:
                ctx.token_endpoint.revoke(tokens.refresh_token, "refresh_token")
            ctx.token_endpoint.revoke(tokens.access_token, "access_token")
            ctx.store.audit(account_id, "revoked")
        except VidauthError as exc:
            ctx.store.audit(account_id, "revoke_failed", type(exc).__name__)
    ctx.store.delete_account(account_id)
    from vidauth.service.jobs import JobQueue

    JobQueue(ctx).hold_queued(tenant, external_user_id)
    return True
