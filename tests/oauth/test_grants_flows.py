"""Device flow (RFC 8628), platform quirks (Ingest, Omniport) and error lines, against scripted
HTTP servers (httpx.MockTransport) and vidauth's real loopback listener."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import free_port
from vidauth.client import Vidauth
from vidauth.config import Profile, load_settings
from vidauth.errors import AuthorizationDenied, OAuthError, SignInRequired
from vidauth.http import RetryPolicy, build_client
from vidauth.oauth import device
from vidauth.oauth.errors import _FIXES, oauth_error
from vidauth.oauth.token_endpoint import TokenEndpoint

Handler = Callable[[httpx.Request], httpx.Response]


def make_profile(clean_env: Path, body: str, name: str = "p") -> Profile:
    (clean_env / "vidauth.toml").write_text(f"[profiles.{name}]\n{body}\n")
    return load_settings(env_file=False, vidauth_profile=name).profile()


def endpoint(profile: Profile, handler: Handler) -> TokenEndpoint:
    return TokenEndpoint(profile, build_client(transport=httpx.MockTransport(handler)))


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


# -- device flow -------------------------------------------------------------------------------

DEVICE_PROFILE = """provider = "oauth2"
client_id = "dev"
client_secret = "dev-secret"
token_url = "https://op.example/token"
device_authorization_url = "https://op.example/device"
scope = "openid offline_access"
"""


def device_server(answers: list[dict[str, Any]], seen: list[dict[str, str]]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        data = form(request)
        seen.append(data)
        if request.url.path == "/device":
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(
                200,
                json={
                    "device_code": "dc-secret",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://op.example/activate",
                    "expires_in": 600,
                    "interval": 5,
                },
            )
        assert data["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
        answer = answers.pop(0)
        return httpx.Response(200 if "access_token" in answer else 400, json=answer)

    return handle


def test_device_flow_waits_slows_down_and_succeeds(clean_env: Path) -> None:
    profile = make_profile(clean_env, DEVICE_PROFILE)
    seen: list[dict[str, str]] = []
    answers = [
        {"error": "authorization_pending"},
        {"error": "slow_down"},
        {"error": "authorization_pending"},
        {"access_token": "at", "token_type": "Bearer", "refresh_token": "rt", "expires_in": 300},
    ]
    ep = endpoint(profile, device_server(answers, seen))
    started = device.start(ep, profile)
    assert started.user_code == "WDJB-MJHT" and "dc-secret" not in repr(started)
    assert seen[0] == {"scope": "openid offline_access"}
    slept: list[float] = []
    tokens = device.poll(ep, started, sleep=slept.append, clock=lambda: 0.0)
    assert tokens.access_token == "at"
    assert slept == [5, 5, 10, 10]  # slow_down adds 5 s, for good


@pytest.mark.parametrize(
    ("error", "raised"),
    [("access_denied", AuthorizationDenied), ("expired_token", SignInRequired)],
)
def test_device_flow_refused_or_expired(
    clean_env: Path, error: str, raised: type[Exception]
) -> None:
    profile = make_profile(clean_env, DEVICE_PROFILE)
    ep = endpoint(profile, device_server([{"error": error}], []))
    with pytest.raises(raised) as info:
        device.poll(ep, device.start(ep, profile), sleep=lambda _s: None)
    assert getattr(info.value, "exit_code", None) == 3


def test_device_flow_gives_up_at_the_deadline(clean_env: Path) -> None:
    profile = make_profile(clean_env, DEVICE_PROFILE)
    ep = endpoint(profile, device_server([{"error": "authorization_pending"}] * 5, []))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(SignInRequired, match="expired"):
        device.poll(ep, device.start(ep, profile), sleep=sleep, clock=lambda: now[0] * 50)


def test_device_flow_needs_an_advertised_endpoint(clean_env: Path) -> None:
    profile = make_profile(
        clean_env, 'provider = "oauth2"\nclient_id = "x"\ntoken_url = "https://op.example/t"'
    )
    with pytest.raises(Exception, match="no device authorization endpoint"):
        device.start(endpoint(profile, lambda r: httpx.Response(500)), profile)


# -- platform quirks through the real loopback listener --------------------------------------


def browser_that_delivers(delivered: dict[str, float]) -> Callable[[str], None]:
    """Acts as the provider: redirects straight back with a code and the request's state."""

    def open_browser(url: str) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        delivered["query"] = query  # type: ignore[assignment]

        def go() -> None:
            delivered["at"] = time.monotonic()
            httpx.get(query["redirect_uri"], params={"code": "the-code", "state": query["state"]})

        threading.Thread(target=go, daemon=True).start()

    return open_browser


def test_ingest_quirks(clean_env: Path) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/oauth/ingest"
    profile = make_profile(
        clean_env,
        f"""provider = "ingest"
client_id = "IngestNetwork123"
client_secret = "ingest-secret"
redirect_uri = "{redirect}"
authorize_params = {{ network_id = "net-42" }}
""",
    )
    requests: list[httpx.Request] = []
    subject = "6f1c1b3e-0d3c-4c8f-9a57-1b2f3c4d5e6f"

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert request.url == "https://login.ingest.io/token"
        return httpx.Response(
            200,
            json={
                "access_token": unsigned_jwt({"sub": subject, "preferred_username": "ina"}),
                "token_type": "Bearer",
                "expires_in": "86400",  # a string, as Ingest documents
                "refresh_token": "ingest-refresh",
                "scope": "read_videos,write_videos",
            },
        )

    delivered: dict[str, Any] = {}
    settings = load_settings(env_file=False, vidauth_home=str(clean_env / "home"))
    with Vidauth(settings, profile=profile, transport=httpx.MockTransport(handle)) as va:
        account = va.login(open_browser=browser_that_delivers(delivered), announce=lambda _: None)
        assert account.subject == subject  # from the JWT access token's sub
        assert account.expires_at and account.expires_at > time.time() + 86000
        cc = va.login_client_credentials()
        assert cc.subject == "client:IngestNetwork123"
    query = delivered["query"]
    assert query["scope"] == "read_videos,write_videos" and query["network_id"] == "net-42"
    assert "code_challenge" not in query
    for request in requests:
        assert request.headers["Accept"] == "application/vnd.ingest.v1+json"
        expected = base64.b64encode(b"IngestNetwork123:ingest-secret").decode()
        assert request.headers["Authorization"] == f"Basic {expected}"
        assert "client_secret" not in form(request)
    assert form(requests[1]) == {
        "grant_type": "client_credentials",
        "scope": "read_videos,write_videos",
    }


def test_omniport_sends_state_and_exchanges_the_code_at_once(clean_env: Path) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/redirect"
    profile = make_profile(
        clean_env,
        f"""provider = "omniport"
server = "https://omniport.example"
client_id = "omni"
client_secret = "omni-secret"
redirect_uri = "{redirect}"
""",
    )
    exchanged: dict[str, Any] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        exchanged["at"] = time.monotonic()
        exchanged["form"] = form(request)
        exchanged["url"] = str(request.url)
        return httpx.Response(
            200,
            json={
                "access_token": "omni-at",
                "expires_in": 36000,
                "token_type": "Bearer",
                "scope": "read write",
                "refresh_token": "omni-rt",
            },
        )

    delivered: dict[str, Any] = {}
    settings = load_settings(env_file=False, vidauth_home=str(clean_env / "home"))
    with Vidauth(settings, profile=profile, transport=httpx.MockTransport(handle)) as va:
        va.login(open_browser=browser_that_delivers(delivered), announce=lambda _: None)
    assert urlsplit(profile.endpoints.authorize_url or "").path == "/oauth/authorise/"
    assert delivered["query"]["state"]
    assert exchanged["url"] == "https://omniport.example/open_auth/token/"
    body = exchanged["form"]
    assert body["client_id"] == "omni" and body["client_secret"] == "omni-secret"
    assert body["code"] == "the-code" and body["redirect_uri"] == redirect
    # The code lives one minute: the exchange follows the redirect immediately.
    assert exchanged["at"] - delivered["at"] < 5


# -- error lines -------------------------------------------------------------------------------

RFC_CODES = [
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "invalid_client",
    "invalid_grant",
    "unsupported_grant_type",
    "unsupported_token_type",
    "authorization_pending",
    "slow_down",
    "expired_token",
]


@pytest.mark.parametrize("code", RFC_CODES)
def test_every_rfc_error_has_a_one_line_fix(code: str) -> None:
    assert code in _FIXES
    error = oauth_error(code, "some\nmulti-line\tdescription", during="doing it")
    assert error.error == code and "\n" not in error.message and _FIXES[code] in error.message


def test_redirect_mismatch_names_both_uris(clean_env: Path) -> None:
    redirect = "http://127.0.0.1:9127/redirect"
    profile = make_profile(
        clean_env,
        f'provider = "oauth2"\nclient_id = "x"\nclient_secret = "y"\n'
        f'token_url = "https://op.example/t"\nredirect_uri = "{redirect}"',
    )
    said = "Mismatching redirect URI; registered: https://app.example/callback."
    ep = endpoint(
        profile,
        lambda r: httpx.Response(400, json={"error": "invalid_grant", "error_description": said}),
    )
    with pytest.raises(OAuthError) as info:
        ep.exchange_code("c", redirect, None)
    message = info.value.message
    assert redirect in message and "https://app.example/callback" in message
    assert "\n" not in message and info.value.exit_code == 3


def test_invalid_client_says_check_id_secret_and_type(clean_env: Path) -> None:
    profile = make_profile(
        clean_env,
        'provider = "oauth2"\nclient_id = "x"\nclient_secret = "do-not-show"\n'
        'token_url = "https://op.example/t"',
    )
    ep = endpoint(profile, lambda r: httpx.Response(401, json={"error": "invalid_client"}))
    with pytest.raises(OAuthError) as info:
        ep.client_credentials(None)
    message = info.value.message
    assert "client_id" in message and "client_secret" in message and "confidential" in message
    assert "do-not-show" not in message


def test_html_error_page_is_a_remote_error_not_a_crash(clean_env: Path) -> None:
    profile = make_profile(
        clean_env,
        'provider = "oauth2"\nclient_id = "x"\nclient_secret = "y"\n'
        'token_url = "https://op.example/t"',
    )
    ep = TokenEndpoint(
        profile,
        build_client(
            RetryPolicy(attempts=2, base_delay=0.01),
            transport=httpx.MockTransport(
                lambda r: httpx.Response(502, text="<html><h1>Bad Gateway</h1></html>")
            ),
        ),
    )
    from vidauth.errors import RemoteServiceError

    with pytest.raises(RemoteServiceError, match="502 after retries") as info:
        ep.client_credentials(None)
    assert info.value.exit_code == 4
