"""The sandbox's in-memory state: clients, users, codes, grants, tokens, sessions and counters.

Every mutable structure is guarded by one lock, because uvicorn serves sync endpoints from a
thread pool and tests hit the server from several threads and processes at once. Each token or
code is a random opaque string; a *grant* (one sign-in, or one password / client-credentials
request) ties together every token descended from it, so that code reuse, refresh-token reuse
and revocation of a refresh token can revoke the whole family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin
from joserfc.jwk import RSAKey

from vidauth_sandbox.config import SandboxClient, SandboxConfig

_SUBJECT_NAMESPACE = uuid.UUID("6f1b7a52-3c1e-4d0a-9a57-2f2b6c1f5e10")


class GrantRejected(Exception):
    """A code or refresh token cannot be used; the message is a safe ``error_description``."""


@dataclass(frozen=True)
class SandboxUser:
    """A resource owner. ``subject`` is a stable UUID derived from the user name."""

    username: str
    subject: str
    name: str
    email: str

    @classmethod
    def named(cls, username: str) -> SandboxUser:
        """The user called ``username`` (``Provider\\name`` for ID-provider users)."""
        provider, _, short = username.rpartition("\\")
        domain = f"{provider.lower()}.sandbox.invalid" if provider else "sandbox.invalid"
        subject = str(uuid.uuid5(_SUBJECT_NAMESPACE, username.lower()))
        return cls(username, subject, short.capitalize(), f"{short.lower()}@{domain}")


def id_provider_password(username: str, application_key: str) -> str:
    """Panopto's ID-provider password: ``base64(sha256(lower(user) + "|" + lower(key)))``."""
    payload = f"{username.lower()}|{application_key.lower()}".encode()
    return base64.b64encode(hashlib.sha256(payload).digest()).decode("ascii")


@dataclass
class Grant:
    """One authorization (a token family); revoking it kills every token it issued."""

    grant_id: str
    client_id: str
    subject: str
    username: str | None
    scope: str
    auth_time: int | None
    revoked: bool = False


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """An issued authorization code and what it was bound to at the authorize endpoint."""

    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    scope: str
    username: str
    nonce: str | None
    auth_time: int
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    grant_id: str
    used: bool = False

    def get_redirect_uri(self) -> str:
        """The redirect URI of the authorize request."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The OpenID Connect nonce of the authorize request."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the user logged in (epoch seconds)."""
        return self.auth_time


@dataclass
class IssuedToken(TokenMixin):
    """An access or refresh token. ``rotated`` marks a refresh token that has been used."""

    token: str = field(repr=False)
    kind: str  # "access_token" or "refresh_token"
    grant_id: str
    client_id: str
    subject: str
    username: str | None
    scope: str
    expires_at: float | None
    revoked: bool = False
    rotated: bool = False
    rotated_at: float | None = None

    def check_client(self, client: Any) -> bool:
        """Was this token issued to ``client``?"""
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        """The token's scope."""
        return self.scope

    def get_expires_in(self) -> int:
        """Seconds left (0 when expired or without expiry)."""
        return max(0, int((self.expires_at or 0) - time.time()))

    def is_expired(self) -> bool:
        """True once the lifetime is over."""
        return self.expires_at is not None and time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        """True once revoked (itself or through its grant)."""
        return self.revoked


#: How a processed token answer can be lost (see :meth:`SandboxState.lose_token_answers`).
LOST_ANSWER_KINDS = ("502", "timeout")
#: Seconds a ``"timeout"`` answer is held back.
LOST_ANSWER_HANG = 120.0

GRANT_TYPES = ("authorization_code", "refresh_token", "password", "client_credentials")


class SandboxStats:
    """Thread-safe counters of what clients asked the server for.

    Token requests are counted per ``grant_type`` when processed (injected failures are
    answered without processing and counted only in ``injected_failures``); the four standard
    grant types always appear, with 0 until used.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.token_requests: Counter[str] = Counter(dict.fromkeys(GRANT_TYPES, 0))
        self.token_successes: Counter[str] = Counter(dict.fromkeys(GRANT_TYPES, 0))
        self.token_errors: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    def token_request(self, grant_type: str) -> None:
        """Count a token-endpoint request that is going to be processed."""
        with self._lock:
            self.token_requests[grant_type] += 1

    def token_result(self, grant_type: str, status: int, error: str | None) -> None:
        """Count the outcome of a processed token-endpoint request."""
        with self._lock:
            if status == 200:
                self.token_successes[grant_type] += 1
            else:
                self.token_errors[error or f"http_{status}"] += 1

    def count(self, name: str, n: int = 1) -> None:
        """Bump a named counter (``revocations``, ``userinfo_calls`` …)."""
        with self._lock:
            self.counters[name] += n

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy of every counter."""
        with self._lock:
            data: dict[str, Any] = {
                "token_requests": dict(self.token_requests),
                "token_successes": dict(self.token_successes),
                "token_errors": dict(self.token_errors),
            }
            for name in (
                "revocations",
                "userinfo_calls",
                "injected_failures",
                "authorizations",
                "logins",
                "code_reuse_detected",
                "refresh_reuse_detected",
                "refresh_reuse_in_grace",
                "lost_answers",
                "hostile_answers",
            ):
                data[name] = self.counters.get(name, 0)
            for name, value in self.counters.items():
                data.setdefault(name, value)
            return data


def _new_signing_key() -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"kid": f"sandbox-{secrets.token_hex(6)}", "use": "sig", "alg": "RS256"}
    )


class SandboxState:
    """The in-memory authorization server: everything the HTTP layer reads and changes."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clients: dict[str, SandboxClient] = {c.client_id: c for c in self.config.clients}
        self.stats = SandboxStats()
        #: Fixed issuer (set by SandboxServer once its URL is known); None: derived per request.
        self.issuer: str | None = None
        self.signing_key = _new_signing_key()
        self.previous_keys: list[RSAKey] = []
        self.csrf_secret = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._codes: dict[str, AuthorizationCode] = {}
        self._grants: dict[str, Grant] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._sessions: dict[str, tuple[str, int]] = {}
        self._faults: deque[int] = deque()
        self._lost_answers: deque[str] = deque()
        self._hostile_bodies: deque[Any] = deque()
        #: Seconds each token answer is held back after processing (``config.token_delay``).
        self.token_delay = self.config.token_delay

    # -- clients and users -----------------------------------------------------------

    def find_client(self, client_id: str | None) -> SandboxClient | None:
        """The registered client with this id, or None."""
        return self.clients.get(client_id) if client_id else None

    def check_password(self, username: str, password: str) -> SandboxUser | None:
        """The user when the password is right (plain users or ``Provider\\user``), else None."""
        if "\\" in username:
            provider, _, short = username.rpartition("\\")
            if not provider or not short:
                return None
            expected = id_provider_password(username, self.config.id_provider_application_key)
        else:
            known = self.config.users.get(username)
            if known is None:
                # Compare anyway so that unknown and known users take the same time.
                hmac.compare_digest(password.encode(), b"x" * 16)
                return None
            expected = known
        if hmac.compare_digest(password.encode(), expected.encode()):
            return SandboxUser.named(username)
        return None

    # -- browser sessions (login cookie) ---------------------------------------------

    def create_session(self, username: str) -> str:
        """Remember a logged-in browser; returns the session id for the cookie."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = (username, int(time.time()))
        return session_id

    def session_user(self, session_id: str | None) -> tuple[SandboxUser, int] | None:
        """The user (and login time) of a browser session cookie."""
        if not session_id:
            return None
        with self._lock:
            entry = self._sessions.get(session_id)
        if entry is None:
            return None
        return SandboxUser.named(entry[0]), entry[1]

    # -- authorization codes ---------------------------------------------------------

    def save_code(
        self,
        *,
        code: str,
        client_id: str,
        redirect_uri: str,
        scope: str,
        user: SandboxUser,
        auth_time: int,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> AuthorizationCode:
        """Store a new code; its grant (token family) is created now so reuse can revoke it."""
        grant = Grant(uuid.uuid4().hex, client_id, user.subject, user.username, scope, auth_time)
        record = AuthorizationCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            username=user.username,
            nonce=nonce,
            auth_time=auth_time,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=time.time() + self.config.code_lifetime,
            grant_id=grant.grant_id,
        )
        with self._lock:
            self._grants[grant.grant_id] = grant
            self._codes[code] = record
        return record

    def consume_code(self, code: str, client_id: str) -> AuthorizationCode:
        """Atomically mark a code used and return it.

        Raises GrantRejected for an unknown code, one issued to another client, an expired one,
        or one already used — and in that last case revokes every token issued from it
        (RFC 6749 §4.1.2).
        """
        with self._lock:
            record = self._codes.get(code)
            if record is None or not hmac.compare_digest(record.client_id, client_id):
                raise GrantRejected("The authorization code is invalid.")
            if record.used:
                self._revoke_grant(record.grant_id)
                self.stats.count("code_reuse_detected")
                raise GrantRejected(
                    "The authorization code was already used; tokens issued from it are revoked."
                )
            if time.time() >= record.expires_at:
                raise GrantRejected("The authorization code has expired.")
            record.used = True
            return record

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        """Was a code already issued to this client for this nonce (replay)?"""
        with self._lock:
            return any(c.client_id == client_id and c.nonce == nonce for c in self._codes.values())

    # -- tokens ----------------------------------------------------------------------

    def new_grant(self, client_id: str, user: SandboxUser | None, scope: str) -> Grant:
        """A grant for a password or client-credentials request."""
        if user is None:
            subject, username = f"client:{client_id}", None
        else:
            subject, username = user.subject, user.username
        grant = Grant(uuid.uuid4().hex, client_id, subject, username, scope, int(time.time()))
        with self._lock:
            self._grants[grant.grant_id] = grant
        return grant

    def store_tokens(self, grant_id: str, token: dict[str, Any]) -> None:
        """Record the access (and refresh) token of a token response under ``grant_id``."""
        with self._lock:
            grant = self._grants[grant_id]
            expires_at = time.time() + int(token["expires_in"])
            self._tokens[token["access_token"]] = IssuedToken(
                token["access_token"], "access_token", grant_id, grant.client_id,
                grant.subject, grant.username, token.get("scope", ""), expires_at,
            )  # fmt: skip
            if token.get("refresh_token"):
                self._tokens[token["refresh_token"]] = IssuedToken(
                    token["refresh_token"], "refresh_token", grant_id, grant.client_id,
                    grant.subject, grant.username, token.get("scope", ""), None,
                )  # fmt: skip
            if grant.revoked:  # e.g. the code was replayed while this exchange ran
                self._revoke_grant(grant_id)

    def use_refresh_token(self, token: str, client_id: str) -> IssuedToken:
        """Atomically rotate a refresh token: it stops working, and is returned for reissuing.

        Presenting a refresh token that was already rotated is reuse: the whole grant is revoked.
        Raises GrantRejected when the token cannot be used.
        """
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.kind != "refresh_token":
                raise GrantRejected("The refresh token is invalid.")
            if not hmac.compare_digest(record.client_id, client_id):
                raise GrantRejected("The refresh token was issued to another client.")
            if record.revoked or self._grants[record.grant_id].revoked:
                raise GrantRejected("The refresh token has been revoked.")
            grace = self.config.refresh_reuse_grace
            if record.rotated and record.rotated_at and time.time() - record.rotated_at < grace:
                self.stats.count("refresh_reuse_in_grace")
                return record  # reused within the grace period: answered like the first use
            if record.rotated:
                self._revoke_grant(record.grant_id)
                self.stats.count("refresh_reuse_detected")
                raise GrantRejected(
                    "The refresh token was already used; the whole grant is revoked."
                )
            record.rotated = True
            record.rotated_at = time.time()
            return record

    def find_token(self, token: str) -> IssuedToken | None:
        """The access or refresh token with this value (any state), or None.

        RFC 7009 §2.1: a ``token_type_hint`` is only a hint, so callers look up both kinds.
        """
        with self._lock:
            return self._tokens.get(token)

    def revoke(self, record: IssuedToken) -> None:
        """RFC 7009: revoke an access token, or a refresh token together with its grant."""
        with self._lock:
            if record.kind == "refresh_token":
                self._revoke_grant(record.grant_id)
            else:
                record.revoked = True

    def _revoke_grant(self, grant_id: str) -> None:
        # Caller holds the lock.
        grant = self._grants.get(grant_id)
        if grant is not None:
            grant.revoked = True
        for record in self._tokens.values():
            if record.grant_id == grant_id:
                record.revoked = True

    def access_token_info(self, token: str) -> IssuedToken | None:
        """The access token's record if it is valid now (not expired, not revoked), else None."""
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.kind != "access_token" or record.revoked:
                return None
            if self._grants[record.grant_id].revoked or record.is_expired():
                return None
            return record

    def authenticate_access_token(self, token: str) -> str | None:
        """The user name behind a valid access token (``client:{id}`` for client-credentials
        tokens), or None when the token is unknown, expired or revoked."""
        record = self.access_token_info(token)
        if record is None:
            return None
        return record.username if record.username is not None else record.subject

    # -- faults and stats ------------------------------------------------------------

    def inject_token_failures(self, statuses: list[int]) -> None:
        """Make the next ``len(statuses)`` token requests fail with these HTTP statuses."""
        for status in statuses:
            if not 400 <= int(status) <= 599:
                raise ValueError(f"not an HTTP error status: {status}")
        with self._lock:
            self._faults.extend(int(s) for s in statuses)

    def take_token_failure(self) -> int | None:
        """The next injected failure status, if any (consumes it)."""
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def lose_token_answers(self, kinds: list[str]) -> None:
        """Process the next ``len(kinds)`` token requests, then lose each answer: ``"502"``
        replaces it with a proxy's 502 page, ``"timeout"`` holds it back for
        :data:`LOST_ANSWER_HANG` seconds (past any client's read timeout) and then sends a 504."""
        for kind in kinds:
            if kind not in LOST_ANSWER_KINDS:
                raise ValueError(f"lost answer kind must be one of {LOST_ANSWER_KINDS}: {kind!r}")
        with self._lock:
            self._lost_answers.extend(kinds)

    def take_lost_answer(self) -> str | None:
        """How the next processed token answer is to be lost, if it is (consumes it)."""
        with self._lock:
            return self._lost_answers.popleft() if self._lost_answers else None

    def hostile_token_answers(self, bodies: list[Any]) -> None:
        """Answer the next ``len(bodies)`` token requests with HTTP 200 and these JSON bodies
        (or, for a ``str``, that raw text) without processing them."""
        with self._lock:
            self._hostile_bodies.extend(bodies)

    def take_hostile_body(self) -> tuple[bool, Any]:
        """``(True, body)`` when the next token request gets a hostile body (consumes it)."""
        with self._lock:
            if self._hostile_bodies:
                return True, self._hostile_bodies.popleft()
            return False, None

    def stats_snapshot(self) -> dict[str, Any]:
        """JSON-able counters: token requests per grant type (attempted, succeeded), errors,
        revocations, userinfo calls, injected failures, reuse detections."""
        return self.stats.snapshot()

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document with the public signing key (and a kept previous one)."""
        keys = [self.signing_key, *self.previous_keys]
        return {"keys": [k.as_dict(private=False) for k in keys]}

    def rotate_signing_key(self, *, keep_previous: bool = False) -> str:
        """Sign with a new key from now on (a new ``kid``); the JWKS lists the old one only with
        ``keep_previous``. Returns the new ``kid``."""
        old = self.signing_key
        self.signing_key = _new_signing_key()
        self.previous_keys = [old] if keep_previous else []
        return self.signing_key.kid or ""
