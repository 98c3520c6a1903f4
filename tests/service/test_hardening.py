"""The attacks of issue 13 (points 5 to 8) against ``vidauth serve``, end to end over loopback.

Each test replays an attack a hostile tenant, user or network could make, and checks that it
now fails safely: a shared file swapped for a link after the check, a connect link forwarded to
someone else, webhooks aimed at the service's own network or forged across tenants, revoked
keys, an open /metrics, and control characters that used to fail only after the upload.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tests.conftest import SETTING_NAMES, free_port
from tests.helpers.processes import run_vidauth
from tests.service.conftest import (
    METRICS_TOKEN,
    WEBHOOK_SECRET,
    ServiceSetup,
    open_connect_link,
    press_start_button,
    video_bytes,
)

FOLDER = "SIT101 Lectures"


def _stored_objects(service: ServiceSetup) -> list[bytes]:
    root = Path(service.sandbox.panopto.options.storage_dir)
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()]


def _audit(service: ServiceSetup) -> list[tuple[str, str | None]]:
    with service.ctx.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT event, detail FROM audit_events ORDER BY id")).all()
    return [(str(r[0]), r[1]) for r in rows]


# -- 5. path uploads: check, then use -----------------------------------------------------------


def _run_worker_until(service: ServiceSetup, upload_id: str) -> dict[str, Any]:
    from vidauth.service.worker import Worker

    worker = Worker(service.ctx).start()
    try:
        return service.api.wait_upload(upload_id, timeout=30)
    finally:
        worker.stop()


@pytest.mark.parametrize("swap", ["symlink", "other_file", "parent_symlink"])
def test_shared_file_swapped_after_the_202_is_never_uploaded(
    make_service: Callable[..., ServiceSetup], tmp_path: Path, swap: str
) -> None:
    service = make_service(run_worker=False)
    service.connect("u1")
    secret = tmp_path / "secret.mp4"  # stands for /etc/passwd, with a name that passes checks
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 100)
    lectures = service.tenant_dir / "lectures"
    lectures.mkdir()
    race = lectures / "race.mp4"
    race.write_bytes(video_bytes(50_000, seed=7))
    r = service.api.upload("u1", path="lectures/race.mp4", folder=FOLDER)
    assert r.status_code == 202, r.text
    upload_id = r.json()["upload_id"]
    # The attacker swaps the file between the check and the worker's use.
    if swap == "symlink":
        race.unlink()
        race.symlink_to("/etc/passwd")
    elif swap == "other_file":
        race.unlink()
        race.write_bytes(secret.read_bytes())
    else:
        lectures.rename(service.tenant_dir / "moved")
        lectures.symlink_to(tmp_path)
        (tmp_path / "race.mp4").symlink_to(secret)
    done = _run_worker_until(service, upload_id)
    assert done["state"] == "failed", done
    assert done["error"] == "path: no such file in your shared directory"
    passwd = Path("/etc/passwd").read_bytes()
    for stored in _stored_objects(service):
        assert passwd[:64] not in stored
        assert b"root:x:0:0" not in stored


def test_shared_file_unchanged_is_uploaded_by_a_later_worker(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(run_worker=False)
    service.connect("u1")
    content = video_bytes(60_000, seed=8)
    (service.tenant_dir / "ok.mp4").write_bytes(content)
    r = service.api.upload("u1", path="ok.mp4", folder=FOLDER)
    assert r.status_code == 202, r.text
    done = _run_worker_until(service, r.json()["upload_id"])
    assert done["state"] == "complete", done
    assert content in _stored_objects(service)


def test_each_tenant_sees_only_its_own_shared_directory(service: ServiceSetup) -> None:
    service.connect("u1")
    (service.tenant_dir / "talk.mp4").write_bytes(video_bytes(10_000))
    other = service.client(service.new_key(tenant="B"))
    service.connect("u1", api=other, username="bob", password="bob-sandbox-password")
    theirs = other.upload("u1", path="talk.mp4", folder=FOLDER)
    missing = other.upload("u1", path="nothing-here.mp4", folder=FOLDER)
    escape = other.upload("u1", path="../default/talk.mp4", folder=FOLDER)
    absolute = other.upload("u1", path=str(service.tenant_dir / "talk.mp4"), folder=FOLDER)
    for r in (theirs, missing, escape, absolute):
        assert r.status_code == 400, r.text
    # Indistinguishable: same status, same body.
    assert {r.text for r in (theirs, missing, escape, absolute)} == {missing.text}
    assert service.api.upload("u1", path="talk.mp4", folder=FOLDER).status_code == 202


# -- 6. connect links bind the account to the browser that started, and to the expected user --


def test_forwarded_link_opened_in_another_browser_connects_nothing(service: ServiceSetup) -> None:
    from vidauth_sandbox.browser import complete_browser_login

    link = service.api.post("/v1/accounts/mallory/connect").json()["connect_url"]
    with httpx.Client(timeout=30) as mallory:
        start = press_start_button(link, mallory)  # Mallory continues: her browser gets the cookie
        assert start.status_code == 303
        panopto_link = start.headers["location"]
    # ... and sends the Panopto page on to Bob, who signs in and clicks Allow.
    with httpx.Client(timeout=30) as bob:
        page = complete_browser_login(
            panopto_link, client=bob, username="bob", password="bob-sandbox-password"
        )
    assert page.status_code == 400, page.text
    assert "another browser" in page.text
    assert 'data-status="wrong_browser"' in page.text
    status = service.api.get("/v1/accounts/mallory").json()
    assert status["status"] == "not_connected", status
    assert ("connect_refused", "wrong_browser tenant=default") in _audit(service)
    # The start link works once: forwarding the vidauth link after opening it gets nowhere.
    again = httpx.get(link)
    assert again.status_code == 400
    assert "already opened" in again.text
    # Bob's own account is unaffected, and Bob can connect himself through his own link.
    assert (
        open_connect_link(
            service.api.post("/v1/accounts/bob/connect").json()["connect_url"],
            username="bob",
            password="bob-sandbox-password",
        ).status_code
        == 200
    )
    assert service.api.get("/v1/accounts/bob").json()["username"] == "bob"


def test_forged_cookie_is_refused(service: ServiceSetup) -> None:
    from vidauth.service.connect import cookie_name
    from vidauth_sandbox.browser import complete_browser_login

    link = service.api.post("/v1/accounts/u1/connect").json()["connect_url"]
    with httpx.Client(timeout=30) as real:
        panopto_link = press_start_button(link, real).headers["location"]
    state = httpx.URL(panopto_link).params["state"]
    with httpx.Client(timeout=30, cookies={cookie_name(state): "guessed"}) as forger:
        page = complete_browser_login(panopto_link, client=forger)
    assert page.status_code == 400
    assert service.api.get("/v1/accounts/u1").json()["status"] == "not_connected"


def test_expected_username_mismatch_is_refused(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_CONNECT_RETURN_URL="http://127.0.0.1:9/back")
    r = service.api.post("/v1/accounts/alice-id/connect", json={"expected_username": "alice"})
    assert r.status_code == 200, r.text
    seen: list[str] = []
    with httpx.Client(
        timeout=30,
        event_hooks={"response": [lambda resp: seen.append(resp.headers.get("location", ""))]},
    ) as browser:
        answer = open_connect_link(
            r.json()["connect_url"], client=browser, username="bob", password="bob-sandbox-password"
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        "http://127.0.0.1:9/back?status=wrong_account&external_user_id=alice-id"
    )
    assert service.api.get("/v1/accounts/alice-id").json()["status"] == "not_connected"
    assert ("connect_refused", "wrong_account tenant=default") in _audit(service)
    state = service.sandbox.state
    with state._lock:
        assert state._tokens and all(rec.revoked for rec in state._tokens.values()), (
            "the refused sign-in's tokens must be revoked"
        )
    # The expected user (any letter case) connects.
    r = service.api.post("/v1/accounts/alice-id/connect", json={"expected_username": "ALICE"})
    with httpx.Client(timeout=30) as browser:
        answer = open_connect_link(r.json()["connect_url"], client=browser)
    assert "status=connected" in answer.headers["location"]
    assert service.api.get("/v1/accounts/alice-id").json()["username"] == "alice"


def test_expected_username_is_checked(service: ServiceSetup) -> None:
    for bad in ({"expected_username": ""}, {"expected_username": "a\x01b"}):
        r = service.api.post("/v1/accounts/u1/connect", json=bad)
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"] == "invalid_request"


# -- 7. webhooks: a secret per key, the tenant in the payload, no private targets --------------


class Receiver:
    """A loopback HTTP server recording POSTs (headers, body)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
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

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 20.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= n, f"only {len(self.received)} webhook(s) arrived"
        return self.received[:n]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(host: str = "127.0.0.1", port: int = 0) -> Receiver:
        r = Receiver(host, port)
        started.append(r)
        return r

    yield make
    for r in started:
        r.close()


def _valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["x-vidauth-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["x-vidauth-signature"], "sha256=" + mac.hexdigest())


def test_each_key_signs_with_its_own_secret_and_names_the_tenant(
    service: ServiceSetup, receivers: Callable[..., Receiver]
) -> None:
    hook = receivers()
    url = f"http://127.0.0.1:{hook.port}/hook"
    b_secret = "tenant-b-webhook-secret-fedcba9876543210"
    other = service.client(service.new_key(tenant="B", webhook_secret=b_secret))
    service.connect("u1")
    service.connect("u1", api=other, username="bob", password="bob-sandbox-password")
    a = service.api.upload("u1", content=video_bytes(), folder=FOLDER, callback_url=url)
    b = other.upload("u1", content=video_bytes(seed=2), folder=FOLDER, callback_url=url)
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    by_upload = {}
    for headers, body in hook.wait(2):
        by_upload[json.loads(body)["upload_id"]] = (headers, body)
    a_headers, a_body = by_upload[a.json()["upload_id"]]
    b_headers, b_body = by_upload[b.json()["upload_id"]]
    assert json.loads(a_body)["tenant"] == "default"
    assert json.loads(b_body)["tenant"] == "B"
    assert _valid(WEBHOOK_SECRET, a_headers, a_body) and not _valid(b_secret, a_headers, a_body)
    assert _valid(b_secret, b_headers, b_body) and not _valid(WEBHOOK_SECRET, b_headers, b_body)
    # A key without a secret (and no VIDAUTH_WEBHOOK_SECRET) cannot ask for notifications.
    bare = service.client(service.new_key(tenant="C"))
    service.connect("u1", api=bare)
    r = bare.upload("u1", content=video_bytes(), folder=FOLDER, callback_url=url)
    assert r.status_code == 400
    assert "webhook secret" in r.json()["detail"]


def test_shared_webhook_secret_is_only_a_fallback(
    make_service: Callable[..., ServiceSetup], receivers: Callable[..., Receiver]
) -> None:
    fallback = "shared-fallback-secret-0123456789"
    service = make_service(VIDAUTH_WEBHOOK_SECRET=fallback)
    hook = receivers()
    bare = service.client(service.new_key(tenant="C"))
    service.connect("u1", api=bare)
    r = bare.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url=f"http://127.0.0.1:{hook.port}/h"
    )
    assert r.status_code == 202, r.text
    headers, body = hook.wait(1)[0]
    assert _valid(fallback, headers, body) and json.loads(body)["tenant"] == "C"
    service.connect("u1")  # the default key has its own secret, which wins
    r = service.api.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url=f"http://127.0.0.1:{hook.port}/h"
    )
    headers, body = hook.wait(2)[1]
    assert _valid(WEBHOOK_SECRET, headers, body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:2375/containers/json",
        "http://localhost:2375/",
        "http://[::1]:2375/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://240.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::]/hook",
    ],
)
def test_callback_url_to_a_non_public_address_is_refused(
    make_service: Callable[..., ServiceSetup], url: str
) -> None:
    service = make_service(VIDAUTH_WEBHOOK_ALLOW_NETWORKS="")
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(), folder=FOLDER, callback_url=url)
    assert r.status_code == 400, (url, r.text)
    detail = r.json()["detail"]
    assert detail.startswith("callback_url:") and "VIDAUTH_WEBHOOK_ALLOW_NETWORKS" in detail
    assert service.api.get("/v1/uploads").json()["uploads"] == []


def test_allowed_networks_are_explicit(
    make_service: Callable[..., ServiceSetup], receivers: Callable[..., Receiver]
) -> None:
    service = make_service(VIDAUTH_WEBHOOK_ALLOW_NETWORKS="127.0.0.2/32")
    service.connect("u1")
    refused = service.api.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url="http://127.0.0.1:9/h"
    )
    assert refused.status_code == 400
    hook = receivers("127.0.0.2")
    ok = service.api.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url=f"http://127.0.0.2:{hook.port}/h"
    )
    assert ok.status_code == 202, ok.text
    assert json.loads(hook.wait(1)[0][1])["upload_id"] == ok.json()["upload_id"]


def _fake_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]
) -> Callable[[str, str], None]:
    """Make the service resolve ``name`` to ``answers[name]`` (changeable: DNS rebinding)."""
    from vidauth.service import webhook_targets

    real = webhook_targets.resolve

    def resolve(host: str, port: int) -> list[Any]:
        if host in answers:
            return [ipaddress.ip_address(answers[host])]
        return real(host, port)

    monkeypatch.setattr(webhook_targets, "resolve", resolve)
    return answers.__setitem__


def test_delivery_connects_to_the_checked_address(
    make_service: Callable[..., ServiceSetup],
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    decoy = receivers("127.0.0.1", port)
    pinned = receivers("127.0.0.2", port)
    _fake_dns(monkeypatch, {"hooks.localhost": "127.0.0.2"})
    service = make_service(VIDAUTH_WEBHOOK_ALLOW_NETWORKS="127.0.0.2/32")
    service.connect("u1")
    r = service.api.upload(
        "u1",
        content=video_bytes(),
        folder=FOLDER,
        callback_url=f"http://hooks.localhost:{port}/h",
    )
    assert r.status_code == 202, r.text
    headers, _body = pinned.wait(1)[0]
    assert headers["host"] == f"hooks.localhost:{port}"
    assert decoy.received == []


def test_dns_rebinding_after_submit_is_refused_at_send_time(
    make_service: Callable[..., ServiceSetup],
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vidauth.service.models import Webhook

    port = free_port()
    public = receivers("127.0.0.1", port)  # stands for the public address the name had
    internal = receivers("127.0.0.2", port)  # stands for the internal one it rebinds to
    rebind = _fake_dns(monkeypatch, {"hooks.localhost": "127.0.0.1"})
    service = make_service(run_worker=False, VIDAUTH_WEBHOOK_ALLOW_NETWORKS="127.0.0.1/32")
    service.connect("u1")
    r = service.api.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url=f"http://hooks.localhost:{port}/"
    )
    assert r.status_code == 202, r.text
    rebind("hooks.localhost", "127.0.0.2")
    done = _run_worker_until(service, r.json()["upload_id"])
    assert done["state"] == "complete", done
    from vidauth.service.webhooks import WebhookSender

    sender = WebhookSender(service.ctx)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sender.deliver_due()
            with service.ctx.db.session() as session:
                errors = [w.last_error for w in session.scalars(select(Webhook))]
            if any(errors):
                break
            time.sleep(0.2)
    finally:
        sender.close()
    assert errors and all(e and e.startswith("refused:") for e in errors), errors
    assert internal.received == [] and public.received == []


# -- 8. keys and exposure -----------------------------------------------------------------------


def _cli(service: ServiceSetup, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({k.upper(): str(v) for k, v in service.settings_flags.items() if k != "env_file"})
    return run_vidauth(*args, env=env, cwd=cwd)


def test_apikey_list_and_revoke_take_effect_at_once(service: ServiceSetup, tmp_path: Path) -> None:
    from vidauth.service.auth import hash_key

    key = service.new_key(tenant="T", name="ontrack-prod")
    client = service.client(key)
    assert client.get("/v1/uploads").status_code == 200  # the key is known (and was cached)
    listed = _cli(service, "apikey", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = next(r for r in rows if r["name"] == "ontrack-prod")
    assert mine["tenant"] == "T" and mine["last_used_at"] is not None
    assert mine["revoked_at"] is None
    table = _cli(service, "apikey", "list", cwd=tmp_path)
    assert "ontrack-prod" in table.stdout and "LAST USED" in table.stdout
    for output in (listed.stdout + listed.stderr, table.stdout + table.stderr):
        assert key not in output and key[:10] not in output and hash_key(key) not in output

    revoked = _cli(service, "apikey", "revoke", str(mine["id"]), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    # Another process revoked it; this instance refuses it with the very next request.
    r = client.get("/v1/uploads")
    assert r.status_code == 401, r.text
    assert service.api.get("/v1/uploads").status_code == 200  # other keys are untouched
    after = _cli(service, "apikey", "list", "--json", cwd=tmp_path)
    assert "ontrack-prod" not in after.stdout
    with_revoked = _cli(service, "apikey", "list", "--json", "--revoked", cwd=tmp_path)
    assert any(json.loads(x)["revoked_at"] for x in with_revoked.stdout.splitlines())
    missing = _cli(service, "apikey", "revoke", "99999", cwd=tmp_path)
    assert missing.returncode == 2 and "no API key 99999" in missing.stderr


def test_apikey_create_with_a_webhook_secret_reference(
    service: ServiceSetup, tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text("file-held-webhook-secret-0123456789\n")
    literal = _cli(
        service, "apikey", "create", "x", "--webhook-secret", "a-literal-secret", cwd=tmp_path
    )
    assert literal.returncode == 2 and "never the secret itself" in literal.stderr
    made = _cli(
        service,
        "apikey",
        "create",
        "hooks",
        "--tenant",
        "H",
        "--webhook-secret",
        f"file:{secret_file}",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert made.stdout == key + "\n"
    db_file = Path(service.ctx.db.engine.url.database or "")
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert b"file-held-webhook-secret" not in raw, "the webhook secret is stored encrypted"
    client = service.client(key)
    service.connect("u1", api=client)
    hook = receivers()
    r = client.upload(
        "u1", content=video_bytes(), folder=FOLDER, callback_url=f"http://127.0.0.1:{hook.port}/"
    )
    assert r.status_code == 202, r.text
    headers, body = hook.wait(1)[0]
    assert _valid("file-held-webhook-secret-0123456789", headers, body)


def test_metrics_need_the_metrics_token(
    service: ServiceSetup, make_service: Callable[..., ServiceSetup]
) -> None:
    url = f"{service.url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {service.key}"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}x"}).status_code == 401
    ok = service.metrics()
    assert ok.status_code == 200 and "vidauth_uploads" in ok.text
    off = make_service(VIDAUTH_METRICS_TOKEN="")
    r = httpx.get(f"{off.url}/metrics")
    assert r.status_code == 403 and r.json()["error"] == "metrics_disabled"
    assert "vidauth_uploads" not in r.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Week\x071"),
        ("title", "two\nlines"),
        ("title", "nul\x00"),
        ("title", "del\x7f"),
        ("title", "c1\x85"),
        ("description", "bell\x07"),
        ("description", "escape \x1b[31m"),
    ],
)
def test_control_characters_are_refused_before_the_upload(
    tenant_service: ServiceSetup, field: str, value: str
) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(2_000_000), folder=FOLDER, **{field: value})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"{field} holds the control character")
    assert not [p for p in service.ctx.service.upload_dir.rglob("*") if p.is_file()]
    (service.tenant_dir / "v.mp4").write_bytes(video_bytes())
    r = service.api.upload("u1", path="v.mp4", folder=FOLDER, **{field: value})
    assert r.status_code == 400, r.text
    assert service.api.get("/v1/uploads").json()["uploads"] == []


def test_text_with_line_breaks_in_the_description_is_fine(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    r = service.api.upload(
        "u1",
        content=video_bytes(),
        folder=FOLDER,
        title="Week 1 — «intro» 🎥",
        description="line one\nline two\r\n\tindented",
    )
    assert r.status_code == 202, r.text
    assert service.api.wait_upload(r.json()["upload_id"])["state"] == "complete"


def test_control_character_title_is_refused_before_the_file_streams(
    service: ServiceSetup,
) -> None:
    """The title comes first: the 400 arrives before the client has sent any of the file."""
    import socket

    service.connect("u1")
    head = (
        b'--b\r\nContent-Disposition: form-data; name="external_user_id"\r\n\r\nu1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nbad\x07\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n"
    )
    host, port = httpx.URL(service.url).host, httpx.URL(service.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/uploads HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Authorization: Bearer " + service.key.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(head):x}\r\n".encode() + head + b"\r\n"
        )
        # The file (and the end of the body) never comes: the answer must not wait for it.
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 400"), answer
    assert b"title holds the control character U+0007" in rest
    assert not [p for p in service.ctx.service.upload_dir.rglob("*") if p.is_file()]


# -- the migration -------------------------------------------------------------------------------


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import vidauth.service.models  # noqa: F401 - registers the service tables
    from vidauth.service.migrate import migrate_service
    from vidauth.store import Database
    from vidauth.store.models import Base

    urls = [f"sqlite:///{tmp_path / 'schema.db'}"]
    if os.environ.get("VIDAUTH_TEST_DATABASE_URL"):
        urls.append(os.environ["VIDAUTH_TEST_DATABASE_URL"])
    for url in urls:
        schema_db = None
        if url.startswith("postgresql"):
            pytest.importorskip("psycopg")
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            schema = f"schema_check_{uuid.uuid4().hex[:10]}"  # its own: test runs may overlap
            schema_db = Database(url)
            with schema_db.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        try:
            db = Database(url)
            migrate_service(db)
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            db.dispose()
        finally:
            if schema_db is not None:
                with schema_db.engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                schema_db.dispose()
        service_diff = [d for d in diff if "service_" in repr(d)]
        assert service_diff == [], (url.split("@")[-1], service_diff)


def test_address_rules() -> None:
    from vidauth.service.webhook_targets import address_allowed, parse_networks

    def allowed(address: str, allow: str = "") -> bool:
        return address_allowed(ipaddress.ip_address(address), parse_networks(allow))

    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert allowed(public), public
    for private in (
        "127.0.0.1", "10.1.2.3", "172.31.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "255.255.255.255", "224.0.0.251", "239.1.1.1", "240.0.0.1", "192.0.2.1",
        "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.1", "2001:db8::1",
    ):  # fmt: skip
        assert not allowed(private), private
    assert allowed("10.1.2.3", "10.0.0.0/8") and not allowed("10.1.2.3", "10.2.0.0/16")
    assert allowed("::ffff:10.1.2.3", "10.0.0.0/8")  # the mapped form of an allowed address
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("10.0.0.0/8,nonsense")
