"""When discovery is unreachable, the JWKS is looked for at both IdentityServer layouts."""

from __future__ import annotations

from typing import Any

import pytest

from vidauth_sandbox.config import OAUTH_PREFIX
from vidauth_sandbox.state import SandboxUser

IDSRV3 = f"{OAUTH_PREFIX}/.well-known/jwks"


def test_discovery_down_finds_identityserver3_jwks(
    make_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(discovery_status=503, jwks_path=IDSRV3)
    caplog.set_level("INFO", logger="vidauth.discovery")
    with sandbox.vidauth(vidauth_retry_attempts=1) as va:
        account = sandbox.login(va)
    assert account.subject == SandboxUser.named("alice").subject  # the ID token validated
    assert "trying IdentityServer 3's" in caplog.text


def test_a_discovered_jwks_uri_is_not_second_guessed(make_sandbox: Any) -> None:
    """Discovery answers: its jwks_uri is used, and only it (no guessing at other paths)."""
    sandbox = make_sandbox(jwks_path=IDSRV3)
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
    assert account.subject == SandboxUser.named("alice").subject
    assert sandbox.server.state.stats_snapshot()["jwks_requests"] == 1
