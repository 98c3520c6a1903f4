"""vidauth's stderr log handler follows ``sys.stderr``."""

from __future__ import annotations

import io
import logging

import pytest

from vidauth.logs import configure_logging


def test_log_lines_go_to_the_current_stderr_even_after_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command run in-process swaps stderr and closes it afterwards; a worker thread that logs
    later must reach the stderr of its time, not fail on the closed one."""
    root = logging.getLogger("vidauth")
    before = list(root.handlers)
    level = root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr("sys.stderr", first)
        configure_logging(logging.WARNING)
        logging.getLogger("vidauth.test").warning("one")
        first.close()
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("vidauth.test").warning("two")
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
    assert "two" in second.getvalue()
    assert "Logging error" not in second.getvalue()


def _fresh(tag: str) -> str:
    import secrets

    return f"{tag}-{secrets.token_hex(12)}"


def _entered_secrets() -> list[str]:
    """Fresh values, each fed through one place a secret enters the process."""
    from vidauth.config import Secret
    from vidauth.oauth.device import DeviceAuthorization
    from vidauth.oauth.grants import id_provider_password
    from vidauth.oauth.loopback import parse_redirect

    client_secret, code, device_code = _fresh("client-secret"), _fresh("code"), _fresh("device")
    Secret(client_secret)
    parse_redirect(f"code={code}&state=s-123456", "s-123456")
    DeviceAuthorization(device_code, "ABCD", "https://x/d", None, 60, 5)
    password = id_provider_password("alice", _fresh("application-key"))
    return [client_secret, code, device_code, password]


def test_secrets_are_masked_from_where_they_enter_in_any_wording() -> None:
    """Not by pattern (``code=…``): the bare value, in free text, is masked once it entered."""
    from vidauth.logs import redact

    for value in _entered_secrets():
        assert value not in redact(f"something mentioned {value} in passing"), value
    stranger = _fresh("never-registered")
    assert stranger in redact(f"something mentioned {stranger} in passing")


def test_an_authorization_request_registers_its_state_and_verifier() -> None:
    from vidauth.config import load_settings
    from vidauth.logs import redact
    from vidauth.oauth.authorization_code import AuthorizationRequest

    profile = load_settings(
        panopto_server="https://panopto.example",
        panopto_client_id="cid",
        panopto_client_secret="a-client-secret",
    ).profile()
    request = AuthorizationRequest.create(profile)
    for value in (request.state, request.code_verifier):
        if value is not None:
            assert value not in redact(f"it was {value}."), value
