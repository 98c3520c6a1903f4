"""End-to-end tests of ``vidauth serve``'s HTTP API on SQLite, over real loopback sockets.

The service talks to the full sandbox (OAuth server, Panopto REST, sessionUpload, S3 target);
the scripted browser clicks through the sandbox's login and consent to the service's callback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, text, update

from tests.conftest import SETTING_NAMES
from tests.service.conftest import FINAL_STATES as FINAL
from tests.service.conftest import (
    WEBHOOK_SECRET,
    ServiceSetup,
    open_connect_link,
    press_start_button,
    video_bytes,
)

FOLDER = "SIT101 Lectures"


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
    else:
        yield str(value)


def _issued_tokens(service: ServiceSetup) -> list[str]:
    """Every access/refresh token value the sandbox has handed out."""
    state = service.sandbox.state
    found: list[str] = []
    for name in ("_tokens", "_access_tokens", "_refresh_tokens"):
        table = getattr(state, name, None)
        if isinstance(table, dict):
            found.extend(str(k) for k in table)
    return found


def _audit_events(service: ServiceSetup) -> list[tuple[str, str | None]]:
    with service.ctx.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT event, detail FROM audit_events ORDER BY id")).all()
    return [(str(r[0]), r[1]) for r in rows]


# -- connect ------------------------------------------------------------------------------------


def test_connect_shows_connected_and_status_has_no_token(service: ServiceSetup) -> None:
    api = service.api
    assert api.get("/v1/accounts/u1").json()["status"] == "not_connected"
    r = api.post("/v1/accounts/u1/connect")
    assert r.status_code == 200, r.text
    body = r.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() is not None
    assert expires.timestamp() == pytest.approx(time.time() + 600, abs=30)
    # The link is vidauth's start page, which sets the browser-binding cookie, then Panopto.
    assert body["connect_url"] == body["authorize_url"]
    assert body["connect_url"].startswith(f"{service.url}/connect/start?s=")
    from vidauth_sandbox.browser import complete_browser_login

    browser = httpx.Client(timeout=30)
    start = press_start_button(body["connect_url"], browser)
    assert start.status_code == 303, start.text
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert start.headers["location"].startswith(service.sandbox.url)
    assert query["redirect_uri"] == [f"{service.url}/oauth/callback"]
    assert "state" in query and "nonce" in query
    cookie = start.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oauth/callback" in cookie
    assert "Secure" not in cookie  # plain http on loopback; Secure whenever the URL is https
    page = complete_browser_login(start.headers["location"], client=browser)
    browser.close()
    assert page.status_code == 200
    assert "connected" in page.text.lower()
    assert str(page.url).startswith(f"{service.url}/oauth/callback")

    r = api.get("/v1/accounts/u1")
    assert r.status_code == 200
    status = r.json()
    assert status["status"] == "connected"
    assert "api" in status["scopes"]
    assert datetime.fromisoformat(status["expires_at"]).timestamp() > time.time()
    tokens = _issued_tokens(service)
    assert tokens, "the sandbox should have issued tokens"
    raw = r.text
    for token in tokens:
        assert token not in raw
    assert not any("token" in k.lower() for k in status if k != "expires_at")

    # The state is used: opening the same link's callback again shows the error page.
    with httpx.Client() as browser:
        replay = browser.get(str(page.url))
    assert replay.status_code == 400
    assert "already used" in replay.text


def test_forged_state_gives_error_page(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    r = httpx.get(f"{service.url}/oauth/callback", params={"state": "forged", "code": "x"})
    assert r.status_code == 400
    assert "unknown" in r.text
    r = httpx.get(f"{service.url}/oauth/callback", params={"code": "x"})
    assert r.status_code == 400
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"


def test_connect_link_expires(service: ServiceSetup) -> None:
    from vidauth.service.models import PendingSignin
    from vidauth_sandbox.browser import complete_browser_login

    r = service.api.post("/v1/accounts/u1/connect")
    url = r.json()["connect_url"]
    with service.ctx.db.session() as session:
        session.execute(update(PendingSignin).values(expires_at=time.time() - 1))
    page = httpx.get(url)
    assert page.status_code == 400
    assert "expired" in page.text
    # Opened in time, but the sign-in finished too late: the callback says so.
    url = service.api.post("/v1/accounts/u1/connect").json()["connect_url"]
    with httpx.Client(timeout=30) as browser:
        authorize = press_start_button(url, browser).headers["location"]
        with service.ctx.db.session() as session:
            session.execute(update(PendingSignin).values(expires_at=time.time() - 1))
        page = complete_browser_login(authorize, client=browser)
    assert page.status_code == 400
    assert "expired" in page.text
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"


def test_denied_consent_gives_error_page(service: ServiceSetup) -> None:
    page = service.connect("u1", consent=False)
    assert page.status_code == 400
    assert "connected" not in page.text.lower().replace("not connected", "")
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"


# -- uploads ------------------------------------------------------------------------------------


class WebhookReceiver:
    """A tiny HTTP server on loopback recording POSTs (headers, body)."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 20.0) -> list[tuple[dict[str, str], bytes]]:
        """The first ``n`` deliveries (waits for them)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= n, f"only {len(self.received)} webhook(s) arrived"
        return self.received[:n]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback."""
    r = WebhookReceiver()
    yield r
    r.close()


def _check_signed(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    import hashlib
    import hmac

    timestamp = headers["x-vidauth-timestamp"]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-vidauth-signature"] == "sha256=" + expected
    assert abs(time.time() - float(timestamp)) < 120
    payload: dict[str, Any] = json.loads(body)
    return payload


def test_multipart_upload_completes_and_webhook_is_signed(
    service: ServiceSetup, receiver: WebhookReceiver
) -> None:
    service.connect("u1")
    content = video_bytes(3 * 1024 * 1024 + 17)
    r = service.api.upload(
        "u1", content=content, folder=FOLDER, title="Lecture 1", callback_url=receiver.url
    )
    assert r.status_code == 202, r.text
    upload_id = r.json()["upload_id"]
    done = service.api.wait_upload(upload_id)
    assert done["state"] == "complete", done
    assert done["session_id"]
    assert done["viewer_url"].startswith("http")
    assert done["bytes_sent"] == done["bytes_total"] == len(content)
    # The video reached the sandbox intact.
    sessions = service.sandbox.panopto
    stored = [p for p in Path(sessions.options.storage_dir).rglob("*") if p.is_file()]
    assert any(p.read_bytes() == content for p in stored), "uploaded bytes not found intact"

    headers, body = receiver.wait(1)[0]
    payload = _check_signed(headers, body)
    assert payload["upload_id"] == upload_id
    assert payload["state"] == "complete"
    assert payload["event"] == "upload.complete"
    # A tampered body fails the check.
    with pytest.raises(AssertionError):
        _check_signed(headers, body + b" ")

    listed = service.api.get("/v1/uploads", params={"external_user_id": "u1"}).json()
    assert [u["upload_id"] for u in listed["uploads"]] == [upload_id]
    # The service deletes the file it received once done.
    assert not list((service.ctx.service.upload_dir).rglob("*.mp4"))


def test_path_upload_under_shared_dir(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    (service.tenant_dir / "sub").mkdir()
    video = service.tenant_dir / "sub" / "talk.mp4"
    video.write_bytes(video_bytes(100_000, seed=2))
    r = service.api.upload("u1", path="sub/talk.mp4", folder=FOLDER)
    assert r.status_code == 202, r.text
    done = service.api.wait_upload(r.json()["upload_id"])
    assert done["state"] == "complete", done
    assert video.exists(), "the service must not delete a shared file it does not own"
    r = service.api.upload("u1", path=str(video), folder=FOLDER)
    assert r.status_code == 202, r.text


def test_path_upload_refuses_escapes(service: ServiceSetup, tmp_path: Path) -> None:
    service.connect("u1")
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(video_bytes(1000))
    home = service.tenant_dir
    (home / "link.mp4").symlink_to(outside)
    (home / "dirlink").symlink_to(tmp_path)
    (home / "inner.mp4").write_bytes(video_bytes(1000))
    (home / "innerlink.mp4").symlink_to(home / "inner.mp4")  # links are never followed
    os.mkfifo(home / "pipe.mp4")  # must not hang the service
    (home / "notes.txt").write_text("not a video")
    (home / "empty.mp4").write_bytes(b"")
    other = service.shared_dir / "B"  # another tenant's directory
    other.mkdir()
    (other / "theirs.mp4").write_bytes(video_bytes(1000))
    (service.shared_dir / "top.mp4").write_bytes(video_bytes(1000))  # outside every tenant's
    answers = set()
    for given in (
        "../outside.mp4",
        str(outside),
        "link.mp4",
        "dirlink/outside.mp4",
        "innerlink.mp4",
        "pipe.mp4",
        "notes.txt",
        "empty.mp4",
        "../B/theirs.mp4",
        str(other / "theirs.mp4"),
        "../top.mp4",
        str(service.shared_dir / "top.mp4"),
        "/etc/passwd",
        "missing.mp4",
        "sub/missing.mp4",
        ".",
        "\x00x.mp4",
        "x" * 5000 + ".mp4",
    ):
        r = service.api.upload("u1", path=given, folder=FOLDER)
        assert r.status_code == 400, (given, r.text)
        assert r.json()["error"] == "invalid_file", (given, r.text)
        assert str(tmp_path) not in r.text
        answers.add(r.text)
    # "No such file" and "not yours / outside" cannot be told apart.
    assert len(answers) == 1, answers
    assert service.api.get("/v1/uploads").json()["uploads"] == []


def test_cancel_queued_upload(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(run_worker=False)
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(), folder=FOLDER)
    upload_id = r.json()["upload_id"]
    assert service.api.get(f"/v1/uploads/{upload_id}").json()["state"] == "queued"
    r = service.api.delete(f"/v1/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert service.api.get(f"/v1/uploads/{upload_id}").json()["state"] == "cancelled"
    assert not (service.ctx.service.upload_dir / upload_id).exists()
    assert service.api.delete("/v1/uploads/up_nope").status_code == 404


def test_cancel_running_upload(make_service: Callable[..., ServiceSetup]) -> None:
    # A slow S3 target: the upload is still sending when the cancel arrives. Four of its six
    # parts in flight at most, so that some are never sent (adapting, all six would start
    # at once, and parts in flight are finished, not cut).
    service = make_service(
        VIDAUTH_PART_SIZE_MIB="5", VIDAUTH_UPLOAD_PARALLEL="4", s3_bandwidth=4_000_000
    )
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(30 * 1024 * 1024), folder=FOLDER)
    upload_id = r.json()["upload_id"]
    service.api.wait_upload(upload_id, states=("uploading",), timeout=20)
    asked = time.monotonic()
    r = service.api.delete(f"/v1/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    done = service.api.wait_upload(upload_id, timeout=20)
    assert done["state"] == "cancelled", done
    # It stops within seconds (in-flight parts finish; here 4 share 4 MB/s: about 5 s).
    assert time.monotonic() - asked < 10
    assert done["bytes_sent"] < done["bytes_total"]


def test_upload_needs_connected_account(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    r = service.api.upload("nobody", content=video_bytes(), folder=FOLDER)
    assert r.status_code == 409
    assert r.json()["error"] == "not_connected"


# -- API keys and tenants -----------------------------------------------------------------------


def test_api_key_required(service: ServiceSetup) -> None:
    routes = [
        ("GET", "/v1/accounts/u1"),
        ("POST", "/v1/accounts/u1/connect"),
        ("DELETE", "/v1/accounts/u1"),
        ("GET", "/v1/uploads"),
        ("GET", "/v1/uploads/up_x"),
        ("DELETE", "/v1/uploads/up_x"),
        ("POST", "/v1/uploads"),
    ]
    for key in (None, "vda_wrong", service.key + "x", "Basic abc"):
        client = service.client(key)
        for method, path in routes:
            r = client.http.request(method, path)
            assert r.status_code == 401, (key, method, path, r.text)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    for header in (service.key, "Bearer", f"Basic {service.key}", f"Bearer{service.key}"):
        r = httpx.get(f"{service.url}/v1/uploads", headers={"Authorization": header})
        assert r.status_code == 401, header
    r = httpx.get(f"{service.url}/v1/uploads", headers={"Authorization": f"bearer {service.key}"})
    assert r.status_code == 200  # the scheme is case-insensitive (RFC 9110)
    assert service.api.get("/v1/uploads").status_code == 200


def test_tenant_isolation(service: ServiceSetup) -> None:
    service.connect("u1")
    upload_id = service.api.upload("u1", content=video_bytes(), folder=FOLDER).json()["upload_id"]
    other = service.client(service.new_key(tenant="B"))
    # Same external id in tenant B is a different (unconnected) user.
    assert other.get("/v1/accounts/u1").json()["status"] == "not_connected"
    assert other.get(f"/v1/uploads/{upload_id}").status_code == 404
    assert other.delete(f"/v1/uploads/{upload_id}").status_code == 404
    assert other.get("/v1/uploads").json()["uploads"] == []
    assert other.get("/v1/uploads", params={"external_user_id": "u1"}).json()["uploads"] == []
    assert other.delete("/v1/accounts/u1").status_code == 404
    r = other.upload("u1", content=video_bytes(), folder=FOLDER)
    assert r.status_code == 409
    # Tenant A is untouched.
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"
    assert service.api.wait_upload(upload_id)["state"] == "complete"
    # Tenant B connecting its own u1 does not affect A's.
    service.connect("u1", api=other, username="bob", password="bob-sandbox-password")
    assert other.get("/v1/accounts/u1").json()["username"] == "bob"
    assert service.api.get("/v1/accounts/u1").json()["username"] == "alice"


def test_apikey_create_cli(service: ServiceSetup, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({k.upper(): str(v) for k, v in service.settings_flags.items() if k != "env_file"})
    proc = subprocess.run(
        [sys.executable, "-m", "vidauth", "apikey", "create", "ontrack", "--tenant", "T"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip()
    assert proc.stdout == key + "\n", "stdout must hold the key alone"
    assert key.startswith("vda_") and len(key) > 40
    assert key not in proc.stderr
    db_file = Path(service.ctx.db.engine.url.database or "")
    assert db_file.is_file()
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert key.encode() not in raw
    client = service.client(key)
    assert client.get("/v1/uploads").status_code == 200
    from vidauth.service.auth import hash_key
    from vidauth.service.models import ApiKey

    with service.ctx.db.session() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "ontrack")).one()
        assert row.tenant == "T"
        assert row.key_hash == hash_key(key)
    # Tenant T sees nothing of the default tenant.
    service.connect("u1")
    assert client.get("/v1/accounts/u1").json()["status"] == "not_connected"


# -- limits -------------------------------------------------------------------------------------


def test_upload_size_limit(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_MAX_UPLOAD_BYTES="100000")
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(200_000), folder=FOLDER)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large"
    assert "100000" in r.json()["detail"]
    # Streamed without Content-Length (chunked): still 413.

    def chunks() -> Iterator[bytes]:
        boundary = b"xyzb"
        yield b'--xyzb\r\nContent-Disposition: form-data; name="external_user_id"\r\n\r\nu1\r\n'
        yield b'--xyzb\r\nContent-Disposition: form-data; name="folder"\r\n\r\nF\r\n'
        yield (
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="v.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        )
        for _ in range(30):
            yield b"\0" * 10_000
        yield b"\r\n--xyzb--\r\n"

    r = service.api.http.post(
        "/v1/uploads",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=xyzb"},
    )
    assert r.status_code == 413, r.text
    assert service.api.get("/v1/uploads").json()["uploads"] == []
    assert not any(p.is_file() for p in service.ctx.service.upload_dir.rglob("*"))
    # Under the limit is fine.
    r = service.api.upload("u1", content=video_bytes(50_000), folder=FOLDER)
    assert r.status_code == 202, r.text


def test_request_size_limit(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_MAX_REQUEST_BYTES="1000")
    r = service.api.post("/v1/accounts/u1/connect", content=b"x" * 5000)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    r = service.api.post("/v1/accounts/u1/connect")
    assert r.status_code == 200


@pytest.mark.parametrize(
    "bad", ["%20%20", "a%00b", "x" * 300, "tab%09id", "%0Bu1", "%20" + "x" * 255]
)
def test_bad_external_user_id(tenant_service: ServiceSetup, bad: str) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    r = service.api.get(f"/v1/accounts/{bad}")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    r = service.api.post(f"/v1/accounts/{bad}/connect")
    assert r.status_code == 400, r.text


def test_bad_upload_forms(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    api = service.api
    assert api.upload("", content=video_bytes(), folder=FOLDER).status_code == 400
    assert api.upload("u1", content=video_bytes(), folder="").status_code == 400
    r = api.upload("u1", content=b"not a video at all", filename="notes.txt", folder=FOLDER)
    assert r.status_code == 415, r.text
    r = api.post("/v1/uploads", json={"external_user_id": "u1"})
    assert r.status_code == 415
    r = api.upload("u1", content=video_bytes(), folder=FOLDER, callback_url="ftp://x/y")
    assert r.status_code == 400
    r = api.upload("u1", content=video_bytes(), folder=FOLDER, description="d" * 2_000_000)
    assert r.status_code == 413, r.text
    r = api.upload("u1", content=video_bytes(), path="x.mp4", folder=FOLDER)
    assert r.status_code == 400, r.text
    assert api.get("/v1/uploads").json()["uploads"] == []


def test_unknown_form_field_is_refused_before_the_file_streams(service: ServiceSetup) -> None:
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(), folder=FOLDER, tittle="Week 1")
    assert r.status_code == 400, r.text
    assert "'tittle'" in r.json()["detail"] and "title" in r.json()["detail"]
    assert not [p for p in service.ctx.service.upload_dir.rglob("*") if p.is_file()]
    assert service.api.get("/v1/uploads").json()["uploads"] == []


def test_full_disk_is_507_and_an_unusable_upload_dir_is_503(
    service: ServiceSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from vidauth.service import ingest

    service.connect("u1")

    def disk_full(_fd: int, _data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        for call in ("write", "writev"):  # the disk fills whichever call the spooler makes
            patch.setattr(ingest.os, call, disk_full)
        r = service.api.upload("u1", content=video_bytes(), folder=FOLDER)
    assert r.status_code == 507, r.text
    assert r.json()["error"] == "insufficient_storage"
    upload_dir = service.ctx.service.upload_dir
    assert not [p for p in upload_dir.rglob("*") if p.is_file()], "a partial file was left"

    shutil.rmtree(upload_dir)
    upload_dir.write_text("not a directory")
    r = service.api.upload("u1", content=video_bytes(), folder=FOLDER)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "storage_unavailable"
    assert service.api.get("/v1/uploads").json()["uploads"] == []


def test_405_lists_every_method_of_the_path(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    r = service.api.http.put("/v1/accounts/u1")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "DELETE"}
    r = service.api.http.patch("/v1/uploads/some-id")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "DELETE"}


# -- account lifecycle --------------------------------------------------------------------------


def test_needs_reconsent_then_reconnect_completes(
    make_service: Callable[..., ServiceSetup],
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service = make_service(access_token_lifetime=2)
    api = service.api
    service.connect("u1")
    first = api.upload("u1", content=video_bytes(), folder=FOLDER).json()["upload_id"]
    assert api.wait_upload(first)["state"] == "complete"
    time.sleep(2.2)  # the access token expires: the next upload refreshes
    second = api.upload("u1", content=video_bytes(seed=3), folder=FOLDER).json()["upload_id"]
    assert api.wait_upload(second)["state"] == "complete"

    assert service.revoke_grants() >= 1
    time.sleep(2.2)
    r = api.upload("u1", content=video_bytes(seed=4), folder=FOLDER, callback_url=receiver.url)
    assert r.status_code == 202, r.text
    third = r.json()["upload_id"]
    waiting = api.wait_upload(third, states=("waiting_for_consent", "failed", "complete"))
    assert waiting["state"] == "waiting_for_consent", waiting
    assert api.get("/v1/accounts/u1").json()["status"] == "needs_reconsent"
    headers, body = receiver.wait(1)[0]
    payload = _check_signed(headers, body)
    assert payload["upload_id"] == third
    assert payload["state"] == "waiting_for_consent"
    # Another upload while consent is missing waits too.
    r = api.upload("u1", content=video_bytes(seed=5), folder=FOLDER)
    fourth = r.json()["upload_id"]
    assert r.json()["state"] == "waiting_for_consent"
    time.sleep(1.0)
    assert api.get(f"/v1/uploads/{third}").json()["state"] == "waiting_for_consent"

    page = service.connect("u1")
    assert page.status_code == 200
    assert api.get("/v1/accounts/u1").json()["status"] == "connected"
    assert api.wait_upload(third)["state"] == "complete"
    assert api.wait_upload(fourth)["state"] == "complete"
    final = receiver.wait(2)[1]
    assert _check_signed(*final)["state"] == "complete"

    events = _audit_events(service)
    names = [e for e, _ in events]
    for expected in ("connected", "refreshed", "refresh_failed"):
        assert expected in names, names
    assert api.delete("/v1/accounts/u1").status_code == 200
    assert api.get("/v1/accounts/u1").json()["status"] == "not_connected"
    names = [e for e, _ in _audit_events(service)]
    assert "revoked" in names, names
    tokens = _issued_tokens(service)
    assert tokens
    dump = repr(_audit_events(service))
    logged = caplog.text
    for token in tokens:
        assert token not in dump
        assert token not in logged

    metrics = service.metrics().text
    from prometheus_client.parser import text_string_to_metric_families

    values = {
        s.name: s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if not s.labels
    }
    refreshes = [v for n, v in values.items() if n.startswith("vidauth_token_refreshes")]
    failures = [v for n, v in values.items() if n.startswith("vidauth_token_refresh_failures")]
    assert refreshes and refreshes[0] >= 1, values
    assert failures and failures[0] >= 1, values


# -- health, metrics, OpenAPI -------------------------------------------------------------------


def test_health_metrics_openapi(service: ServiceSetup) -> None:
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{service.url}/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    service.connect("u1")
    content = video_bytes(123_457)
    upload_id = service.api.upload("u1", content=content, folder=FOLDER).json()["upload_id"]
    assert service.api.wait_upload(upload_id)["state"] == "complete"

    r = service.metrics()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    assert samples[("vidauth_uploads", (("state", "complete"),))] == 1
    assert samples[("vidauth_uploads", (("state", "failed"),))] == 0
    uploaded = [v for (n, _), v in samples.items() if n.startswith("vidauth_uploaded_bytes")]
    assert uploaded == [len(content)]
    assert any(n.startswith("vidauth_token_refreshes") for n, _ in samples)
    assert any(n.startswith("vidauth_token_refresh_failures") for n, _ in samples)

    spec = httpx.get(f"{service.url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/accounts/{external_user_id}/connect",
        "/v1/accounts/{external_user_id}",
        "/v1/uploads",
        "/v1/uploads/{upload_id}",
    ):
        assert path in paths, sorted(paths)
    assert "multipart/form-data" in paths["/v1/uploads"]["post"]["requestBody"]["content"]
    assert "/oauth/callback" not in paths
    # The document says how to authenticate, and what each answer looks like.
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    get_upload = paths["/v1/uploads/{upload_id}"]["get"]
    assert get_upload["security"] == [{"apiKey": []}]
    assert get_upload["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Upload"
    }
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert get_upload["responses"]["404"]["content"]["application/json"]["schema"] == error_ref
    states = spec["components"]["schemas"]["Upload"]["properties"]["state"]["enum"]
    assert set(states) == {
        "queued", "uploading", "processing", "complete", "failed", "cancelled",
        "waiting_for_consent",
    }  # fmt: skip


def test_delete_account_revokes_at_panopto(service: ServiceSetup) -> None:
    service.connect("u1")
    state = service.sandbox.state
    with state._lock:
        live = [t for t, rec in state._tokens.items() if not rec.revoked]
    assert live
    r = service.api.delete("/v1/accounts/u1")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "not_connected"
    with state._lock:
        assert all(state._tokens[t].revoked for t in live), "tokens still valid at Panopto"
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"
    assert service.api.delete("/v1/accounts/u1").status_code == 404
    r = service.api.upload("u1", content=video_bytes(), folder=FOLDER)
    assert r.status_code == 409


def test_connect_return_url_redirect(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_CONNECT_RETURN_URL="http://127.0.0.1:9/back?x=1")
    from vidauth_sandbox.browser import BrowserLoginError

    url = service.api.post("/v1/accounts/u1/connect").json()["connect_url"]
    seen: list[str] = []

    def log(response: httpx.Response) -> None:
        seen.append(f"{response.status_code} {response.headers.get('location', '')}")

    # Nobody listens at the backend's return URL: following the redirect may fail.
    with (
        httpx.Client(event_hooks={"response": [log]}) as browser,
        contextlib.suppress(BrowserLoginError, httpx.HTTPError),
    ):
        open_connect_link(url, client=browser)
    expected = "303 http://127.0.0.1:9/back?x=1&status=connected&external_user_id=u1"
    assert expected in seen, seen
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"


def test_failed_upload_notifies(service: ServiceSetup, receiver: WebhookReceiver) -> None:
    service.connect("u1")
    r = service.api.upload(
        "u1", content=video_bytes(), folder="No Such Folder", callback_url=receiver.url
    )
    upload_id = r.json()["upload_id"]
    done = service.api.wait_upload(upload_id)
    assert done["state"] == "failed"
    assert "No Such Folder" in done["error"]
    payload = _check_signed(*receiver.wait(1)[0])
    assert payload["event"] == "upload.failed"
    assert payload["upload_id"] == upload_id


def test_separate_worker_process(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(run_worker=False)
    service.connect("u1")
    upload_id = service.api.upload("u1", content=video_bytes(), folder=FOLDER).json()["upload_id"]
    time.sleep(0.5)
    assert service.api.get(f"/v1/uploads/{upload_id}").json()["state"] == "queued"
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({k.upper(): str(v) for k, v in service.settings_flags.items() if k != "env_file"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = service.api.wait_upload(upload_id, timeout=40)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert done["state"] == "complete", (done, err[-2000:])
    assert proc.returncode == 0, err[-2000:]
    for token in _issued_tokens(service):
        assert token not in err


def test_hostile_filename_stays_in_upload_dir(service: ServiceSetup, tmp_path: Path) -> None:
    service.connect("u1")
    before = {p for p in tmp_path.rglob("*")}
    r = service.api.upload(
        "u1", content=video_bytes(), filename="../../../escape.mp4", folder=FOLDER
    )
    assert r.status_code == 202, r.text
    upload_id = r.json()["upload_id"]
    created = {p for p in tmp_path.rglob("*")} - before
    upload_dir = service.ctx.service.upload_dir
    for p in created:
        if p.is_file() and p.suffix == ".mp4":
            assert p.is_relative_to(upload_dir / upload_id), p
    assert service.api.wait_upload(upload_id)["state"] == "complete"


def test_cancel_waiting_upload(service: ServiceSetup) -> None:
    service.connect("u1")
    service.revoke_grants()
    # Make the stored access token unusable so the worker must refresh (and fail).
    with service.ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE tokens SET expires_at = 1"))
    upload_id = service.api.upload("u1", content=video_bytes(), folder=FOLDER).json()["upload_id"]
    waiting = service.api.wait_upload(upload_id, states=("waiting_for_consent", *FINAL))
    assert waiting["state"] == "waiting_for_consent", waiting
    r = service.api.delete(f"/v1/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    service.connect("u1")
    time.sleep(1.0)
    assert service.api.get(f"/v1/uploads/{upload_id}").json()["state"] == "cancelled"


class _HoldCallback(httpx.BaseTransport):
    """Real HTTP, except the GET to the service's callback is only recorded (not sent)."""

    def __init__(self, callback: str) -> None:
        self.callback = callback
        self.real = httpx.HTTPTransport()
        self.held: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(self.callback):
            self.held.append(str(request.url))
            return httpx.Response(204)
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


def test_concurrent_callbacks_use_the_state_once(service: ServiceSetup) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from vidauth_sandbox.browser import complete_browser_login

    url = service.api.post("/v1/accounts/u1/connect").json()["connect_url"]
    hold = _HoldCallback(f"{service.url}/oauth/callback")
    with httpx.Client(transport=hold) as browser:
        start = press_start_button(url, browser)
        complete_browser_login(start.headers["location"], client=browser)
        cookies = dict(browser.cookies.items())
    assert len(hold.held) == 1

    def replay(_i: int) -> httpx.Response:  # the same browser, six times at once
        with httpx.Client(cookies=cookies, timeout=30) as same_browser:
            return same_browser.get(hold.held[0])

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(replay, range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 400, 400, 400, 400, 400], codes
    assert service.api.get("/v1/accounts/u1").json()["status"] == "connected"


def test_queued_job_survives_restart(make_service: Callable[..., ServiceSetup]) -> None:
    from vidauth._serving import BackgroundServer
    from vidauth.config import load_settings
    from vidauth.service.context import ServiceContext
    from vidauth.service.runner import service_app
    from vidauth.service.settings import load_service_settings

    service = make_service(run_worker=False)
    service.connect("u1")
    upload_id = service.api.upload("u1", content=video_bytes(), folder=FOLDER).json()["upload_id"]
    service.server.stop()
    service.ctx.close()

    settings = load_settings(**service.settings_flags)
    ctx = ServiceContext(settings, load_service_settings(settings, env_file=service.home / "x"))
    service.ctx = ctx  # closed by the fixture
    port = int(service.url.rsplit(":", 1)[1])
    service.server = BackgroundServer(service_app(ctx, run_worker=True), port=port).start()
    done = service.api.wait_upload(upload_id)
    assert done["state"] == "complete", done


def test_running_upload_resumes_after_restart(make_service: Callable[..., ServiceSetup]) -> None:
    from vidauth._serving import BackgroundServer
    from vidauth.config import load_settings
    from vidauth.service.context import ServiceContext
    from vidauth.service.runner import service_app
    from vidauth.service.settings import load_service_settings

    service = make_service(
        VIDAUTH_PART_SIZE_MIB="5", VIDAUTH_UPLOAD_PARALLEL="1", s3_bandwidth=8_000_000
    )
    storage = service.sandbox.panopto.storage
    committed: list[int] = []
    real_commit = storage.commit_part

    def commit_part(upload: Any, number: int, *args: Any) -> None:
        real_commit(upload, number, *args)
        if not upload.key.endswith(".xml"):  # the media's parts, not the manifest's one
            committed.append(number)

    storage.commit_part = commit_part
    service.connect("u1")
    content = video_bytes(25 * 1024 * 1024, seed=9)
    upload_id = service.api.upload("u1", content=content, folder=FOLDER).json()["upload_id"]
    deadline = time.monotonic() + 30
    while len(committed) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    service.server.stop()  # stops the in-process worker mid-upload
    assert len(committed) < 5, "the upload should not have finished yet"
    service.ctx.close()
    settings = load_settings(**service.settings_flags)
    ctx = ServiceContext(settings, load_service_settings(settings, env_file=service.home / "x"))
    service.ctx = ctx
    port = int(service.url.rsplit(":", 1)[1])
    service.server = BackgroundServer(service_app(ctx, run_worker=True), port=port).start()
    done = service.api.wait_upload(upload_id, timeout=60)
    assert done["state"] == "complete", done
    # Parts stored before the stop are not sent again: each part is committed once.
    assert sorted(committed) == [1, 2, 3, 4, 5], committed
    stored = [
        p for p in Path(service.sandbox.panopto.options.storage_dir).rglob("*") if p.is_file()
    ]
    assert any(p.stat().st_size == len(content) and p.read_bytes() == content for p in stored)
