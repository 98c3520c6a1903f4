"""The sandbox authorization server, driven over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from vidauth_sandbox import SandboxClient, SandboxConfig, SandboxServer, id_provider_password
from vidauth_sandbox.browser import BrowserLoginError, complete_browser_login

SECRET = "test-secret-" + "x" * 20
GRANTS = ["authorization_code", "refresh_token", "password", "client_credentials"]


class Catcher:
    """A tiny redirect target on 127.0.0.1 that records the query of each GET."""

    def __init__(self) -> None:
        self.hits: list[dict[str, str]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                hits.append({k: v[0] for k, v in query.items()})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"You can close this window.")

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/redirect"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Env:
    server: SandboxServer
    redirect_uri: str
    catcher: Catcher
    client_id: str = "test-client"
    client_secret: str | None = SECRET
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.server.url}/Panopto/oauth2/connect/{path}"

    def authorize_url(self, client_id: str | None = None, **params: str) -> str:
        query = {
            "response_type": "code",
            "client_id": client_id or self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid api offline_access",
            "state": "st-" + secrets.token_hex(4),
            "nonce": "nonce-" + secrets.token_hex(4),
            **params,
        }
        return str(httpx.URL(self.url("authorize"), params=query))

    def login(self, **params: str) -> dict[str, str]:
        url = self.authorize_url(**params)
        response = complete_browser_login(url)
        assert response.status_code == 200
        return self.catcher.hits[-1]

    def token(self, auth: tuple[str, str] | None = None, **form: str) -> httpx.Response:
        if auth is None and "client_id" not in form:
            form = {"client_id": self.client_id, "client_secret": SECRET, **form}
        return httpx.post(self.url("token"), data=form, auth=auth)

    def exchange(self, code: str, **extra: str) -> httpx.Response:
        return self.token(
            grant_type="authorization_code", code=code, redirect_uri=self.redirect_uri, **extra
        )


@pytest.fixture
def make_env() -> Iterator[Any]:
    started: list[tuple[SandboxServer, Catcher]] = []

    def make(**config: Any) -> Env:
        catcher = Catcher()
        clients = [
            SandboxClient("test-client", SECRET, [catcher.uri], GRANTS),
            SandboxClient("public-client", None, [catcher.uri], ["authorization_code"]),
        ]
        server = SandboxServer(SandboxConfig(clients=clients, **config)).start()
        started.append((server, catcher))
        return Env(server, catcher.uri, catcher)

    yield make
    for server, catcher in started:
        server.stop()
        catcher.close()


@pytest.fixture
def env(make_env: Any) -> Env:
    return make_env()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _userinfo(env: Env, token: str) -> httpx.Response:
    return httpx.get(env.url("userinfo"), headers={"Authorization": f"Bearer {token}"})


# -- discovery -----------------------------------------------------------------------


def test_discovery_and_jwks(env: Env) -> None:
    issuer = f"{env.server.url}/Panopto/oauth2"
    assert env.server.issuer == issuer
    doc = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/connect/token"
    assert doc["authorization_endpoint"] == f"{issuer}/connect/authorize"
    assert doc["revocation_endpoint"] == f"{issuer}/connect/revocation"
    assert doc["userinfo_endpoint"] == f"{issuer}/connect/userinfo"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/openid-configuration/jwks"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"authorization_code", "refresh_token", "password", "client_credentials"} <= set(
        doc["grant_types_supported"]
    )
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["kid"]
    assert "d" not in keys[0]  # public part only


# -- authorization code flow ---------------------------------------------------------


def test_code_flow_issues_verifiable_id_token(env: Env) -> None:
    scope = "openid profile email api offline_access"
    url = env.authorize_url(state="st-1", nonce="nonce-abc", scope=scope)
    response = complete_browser_login(url)
    assert response.status_code == 200 and str(response.url).startswith(env.redirect_uri)
    hit = env.catcher.hits[-1]
    assert hit["state"] == "st-1" and hit["code"] and hit["session_state"]
    assert hit["scope"] == scope

    answer = env.exchange(hit["code"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["refresh_token"] and tokens["access_token"]

    jwks = httpx.get(f"{env.server.issuer}/.well-known/openid-configuration/jwks").json()
    decoded = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = decoded.claims
    assert decoded.header["kid"] == jwks["keys"][0]["kid"]
    assert claims["iss"] == env.server.issuer and claims["aud"] == "test-client"
    assert claims["nonce"] == "nonce-abc"
    # Like Panopto's: the ID token names nobody; the names come from userinfo.
    assert not {"preferred_username", "name", "email"} & set(claims)
    assert claims["exp"] > time.time() > claims["iat"] - 5 and claims["auth_time"]
    assert env.server.state.authenticate_access_token(tokens["access_token"]) == "alice"

    me = _userinfo(env, tokens["access_token"]).json()
    assert me["sub"] == claims["sub"] and me["preferred_username"] == "alice"
    assert me["name"] and me["email"]
    # A second sign-in reuses the login cookie... but this is a fresh browser: same subject.
    again = env.exchange(env.login()["code"]).json()
    again_claims = jwt.decode(again["id_token"], KeySet.import_key_set(jwks)).claims
    assert again_claims["sub"] == claims["sub"]
    # Without `profile email`, userinfo answers the subject only (as IdentityServer does).
    assert _userinfo(env, again["access_token"]).json() == {"sub": claims["sub"]}


def test_browser_keeps_login_session(env: Env) -> None:
    with httpx.Client() as browser:
        complete_browser_login(env.authorize_url(), client=browser)
        first = env.server.state.stats_snapshot()["logins"]
        complete_browser_login(env.authorize_url(), client=browser, password="unused")
    assert first == 1 and env.server.state.stats_snapshot()["logins"] == 1
    assert len(env.catcher.hits) == 2 and all("code" in h for h in env.catcher.hits)


def test_wrong_password_reshows_the_form(env: Env) -> None:
    with pytest.raises(BrowserLoginError, match="Invalid user name or password"):
        complete_browser_login(env.authorize_url(), password="wrong")
    assert env.catcher.hits == []


def test_code_is_one_time_and_reuse_revokes_its_tokens(env: Env) -> None:
    code = env.login()["code"]
    first = env.exchange(code).json()
    assert _userinfo(env, first["access_token"]).status_code == 200
    second = env.exchange(code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert code not in second.text
    assert _userinfo(env, first["access_token"]).status_code == 401
    refreshed = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    assert env.server.state.stats_snapshot()["code_reuse_detected"] == 1


def test_expired_code(make_env: Any) -> None:
    env = make_env(code_lifetime=1)
    code = env.login()["code"]
    time.sleep(1.2)
    answer = env.exchange(code)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_code_bound_to_redirect_uri(env: Env) -> None:
    code = env.login()["code"]
    answer = env.token(
        grant_type="authorization_code", code=code, redirect_uri=env.redirect_uri + "/other"
    )
    assert answer.json()["error"] == "invalid_grant"


def test_redirect_mismatch_shows_error_page_without_redirect(env: Env) -> None:
    other = "http://127.0.0.1:1/elsewhere"
    page = httpx.get(env.authorize_url(redirect_uri=other))
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect_uri" in page.text and other in page.text
    with pytest.raises(BrowserLoginError) as info:
        complete_browser_login(env.authorize_url(redirect_uri=other))
    assert "redirect_uri" in str(info.value) and "mismatch" in str(info.value)
    # No normalization: a trailing slash is a different URI.
    assert httpx.get(env.authorize_url(redirect_uri=env.redirect_uri + "/")).status_code == 400
    with pytest.raises(BrowserLoginError, match="Unknown client_id"):
        complete_browser_login(env.authorize_url(client_id="nobody"))
    assert env.catcher.hits == []


def test_deny_redirects_access_denied(env: Env) -> None:
    response = complete_browser_login(env.authorize_url(state="st-deny"), consent=False)
    assert response.status_code == 200
    hit = env.catcher.hits[-1]
    assert hit["error"] == "access_denied" and hit["state"] == "st-deny"
    assert hit["error_description"] and "code" not in hit


def test_redirectable_errors(env: Env) -> None:
    wrong_type = httpx.get(env.authorize_url(response_type="token", state="s1"))
    assert wrong_type.status_code == 302
    query = parse_qs(urlsplit(wrong_type.headers["location"]).query)
    assert wrong_type.headers["location"].startswith(env.redirect_uri)
    assert query["error"] == ["unsupported_response_type"] and query["state"] == ["s1"]
    bad_scope = httpx.get(env.authorize_url(scope="openid admin", state="s2"))
    assert bad_scope.status_code == 302
    assert parse_qs(urlsplit(bad_scope.headers["location"]).query)["error"] == ["invalid_scope"]
    plain = httpx.get(env.authorize_url(code_challenge="a" * 43, code_challenge_method="plain"))
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]


def test_consent_form_is_csrf_protected(env: Env) -> None:
    url = env.authorize_url()
    with httpx.Client() as browser:
        complete_browser_login(url, client=browser)  # logged in now
        forged = browser.post(url, data={"decision": "allow", "csrf_token": "x.y"})
    assert forged.status_code == 400 and "CSRF" in forged.text
    assert "location" not in forged.headers


# -- PKCE ------------------------------------------------------------------------------


def test_pkce_with_secret_rejected_when_quirk_on(env: Env) -> None:
    verifier = secrets.token_urlsafe(48)
    hit = env.login(code_challenge=_s256(verifier), code_challenge_method="S256")
    answer = env.exchange(hit["code"], code_verifier=verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_pkce_with_secret_accepted_when_quirk_off(make_env: Any) -> None:
    env = make_env(reject_pkce_with_secret=False)
    verifier = secrets.token_urlsafe(48)
    hit = env.login(code_challenge=_s256(verifier), code_challenge_method="S256")
    assert env.exchange(hit["code"], code_verifier=verifier).status_code == 200


def test_pkce_public_client(env: Env) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = {"code_challenge": _s256(verifier), "code_challenge_method": "S256"}
    hit = env.login(client_id="public-client", **challenge)
    wrong = env.token(
        grant_type="authorization_code", code=hit["code"], redirect_uri=env.redirect_uri,
        client_id="public-client", code_verifier=secrets.token_urlsafe(48),
    )  # fmt: skip
    assert wrong.json()["error"] == "invalid_grant"
    hit = env.login(client_id="public-client", **challenge)
    ok = env.token(
        grant_type="authorization_code", code=hit["code"], redirect_uri=env.redirect_uri,
        client_id="public-client", code_verifier=verifier,
    )  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert "refresh_token" not in ok.json()  # the client has no refresh_token grant
    hit = env.login(client_id="public-client")  # no challenge: a public client must use PKCE
    missing = env.token(
        grant_type="authorization_code", code=hit["code"], redirect_uri=env.redirect_uri,
        client_id="public-client",
    )  # fmt: skip
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


# -- refresh ---------------------------------------------------------------------------


def test_refresh_rotation_and_reuse_revokes_family(env: Env) -> None:
    first = env.exchange(env.login()["code"]).json()
    second = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert second_tokens["access_token"] != first["access_token"]
    third = env.token(
        grant_type="refresh_token", refresh_token=second_tokens["refresh_token"]
    ).json()
    assert _userinfo(env, third["access_token"]).status_code == 200

    reuse = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # The whole family is dead: the newest refresh token and every access token.
    latest = env.token(grant_type="refresh_token", refresh_token=third["refresh_token"])
    assert latest.json()["error"] == "invalid_grant"
    for token in (first, second_tokens, third):
        assert env.server.state.authenticate_access_token(token["access_token"]) is None
    stats = env.server.state.stats_snapshot()
    assert stats["token_requests"]["refresh_token"] == 4
    assert stats["token_successes"]["refresh_token"] == 2
    assert stats["refresh_reuse_detected"] == 1


def test_refresh_by_another_client_or_wider_scope_fails(env: Env) -> None:
    first = env.exchange(env.login()["code"]).json()
    wider = env.token(
        grant_type="refresh_token", refresh_token=first["refresh_token"], scope="openid profile"
    )
    assert wider.json()["error"] == "invalid_scope"
    basic = env.token(
        auth=("test-client", SECRET), grant_type="refresh_token",
        refresh_token=first["refresh_token"],
    )  # fmt: skip
    assert basic.status_code == 200  # the scope error did not burn the token


# -- other grants ----------------------------------------------------------------------


def test_password_grant(env: Env) -> None:
    answer = env.token(grant_type="password", username="bob", password="bob-sandbox-password")
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    # no scope asked: the client's ("openid profile email api offline_access" by default)
    assert tokens["scope"] == "openid profile email api offline_access" and tokens["refresh_token"]
    assert env.server.state.authenticate_access_token(tokens["access_token"]) == "bob"
    wrong = env.token(grant_type="password", username="bob", password="nope")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    narrow = env.token(
        grant_type="password", username="bob", password="bob-sandbox-password", scope="api"
    ).json()
    assert narrow["scope"] == "api" and "refresh_token" not in narrow


def test_id_provider_password_grant(env: Env) -> None:
    username = "NetID\\john"
    password = base64.b64encode(
        hashlib.sha256(b"netid\\john|sandbox-application-key").digest()
    ).decode()
    assert id_provider_password(username, "sandbox-application-key") == password
    answer = env.token(grant_type="password", username=username, password=password)
    assert answer.status_code == 200, answer.text
    access = answer.json()["access_token"]
    assert env.server.state.authenticate_access_token(access) == username
    assert _userinfo(env, access).json()["preferred_username"] == username
    wrong = env.token(grant_type="password", username="NetID\\mary", password=password)
    assert wrong.json()["error"] == "invalid_grant"


def test_client_credentials(env: Env) -> None:
    answer = env.token(auth=("test-client", SECRET), grant_type="client_credentials")
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["scope"] == "api" and "refresh_token" not in tokens and "id_token" not in tokens
    subject = env.server.state.authenticate_access_token(tokens["access_token"])
    assert subject == "client:test-client"
    bad = env.token(grant_type="client_credentials", scope="api openid")
    assert bad.json()["error"] == "invalid_scope"


def test_wrong_client_secret_is_invalid_client(env: Env) -> None:
    post = env.token(
        grant_type="client_credentials", client_id="test-client", client_secret="wrong"
    )
    assert post.status_code == 401 and post.json()["error"] == "invalid_client"
    assert post.headers["cache-control"] == "no-store"
    basic = env.token(auth=("test-client", "wrong"), grant_type="client_credentials")
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    unknown = env.token(auth=("nobody", "x"), grant_type="client_credentials")
    assert unknown.status_code == 401
    public = env.token(grant_type="password", client_id="public-client", username="a", password="b")
    assert public.status_code == 401
    unsupported = env.token(grant_type="urn:example:nope")
    assert unsupported.json()["error"] == "unsupported_grant_type"


# -- revocation, userinfo, faults --------------------------------------------------------


def test_revocation(env: Env) -> None:
    tokens = env.exchange(env.login()["code"]).json()
    revoke = httpx.post(
        env.url("revocation"),
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=("test-client", SECRET),
    )
    assert revoke.status_code == 200
    assert _userinfo(env, tokens["access_token"]).status_code == 401
    refreshed = env.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    unknown = httpx.post(
        env.url("revocation"),
        data={"token": "never-issued", "client_id": "test-client", "client_secret": SECRET},
    )
    assert unknown.status_code == 200
    other = env.token(grant_type="password", username="bob", password="bob-sandbox-password")
    access_only = httpx.post(
        env.url("revocation"),
        data={"token": other.json()["access_token"]},
        auth=("test-client", SECRET),
    )
    assert access_only.status_code == 200
    assert _userinfo(env, other.json()["access_token"]).status_code == 401
    assert env.token(
        grant_type="refresh_token", refresh_token=other.json()["refresh_token"]
    ).status_code == 200  # fmt: skip
    bad_auth = httpx.post(env.url("revocation"), data={"token": "x"}, auth=("test-client", "no"))
    assert bad_auth.status_code == 401
    assert env.server.state.stats_snapshot()["revocations"] == 4


def test_userinfo_after_expiry(make_env: Any) -> None:
    env = make_env(access_token_lifetime=1)
    tokens = env.token(grant_type="password", username="alice", password="alice-sandbox-password")
    access = tokens.json()["access_token"]
    assert tokens.json()["expires_in"] == 1
    assert _userinfo(env, access).status_code == 200
    time.sleep(1.2)
    expired = _userinfo(env, access)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert env.server.state.authenticate_access_token(access) is None
    assert httpx.get(env.url("userinfo")).status_code == 401
    assert env.server.state.stats_snapshot()["userinfo_calls"] == 3


def test_injected_token_failures(env: Env) -> None:
    env.server.state.inject_token_failures([503, 502])
    first = env.token(grant_type="client_credentials")
    assert first.status_code == 503 and first.headers["retry-after"] == "0"
    second = env.token(grant_type="client_credentials")
    assert second.status_code == 502 and second.text.startswith("<html>")
    assert env.token(grant_type="client_credentials").status_code == 200
    # Over HTTP, for client processes.
    queued = httpx.post(f"{env.server.url}/sandbox/faults", json={"token": [500]})
    assert queued.status_code == 200
    assert env.token(grant_type="client_credentials").status_code == 500
    stats = httpx.get(f"{env.server.url}/sandbox/stats").json()
    assert stats["injected_failures"] == 3
    assert stats["token_requests"]["client_credentials"] == 1  # faults are not processed
    assert httpx.post(f"{env.server.url}/sandbox/faults", json={"token": [200]}).status_code == 400


def test_reuse_grace_period_accepts_a_rotated_refresh_token_for_a_while(make_env: Any) -> None:
    env = make_env(refresh_reuse_grace=0.5)
    first = env.exchange(env.login()["code"]).json()
    second = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    again = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200 and again.status_code == 200, again.text
    assert _userinfo(env, again.json()["access_token"]).status_code == 200
    time.sleep(0.6)
    late = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    stats = env.server.state.stats_snapshot()
    assert stats["refresh_reuse_in_grace"] == 1 and stats["refresh_reuse_detected"] == 1


def test_lost_answers_are_processed_first(env: Env) -> None:
    first = env.exchange(env.login()["code"]).json()
    env.server.state.lose_token_answers(["502"])
    lost = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert lost.status_code == 502 and lost.text.startswith("<html>")
    # The refresh happened: presenting the same token again is reuse.
    reuse = env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    assert env.server.state.stats_snapshot()["refresh_reuse_detected"] == 1
    queued = httpx.post(f"{env.server.url}/sandbox/faults", json={"lose_answer": ["timeout"]})
    assert queued.status_code == 200
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            env.url("token"),
            data={"grant_type": "client_credentials", "client_id": "test-client"},
            auth=("test-client", SECRET),
            timeout=1.0,
        )
    assert time.monotonic() - started < 5
    stats = httpx.get(f"{env.server.url}/sandbox/stats").json()
    assert stats["lost_answers"] == 2 and stats["token_successes"]["client_credentials"] == 1
    bad = httpx.post(f"{env.server.url}/sandbox/faults", json={"lose_answer": ["drop"]})
    assert bad.status_code == 400


def test_hostile_bodies_and_token_delay(env: Env) -> None:
    env.server.state.hostile_token_answers([{"access_token": ["x"]}, '{"expires_in": 1e400}'])
    first = env.token(grant_type="client_credentials")
    assert first.status_code == 200 and first.json() == {"access_token": ["x"]}
    assert env.token(grant_type="client_credentials").text == '{"expires_in": 1e400}'
    stats = env.server.state.stats_snapshot()
    assert stats["hostile_answers"] == 2 and stats["token_requests"]["client_credentials"] == 0
    assert httpx.post(f"{env.server.url}/sandbox/faults", json={"token_delay": 0.5}).is_success
    started = time.monotonic()
    assert env.token(grant_type="client_credentials").status_code == 200
    assert time.monotonic() - started >= 0.5
    assert (
        httpx.post(f"{env.server.url}/sandbox/faults", json={"token_delay": -1}).status_code == 400
    )


def test_default_config() -> None:
    config = SandboxConfig()
    (client,) = config.clients
    assert (
        client.client_id == "vidauth-sandbox" and client.client_secret == "vidauth-sandbox-secret"
    )
    assert client.redirect_uris == ["http://localhost:9127/redirect"]
    assert set(client.grant_types) == set(GRANTS)
    assert config.users["alice"] == "alice-sandbox-password"
    with SandboxServer() as server:
        answer = httpx.post(
            f"{server.issuer}/connect/token",
            data={"grant_type": "client_credentials"},
            auth=("vidauth-sandbox", "vidauth-sandbox-secret"),
        )
        assert answer.status_code == 200
