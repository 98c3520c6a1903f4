"""Requests to the token and revocation endpoints (RFC 6749 §4-6, RFC 7009).

Client authentication and request encoding come from Authlib; transport, retries and error
handling from :mod:`vidauth.http`. A one-time authorization code is sent in ``unsent`` retry mode,
so it is never replayed after the server may have consumed it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from vidauth.config import Profile
from vidauth.errors import ConfigError, RemoteServiceError
from vidauth.http import RETRY_EXTENSION, RETRYABLE_STATUS, raise_for_exhausted, transport_failure
from vidauth.oauth.errors import RETRYABLE_ERRORS, oauth_error
from vidauth.store.tokens import TokenSet


class TokenEndpoint:
    """Grants against one profile's token endpoint."""

    def __init__(self, profile: Profile, client: httpx.Client) -> None:
        if not profile.endpoints.token_url:
            raise ConfigError(f"profile {profile.name!r} has no token endpoint: set token_url")
        self.profile = profile
        self.client = client
        self.token_url = profile.endpoints.token_url

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
        return TokenSet.from_response(self._post(body, retry=retry, during=during))

    def post_form(
        self, url: str, params: dict[str, Any], *, retry: str, during: str, require: str
    ) -> dict[str, Any]:
        """POST form ``params`` to another endpoint of the server (device authorization) with
        the same client authentication; the JSON answer must carry ``require``."""
        body = prepare_token_request("x", **{k: v for k, v in params.items() if v is not None})
        body = "&".join(p for p in body.split("&") if not p.startswith("grant_type="))
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
                url, content=body.encode(), headers=headers, extensions={RETRY_EXTENSION: retry}
            )
        except httpx.TransportError as exc:
            raise transport_failure(exc, during) from None
        return self._parse(response, during, require)

    def _parse(
        self, response: httpx.Response, during: str, require: str = "access_token"
    ) -> dict[str, Any]:
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if response.is_success and isinstance(data, dict) and data.get(require):
            return data
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
        kind = "a non-JSON answer" if data is None else f"an answer without {require}"
        where = str(response.request.url.copy_with(query=None))
        raise RemoteServiceError(
            f"{during} failed: {where} gave HTTP {response.status_code} with {kind}; "
            "check the token endpoint (vidauth doctor)"
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

    def refresh(self, refresh_token: str, scope: str | None = None) -> TokenSet:
        """refresh_token → tokens (the server may rotate the refresh token)."""
        tokens = self.request(
            "refresh_token",
            during="refreshing the access token",
            refresh_token=refresh_token,
            scope=scope,
        )
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
        body = prepare_token_request("x", token=token, token_type_hint=token_type_hint)
        body = "&".join(p for p in body.split("&") if not p.startswith("grant_type="))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **self.profile.provider.token_headers,
        }
        method = (
            self.profile.provider.revocation_client_auth if self.profile.client_secret else "none"
        )
        _, headers, body = self._client_auth(method).prepare("POST", url, headers, body)
        try:
            response = self.client.post(
                url, content=body.encode(), headers=headers, extensions={RETRY_EXTENSION: "always"}
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
