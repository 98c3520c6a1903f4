"""Who a grant belongs to: only from claims vidauth can trust.

In order: the ID token's claims once validated (signature, ``iss``, ``aud``, ``exp``, ``nonce``);
else userinfo's, which the authorization server itself answers for the access token; else, for
the providers in :data:`ACCESS_TOKEN_NAMES_THE_USER` only, the access token's own claims (see
there why). For any other provider an access token is opaque to its client (RFC 6749 §1.4): its
claims are never read, so a token that merely looks like a JWT cannot pick the account.
"""

from __future__ import annotations

import base64
import json
import logging

import httpx

from vidauth.config import Profile
from vidauth.domain.tokens import TokenSet
from vidauth.errors import VidauthError
from vidauth.oauth.discovery import (
    PROCESS_CACHE,
    DiscoveryUnavailable,
    DocumentCache,
    discover,
    resolve_endpoints,
)
from vidauth.oauth.oidc import Identity, display_name, userinfo, validate_id_token

log = logging.getLogger("vidauth.discovery")

#: Providers whose access token is documented as a JWT whose ``sub`` is the user, and which
#: offer neither an ID token nor userinfo (Ingest). The token is not verified (no key is
#: published to verify it with). Its claims are used because ``identify`` only ever sees a
#: token received moments ago straight from the profile's token endpoint, over TLS (the URL rule
#: refuses anything else), in answer to a request authenticated with the client's credentials:
#: the grounds on which OpenID Connect (Core §3.1.3.7, item 6) lets a client accept an ID
#: token's claims without checking its signature.
ACCESS_TOKEN_NAMES_THE_USER = frozenset({"ingest"})


def _jwt_claims_unverified(token: str) -> dict[str, object] | None:
    """The payload of a JWT, not verified; only for ACCESS_TOKEN_NAMES_THE_USER."""
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
    """The identity behind ``tokens`` (just received from the token endpoint); an ID token,
    when present, must validate first. ``subject="default"`` when nothing trusted names one.

    ``cache`` keeps the discovery document and JWKS (the store's, else this process's).
    """
    endpoints = profile.endpoints
    if tokens.id_token:
        if endpoints.discovery_url and not endpoints.jwks_uri:
            endpoints = resolve_endpoints(profile, client, cache)
        jwks_uri, issuer = endpoints.jwks_uri, endpoints.issuer
        # Without a key set and an issuer the ID token cannot be validated: it is then ignored,
        # never read unverified.
        if jwks_uri and issuer:
            claims = _validated(profile, tokens.id_token, client, jwks_uri, issuer, nonce, cache)
            subject = str(claims["sub"])
            if display_name(claims) is None:
                # Panopto's ID tokens carry no names: they come from userinfo.
                if endpoints.discovery_url and not endpoints.userinfo_url:
                    endpoints = resolve_endpoints(profile, client, cache)
                named = names_from_userinfo(endpoints.userinfo_url, tokens, client, subject)
                if named is not None:
                    return named
            return Identity.from_claims(subject, claims)
    if endpoints.userinfo_url and tokens.scope and "openid" in tokens.scope.split():
        try:
            claims = userinfo(client, endpoints.userinfo_url, tokens.access_token)
        except VidauthError:
            claims = {}
        if claims.get("sub"):
            return Identity.from_claims(str(claims["sub"]), claims)
    if profile.provider.name in ACCESS_TOKEN_NAMES_THE_USER:
        jwt_claims = _jwt_claims_unverified(tokens.access_token) or {}
        if isinstance(jwt_claims.get("sub"), str):
            return Identity.from_claims(str(jwt_claims["sub"]), jwt_claims)
    return Identity(subject="default", username=None)


def names_from_userinfo(
    url: str | None, tokens: TokenSet, client: httpx.Client, subject: str
) -> Identity | None:
    """``subject``'s names from the userinfo endpoint, when it answers for that very subject
    with a name; None otherwise (no endpoint, no ``openid`` scope, an error, no name)."""
    if not url or (tokens.scope is not None and "openid" not in tokens.scope.split()):
        return None
    try:
        claims = userinfo(client, url, tokens.access_token)
    except VidauthError:
        return None
    if str(claims.get("sub") or "") != subject or display_name(claims) is None:
        return None
    return Identity.from_claims(subject, claims)


def sign_in_scope(
    profile: Profile, client: httpx.Client, cache: DocumentCache | None = None
) -> str:
    """The scope to ask for at sign-in: the profile's, plus ``profile`` and ``email`` where
    the provider lists them in its discovery document's ``scopes_supported`` (they are what
    makes its userinfo name the user, as at Panopto). Without ``openid`` or discovery: the
    profile's scope as it is."""
    scopes = profile.scope.split()
    if "openid" not in scopes or not profile.endpoints.discovery_url:
        return profile.scope
    try:
        supported = discover(profile, client, cache).document.get("scopes_supported")
    except VidauthError:
        return profile.scope
    if not isinstance(supported, list):
        return profile.scope
    extra = [s for s in ("profile", "email") if s in supported and s not in scopes]
    if not extra:
        return profile.scope
    at = scopes.index("openid") + 1
    return " ".join([*scopes[:at], *extra, *scopes[at:]])


#: Where IdentityServer 4 serves the JWKS (the Panopto preset's path), and IdentityServer 3.
IDSRV4_JWKS = "/.well-known/openid-configuration/jwks"
IDSRV3_JWKS = "/.well-known/jwks"


def _validated(
    profile: Profile,
    id_token: str,
    client: httpx.Client,
    jwks_uri: str,
    issuer: str,
    nonce: str | None,
    cache: DocumentCache | None,
) -> dict[str, object]:
    """The ID token's validated claims. When discovery was unreachable and the preset's
    IdentityServer 4 JWKS path cannot be fetched either, IdentityServer 3's
    ``…/.well-known/jwks`` is tried (an older Panopto discovery document lists that one)."""

    def validate(uri: str) -> dict[str, object]:
        return validate_id_token(
            id_token,
            client=client,
            jwks_uri=uri,
            issuer=issuer,
            client_id=profile.client_id,
            nonce=nonce,
            cache=cache,
        )

    try:
        return validate(jwks_uri)
    except DiscoveryUnavailable:
        fallback = _idsrv3_jwks(profile, jwks_uri, cache)
        if fallback is None:
            raise
        log.info("no JWKS at %s; trying IdentityServer 3's %s", jwks_uri, fallback)
        try:
            return validate(fallback)
        except DiscoveryUnavailable:
            pass
        raise


def _idsrv3_jwks(profile: Profile, jwks_uri: str, cache: DocumentCache | None) -> str | None:
    """IdentityServer 3's JWKS URL, when ``jwks_uri`` is the preset's IdentityServer 4 path
    and discovery was unreachable (else None: the discovery document is the authority)."""
    url = profile.endpoints.discovery_url
    if not url or "jwks_uri" in profile.endpoints.explicit or not jwks_uri.endswith(IDSRV4_JWKS):
        return None
    entry = (cache if cache is not None else PROCESS_CACHE).get(url)
    if entry is None or entry.body is not None:
        return None  # discovery answered: its jwks_uri is the one
    return jwks_uri[: -len(IDSRV4_JWKS)] + IDSRV3_JWKS
