"""Who a grant belongs to: the validated ID token's ``sub``, else userinfo's, else the JWT's."""

from __future__ import annotations

import base64
import json

import httpx

from vidauth.config import Profile
from vidauth.errors import VidauthError
from vidauth.oauth.discovery import DocumentCache, resolve_endpoints
from vidauth.oauth.oidc import Identity, display_name, userinfo, validate_id_token
from vidauth.store.tokens import TokenSet


def _jwt_claims_unverified(token: str) -> dict[str, object] | None:
    """Claims of a JWT access token (Ingest puts ``sub`` there); used for naming only."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def identify(
    profile: Profile,
    tokens: TokenSet,
    client: httpx.Client,
    nonce: str | None,
    cache: DocumentCache | None = None,
) -> Identity:
    """The identity behind ``tokens``; an ID token, when present, must validate first.

    ``cache`` keeps the discovery document and JWKS (the store's, else this process's).
    """
    endpoints = profile.endpoints
    if tokens.id_token:
        if endpoints.discovery_url and not endpoints.jwks_uri:
            endpoints = resolve_endpoints(profile, client, cache)
        jwks_uri, issuer = endpoints.jwks_uri, endpoints.issuer
        if jwks_uri and issuer:
            claims = validate_id_token(
                tokens.id_token,
                client=client,
                jwks_uri=jwks_uri,
                issuer=issuer,
                client_id=profile.client_id,
                nonce=nonce,
                cache=cache,
            )
            return Identity(subject=str(claims["sub"]), username=display_name(claims))
    if endpoints.userinfo_url and tokens.scope and "openid" in tokens.scope.split():
        try:
            claims = userinfo(client, endpoints.userinfo_url, tokens.access_token)
        except VidauthError:
            claims = {}
        if claims.get("sub"):
            return Identity(subject=str(claims["sub"]), username=display_name(claims))
    jwt_claims = _jwt_claims_unverified(tokens.access_token) or {}
    if isinstance(jwt_claims.get("sub"), str):
        return Identity(subject=str(jwt_claims["sub"]), username=display_name(jwt_claims))
    return Identity(subject="default", username=None)
