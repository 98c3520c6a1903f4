"""OpenID Connect: discovery, JWKS and ID-token validation.

JOSE comes from joserfc, the Authlib project's JOSE library (``authlib.jose`` is deprecated in
its favour and Authlib depends on it).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vidauth.errors import AuthorizationDenied, ConfigError, RemoteServiceError
from vidauth.http import check_url, transport_failure
from vidauth.providers import Endpoints

ID_TOKEN_LEEWAY_S = 120
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

_jwks_cache: dict[str, dict[str, Any]] = {}
_jwks_lock = threading.Lock()


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


def needs_discovery(endpoints: Endpoints) -> bool:
    """True when endpoints a grant needs are missing but a discovery document can tell."""
    return bool(endpoints.discovery_url) and not (endpoints.token_url and endpoints.authorize_url)


def complete_endpoints(endpoints: Endpoints, client: httpx.Client) -> Endpoints:
    """Fill missing endpoints from discovery; the document must name the configured issuer."""
    if not needs_discovery(endpoints):
        return endpoints
    assert endpoints.discovery_url is not None
    doc = discover(client, endpoints.discovery_url)
    named = doc.get("issuer")
    if endpoints.issuer and named != endpoints.issuer:
        raise ConfigError(
            f"the discovery document at {endpoints.discovery_url} names issuer {named!r}, not "
            f"{endpoints.issuer!r}: set the profile's issuer to exactly the provider's issuer"
        )
    return endpoints_from_discovery(doc, endpoints)


def _jwks(client: httpx.Client, jwks_uri: str, refresh: bool = False) -> dict[str, Any]:
    with _jwks_lock:
        if not refresh and jwks_uri in _jwks_cache:
            return _jwks_cache[jwks_uri]
    keys = _get_json(client, jwks_uri, "signing keys (JWKS)")
    with _jwks_lock:
        _jwks_cache[jwks_uri] = keys
    return keys


@dataclass(frozen=True)
class Identity:
    """Who signed in: the subject (the account key) and a name to show."""

    subject: str
    username: str | None


def validate_id_token(
    id_token: str,
    *,
    client: httpx.Client,
    jwks_uri: str,
    issuer: str,
    client_id: str,
    nonce: str | None,
) -> dict[str, Any]:
    """Verify signature (JWKS), ``iss``, ``aud``, ``exp``/``iat`` with leeway, and ``nonce``.

    Raises AuthorizationDenied (exit 3) naming the failed check; the token itself is not shown.
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
    last_error: Exception | None = None
    for refresh in (False, True):  # the key may have rotated: refetch the JWKS once
        try:
            key_set = KeySet.import_key_set(_jwks(client, jwks_uri, refresh=refresh))  # type: ignore[arg-type]
            token = jwt.decode(id_token, key_set, algorithms=ID_TOKEN_ALGORITHMS)
            registry.validate(token.claims)
            return dict(token.claims)
        except (JoseError, ValueError) as exc:
            last_error = exc
            if "key" not in str(exc).lower() and "signature" not in str(exc).lower():
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
