"""OpenID Connect: ID-token validation against the provider's (cached) JWKS, and userinfo.

Endpoints and the JWKS come from :mod:`vidauth.oauth.discovery`; ``discover`` and
``endpoints_from_discovery`` here are the plain fetch-and-merge helpers ``vidauth doctor`` uses.

JOSE comes from joserfc, the Authlib project's JOSE library (``authlib.jose`` is deprecated in
its favour and Authlib depends on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from vidauth.errors import AuthorizationDenied, RemoteServiceError
from vidauth.http import check_url, transport_failure
from vidauth.oauth.discovery import DocumentCache, signing_keys
from vidauth.providers import Endpoints

ID_TOKEN_LEEWAY_S = 120
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


def _get_json(client: httpx.Client, url: str, what: str) -> dict[str, Any]:
    check_url(url, what)
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise transport_failure(exc, f"fetching the {what}") from None
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not response.is_success or not isinstance(data, dict):
        raise RemoteServiceError(
            f"fetching the {what} failed: {url} gave HTTP {response.status_code}"
            + ("" if isinstance(data, dict) else " without JSON")
        )
    return data


def discover(client: httpx.Client, discovery_url: str) -> dict[str, Any]:
    """The OpenID provider's configuration document."""
    return _get_json(client, discovery_url, "discovery document")


def endpoints_from_discovery(doc: dict[str, Any], base: Endpoints | None = None) -> Endpoints:
    """Fill endpoints from a discovery document (values already in ``base`` win)."""
    base = base or Endpoints()
    mapping = {
        "authorize_url": doc.get("authorization_endpoint"),
        "token_url": doc.get("token_endpoint"),
        "revocation_url": doc.get("revocation_endpoint"),
        "userinfo_url": doc.get("userinfo_endpoint"),
        "device_authorization_url": doc.get("device_authorization_endpoint"),
        "issuer": doc.get("issuer"),
        "jwks_uri": doc.get("jwks_uri"),
    }
    return replace(base, **{k: v for k, v in mapping.items() if v and not getattr(base, k)})


@dataclass(frozen=True)
class Identity:
    """Who signed in: the subject (the account key) and a name to show; ``names`` are the
    user's ``preferred_username`` and ``email``, in that order, where known (what an expected
    user name is compared with)."""

    subject: str
    username: str | None
    names: tuple[str, ...] = ()

    @classmethod
    def from_claims(cls, subject: str, claims: dict[str, Any]) -> Identity:
        """The identity ``claims`` describe for ``subject``."""
        names = tuple(
            str(claims[key])
            for key in ("preferred_username", "email")
            if isinstance(claims.get(key), str) and claims[key]
        )
        return cls(subject=subject, username=display_name(claims), names=names)


def validate_id_token(
    id_token: str,
    *,
    client: httpx.Client,
    jwks_uri: str,
    issuer: str,
    client_id: str,
    nonce: str | None,
    cache: DocumentCache | None = None,
) -> dict[str, Any]:
    """Verify signature (JWKS), ``iss``, ``aud``, ``exp``/``iat`` with leeway, and ``nonce``.

    The JWKS comes from ``cache`` while fresh; a token signed with a key the cached set lacks
    (an unknown ``kid``: the provider rotated its keys) makes one refetch, rate-limited across
    every process sharing the cache. Raises AuthorizationDenied (exit 3) naming the failed
    check; the token itself is not shown.
    """
    claims_options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        claims_options["nonce"] = {"essential": True, "value": nonce}
    registry = jwt.JWTClaimsRegistry(leeway=ID_TOKEN_LEEWAY_S, **claims_options)
    keys = signing_keys(client, jwks_uri, cache)
    last_error: Exception | None = None
    for attempt in (1, 2):
        try:
            key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
            token = jwt.decode(id_token, key_set, algorithms=ID_TOKEN_ALGORITHMS)
            registry.validate(token.claims)
            return dict(token.claims)
        except (InvalidKeyIdError, BadSignatureError) as exc:
            last_error = exc
            if attempt == 2:
                break
            fresh = signing_keys(client, jwks_uri, cache, refetch=True)
            if fresh is None:  # refetched a moment ago: the key is not the provider's
                break
            keys = fresh
        except (JoseError, ValueError) as exc:
            last_error = exc
            break
    reason = (
        getattr(last_error, "description", None)
        or getattr(last_error, "error", None)
        or type(last_error).__name__
    )
    raise AuthorizationDenied(
        f"the ID token failed validation ({reason}); sign-in aborted — check the server's clock "
        "and that the profile's issuer is right"
    )


def userinfo(client: httpx.Client, url: str, access_token: str) -> dict[str, Any]:
    """The userinfo endpoint's claims for ``access_token``."""
    check_url(url, "userinfo endpoint")
    try:
        response = client.get(
            url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
    except httpx.TransportError as exc:
        raise transport_failure(exc, "fetching userinfo") from None
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not response.is_success or not isinstance(data, dict):
        raise RemoteServiceError(f"fetching userinfo failed: HTTP {response.status_code}")
    return data


def display_name(claims: dict[str, Any]) -> str | None:
    """The most human name among the usual claims."""
    for key in ("preferred_username", "email", "name", "username"):
        value = claims.get(key)
        if isinstance(value, str) and value:
            return value
    return None
