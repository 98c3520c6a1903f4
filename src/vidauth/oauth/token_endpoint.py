"""Requests to the token and revocation endpoints (RFC 6749 §4-6, RFC 7009).

Client authentication and request encoding come from Authlib (``ClientAuth``,
``prepare_token_request``, ``prepare_revoke_token_request``); transport, retries and error
handling from :mod:`vidauth.http`. Authlib's own httpx ``OAuth2Client`` is not used: it is a
client of its own, which would bypass the shared transport's replay modes and retry policy.

A one-time authorization code is sent in ``unsent`` retry mode, so it is never replayed after the
server may have consumed it. A refresh is too when the provider rotates refresh tokens strictly
(``refresh_token_reuse = "strict"``): if its answer is lost the refresh is not replayed and
:class:`RefreshOutcomeUnknown` says so. With ``grace`` it is retried with the same token.
Every attempt is bounded by :attr:`TokenEndpoint.timeout`, and the whole call by
:attr:`TokenEndpoint.call_bound`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from authlib.common.urls import url_encode
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7009.parameters import prepare_revoke_token_request

from vidauth.config import Profile
from vidauth.domain.tokens import TokenSet
from vidauth.errors import ConfigError, ErrorCode, RemoteServiceError
from vidauth.http import (
    RETRY_EXTENSION,
    RETRYABLE_STATUS,
    RetryPolicy,
    _safe_url,
    raise_for_exhausted,
    transport_failure,
)
from vidauth.oauth.errors import RETRYABLE_ERRORS, oauth_error
from vidauth.oauth.token_response import token_set

#: Longest wait for one attempt's connection and for each read of its answer, in seconds.
ATTEMPT_READ_S = 30.0
ATTEMPT_CONNECT_S = 10.0
GRACE = "grace"  # refresh_token_reuse: the provider accepts a replay for a while


class RefreshOutcomeUnknown(RemoteServiceError):
    """A refresh reached the server but its answer was lost (a 5xx, a timeout, a dropped
    connection), and the provider rotates refresh tokens strictly, so it was not sent again.

    The server may or may not have rotated the grant; ``cause`` says what was seen (exit 4).
    """

    default_code = ErrorCode.REFRESH_OUTCOME_UNKNOWN

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message, cause=cause)
        self.cause = cause


class TokenEndpoint:
    """Grants against one profile's token endpoint."""

    def __init__(
        self, profile: Profile, client: httpx.Client, policy: RetryPolicy | None = None
    ) -> None:
        if not profile.endpoints.token_url:
            raise ConfigError(f"profile {profile.name!r} has no token endpoint: set token_url")
        self.profile = profile
        self.client = client
        self.token_url = profile.endpoints.token_url
        self.policy = policy or RetryPolicy()
        read = min(ATTEMPT_READ_S, max(1.0, self.policy.max_total / 2))
        #: One attempt's bounds (a hanging endpoint is given up after ``read`` seconds).
        self.timeout = httpx.Timeout(read, connect=min(ATTEMPT_CONNECT_S, read))

    @property
    def call_bound(self) -> float:
        """Seconds a token call can take at most, retries included: the transport starts no
        retry after ``max_total``; one attempt and one backoff may still be under way."""
        read = self.timeout.read or ATTEMPT_READ_S
        connect = self.timeout.connect or ATTEMPT_CONNECT_S
        return self.policy.max_total + self.policy.max_delay + connect + read

    def _client_auth(self, method: str | None = None) -> ClientAuth:
        secret = self.profile.client_secret.value if self.profile.client_secret else None
        auth_method = method or (self.profile.client_auth if secret else "none")
        return ClientAuth(self.profile.client_id, secret, auth_method)

    def request(
        self, grant_type: str, *, retry: str = "always", during: str, **params: Any
    ) -> TokenSet:
        """POST a grant and parse the token response."""
        body = prepare_token_request(
            grant_type, **{k: v for k, v in params.items() if v is not None}
        )
        data = self._post(body, retry=retry, during=during)
        return token_set(data, during=during)

    def post_form(
        self, url: str, params: dict[str, Any], *, retry: str, during: str, require: str
    ) -> dict[str, Any]:
        """POST form ``params`` to another endpoint of the server (device authorization) with
        the same client authentication; the JSON answer must carry ``require``."""
        body = url_encode([(k, str(v)) for k, v in params.items() if v is not None])
        return self._post(body, retry=retry, during=during, url=url, require=require)

    def _post(
        self,
        body: str,
        *,
        retry: str,
        during: str,
        url: str | None = None,
        auth_method: str | None = None,
        require: str = "access_token",
        strict_refresh: bool = False,
    ) -> dict[str, Any]:
        url = url or self.token_url
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            **self.profile.provider.token_headers,
        }
        _, headers, body = self._client_auth(auth_method).prepare("POST", url, headers, body)
        try:
            response = self.client.post(
                url,
                content=body.encode(),
                headers=headers,
                timeout=self.timeout,
                extensions={RETRY_EXTENSION: retry},
            )
        except httpx.TransportError as exc:
            if strict_refresh and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                raise _answer_lost(url, type(exc).__name__) from None
            raise transport_failure(exc, during) from None
        if strict_refresh and response.status_code in RETRYABLE_STATUS - {429}:
            raise _answer_lost(url, f"HTTP {response.status_code}")
        return self._parse(response, during, require)

    def _parse(
        self, response: httpx.Response, during: str, require: str = "access_token"
    ) -> dict[str, Any]:
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if (
            response.is_success
            and isinstance(data, dict)
            and (
                data.get(require) is not None or (require == "access_token" and "error" not in data)
            )
        ):
            return data  # a token response is checked field by field by parse_token_response()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            hint = None
            if (
                data["error"] == "invalid_grant"
                and self.profile.pkce
                and self.profile.client_secret
            ):
                hint = (
                    "the code was refused; some servers (Panopto) reject PKCE together with a "
                    "client secret: set pkce = false for this profile, then sign in again"
                )
            error = oauth_error(
                data["error"],
                data.get("error_description"),
                during=during,
                hint=hint,
                redirect_uri=self.profile.redirect_uri,
            )
            if response.status_code in RETRYABLE_STATUS or error.error in RETRYABLE_ERRORS:
                raise RemoteServiceError(f"{error.message} (HTTP {response.status_code})")
            raise error
        raise_for_exhausted(response, during)
        if response.status_code in RETRYABLE_STATUS:  # pragma: no cover - raised above
            raise RemoteServiceError(f"{during} failed: HTTP {response.status_code}")
        if data is None:
            kind = "a non-JSON answer"
        elif not isinstance(data, dict):
            kind = f"a JSON {type(data).__name__} instead of an object"
        else:
            kind = f"an answer without {require}"
        where = str(response.request.url.copy_with(query=None))
        raise RemoteServiceError(
            f"{during} failed: {where} gave HTTP {response.status_code} with {kind}; "
            "check the token endpoint",
            token_endpoint=where,
            status=response.status_code,
        )

    # -- grants ----------------------------------------------------------------------

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        """authorization_code → tokens, sent at most once unless the request never left."""
        return self.request(
            "authorization_code",
            retry="unsent",
            during="exchanging the authorization code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )

    @property
    def strict_rotation(self) -> bool:
        """True when a lost refresh answer must not be replayed (the provider's setting)."""
        return self.profile.refresh_token_reuse != GRACE

    def refresh(self, refresh_token: str, scope: str | None = None) -> TokenSet:
        """refresh_token → tokens (the server may rotate the refresh token).

        Strict rotation: sent again only when it certainly never left; a lost answer raises
        :class:`RefreshOutcomeUnknown`. Grace: retried like any transient failure.
        """
        during = "refreshing the access token"
        strict = self.strict_rotation
        body = prepare_token_request("refresh_token", refresh_token=refresh_token, scope=scope)
        data = self._post(
            body, retry="unsent" if strict else "always", during=during, strict_refresh=strict
        )
        tokens = token_set(data, during=during)
        if not tokens.refresh_token:
            tokens.refresh_token = refresh_token  # the server kept the old one
        return tokens

    def client_credentials(self, scope: str | None) -> TokenSet:
        """client_credentials → an application token (no refresh token)."""
        return self.request(
            "client_credentials", during="getting a client-credentials token", scope=scope
        )

    def password(self, username: str, password: str, scope: str | None) -> TokenSet:
        """Resource-owner password grant (Panopto user-based server apps, ID providers)."""
        return self.request(
            "password",
            during="signing in with a password",
            username=username,
            password=password,
            scope=scope,
        )

    def revoke(self, token: str, token_type_hint: str | None = None) -> None:
        """RFC 7009 revocation; unknown tokens count as revoked."""
        url = self.profile.endpoints.revocation_url
        if not url:
            raise ConfigError(f"profile {self.profile.name!r} has no revocation endpoint")
        body, headers = prepare_revoke_token_request(
            token, token_type_hint, headers=dict(self.profile.provider.token_headers)
        )
        method = (
            self.profile.provider.revocation_client_auth if self.profile.client_secret else "none"
        )
        _, headers, body = self._client_auth(method).prepare("POST", url, headers, body)
        try:
            response = self.client.post(
                url,
                content=body.encode(),
                headers=headers,
                timeout=self.timeout,
                extensions={RETRY_EXTENSION: "always"},
            )
        except httpx.TransportError as exc:
            raise transport_failure(exc, "revoking the token") from None
        if response.is_success:
            return
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise oauth_error(data["error"], data.get("error_description"), during="revoking")
        raise_for_exhausted(response, "revoking the token")
        raise RemoteServiceError(f"revoking the token failed: HTTP {response.status_code}")


def _answer_lost(url: str, cause: str) -> RefreshOutcomeUnknown:
    where = _safe_url(httpx.Request("POST", url))
    return RefreshOutcomeUnknown(
        f"refreshing the access token: the request may have reached {where} but its answer was "
        f"lost ({cause}); it was not sent again because this provider rotates refresh tokens "
        "once (refresh_token_reuse = strict), so the sign-in may have been rotated: if the next "
        "attempt is refused, sign in again",
        cause=cause,
    )
