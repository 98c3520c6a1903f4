"""The sandbox's discovery knobs: a moveable JWKS, a failing discovery, max-age, omitted fields,
key rotation."""

from __future__ import annotations

from typing import Any

import httpx

from vidauth_sandbox.config import JWKS_PATH, OAUTH_PREFIX

MOVED = f"{OAUTH_PREFIX}/keys/current"


def _discovery(server: Any) -> httpx.Response:
    return httpx.get(f"{server.issuer}/.well-known/openid-configuration")


def test_moved_jwks_is_where_discovery_says_and_the_old_path_is_gone(make_sandbox: Any) -> None:
    server = make_sandbox(jwks_path=MOVED).server
    doc = _discovery(server).json()
    assert doc["jwks_uri"] == f"{server.url}{MOVED}"
    keys = httpx.get(doc["jwks_uri"])
    assert keys.status_code == 200 and keys.json()["keys"][0]["kid"]
    assert httpx.get(f"{server.url}{JWKS_PATH}").status_code == 404
    assert httpx.get(f"{server.url}{OAUTH_PREFIX}/keys/other").status_code == 404
    # the other OAuth routes still answer (the JWKS route is registered last)
    assert httpx.get(f"{server.url}{OAUTH_PREFIX}/connect/userinfo").status_code == 401
    assert server.state.stats_snapshot()["jwks_requests"] == 1


def test_discovery_status_knob_can_be_turned_while_running(sandbox: Any) -> None:
    server = sandbox.server
    server.state.config.discovery_status = 500
    down = _discovery(server)
    assert down.status_code == 500 and "json" not in down.headers["content-type"]
    server.state.config.discovery_status = None
    assert _discovery(server).json()["issuer"] == server.issuer
    assert server.state.stats_snapshot()["discovery_requests"] == 2


def test_max_age_and_omitted_fields(make_sandbox: Any) -> None:
    server = make_sandbox(
        discovery_max_age=600, jwks_max_age=7200, discovery_omit={"revocation_endpoint"}
    ).server
    answer = _discovery(server)
    assert answer.headers["cache-control"] == "public, max-age=600"
    assert "revocation_endpoint" not in answer.json() and "token_endpoint" in answer.json()
    jwks = httpx.get(answer.json()["jwks_uri"])
    assert jwks.headers["cache-control"] == "public, max-age=7200"
    plain = make_sandbox().server
    assert "cache-control" not in _discovery(plain).headers


def test_key_rotation_changes_the_kid_and_keeps_the_old_key_only_on_request(
    sandbox: Any,
) -> None:
    state = sandbox.server.state
    first = state.public_jwks()["keys"][0]["kid"]
    second = state.rotate_signing_key(keep_previous=True)
    assert second != first
    assert [k["kid"] for k in state.public_jwks()["keys"]] == [second, first]
    third = state.rotate_signing_key()
    assert [k["kid"] for k in state.public_jwks()["keys"]] == [third]
    assert all("d" not in k for k in state.public_jwks()["keys"])  # public parts only
