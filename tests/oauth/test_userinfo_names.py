"""Names from userinfo: Panopto's ID tokens carry `sub`, not names (the sandbox's neither).

vidauth asks for `profile email` where discovery lists them, reads the names from the userinfo
endpoint at sign-in, stores them for `login`, `status` and the service's `expected_username`
check, and fills them in for accounts stored without one at their next refresh.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import SandboxSetup
from vidauth.config import Secret
from vidauth.oauth.oidc import Identity
from vidauth.service.connect import _expected


def _account(va: Any) -> Any:
    return va.store.find_account(va.profile.key)


def test_sign_in_reads_the_name_from_userinfo(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        assert va.sign_in_scope() == "openid profile email api offline_access"
        account = sandbox.login(va)
    assert account.username == "alice"
    stats = sandbox.server.state.stats_snapshot()
    assert stats["userinfo_calls"] == 1


def test_password_sign_in_reads_the_name_too(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = va.login_password("bob", Secret("bob-sandbox-password"))
    assert account.username == "bob" and account.scope is not None
    assert "profile" in account.scope.split() and "email" in account.scope.split()


def test_profile_email_only_where_the_provider_lists_them(make_sandbox: Any) -> None:
    sandbox = make_sandbox(discovery_omit={"scopes_supported"})
    with sandbox.vidauth() as va:
        assert va.sign_in_scope() == "openid api offline_access"
        account = sandbox.login(va)
    # userinfo answers the subject only without `profile email`: no name is made up
    assert account.username is None and account.subject


def test_an_account_stored_without_a_name_gets_it_at_its_next_refresh(
    sandbox: SandboxSetup,
) -> None:
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        va.store.set_username(account.id, account.subject)  # as stored before: its subject
        assert _account(va).username == account.subject
        va.token_manager().tokens(min_validity=10**9)  # forces a refresh
        assert _account(va).username == "alice"


def test_expected_username_is_preferred_username_then_email_any_case() -> None:
    alice = Identity.from_claims(
        "s", {"sub": "s", "preferred_username": "Alice", "email": "alice@example.edu"}
    )
    assert alice.names == ("Alice", "alice@example.edu") and alice.username == "Alice"
    assert _expected("ALICE", alice.names)
    assert _expected("Alice@Example.EDU", alice.names)
    assert not _expected("bob", alice.names)
    assert not _expected("alice", ())
    assert _expected(None, ())
