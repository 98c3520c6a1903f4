"""Fixtures for the HTTP service: a full sandbox, ``vidauth serve``'s app on loopback, API keys.

Use ``service`` (a :class:`ServiceSetup`) in a test::

    def test_x(service: ServiceSetup) -> None:
        api = service.api            # ApiClient with the default tenant's key
        service.connect("u1")        # connect → sandbox login/consent → callback page
        r = api.post("/v1/uploads", data={...}, files={"file": ...})

``make_service(**env)`` starts one with extra ``VIDAUTH_*`` variables (e.g.
``VIDAUTH_MAX_UPLOAD_BYTES="1000"``) or sandbox knobs (``access_token_lifetime=5``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

MiB = 1024 * 1024
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
METRICS_TOKEN = "test-metrics-token-0123456789abcdef"
#: The test receivers listen on loopback, which webhooks may reach only when allowed.
LOOPBACK_NETWORKS = "127.0.0.1/32,::1/128"
FINAL_STATES = ("complete", "failed", "cancelled")


class ApiClient:
    """``httpx.Client`` on the service's base URL sending one API key (``key=None``: none)."""

    def __init__(self, base_url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.key = key
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30.0)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """GET ``path``."""
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        """POST ``path``."""
        return self.http.post(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        """DELETE ``path``."""
        return self.http.delete(path, **kw)

    def upload(
        self,
        external_user_id: str,
        *,
        content: bytes | None = None,
        path: str | None = None,
        filename: str = "video.mp4",
        folder: str = "My Folder",
        title: str = "A video",
        **fields: str,
    ) -> httpx.Response:
        """POST /v1/uploads as multipart: ``content`` as field ``file``, or ``path``."""
        data = {"external_user_id": external_user_id, "folder": folder, "title": title, **fields}
        if path is not None:
            data["path"] = path
        files = {"file": (filename, content, "video/mp4")} if content is not None else None
        if files is None:
            return self.post_form("/v1/uploads", data)
        return self.http.post("/v1/uploads", data=data, files=files)

    def post_form(self, url: str, fields: dict[str, str]) -> httpx.Response:
        """POST ``fields`` as multipart/form-data without a file part."""
        boundary = "vidauth-test-" + uuid.uuid4().hex
        body = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                + v.encode()
                + b"\r\n"
                for k, v in fields.items()
            )
            + f"--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.http.post(url, content=body, headers=headers)

    def wait_upload(
        self, upload_id: str, states: tuple[str, ...] = FINAL_STATES, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll GET /v1/uploads/{id} until its state is one of ``states``; return the JSON."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = self.get(f"/v1/uploads/{upload_id}")
            assert r.status_code == 200, r.text
            body = r.json()
            if body["state"] in states:
                return body
            time.sleep(0.1)
        raise AssertionError(f"upload {upload_id} still {body.get('state')!r}: {body}")

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


class _Forms(HTMLParser):
    """The forms of a page: id → (method, action, {hidden field: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, str, dict[str, str]]] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = a.get("id", "")
            self.forms[self._open] = (a.get("method", "get"), a.get("action", ""), {})
        elif tag == "input" and self._open is not None and a.get("type") == "hidden":
            self.forms[self._open][2][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def page_forms(html: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """The forms of an HTML page: id → (method, action, hidden fields)."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def press_start_button(
    connect_url: str, browser: httpx.Client, button: str = "continue"
) -> httpx.Response:
    """Open a connect link's start page like a person: GET it (which uses nothing up), then
    submit its ``continue`` form ("Continue to Panopto": a 303 to Panopto with the cookie) or
    its ``decline`` form ("This link is not for me"). The form's answer, not followed."""
    page = browser.get(connect_url, follow_redirects=False)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    method, action, fields = page_forms(page.text)[f"{button}-form"]
    assert method == "post"
    return browser.post(page.url.join(action), data=fields, follow_redirects=False)


def open_connect_link(
    connect_url: str, client: httpx.Client | None = None, **login: Any
) -> httpx.Response:
    """Open a connect link like a browser: vidauth's start page and its "Continue to Panopto"
    button (which sets the cookie that binds the sign-in to this browser), then the sandbox's
    login and consent, then the callback. Returns the callback's response. ``client`` keeps
    the cookies (one per call when not given)."""
    from vidauth_sandbox.browser import complete_browser_login

    own = client is None
    browser = client or httpx.Client(timeout=30.0)
    try:
        start = press_start_button(connect_url, browser)
        assert start.status_code == 303, start.text
        return complete_browser_login(start.headers["location"], client=browser, **login)
    finally:
        if own:
            browser.close()


@dataclass
class ServiceSetup:
    """A full sandbox plus the service app served on loopback, with one API key."""

    sandbox: Any  # vidauth_sandbox.full.FullSandbox
    ctx: Any  # vidauth.service.context.ServiceContext
    server: Any  # vidauth._serving.BackgroundServer
    url: str
    key: str
    home: Path
    shared_dir: Path
    settings_flags: dict[str, Any]
    clients: list[ApiClient] = field(default_factory=list)
    _api: ApiClient | None = None
    #: The tenant of ``key`` (its directory under VIDAUTH_SHARED_DIR is ``tenant_dir``).
    tenant: str = "default"
    #: False for a tenant's view of a shared service: ``close`` leaves the service running.
    owner: bool = True

    @property
    def api(self) -> ApiClient:
        """A client with the default tenant's API key (``key``)."""
        if self._api is None:
            self._api = self.client(self.key)
        return self._api

    def client(self, key: str | None) -> ApiClient:
        """A client with another key (or none)."""
        c = ApiClient(self.url, key)
        self.clients.append(c)
        return c

    def new_key(
        self, tenant: str = "default", name: str = "test", webhook_secret: str | None = None
    ) -> str:
        """Create an API key for ``tenant`` directly in the database."""
        from vidauth.service.auth import create_api_key

        return str(
            create_api_key(
                self.ctx.db,
                name,
                tenant,
                webhook_secret=webhook_secret,
                cipher=self.ctx.store.cipher,
            )
        )

    def connect(
        self, external_user_id: str, api: ApiClient | None = None, **browser: Any
    ) -> httpx.Response:
        """Ask for a connect link and click through the sandbox's login and consent.

        Returns the response of the service's callback page.
        """
        r = (api or self.api).post(f"/v1/accounts/{external_user_id}/connect")
        assert r.status_code == 200, r.text
        return open_connect_link(r.json()["connect_url"], **browser)

    @property
    def tenant_dir(self) -> Path:
        """This setup's tenant's directory under VIDAUTH_SHARED_DIR."""
        return self.shared_dir / self.tenant

    def metrics(self) -> httpx.Response:
        """GET /metrics with the metrics token."""
        return httpx.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )

    def revoke_grants(self) -> int:
        """Revoke every grant at the sandbox (as if the user withdrew consent); their count."""
        state = self.sandbox.state
        with state._lock:
            grants = list(state._grants)
            for grant_id in grants:
                state._revoke_grant(grant_id)
        return len(grants)

    def close(self) -> None:
        """Stop everything (a tenant's view: close its clients only)."""
        for c in self.clients:
            c.close()
        if not self.owner:
            return
        self.server.stop()
        self.ctx.close()
        self.sandbox.stop()


def start_service(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    run_worker: bool = True,
    access_token_lifetime: int = 3600,
    processing_delay: float = 0.3,
    s3_bandwidth: float | None = None,
    s3_latency: float = 0.0,
    protected: bool = False,
    **env: str,
) -> ServiceSetup:
    """Start a full sandbox and the service (its worker in-process unless ``run_worker=False``).

    ``env`` holds extra ``VIDAUTH_*`` variables, overriding the quick test defaults;
    ``s3_bandwidth`` (bytes/s) and ``s3_latency`` (s) slow the sandbox's S3 target;
    ``protected`` serves with ``vidauth serve``'s own HTTP protocol (header and body idle
    timeouts, the cap on connections per client address).
    """
    from vidauth._serving import BackgroundServer
    from vidauth.config import load_settings
    from vidauth.service.auth import create_api_key
    from vidauth.service.context import ServiceContext
    from vidauth.service.protection import uvicorn_options
    from vidauth.service.runner import service_app
    from vidauth.service.settings import load_service_settings
    from vidauth_sandbox import SandboxClient, SandboxConfig
    from vidauth_sandbox.full import start_full_sandbox

    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    callback = f"{public_url}/oauth/callback"
    client = SandboxClient(
        client_id=f"svc-{uuid.uuid4().hex[:8]}",
        client_secret="svc-client-secret-" + uuid.uuid4().hex,
        redirect_uris=[callback],
        grant_types=["authorization_code", "refresh_token"],
    )
    sandbox = start_full_sandbox(
        SandboxConfig(clients=[client], access_token_lifetime=access_token_lifetime),
        storage_dir=tmp_path / "objects",
        processing_delay=processing_delay,
        s3_bandwidth=s3_bandwidth,
        s3_latency=s3_latency,
    )
    home = tmp_path / "svc-home"
    shared = tmp_path / "shared"
    (shared / "default").mkdir(parents=True, exist_ok=True)
    variables = {
        "VIDAUTH_PUBLIC_URL": public_url,
        "VIDAUTH_SHARED_DIR": str(shared),
        "VIDAUTH_UPLOAD_DIR": str(tmp_path / "ingest"),
        "VIDAUTH_WEBHOOK_ALLOW_NETWORKS": LOOPBACK_NETWORKS,
        "VIDAUTH_METRICS_TOKEN": METRICS_TOKEN,
        "VIDAUTH_POLL_SECONDS": "0.1",
        "VIDAUTH_HEARTBEAT_SECONDS": "1",
        "VIDAUTH_LEASE_SECONDS": "5",
        "VIDAUTH_PROCESSING_POLL_MAX": "0.3",
        "VIDAUTH_TOKEN_MIN_VALIDITY": "0",
    }
    variables.update(env)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    flags: dict[str, Any] = {
        "env_file": False,
        "panopto_server": sandbox.url,
        "panopto_client_id": client.client_id,
        "panopto_client_secret": client.client_secret,
        "panopto_redirect_uri": callback,
        "vidauth_home": str(home),
    }
    settings = load_settings(**flags)
    ctx = ServiceContext(settings, load_service_settings(settings, env_file=tmp_path / "no.env"))
    ctx.store  # noqa: B018 - migrate before serving
    # The default key signs its webhooks with a secret of its own (not VIDAUTH_WEBHOOK_SECRET).
    key = create_api_key(
        ctx.db, "test", "default", webhook_secret=WEBHOOK_SECRET, cipher=ctx.store.cipher
    )
    options = uvicorn_options(ctx.service) if protected else {}
    server = BackgroundServer(service_app(ctx, run_worker=run_worker), port=port, **options)
    server.start()
    return ServiceSetup(sandbox, ctx, server, public_url, key, home, shared, flags)


@pytest.fixture
def make_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ServiceSetup]]:
    """Factory: ``make_service(run_worker=True, access_token_lifetime=…, s3_bandwidth=…,
    VIDAUTH_X="…")`` → a started :class:`ServiceSetup` (stopped at teardown)."""
    started: list[ServiceSetup] = []

    def make(**options: Any) -> ServiceSetup:
        setup = start_service(tmp_path / f"svc{len(started)}", monkeypatch, **options)
        started.append(setup)
        return setup

    yield make
    for setup in started:
        setup.close()


@pytest.fixture(scope="module")
def _module_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSetup]:
    """One service with the default test settings for a module's ``tenant_service`` tests."""
    with pytest.MonkeyPatch.context() as mp:  # settings are read at start; no variable stays
        setup = start_service(tmp_path_factory.mktemp("shared-service"), mp)
    yield setup
    setup.close()


@pytest.fixture
def tenant_service(_module_service: ServiceSetup) -> Iterator[ServiceSetup]:
    """The module's shared service (default settings, worker running) seen by a tenant of this
    test's own: ``api``, ``key``, ``connect`` and ``tenant_dir`` are the new tenant's, so what
    one test creates is invisible to the next. For tests that read nothing service- or
    sandbox-wide (counters, metrics, the spool, every grant) and leave no upload running; the
    others take ``service`` (a service of their own)."""
    from vidauth.service.auth import create_api_key

    shared = _module_service
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    (shared.shared_dir / tenant).mkdir()
    key = create_api_key(
        shared.ctx.db, "test", tenant, webhook_secret=WEBHOOK_SECRET, cipher=shared.ctx.store.cipher
    )
    view = ServiceSetup(
        shared.sandbox, shared.ctx, shared.server, shared.url, key, shared.home,
        shared.shared_dir, shared.settings_flags, tenant=tenant, owner=False,
    )  # fmt: skip
    yield view
    view.close()


@pytest.fixture
def service(make_service: Callable[..., ServiceSetup]) -> ServiceSetup:
    """The service with default test settings (in-process worker, webhook secret set)."""
    return make_service()


def video_bytes(size: int = 256 * 1024, seed: int = 1) -> bytes:
    """``size`` bytes that pass vidauth's media check (an MP4 ``ftyp`` header + random)."""
    import random

    header = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return header + random.Random(seed).randbytes(max(0, size - len(header)))
