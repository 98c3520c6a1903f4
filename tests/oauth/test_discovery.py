"""Endpoints from discovery, presets as the fallback, and the store's cache of discovery
documents and JWKS — through real sockets against the sandbox."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import SandboxSetup
from tests.helpers.ports import free_port
from vidauth.config import Profile
from vidauth.errors import AuthorizationDenied, ConfigError, VidauthError
from vidauth.oauth import discovery
from vidauth.oauth.discovery import (
    DiscoveryUnavailable,
    MemoryCache,
    cache_lifetime,
    check_document,
    resolve_endpoints,
    signing_keys,
)
from vidauth.oauth.oidc import validate_id_token
from vidauth.store import Database
from vidauth.store.discovery_cache import StoreDiscoveryCache
from vidauth.store.models import DiscoveryCacheEntry
from vidauth_sandbox.config import JWKS_PATH, OAUTH_PREFIX

MOVED = f"{OAUTH_PREFIX}/keys/2026"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[StoreDiscoveryCache]:
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    db.migrate()
    yield StoreDiscoveryCache(db)
    db.dispose()


def _profile(sandbox: SandboxSetup) -> Profile:
    """The default (Panopto) profile for the sandbox, endpoints not yet discovered."""
    with sandbox.vidauth() as va:
        return va.settings.profile()  # type: ignore[no-any-return]


def _stat(sandbox: SandboxSetup, name: str) -> int:
    return int(sandbox.server.state.stats_snapshot().get(name, 0))


def _row(cache: StoreDiscoveryCache, url: str) -> DiscoveryCacheEntry:
    with cache.db.session() as session:
        row = session.get(DiscoveryCacheEntry, url)
        assert row is not None
        return row


# -- endpoints ---------------------------------------------------------------------------


def test_moved_jwks_sign_in_validates_the_id_token(make_sandbox: Any) -> None:
    sandbox = make_sandbox(jwks_path=MOVED)
    with sandbox.vidauth() as va:
        assert va.profile.endpoints.jwks_uri == f"{sandbox.server.url}{MOVED}"
        account = sandbox.login(va)
    assert account.username == "alice" and account.subject
    assert _stat(sandbox, "jwks_requests") == 1
    assert httpx.get(f"{sandbox.server.url}{JWKS_PATH}").status_code == 404


@pytest.mark.parametrize("status", [404, 500])
def test_discovery_down_falls_back_to_the_preset(
    make_sandbox: Any, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(discovery_status=status)
    caplog.set_level("INFO", logger="vidauth.discovery")
    with sandbox.vidauth(vidauth_retry_attempts=1) as va:
        assert va.profile.endpoints.jwks_uri == f"{sandbox.server.url}{JWKS_PATH}"
        account = sandbox.login(va)
    # Without discovery, nothing says the provider offers `profile email`: they are not asked
    # for, and userinfo (like IdentityServer's) names nobody without them.
    assert account.subject and account.username is None
    assert f"HTTP {status}" in caplog.text and "using the Panopto preset's endpoints" in caplog.text


def test_discovery_down_and_jwks_moved_fails_clearly(make_sandbox: Any) -> None:
    sandbox = make_sandbox(discovery_status=503, jwks_path=MOVED)
    with sandbox.vidauth(vidauth_retry_attempts=1) as va, pytest.raises(VidauthError) as info:
        sandbox.login(va)
    assert info.value.exit_code == 4 and "JWKS" in info.value.message
    assert "HTTP 404" in info.value.message


def test_explicit_profile_url_wins_and_discovery_is_not_consulted_for_it(
    make_sandbox: Any, clean_env: Path
) -> None:
    # The document lacks token_endpoint (invalid RFC 8414 metadata, unless the profile sets it)
    # and has moved its JWKS: only the explicit token_url makes sign-in work, and the JWKS still
    # comes from discovery.
    sandbox = make_sandbox(jwks_path=MOVED, discovery_omit={"token_endpoint"})
    token_url = f"{sandbox.server.url}{OAUTH_PREFIX}/connect/token"
    revocation_url = f"{sandbox.server.url}/somewhere/else/revoke"
    (clean_env / "vidauth.toml").write_text(
        "[profiles.site]\n"
        'provider = "panopto"\n'
        f'server = "{sandbox.server.url}"\n'
        f'client_id = "{sandbox.client_id}"\n'
        f'client_secret = "{sandbox.client_secret}"\n'
        f'redirect_uri = "{sandbox.redirect_uri}"\n'
        f'token_url = "{token_url}"\n'
        f'revocation_url = "{revocation_url}"\n'
    )
    with sandbox.vidauth(vidauth_profile="site") as va:
        endpoints = va.profile.endpoints
        assert endpoints.explicit == {"token_url", "revocation_url"}
        assert endpoints.token_url == token_url and endpoints.revocation_url == revocation_url
        assert endpoints.jwks_uri == f"{sandbox.server.url}{MOVED}"
        assert sandbox.login(va).username == "alice"


def test_without_the_explicit_url_that_document_is_unusable(make_sandbox: Any) -> None:
    sandbox = make_sandbox(jwks_path=MOVED, discovery_omit={"token_endpoint"})
    with sandbox.vidauth() as va:  # falls back to the preset, whose JWKS path is gone
        assert va.profile.endpoints.jwks_uri == f"{sandbox.server.url}{JWKS_PATH}"


def test_oidc_profile_takes_every_endpoint_from_discovery(
    make_sandbox: Any, clean_env: Path
) -> None:
    sandbox = make_sandbox(jwks_path=MOVED)
    _oidc_profile(clean_env, sandbox)
    with sandbox.vidauth(vidauth_profile="op") as va:
        e = va.profile.endpoints
        base = sandbox.server.url + OAUTH_PREFIX
        assert (e.authorize_url, e.token_url, e.revocation_url, e.userinfo_url) == (
            f"{base}/connect/authorize",
            f"{base}/connect/token",
            f"{base}/connect/revocation",
            f"{base}/connect/userinfo",
        )
        assert e.jwks_uri == f"{sandbox.server.url}{MOVED}"
        assert sandbox.login(va).username == "alice"


def _oidc_profile(directory: Path, sandbox: SandboxSetup, issuer: str | None = None) -> None:
    (directory / "vidauth.toml").write_text(
        "[profiles.op]\n"
        'provider = "oidc"\n'
        f'issuer = "{issuer or sandbox.server.issuer}"\n'
        f'client_id = "{sandbox.client_id}"\n'
        f'client_secret = "{sandbox.client_secret}"\n'
        f'redirect_uri = "{sandbox.redirect_uri}"\n'
        'scope = "openid api offline_access"\n'
        "pkce = false\n"
    )


def test_issuer_mismatch_is_refused_not_fallen_back_from(
    sandbox: SandboxSetup, clean_env: Path
) -> None:
    _oidc_profile(clean_env, sandbox, issuer=sandbox.server.issuer + "/")
    with sandbox.vidauth(vidauth_profile="op") as va, pytest.raises(ConfigError) as info:
        va.profile  # noqa: B018
    assert info.value.exit_code == 2
    assert "names issuer" in info.value.message and "identical" in info.value.message


def test_oidc_without_discovery_has_no_fallback(make_sandbox: Any, clean_env: Path) -> None:
    sandbox = make_sandbox(discovery_status=404)
    _oidc_profile(clean_env, sandbox)
    with sandbox.vidauth(vidauth_profile="op") as va, pytest.raises(DiscoveryUnavailable) as info:
        va.profile  # noqa: B018
    assert info.value.exit_code == 4 and "set authorize_url and token_url" in info.value.message


def test_unreachable_discovery_falls_back(sandbox: SandboxSetup) -> None:
    from dataclasses import replace

    profile = _profile(sandbox)
    dead = f"http://127.0.0.1:{free_port()}/Panopto/oauth2/.well-known/openid-configuration"
    profile = replace(profile, endpoints=replace(profile.endpoints, discovery_url=dead))
    with httpx.Client() as client:
        assert resolve_endpoints(profile, client, MemoryCache()) == profile.endpoints


# -- the cache ---------------------------------------------------------------------------


def test_discovery_is_cached_for_its_lifetime_then_fetched_again(
    make_sandbox: Any, cache: StoreDiscoveryCache
) -> None:
    sandbox = make_sandbox(discovery_max_age=600)
    profile, now = _profile(sandbox), 1_000_000.0
    with httpx.Client() as client:
        resolve_endpoints(profile, client, cache, now=now)
        resolve_endpoints(profile, client, cache, now=now + 599)
        assert _stat(sandbox, "discovery_requests") == 1
        assert _row(cache, profile.endpoints.discovery_url or "").expires_at == now + 600
        # the sandbox moves its JWKS; the next fetch after expiry sees it
        sandbox.server.state.config.jwks_path = MOVED
        endpoints = resolve_endpoints(profile, client, cache, now=now + 601)
    assert _stat(sandbox, "discovery_requests") == 2
    assert endpoints.jwks_uri == f"{sandbox.server.url}{MOVED}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 3600.0),
        ("public, max-age=600", 600.0),
        ("max-age=5", 300.0),  # below the floor
        ("max-age=99999999", 86400.0),  # above the ceiling
        ("no-store", 300.0),
        ("no-cache, must-revalidate", 300.0),
        ("private", 3600.0),
        ("max-age=abc", 3600.0),
    ],
)
def test_cache_lifetime_bounds(header: str | None, expected: float) -> None:
    assert cache_lifetime(header, 3600.0, 86400.0) == expected


def test_jwks_cache_expires(make_sandbox: Any, cache: StoreDiscoveryCache) -> None:
    sandbox = make_sandbox()  # no Cache-Control: the 24 h default
    uri, now = f"{sandbox.server.url}{JWKS_PATH}", 2_000_000.0
    with httpx.Client() as client:
        first = signing_keys(client, uri, cache, now=now)
        assert signing_keys(client, uri, cache, now=now + 86399) == first
        assert _stat(sandbox, "jwks_requests") == 1
        sandbox.server.state.rotate_signing_key()
        fresh = signing_keys(client, uri, cache, now=now + 86401)
    assert _stat(sandbox, "jwks_requests") == 2
    assert fresh != first and fresh is not None
    assert _row(cache, uri).expires_at == now + 86401 + 86400


def test_stale_copies_serve_while_the_provider_is_down(
    make_sandbox: Any, cache: StoreDiscoveryCache
) -> None:
    sandbox = make_sandbox(jwks_path=MOVED)
    profile, now = _profile(sandbox), 3_000_000.0
    uri = f"{sandbox.server.url}{MOVED}"
    with httpx.Client() as client:
        resolve_endpoints(profile, client, cache, now=now)
        keys = signing_keys(client, uri, cache, now=now)
        sandbox.server.state.config.discovery_status = 500
        sandbox.server.state.config.jwks_path = "/nowhere"
        later = now + 10 * 86400
        endpoints = resolve_endpoints(profile, client, cache, now=later)
        assert endpoints.jwks_uri == uri  # the stale document, not the preset
        assert signing_keys(client, uri, cache, now=later) == keys


def test_failed_discovery_is_not_retried_for_a_while(
    make_sandbox: Any, cache: StoreDiscoveryCache
) -> None:
    sandbox = make_sandbox(discovery_status=404, jwks_path=MOVED)
    profile, now = _profile(sandbox), 4_000_000.0
    with httpx.Client() as client:
        assert resolve_endpoints(profile, client, cache, now=now) == profile.endpoints
        sandbox.server.state.config.discovery_status = None
        assert resolve_endpoints(profile, client, cache, now=now + 60) == profile.endpoints
        assert _stat(sandbox, "discovery_requests") == 1
        after = resolve_endpoints(profile, client, cache, now=now + 301)
    assert after.jwks_uri == f"{sandbox.server.url}{MOVED}"
    assert _stat(sandbox, "discovery_requests") == 2


def test_key_rotation_refetches_the_jwks_once(
    sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = sandbox.server.state
    with sandbox.vidauth() as va:
        sandbox.login(va)
        state.rotate_signing_key()
        assert sandbox.login(va).username == "alice"  # unknown kid → one refetch
        assert _stat(sandbox, "jwks_requests") == 2
        state.rotate_signing_key()  # again, within the refetch interval: not refetched
        with pytest.raises(AuthorizationDenied) as info:
            sandbox.login(va)
        assert "kid" in info.value.message and _stat(sandbox, "jwks_requests") == 2
        monkeypatch.setattr(discovery, "UNKNOWN_KID_REFETCH_INTERVAL_S", 0.0)
        assert sandbox.login(va).username == "alice"
    assert _stat(sandbox, "jwks_requests") == 3


def _forged(issuer: str, audience: str, kid: str | None) -> str:
    key = RSAKey.generate_key(2048, parameters={"kid": kid} if kid else None)
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": "mallory", "iat": now, "exp": now + 60}
    header = {"alg": "RS256", **({"kid": kid} if kid else {})}
    return jwt.encode(header, claims, key)


@pytest.mark.parametrize("kid", ["attacker-key", None])
def test_a_flood_of_forged_tokens_costs_at_most_one_refetch(
    sandbox: SandboxSetup, cache: StoreDiscoveryCache, kid: str | None
) -> None:
    uri, issuer = f"{sandbox.server.url}{JWKS_PATH}", sandbox.server.issuer
    with httpx.Client() as client:
        for _ in range(20):
            with pytest.raises(AuthorizationDenied):
                validate_id_token(
                    _forged(issuer, sandbox.client_id, kid),
                    client=client,
                    jwks_uri=uri,
                    issuer=issuer,
                    client_id=sandbox.client_id,
                    nonce=None,
                    cache=cache,
                )
    assert _stat(sandbox, "jwks_requests") == 2  # the first fetch and one refetch


def test_the_cache_is_shared_through_the_store(make_sandbox: Any) -> None:
    sandbox = make_sandbox(jwks_path=MOVED)
    with sandbox.vidauth() as va:
        sandbox.login(va)
    with sandbox.vidauth() as va:  # a second process would open the same store
        sandbox.login(va)
    assert _stat(sandbox, "discovery_requests") == 1 and _stat(sandbox, "jwks_requests") == 1


# -- hostile documents -------------------------------------------------------------------

GOOD = {
    "issuer": "https://id.example.edu",
    "authorization_endpoint": "https://id.example.edu/authorize",
    "token_endpoint": "https://id.example.edu/token",
    "jwks_uri": "https://keys.example.edu/jwks",
}


def test_a_good_document_passes() -> None:
    assert check_document(GOOD, "u", "https://id.example.edu") == "https://id.example.edu"


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"issuer": "https://evil.example"}, ConfigError, "names issuer"),
        ({"issuer": None}, DiscoveryUnavailable, "names no issuer"),
        ({"token_endpoint": "http://id.example.edu/token"}, ConfigError, "plain http"),
        ({"jwks_uri": "http://keys.example.edu/jwks"}, ConfigError, "jwks_uri"),
        ({"userinfo_endpoint": "ftp://id.example.edu/me"}, ConfigError, "https://"),
        ({"token_endpoint": ["https://x"]}, DiscoveryUnavailable, "list"),
        ({"token_endpoint": None}, DiscoveryUnavailable, "token_endpoint"),
        ({"authorization_endpoint": None}, DiscoveryUnavailable, "authorization_endpoint"),
    ],
)
def test_hostile_documents(change: dict[str, Any], error: type[Exception], words: str) -> None:
    doc = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(error) as info:
        check_document(doc, "https://id.example.edu/.well-known/x", "https://id.example.edu")
    assert words in str(info.value)


def test_an_insecure_endpoint_the_profile_overrides_is_not_looked_at() -> None:
    doc = {**GOOD, "token_endpoint": "http://id.example.edu/token"}
    check_document(doc, "u", "https://id.example.edu", frozenset({"token_url"}))


class _Hostile(BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path, b"")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>hello</html>", "without a JSON object"),
        (b"[1, 2]", "without a JSON object"),
        (b"\xff\xfe", "without a JSON object"),
        (json.dumps({"pad": "x" * (600 * 1024)}).encode(), "more than 512 KiB"),
    ],
)
def test_hostile_bodies(hostile: str, body: bytes, words: str) -> None:
    _Hostile.bodies["/doc"] = body
    with httpx.Client() as client, pytest.raises(DiscoveryUnavailable) as info:
        discovery.fetch_json(client, f"{hostile}/doc", "discovery document")
    assert words in info.value.message


def test_jwks_without_keys_is_unusable(hostile: str) -> None:
    _Hostile.bodies["/jwks"] = b'{"not_keys": []}'
    with httpx.Client() as client, pytest.raises(DiscoveryUnavailable) as info:
        signing_keys(client, f"{hostile}/jwks", MemoryCache())
    assert "no 'keys' list" in info.value.message


def test_racing_first_writes_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.migrate()
    try:
        caches = [StoreDiscoveryCache(db) for _ in range(8)]
        barrier = threading.Barrier(len(caches))
        errors: list[BaseException] = []

        def write(cache: StoreDiscoveryCache, n: int) -> None:
            barrier.wait()
            try:
                body = json.dumps({"n": n})
                cache.put(
                    "https://id.example.edu/jwks", "jwks", body, fetched_at=1.0, expires_at=2.0
                )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(c, n)) for n, c in enumerate(caches)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        entry = caches[0].get("https://id.example.edu/jwks")
        assert entry is not None and json.loads(entry.body or "")["n"] in range(8)
        assert caches[0].claim_refetch("https://id.example.edu/jwks", 100.0, 60.0)
        assert not caches[1].claim_refetch("https://id.example.edu/jwks", 130.0, 60.0)
        assert caches[2].claim_refetch("https://id.example.edu/jwks", 161.0, 60.0)
    finally:
        db.dispose()
