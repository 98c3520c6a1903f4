"""Endpoints from the provider's discovery document (RFC 8414, OpenID Connect Discovery 1.0).

For a profile with an issuer, :func:`resolve_endpoints` reads
``{issuer}/.well-known/openid-configuration`` and takes every endpoint from it, per field:

1. a URL set explicitly in the profile always wins (discovery is not consulted for it);
2. else the document's value (the document is the authority: an endpoint it does not list is
   absent, unless the preset names it among the ones its platform leaves out of discovery);
3. the preset's paths only when discovery is unreachable or unusable (said on ``-v``).

The document must name exactly the expected issuer (RFC 8414 §3.3) and every endpoint taken
from it must obey the https-but-loopback rule; either failure is an error, never a fallback.

Documents and JWKS are cached (in the store when one is given, else in this process) for their
``Cache-Control: max-age`` within bounds; a failed fetch keeps a stale copy in use, and with no
copy it is not retried for :data:`RETRY_FAILED_AFTER_S` while the preset serves.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from vidauth._urls import check_transport
from vidauth.config import Profile
from vidauth.errors import ConfigError, RemoteServiceError
from vidauth.http import transport_failure
from vidauth.providers import Endpoints

log = logging.getLogger("vidauth.discovery")

DISCOVERY = "discovery"
JWKS = "jwks"
#: Lifetimes without a usable Cache-Control, and the bounds a max-age is clamped to (seconds).
DISCOVERY_TTL_S = 3600.0
JWKS_TTL_S = 24 * 3600.0
MIN_TTL_S = 300.0
DISCOVERY_MAX_TTL_S = 24 * 3600.0
JWKS_MAX_TTL_S = 7 * 24 * 3600.0
#: After a failed fetch with nothing cached, the preset serves this long before asking again.
RETRY_FAILED_AFTER_S = 300.0
#: At most one JWKS refetch per this many seconds for an unknown key id (a flood of forged
#: tokens must not make vidauth fetch on every one).
UNKNOWN_KID_REFETCH_INTERVAL_S = 60.0
MAX_DOCUMENT_BYTES = 512 * 1024

#: ``Endpoints`` field → the metadata name it comes from.
FIELDS: dict[str, str] = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "revocation_url": "revocation_endpoint",
    "userinfo_url": "userinfo_endpoint",
    "device_authorization_url": "device_authorization_endpoint",
    "jwks_uri": "jwks_uri",
}
# Authlib's RFC 8414 checks for the fields that have one (issuer form, required endpoints).
_AUTHLIB_CHECKS = {
    "issuer": "validate_issuer",
    "authorization_endpoint": "validate_authorization_endpoint",
    "token_endpoint": "validate_token_endpoint",
    "jwks_uri": "validate_jwks_uri",
    "revocation_endpoint": "validate_revocation_endpoint",
}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class DiscoveryUnavailable(RemoteServiceError):
    """The document could not be fetched or is unusable (the preset may stand in; exit 4)."""


# -- the cache -----------------------------------------------------------------------------


class CachedDocument(Protocol):
    """A cached entry: ``body`` is the JSON text, or None after a failed fetch."""

    url: str
    body: str | None
    fetched_at: float
    expires_at: float


class DocumentCache(Protocol):
    """Where documents are kept: :class:`MemoryCache`, or the store's ``StoreDiscoveryCache``."""

    def get(self, url: str) -> CachedDocument | None: ...

    def put(
        self, url: str, kind: str, body: str | None, *, fetched_at: float, expires_at: float
    ) -> None: ...

    def extend(self, url: str, expires_at: float) -> None: ...

    def claim_refetch(self, url: str, now: float, min_interval: float) -> bool: ...


@dataclass
class _Entry:
    url: str
    body: str | None
    fetched_at: float
    expires_at: float
    refetched_at: float | None = None


class MemoryCache:
    """A per-process cache with the same rules as the store's (used when there is no store)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(url)
            return replace(entry) if entry is not None else None

    def put(
        self, url: str, kind: str, body: str | None, *, fetched_at: float, expires_at: float
    ) -> None:
        with self._lock:
            old = self._entries.get(url)
            self._entries[url] = _Entry(
                url, body, fetched_at, expires_at, old.refetched_at if old else None
            )

    def extend(self, url: str, expires_at: float) -> None:
        with self._lock:
            if url in self._entries:
                self._entries[url].expires_at = expires_at

    def claim_refetch(self, url: str, now: float, min_interval: float) -> bool:
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return True
            if entry.refetched_at is not None and entry.refetched_at > now - min_interval:
                return False
            entry.refetched_at = now
            return True

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._entries.clear()


PROCESS_CACHE = MemoryCache()


def cache_lifetime(cache_control: str | None, default: float, maximum: float) -> float:
    """Seconds to keep a document: its ``max-age`` clamped to [MIN_TTL_S, maximum]; ``no-store``
    / ``no-cache`` mean the minimum; no header means ``default``."""
    if not cache_control:
        return default
    match = _MAX_AGE.search(cache_control)
    if match:
        return min(max(float(match.group(1)), MIN_TTL_S), maximum)
    directives = {d.strip().lower() for d in cache_control.split(",")}
    if directives & {"no-store", "no-cache"}:
        return MIN_TTL_S
    return default


# -- fetching ------------------------------------------------------------------------------


def fetch_json(client: httpx.Client, url: str, what: str) -> tuple[dict[str, Any], str | None]:
    """GET a JSON object (at most :data:`MAX_DOCUMENT_BYTES`) and its Cache-Control header.

    Raises :class:`DiscoveryUnavailable` for a connection failure, an HTTP error, or a body that
    is not a JSON object; ConfigError for a URL that breaks the https-but-loopback rule.
    """
    problem = check_transport(url)
    if problem:
        raise ConfigError(f"the {what} URL {url}: {problem}")
    try:
        with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise DiscoveryUnavailable(
                        f"fetching the {what} failed: {url} sent more than "
                        f"{MAX_DOCUMENT_BYTES // 1024} KiB"
                    )
    except httpx.TransportError as exc:
        failure = transport_failure(exc, f"fetching the {what}")
        raise DiscoveryUnavailable(failure.message) from None
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not response.is_success or not isinstance(data, dict):
        raise DiscoveryUnavailable(
            f"fetching the {what} failed: {url} gave HTTP {response.status_code}"
            + ("" if isinstance(data, dict) else " without a JSON object")
        )
    return data, response.headers.get("Cache-Control")


# -- the discovery document ----------------------------------------------------------------


@dataclass(frozen=True)
class ServerMetadata:
    """A validated discovery document."""

    url: str
    issuer: str
    document: Mapping[str, Any]
    expires_at: float
    #: True when it came from the cache rather than the network just now.
    cached: bool = False
    #: True when it is past its expiry and kept only because a refetch failed.
    stale: bool = False

    def endpoint(self, field: str) -> str | None:
        """The document's URL for an ``Endpoints`` field name (``token_url`` …), if any."""
        value = self.document.get(FIELDS[field])
        return value if isinstance(value, str) and value else None

    def endpoints(self) -> dict[str, str]:
        """Every endpoint the document lists, by ``Endpoints`` field name."""
        found = {field: self.endpoint(field) for field in FIELDS}
        return {k: v for k, v in found.items() if v}


def check_document(
    doc: Mapping[str, Any],
    url: str,
    expected_issuer: str | None,
    ignore: frozenset[str] = frozenset(),
) -> str:
    """Validate a discovery document; returns its issuer.

    ConfigError when it names another issuer or lists an endpoint over plain http to a
    non-loopback host; DiscoveryUnavailable when it is malformed. Endpoints named in ``ignore``
    (``Endpoints`` fields the profile sets itself) are not looked at.
    """
    skipped = {FIELDS[f] for f in ignore if f in FIELDS}
    issuer = doc.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise DiscoveryUnavailable(f"the discovery document at {url} names no issuer")
    if expected_issuer is not None and issuer != expected_issuer:
        raise ConfigError(
            f"the discovery document at {url} names issuer {issuer!r}, not {expected_issuer!r} "
            "(they must be identical): set the profile's issuer (or server) to exactly the "
            "provider's issuer"
        )
    for name in ("issuer", *FIELDS.values()):
        value = doc.get(name)
        if name in skipped:
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise DiscoveryUnavailable(
                f"the discovery document at {url} gives {name} as a {type(value).__name__}, "
                "not a URL"
            )
        problem = check_transport(value)
        if problem:
            raise ConfigError(
                f"the discovery document at {url} gives {name} {value}: {problem}; ask the "
                "provider to fix it, or set that URL in the profile"
            )
    metadata = AuthorizationServerMetadata(doc)
    for name, check in _AUTHLIB_CHECKS.items():
        if name in skipped:
            continue
        try:
            getattr(metadata, check)()
        except ValueError as exc:
            raise DiscoveryUnavailable(
                f"the discovery document at {url} is not valid RFC 8414 metadata ({exc})"
            ) from None
    return issuer


def _parse_cached(body: str) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def discover(
    profile: Profile,
    client: httpx.Client,
    cache: DocumentCache | None = None,
    *,
    now: float | None = None,
) -> ServerMetadata:
    """The profile's discovery document, validated, from the cache while fresh.

    When a refetch fails, a stale cached copy is returned (``stale=True``); with none, raises
    DiscoveryUnavailable (and records the failure so :func:`resolve_endpoints` does not ask
    again for a while). A profile without a discovery URL is a ConfigError.
    """
    url = profile.endpoints.discovery_url
    if not url:
        raise ConfigError(f"profile {profile.name!r} has no issuer, so nothing to discover")
    cache = cache if cache is not None else PROCESS_CACHE
    expected, explicit = profile.endpoints.issuer, profile.endpoints.explicit
    now = time.time() if now is None else now
    entry = cache.get(url)
    cached = _parse_cached(entry.body) if entry is not None and entry.body else None
    if entry is not None and cached is not None and entry.expires_at > now:
        issuer = check_document(cached, url, expected, explicit)
        return ServerMetadata(url, issuer, cached, entry.expires_at, cached=True)
    try:
        doc, cache_control = fetch_json(client, url, "discovery document")
        issuer = check_document(doc, url, expected, explicit)
    except DiscoveryUnavailable as exc:
        if cached is not None:
            until = now + RETRY_FAILED_AFTER_S
            cache.extend(url, until)
            log.info("%s; using the copy fetched earlier until %s", exc.message, _clock(until))
            issuer = check_document(cached, url, expected, explicit)
            return ServerMetadata(url, issuer, cached, until, cached=True, stale=True)
        cache.put(url, DISCOVERY, None, fetched_at=now, expires_at=now + RETRY_FAILED_AFTER_S)
        raise
    lifetime = cache_lifetime(cache_control, DISCOVERY_TTL_S, DISCOVERY_MAX_TTL_S)
    cache.put(url, DISCOVERY, json.dumps(doc), fetched_at=now, expires_at=now + lifetime)
    return ServerMetadata(url, issuer, doc, now + lifetime)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def resolve_endpoints(
    profile: Profile,
    client: httpx.Client,
    cache: DocumentCache | None = None,
    *,
    now: float | None = None,
) -> Endpoints:
    """The profile's endpoints with discovery applied (see the module's docstring for the
    precedence). Without a discovery URL the profile's endpoints are returned unchanged."""
    endpoints = profile.endpoints
    url = endpoints.discovery_url
    if not url:
        return endpoints
    wanted = [f for f in FIELDS if f not in endpoints.explicit]
    if not wanted:
        return endpoints
    cache = cache if cache is not None else PROCESS_CACHE
    now = time.time() if now is None else now
    fallback = bool(endpoints.token_url)  # the preset (or the profile) can stand in
    entry = cache.get(url)
    if fallback and entry is not None and entry.body is None and entry.expires_at > now:
        log.info(
            "discovery at %s failed recently; using the %s preset's endpoints until %s",
            url,
            profile.provider.title,
            _clock(entry.expires_at),
        )
        return endpoints
    try:
        metadata = discover(profile, client, cache, now=now)
    except DiscoveryUnavailable as exc:
        if not fallback:
            raise DiscoveryUnavailable(
                f"{exc.message}; the endpoints come from it: check the profile's issuer, or set "
                "authorize_url and token_url"
            ) from None
        log.info("%s; using the %s preset's endpoints", exc.message, profile.provider.title)
        return endpoints
    found: dict[str, Any] = {}
    for field in wanted:
        value = metadata.endpoint(field)
        if value is None and field in profile.provider.not_in_discovery:
            continue  # the platform serves it but does not list it: keep the preset's path
        if value is None and getattr(endpoints, field):
            log.info(
                "the discovery document at %s lists no %s; not using the preset's %s",
                url,
                FIELDS[field],
                getattr(endpoints, field),
            )
        found[field] = value
    return replace(endpoints, **found)


# -- the signing keys ----------------------------------------------------------------------


def signing_keys(
    client: httpx.Client,
    jwks_uri: str,
    cache: DocumentCache | None = None,
    *,
    refetch: bool = False,
    now: float | None = None,
) -> dict[str, Any] | None:
    """The JWKS at ``jwks_uri``, from the cache while fresh.

    ``refetch=True`` (a token named a key the cached set lacks) fetches again unless another
    refetch happened within :data:`UNKNOWN_KID_REFETCH_INTERVAL_S`; then it returns None.
    After expiry a failed fetch keeps the stale set in use; with none cached it raises
    DiscoveryUnavailable (exit 4).
    """
    cache = cache if cache is not None else PROCESS_CACHE
    now = time.time() if now is None else now
    entry = cache.get(jwks_uri)
    cached = _parse_cached(entry.body) if entry is not None and entry.body else None
    if refetch:
        if not cache.claim_refetch(jwks_uri, now, UNKNOWN_KID_REFETCH_INTERVAL_S):
            log.info(
                "not refetching %s: it was refetched less than %.0f s ago",
                jwks_uri,
                UNKNOWN_KID_REFETCH_INTERVAL_S,
            )
            return None
        log.info("the token names a key not in the cached JWKS; fetching %s again", jwks_uri)
    elif entry is not None and cached is not None and entry.expires_at > now:
        return cached
    try:
        keys, cache_control = fetch_json(client, jwks_uri, "signing keys (JWKS)")
        if not isinstance(keys.get("keys"), list):
            raise DiscoveryUnavailable(
                f"fetching the signing keys (JWKS) failed: {jwks_uri} has no 'keys' list"
            )
    except DiscoveryUnavailable as exc:
        if cached is not None:
            cache.extend(jwks_uri, now + RETRY_FAILED_AFTER_S)
            log.info("%s; using the keys fetched earlier", exc.message)
            return cached
        raise
    lifetime = cache_lifetime(cache_control, JWKS_TTL_S, JWKS_MAX_TTL_S)
    cache.put(jwks_uri, JWKS, json.dumps(keys), fetched_at=now, expires_at=now + lifetime)
    return keys
