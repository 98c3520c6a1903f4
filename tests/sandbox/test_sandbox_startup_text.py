"""The sandbox's start-up text is enough to sign in without the README (pipx installs have none)."""

from __future__ import annotations

import pytest

from vidauth_sandbox import SandboxConfig, SandboxServer
from vidauth_sandbox.server import describe

pytestmark = pytest.mark.slow  # starts processes or servers: not in the quick tier


def test_startup_text_gives_the_default_users_and_passwords() -> None:
    with SandboxServer(SandboxConfig()) as server:
        text = describe(server)
    assert "README" not in text
    assert "user:      alice  password: alice-sandbox-password" in text
    assert "user:      bob  password: bob-sandbox-password" in text


def test_startup_text_hides_passwords_that_are_not_the_public_defaults() -> None:
    config = SandboxConfig(users={"carol": "carol-private-password"})
    with SandboxServer(config) as server:
        text = describe(server)
    assert "carol" in text and "carol-private-password" not in text
