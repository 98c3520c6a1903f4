"""Smoke tests proving the third-party server fixtures work: a full authorization-code flow by hand
(state, nonce, PKCE S256), refresh with rotation, revocation, and the device flow."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.thirdparty.servers import RedirectCatcher, ThirdPartyServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["dot_server", "oidc_provider_server"])
def server(request: pytest.FixtureRequest) -> ThirdPartyServer:
    return request.getfixturevalue(request.param)


def _client(server: ThirdPartyServer) -> httpx.Client:
    return httpx.Client(auth=(server.client_id, server.client_secret), timeout=15.0)


def _authorize(server: ThirdPartyServer) -> tuple[dict[str, str], str, str]:
    """Browser log-in + consent; returns (redirect query, code_verifier, nonce)."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": server.client_id,
        "redirect_uri": server.redirect_uri,
        "scope": server.scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    with RedirectCatcher(server.redirect_uri) as catcher:
        resp = server.browser_login(f"{server.authorize_url}?{urlencode(query)}")
        assert resp.status_code == 200, resp.text
        assert len(catcher.requests) == 1
        params = catcher.params
    assert params.get("state") == state, params
    assert "code" in params, params
    if "iss" in params:  # RFC 9207, oidc-provider sends it
        assert params["iss"] == server.issuer
    return params, verifier, nonce


def _check_id_token(server: ThirdPartyServer, id_token: str, nonce: str) -> None:
    assert server.jwks_uri
    keys = KeySet.import_key_set(httpx.get(server.jwks_uri, timeout=5.0).json())
    claims = jwt.decode(id_token, keys).claims
    assert claims["iss"] == server.issuer
    assert claims["aud"] in (server.client_id, [server.client_id])
    assert claims["nonce"] == nonce
    assert claims["exp"] > time.time()


def test_authorization_code_refresh_revoke(server: ThirdPartyServer) -> None:
    params, verifier, nonce = _authorize(server)
    with _client(server) as c:
        # code -> tokens
        r = c.post(
            server.token_url,
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": server.redirect_uri,
                "code_verifier": verifier,
            },
        )
        assert r.status_code == 200, r.text
        tok = r.json()
        assert tok["token_type"].lower() == "bearer"
        assert 0 < tok["expires_in"] <= server.access_token_ttl
        at1, rt1 = tok["access_token"], tok["refresh_token"]
        _check_id_token(server, tok["id_token"], nonce)

        assert server.userinfo_url
        info = httpx.get(server.userinfo_url, headers={"Authorization": f"Bearer {at1}"})
        assert info.status_code == 200, info.text
        assert info.json()["sub"]

        # refresh: rotated, and the old refresh token is now rejected
        r = c.post(server.token_url, data={"grant_type": "refresh_token", "refresh_token": rt1})
        assert r.status_code == 200, r.text
        at2, rt2 = r.json()["access_token"], r.json()["refresh_token"]
        assert rt2 != rt1 and at2 != at1
        old = c.post(server.token_url, data={"grant_type": "refresh_token", "refresh_token": rt1})
        assert old.status_code == 400 and old.json()["error"] == "invalid_grant", old.text

        # revoke the access token, then the refresh token
        assert server.revocation_url
        r = c.post(server.revocation_url, data={"token": at2, "token_type_hint": "access_token"})
        assert r.status_code == 200, r.text
        info = httpx.get(server.userinfo_url, headers={"Authorization": f"Bearer {at2}"})
        assert info.status_code == 401, info.text
        r = c.post(server.revocation_url, data={"token": rt2, "token_type_hint": "refresh_token"})
        assert r.status_code == 200, r.text
        gone = c.post(server.token_url, data={"grant_type": "refresh_token", "refresh_token": rt2})
        assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant", gone.text

        # the code is single-use (oidc-provider also revokes every token issued from a replayed
        # code, so this comes last)
        again = c.post(
            server.token_url,
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": server.redirect_uri,
                "code_verifier": verifier,
            },
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refusing_consent_redirects_access_denied(server: ThirdPartyServer) -> None:
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": server.client_id,
        "redirect_uri": server.redirect_uri,
        "scope": server.scope,
        "state": state,
        "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    with RedirectCatcher(server.redirect_uri) as catcher:
        server.browser_login(f"{server.authorize_url}?{urlencode(query)}", consent=False)
        params = catcher.params
    assert params["error"] == "access_denied" and params["state"] == state


def test_dot_requires_pkce(dot_server: ThirdPartyServer) -> None:
    query = {
        "response_type": "code",
        "client_id": dot_server.client_id,
        "redirect_uri": dot_server.redirect_uri,
        "scope": dot_server.scope,
        "state": "s",
    }
    resp = dot_server.browser_login(f"{dot_server.authorize_url}?{urlencode(query)}", deliver=False)
    assert "error=invalid_request" in resp.headers["location"]


@pytest.mark.parametrize("complete", [True, False], ids=["verification_uri_complete", "typed"])
def test_oidc_provider_device_flow(oidc_provider_server: ThirdPartyServer, complete: bool) -> None:
    server = oidc_provider_server
    assert server.device_authorization_url
    with _client(server) as c:
        r = c.post(server.device_authorization_url, data={"scope": server.scope})
        assert r.status_code == 200, r.text
        d = r.json()
        grant = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": d["device_code"],
        }
        pending = c.post(server.token_url, data=grant)
        assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

        uri = d["verification_uri_complete"] if complete else d["verification_uri"]
        server.device_approve(uri, d["user_code"])

        r = c.post(server.token_url, data=grant)
        assert r.status_code == 200, r.text
        tok = r.json()
        assert tok["access_token"] and tok["refresh_token"] and tok["id_token"]
        r = c.post(
            server.token_url,
            data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["refresh_token"] != tok["refresh_token"]
