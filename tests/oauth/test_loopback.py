"""The loopback listener, over real sockets."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.helpers.ports import free_port
from vidauth.errors import ConfigError
from vidauth.oauth.loopback import LoopbackListener, parse_redirect


def test_wrong_and_missing_state_and_stray_paths_keep_waiting() -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}/redirect"
    with LoopbackListener(uri, "the-state") as listener:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/redirect?code=c").status_code == 400
        assert httpx.get(f"{base}/redirect?code=c&state=other").status_code == 400
        assert httpx.get(f"{base}/favicon.ico").status_code == 404
        assert httpx.get(f"{base}/redirectX?code=c&state=the-state").status_code == 404
        assert httpx.post(f"{base}/redirect?code=c&state=the-state").status_code == 405
        assert listener.wait(0.2) is None
        ok = httpx.get(f"{base}/redirect?code=the-code&state=the-state&scope=openid")
        assert ok.status_code == 200 and "Signed in" in ok.text
        assert "the-code" not in ok.text
        result = listener.wait(1)
        assert result is not None and result.code == "the-code" and result.scope == "openid"
        assert listener.rejected == 2


def test_error_redirect_is_reported() -> None:
    port = free_port()
    with LoopbackListener(f"http://127.0.0.1:{port}/cb", "s1") as listener:
        page = httpx.get(
            f"http://127.0.0.1:{port}/cb",
            params={"error": "access_denied", "error_description": "<b>no</b>", "state": "s1"},
        )
        assert "<b>" not in page.text and "&lt;b&gt;" in page.text
        result = listener.wait(1)
        assert result is not None and result.error == "access_denied"


def test_error_with_wrong_state_is_ignored() -> None:
    port = free_port()
    with LoopbackListener(f"http://127.0.0.1:{port}/cb", "s1") as listener:
        r = httpx.get(
            f"http://127.0.0.1:{port}/cb", params={"error": "access_denied", "state": "x"}
        )
        assert r.status_code == 400
        assert listener.wait(0.2) is None


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ConfigError) as info:
            LoopbackListener(f"http://127.0.0.1:{port}/redirect", "s").start()
    message = str(info.value)
    assert f"port {port}" in message and "PANOPTO_REDIRECT_URI" in message and "\n" not in message


def test_second_live_listener_on_the_port_fails() -> None:
    port = free_port()
    with (
        LoopbackListener(f"http://127.0.0.1:{port}/redirect", "s1"),
        pytest.raises(ConfigError) as info,
    ):
        LoopbackListener(f"http://127.0.0.1:{port}/redirect", "s2").start()
    assert f"port {port}" in str(info.value)


def test_listener_can_start_again_right_after_a_sign_in() -> None:
    # The first redirect leaves the server side of its connection in TIME_WAIT; signing in again
    # at once (e.g. another profile) must still be able to bind the port.
    port = free_port()
    uri = f"http://127.0.0.1:{port}/redirect"
    for round_ in range(3):
        state = f"s{round_}"
        with LoopbackListener(uri, state) as listener:
            page = httpx.get(uri, params={"code": "c", "state": state})
            assert page.status_code == 200
            result = listener.wait(1)
            assert result is not None and result.code == "c"


def test_binds_loopback_only() -> None:
    port = free_port()
    with LoopbackListener(f"http://localhost:{port}/redirect", "s") as listener:
        for server in listener._servers:
            host = server.socket.getsockname()[0]
            assert host in ("127.0.0.1", "::1")


def test_refuses_non_loopback_redirect() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        LoopbackListener("https://example.com/redirect", "s")


@pytest.mark.parametrize(
    "query",
    ["", "state=", "code=x", "state=s&state=t&code=x", "state=%ff&code=x", "state=s%00&code=x"],
)
def test_parse_redirect_hostile(query: str) -> None:
    assert isinstance(parse_redirect(query, "s"), str)
