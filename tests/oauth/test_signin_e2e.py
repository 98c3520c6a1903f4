"""Sign-in end to end: the real loopback listener, the sandbox over HTTP, the real store."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import SandboxSetup, free_port
from vidauth.cli.errors import sentence
from vidauth.errors import AuthorizationDenied, ErrorCode, OAuthError, SignInRequired
from vidauth.oauth.authorization_code import AuthorizationRequest
from vidauth.oauth.loopback import LoopbackListener
from vidauth_sandbox.browser import complete_browser_login


def test_sign_in_stores_validated_identity_and_tokens(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        assert account.subject  # from the validated ID token
        assert account.username == "alice"
        assert account.status == "active" and account.has_refresh_token
        assert set((account.scope or "").split()) >= {"openid", "api", "offline_access"}
        token = va.token_manager().access_token()
        me = httpx.get(
            f"{sandbox.server.url}/Panopto/oauth2/connect/userinfo",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert me.status_code == 200 and me.json()["preferred_username"] == "alice"
    stats = sandbox.server.state.stats_snapshot()
    assert _count(stats, "authorization_code") == 1


def _count(stats: dict[str, Any], grant: str) -> int:
    """Token-endpoint requests for ``grant`` the sandbox received (faults injected excluded)."""
    return int(stats["token_requests"].get(grant, 0))


def test_wrong_state_and_stray_requests_do_not_end_the_sign_in(sandbox: SandboxSetup) -> None:
    port = urlsplit(sandbox.redirect_uri).port
    answers: list[int] = []

    def hostile_then_real(url: str) -> None:
        def run() -> None:
            base = f"http://127.0.0.1:{port}"
            answers.append(httpx.get(f"{base}/redirect?code=forged&state=wrong").status_code)
            answers.append(httpx.get(f"{base}/redirect?code=forged").status_code)
            answers.append(httpx.get(f"{base}/favicon.ico").status_code)
            complete_browser_login(url)

        threading.Thread(target=run, daemon=True).start()

    with sandbox.vidauth() as va:
        account = va.login(open_browser=hostile_then_real, announce=lambda _s: None, timeout=30)
    assert account.username == "alice"
    assert answers == [400, 400, 404]
    assert _count(sandbox.server.state.stats_snapshot(), "authorization_code") == 1


def test_access_denied_is_a_clear_refusal(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va, pytest.raises(AuthorizationDenied) as info:
        sandbox.login(va, consent=False)
    assert info.value.exit_code == 3
    assert "access_denied" in str(info.value)
    with sandbox.vidauth() as va:
        assert va.store.list_accounts() == []


def test_timeout_when_nobody_signs_in(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va, pytest.raises(SignInRequired) as info:
        va.login(open_browser=None, announce=lambda _s: None, timeout=0.5)
    assert "0.5 s" in str(info.value) and info.value.exit_code == 3


def _code_via_browser(sandbox: SandboxSetup, va: Any) -> tuple[AuthorizationRequest, str]:
    request = AuthorizationRequest.create(va.profile)
    with LoopbackListener(request.redirect_uri, request.state) as listener:
        complete_browser_login(request.url)
        result = listener.wait(5)
    assert result is not None and result.code
    return request, result.code


def test_code_is_one_time(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        request, code = _code_via_browser(sandbox, va)
        va.token_endpoint.exchange_code(code, request.redirect_uri, None)
        with pytest.raises(OAuthError) as info:
            va.token_endpoint.exchange_code(code, request.redirect_uri, None)
    assert info.value.error == "invalid_grant" and info.value.exit_code == 3
    assert code not in str(info.value)


def test_expired_code(make_sandbox: Any) -> None:
    sandbox = make_sandbox(code_lifetime=1)
    with sandbox.vidauth() as va:
        request, code = _code_via_browser(sandbox, va)
        time.sleep(1.5)
        with pytest.raises(OAuthError) as info:
            va.token_endpoint.exchange_code(code, request.redirect_uri, None)
    assert info.value.error == "invalid_grant"


def test_redirect_uri_mismatch_is_refused_by_the_server(sandbox: SandboxSetup) -> None:
    other = f"http://127.0.0.1:{free_port()}/redirect"
    with sandbox.vidauth(panopto_redirect_uri=other) as va:
        request = AuthorizationRequest.create(va.profile)
        with pytest.raises(Exception) as info:
            complete_browser_login(request.url)
    assert "redirect_uri" in str(info.value)


def test_refresh_rotates_and_the_old_refresh_token_dies(make_sandbox: Any) -> None:
    sandbox = make_sandbox(access_token_lifetime=30)
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        before = va.store.load_tokens(account.id)
        token = va.token_manager().access_token(min_validity=60)  # 30 s left < 60: refresh
        after = va.store.load_tokens(account.id)
        assert token == after.access_token != before.access_token
        assert after.refresh_token != before.refresh_token
        with pytest.raises(OAuthError) as info:
            va.token_endpoint.refresh(before.refresh_token)
        assert info.value.error == "invalid_grant"
    assert _count(sandbox.server.state.stats_snapshot(), "refresh_token") == 2


def test_revoked_grant_marks_account_and_says_sign_in(make_sandbox: Any) -> None:
    sandbox = make_sandbox(access_token_lifetime=30)
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        tokens = va.store.load_tokens(account.id)
        va.token_endpoint.revoke(tokens.refresh_token, "refresh_token")
        with pytest.raises(SignInRequired) as info:
            va.token_manager().access_token(min_validity=60)
        assert info.value.code == ErrorCode.SIGN_IN_EXPIRED  # the CLI's wording says what to run
        assert "vidauth login" in sentence(info.value) and "vidauth" not in str(info.value)
        assert va.store.account_status(account.id) == "needs_signin"
        events = [e for e, _ in va.store.audit_events(account.id)]
        assert events[-1] == "refresh_failed"
        with pytest.raises(SignInRequired):  # and no further token-endpoint calls
            va.token_manager().access_token(min_validity=60)


def test_logout_revoke(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        tokens = va.store.load_tokens(account.id)
        va.logout(revoke=True)
        assert va.store.list_accounts() == []
        with pytest.raises(OAuthError):
            va.token_endpoint.refresh(tokens.refresh_token)
    r = httpx.get(
        f"{sandbox.server.url}/Panopto/oauth2/connect/userinfo",
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    assert r.status_code == 401


def test_transient_token_endpoint_failures_are_retried(make_sandbox: Any) -> None:
    # Retrying a refresh is safe only where the server has a reuse grace period (see
    # tests/oauth/test_refresh_hardening.py for strict rotation, Panopto's default).
    from tests.oauth.test_refresh_hardening import with_reuse

    sandbox = make_sandbox(access_token_lifetime=30, refresh_reuse_grace=60)
    with with_reuse(sandbox, "grace") as va:
        sandbox.login(va)
        sandbox.server.state.inject_token_failures([503, 502])
        assert va.token_manager().access_token(min_validity=60)


def test_code_exchange_is_not_replayed_after_a_server_error(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        request, code = _code_via_browser(sandbox, va)
        sandbox.server.state.inject_token_failures([502])
        with pytest.raises(Exception) as info:
            va.token_endpoint.exchange_code(code, request.redirect_uri, None)
        assert getattr(info.value, "exit_code", None) == 4
    assert _count(sandbox.server.state.stats_snapshot(), "authorization_code") <= 1


def test_pasted_redirect_url_is_validated_like_a_loopback_hit(sandbox: SandboxSetup) -> None:
    """Headless machine: the browser runs elsewhere and the person pastes the final address."""
    import io
    import os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from vidauth.oauth.authorization_code import receive_redirect

    port = urlsplit(sandbox.redirect_uri).port
    address_bar: list[str] = []

    class RemoteBrowserTab(BaseHTTPRequestHandler):  # what the person's browser ends up showing
        def do_GET(self) -> None:
            address_bar.append(f"http://127.0.0.1:{port}{self.path}")
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    tab = HTTPServer(("127.0.0.1", port), RemoteBrowserTab)
    threading.Thread(target=tab.handle_request, daemon=True).start()
    read_fd, write_fd = os.pipe()
    stdin = io.TextIOWrapper(io.FileIO(read_fd, "r"))
    person = io.TextIOWrapper(io.FileIO(write_fd, "w"))
    said: list[str] = []
    try:
        with sandbox.vidauth() as va:
            request = AuthorizationRequest.create(va.profile)

            def paste_after_browsing(url: str) -> None:
                def run() -> None:
                    complete_browser_login(url)
                    person.write("hello\n")
                    person.write(f"{sandbox.redirect_uri}?code=forged&state=wrong\n")
                    person.write(address_bar[0] + "\n")
                    person.flush()

                threading.Thread(target=run, daemon=True).start()

            code = receive_redirect(
                request,
                open_browser=paste_after_browsing,
                announce=said.append,
                timeout=20,
                paste_from=stdin,
                listen=False,
            )
            tokens = va.token_endpoint.exchange_code(code, request.redirect_uri, None)
            assert tokens.access_token
    finally:
        tab.server_close()
        person.close()
        stdin.close()
    complaints = [s for s in said if not s.startswith("http")]
    assert len(complaints) == 2
    assert any("not the redirect URL" in s for s in complaints)
    assert any("state does not match" in s for s in complaints)
