"""Authlib's authorization server, adapted to Starlette, with the sandbox's grants.

Authlib ships framework integrations only for Flask and Django, so this module provides the
two framework hooks ourselves: :meth:`SandboxAuthorizationServer.create_oauth2_request` builds an
Authlib ``OAuth2Request`` from an :class:`IncomingRequest` (read from Starlette by the app, since
reading a body is async and Authlib is sync), and ``handle_response`` turns Authlib's
``(status, body, headers)`` into a Starlette response.

The grants are Authlib's, configured through their documented hooks. Where a sandbox rule needs
more than a hook, the override says why.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from starlette.responses import JSONResponse, Response

from vidauth_sandbox.config import SUPPORTED_SCOPES, SandboxClient
from vidauth_sandbox.state import (
    AuthorizationCode,
    GrantRejected,
    IssuedToken,
    SandboxState,
    SandboxUser,
)

ID_TOKEN_LIFETIME = 3600

# Authlib's grants log every issued token dict at DEBUG ("Issue token %r"). Tokens must never
# reach a log, so those loggers stop at INFO whatever the application's logging setup is.
logging.getLogger("authlib.oauth2.rfc6749.grants").setLevel(logging.INFO)
Pairs = list[tuple[str, str]]


@dataclass
class IncomingRequest:
    """What Authlib needs from one HTTP request, read from Starlette beforehand."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Pairs
    form: Pairs
    issuer: str


@dataclass
class EndUser:
    """The logged-in person at the authorize endpoint (Authlib's ``grant_user``)."""

    user: SandboxUser
    auth_time: int
    session_id: str = field(repr=False)


class _Payload(OAuth2Payload):
    def __init__(self, pairs: Pairs) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            datalist[key].append(value)
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """Authlib's request object over an :class:`IncomingRequest` (query + form parameters)."""

    def __init__(self, incoming: IncomingRequest) -> None:
        super().__init__(incoming.method, incoming.url, headers=incoming.headers)
        self._args = dict(incoming.query)
        self._form = dict(incoming.form)
        self.payload = _Payload(incoming.query + incoming.form)
        self.issuer = incoming.issuer

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class ClientModel(ClientMixin):
    """Authlib's view of a :class:`SandboxClient`."""

    def __init__(self, client: SandboxClient) -> None:
        self.sandbox = client
        self.client_id = client.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Like Panopto (IdentityServer), redirect_uri is required on every authorize request.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return self.sandbox.scope
        allowed = set(scope_to_list(self.sandbox.scope))
        requested = scope_to_list(scope)
        if not set(requested) <= allowed:
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.sandbox.redirect_uris  # exact string match

    def check_client_secret(self, client_secret: str) -> bool:
        expected = self.sandbox.client_secret
        if expected is None:
            return False
        return secrets.compare_digest(client_secret.encode(), expected.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.sandbox.is_public:
            return method == "none"
        return method in self.sandbox.token_endpoint_auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.sandbox.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.sandbox.grant_types


def _state(grant: Any) -> SandboxState:
    state: SandboxState = grant.server.state
    return state


def _session_state(client_id: str, redirect_uri: str, session_id: str) -> str:
    """OpenID Connect Session Management's ``session_state`` (what IdentityServer sends)."""
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    salt = secrets.token_hex(8)
    digest = hashlib.sha256(f"{client_id} {origin} {session_id} {salt}".encode()).hexdigest()
    return f"{digest}.{salt}"


class SandboxCodeGrant(AuthorizationCodeGrant):
    """The authorization code grant: one-time codes bound to client, redirect URI and PKCE."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        end_user: EndUser = request.user
        data = request.payload.data
        _state(self).save_code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=end_user.user,
            auth_time=end_user.auth_time,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )
        _state(self).stats.count("authorizations")

    def query_authorization_code(self, code: str, client: ClientModel) -> AuthorizationCode:
        # Consumed atomically here rather than in delete_authorization_code(), so that two
        # concurrent exchanges of one code cannot both succeed; a replay revokes the family.
        try:
            return _state(self).consume_code(code, client.get_client_id())
        except GrantRejected as exc:
            raise InvalidGrantError(str(exc)) from None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        return None  # already marked used by query_authorization_code()

    def authenticate_user(self, authorization_code: AuthorizationCode) -> SandboxUser:
        return SandboxUser.named(authorization_code.username)

    def validate_token_request(self) -> None:
        # Panopto quirk, not expressible as an Authlib hook (hooks run in no defined order and
        # CodeChallenge would answer invalid_request first): a confidential client that sends
        # code_verifier gets invalid_grant. The code is left unused.
        state = _state(self)
        if state.config.reject_pkce_with_secret and self.request.form.get("code_verifier"):
            client = self.authenticate_token_endpoint_client()
            if not client.sandbox.is_public:
                raise InvalidGrantError(
                    "code_verifier is not accepted from a confidential client (Panopto "
                    "behaviour, emulated by the sandbox)"
                )
        super().validate_token_request()

    def create_authorization_response(
        self, redirect_uri: str, grant_user: EndUser | None
    ) -> tuple[int, str, list[tuple[str, str]]]:
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        # IdentityServer also returns the granted scope and the OIDC session_state.
        assert grant_user is not None  # the parent raised AccessDeniedError otherwise
        extra = [
            ("scope", self.request.scope),
            (
                "session_state",
                _session_state(self.client.get_client_id(), redirect_uri, grant_user.session_id),
            ),
        ]
        location = add_params_to_uri(dict(headers)["Location"], extra)
        return status, body, [("Location", location)]


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (``plain`` is refused), mandatory for public clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")


class SandboxOpenIDCode(OpenIDCode):
    """ID tokens (RS256, the sandbox's key) for code grants that include ``openid``."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__(require_nonce=False)
        self.state = state

    def resolve_client_private_key(self, client: ClientModel) -> Any:
        return self.state.signing_key

    def get_client_algorithm(self, client: ClientModel) -> str:
        return "RS256"

    def get_encode_header(self, client: ClientModel) -> dict[str, str]:
        return {"alg": "RS256", "typ": "JWT", "kid": self.state.signing_key.kid or ""}

    def get_compatible_claims(self, request: OAuth2Request) -> dict[str, Any]:
        # The issuer depends on the request (the server's URL), which get_client_claims()
        # cannot see, hence this override.
        now = int(time.time())
        return {
            "iss": getattr(request, "issuer", ""),
            "aud": request.client.get_client_id(),
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "auth_time": now,
        }

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.state.nonce_used(request.payload.client_id, nonce)

    def generate_user_info(self, user: SandboxUser, scope: str) -> UserInfo:
        # Panopto's ID tokens carry `sub` and protocol claims, not names (those come from
        # userinfo), unless the id_token_names knob says otherwise.
        if self.state.config.id_token_names:
            return user_info(user, scope)
        return UserInfo(sub=user.subject)


def user_info(user: SandboxUser, scope: str | None = None) -> UserInfo:
    """The OpenID claims of a sandbox user that ``scope`` grants, as IdentityServer answers
    them: ``profile`` gives ``preferred_username`` and ``name``, ``email`` gives ``email``
    (``scope=None``: all of them)."""
    scopes = set(scope_to_list(scope)) if scope is not None else {"profile", "email"}
    claims: dict[str, str] = {"sub": user.subject}
    if "profile" in scopes:
        claims.update(preferred_username=user.username, name=user.name)
    if "email" in scopes:
        claims["email"] = user.email
    return UserInfo(claims)


class RotatingRefreshTokenGrant(RefreshTokenGrant):
    """Refresh with rotation: each use issues a new refresh token; reuse revokes the family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken:
        state = _state(self)
        scope = self.request.payload.scope
        known = state.find_token(refresh_token)
        # Check the scope before rotating, so a bad request does not burn the token.
        if (
            known is not None
            and scope
            and not set(scope_to_list(scope)) <= set(scope_to_list(known.scope))
        ):
            raise InvalidScopeError()
        try:
            return state.use_refresh_token(refresh_token, self.request.client.get_client_id())
        except GrantRejected as exc:
            raise InvalidGrantError(str(exc)) from None

    def authenticate_user(self, refresh_token: IssuedToken) -> SandboxUser | None:
        return SandboxUser.named(refresh_token.username) if refresh_token.username else None

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        return None  # rotated (and so unusable) atomically in authenticate_refresh_token()


def _check_client_scope(grant: Any, allowed: set[str]) -> None:
    scope = grant.request.payload.scope
    grant.server.validate_requested_scope(scope)
    if scope and not set(scope_to_list(scope)) <= allowed:
        raise InvalidScopeError()


class SandboxPasswordGrant(ResourceOwnerPasswordCredentialsGrant):
    """Panopto's "User Based Server Application": users' passwords, or ID-provider hashes."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_user(self, username: str, password: str) -> SandboxUser:
        user = _state(self).check_password(username, password)
        if user is None:
            # RFC 6749 §5.2 names invalid_grant for bad resource-owner credentials (Authlib's
            # default would be invalid_request).
            raise InvalidGrantError("The user name or password is incorrect.")
        return user

    def validate_requested_scope(self) -> None:
        _check_client_scope(self, set(scope_to_list(self.request.client.sandbox.scope)))
        scope = self.request.payload.scope
        if (
            not _state(self).config.password_offline_access
            and scope
            and "offline_access" in scope_to_list(scope)
        ):
            # IdentityServer's answer to a client not allowed offline access.
            raise InvalidScopeError()


class SandboxClientCredentialsGrant(ClientCredentialsGrant):
    """Application tokens: scope ``api``, subject ``client:{client_id}``, no refresh token."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        _check_client_scope(self, {"api"})


class SandboxRevocationEndpoint(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its grant (and so its access tokens)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        state: SandboxState = self.server.state
        return state.find_token(token_string)

    def revoke_token(self, token: IssuedToken, request: OAuth2Request) -> None:
        state: SandboxState = self.server.state
        state.revoke(token)


class SandboxAuthorizationServer(AuthorizationServer):
    """Authlib's ``AuthorizationServer`` over :class:`SandboxState`, speaking Starlette."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__(scopes_supported=SUPPORTED_SCOPES)
        self.state = state
        self.register_token_generator("default", self._generate_token)
        self.register_grant(
            SandboxCodeGrant, [S256CodeChallenge(required=True), SandboxOpenIDCode(state)]
        )
        self.register_grant(RotatingRefreshTokenGrant)
        self.register_grant(SandboxPasswordGrant)
        self.register_grant(SandboxClientCredentialsGrant)
        self.register_endpoint(SandboxRevocationEndpoint)

    # -- Authlib framework hooks -----------------------------------------------------

    def query_client(self, client_id: str | None) -> ClientModel | None:
        client = self.state.find_client(client_id)
        return ClientModel(client) if client is not None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        if request.authorization_code is not None:
            grant_id = request.authorization_code.grant_id
        elif request.refresh_token is not None:
            grant_id = request.refresh_token.grant_id
        else:
            user = request.user if isinstance(request.user, SandboxUser) else None
            grant_id = self.state.new_grant(
                request.client.get_client_id(), user, token.get("scope", "")
            ).grant_id
        self.state.store_tokens(grant_id, token)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        header_map = dict(headers)
        if isinstance(body, dict):
            header_map.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _generate_token(
        self,
        grant_type: str,
        client: ClientModel,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if grant_type == "client_credentials":
            scope = "api"
        elif not scope:
            scope = client.sandbox.scope
        token: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": expires_in or self.state.config.access_token_lifetime,
            "scope": scope,
        }
        if (
            include_refresh_token
            and grant_type != "client_credentials"
            and "offline_access" in scope_to_list(scope)
            and client.check_grant_type("refresh_token")
        ):
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token
