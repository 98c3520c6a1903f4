"""Issue 19, point 9: nothing secret in what the service prints, at any level.

The service runs with uvicorn at TRACE (its ASGI message dumps included) and every library's
logger at DEBUG, all printed to stderr; a sign-in, a connect, an uploads-page link, an upload
and a metrics scrape go through it. Then no API key, link token, authorization code, state,
cookie, page token, client secret, webhook secret, metrics token, access or refresh token may
appear in what was printed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.service.conftest import (
    METRICS_TOKEN,
    WEBHOOK_SECRET,
    ServiceSetup,
    open_connect_link,
    video_bytes,
)


@pytest.fixture
def loud(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Callable[..., None]:
    """Every server at TRACE and every logger at DEBUG (and below), printed to stderr."""
    from vidauth import _serving

    class TraceServer(_serving.BackgroundServer):
        def __init__(self, app: object, host: str = "127.0.0.1", port: int = 0, **kw: object):
            super().__init__(app, host, port, **{**kw, "log_level": "trace"})

    monkeypatch.setattr(_serving, "BackgroundServer", TraceServer)
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)  # capfd's: requested first
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = {name: logging.getLogger(name).level for name in _LIBRARIES}
    root.addHandler(handler)
    monkeypatch.setattr(root, "level", 1)
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(1)

    def restore() -> None:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    return restore


_LIBRARIES = ("vidauth", "httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer")


def test_no_secret_is_printed_at_trace_level(
    make_service: Callable[..., ServiceSetup],
    loud: Callable[[], None],
    capfd: pytest.CaptureFixture[str],
) -> None:
    try:
        service = make_service()
        api = service.api
        r = api.post("/v1/accounts/u1/connect")
        assert r.status_code == 200, r.text
        link = r.json()["connect_url"]
        start = parse_qs(urlsplit(link).query)["s"][0]
        browser = httpx.Client(timeout=30.0)
        callback = open_connect_link(link, client=browser)
        assert callback.status_code == 200, callback.text
        query = parse_qs(urlsplit(str(callback.request.url)).query)
        code, state = query["code"][0], query["state"][0]
        cookies = [c.value for c in browser.cookies.jar]
        browser.close()
        page = api.post("/v1/accounts/u1/uploads-page").json()["url"]
        assert httpx.get(page).status_code == 200
        page_token = parse_qs(urlsplit(page).query)["t"][0]
        up = api.upload(
            "u1", content=video_bytes(), folder="SIT101 Lectures", callback_url=f"{service.url}/h"
        )
        assert up.status_code == 202, up.text
        done = api.wait_upload(up.json()["upload_id"])
        assert done["state"] == "complete", done
        assert service.metrics().status_code == 200
        (account,) = service.ctx.store.list_accounts()
        tokens = service.ctx.store.load_tokens(account.id)
        assert tokens is not None and tokens.refresh_token
    finally:
        loud()
    printed = capfd.readouterr()
    out = printed.out + printed.err
    assert "ASGI [" in out and "HTTP Request" in out  # it really printed at TRACE/DEBUG
    secrets = {
        "API key": service.key,
        "start link token": start,
        "authorization code": code,
        "state": state,
        "page token": page_token.split(".", 1)[1],
        "client secret": service.settings_flags["panopto_client_secret"],
        "webhook secret": WEBHOOK_SECRET,
        "metrics token": METRICS_TOKEN,
        "access token": tokens.access_token,
        "refresh token": tokens.refresh_token,
    }
    secrets.update({f"cookie {i}": value for i, value in enumerate(cookies)})
    leaked = [name for name, value in secrets.items() if value and value in out]
    assert not leaked, [
        line for line in out.splitlines() if any(secrets[n] in line for n in leaked)
    ][:5]


def test_access_log_lines_keep_their_form_without_query_strings() -> None:
    from uvicorn.logging import AccessFormatter

    from vidauth.logs import install_redaction

    install_redaction()
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        # The start page (GET, 200) carries its secret in the query; continuing (POST) in
        # the body, which no access log shows.
        ("127.0.0.1:5000", "GET", "/connect/start?s=secret-link-token-123", "1.1", 200),
        None,
    )
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert line == '127.0.0.1:5000 - "GET /connect/start HTTP/1.1" 200 OK'
