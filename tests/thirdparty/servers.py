"""Real third-party OAuth2 / OpenID Connect servers on loopback, as pytest fixtures.

* ``dot_server``: Django OAuth Toolkit (what Omniport is built on), ``tests/thirdparty/dot_server``.
  Needs ``django`` and ``django-oauth-toolkit`` in the interpreter running pytest.
* ``oidc_provider_server``: panva's certified ``oidc-provider`` (npm),
  ``tests/thirdparty/oidc_provider``.
  Needs node >= 18; ``npm ci`` is run there if ``node_modules`` is missing.

Both are session-scoped and yield a :class:`ThirdPartyServer`. Each registers exactly one redirect
URI, ``http://127.0.0.1:<free port>/redirect``, picked before the server starts; tests run their
loopback listener (vidauth's, or :class:`RedirectCatcher`) on it.

A server that cannot start fails the test. The one exception: outside CI (``CI`` unset) a missing
node/npm, or an ``npm ci`` that fails, skips instead. Missing Django packages always fail.

For other settings (a 2-second access token, say) use :func:`run_dot_server` /
:func:`run_oidc_provider` directly in your own fixture.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.helpers.ports import free_port

HERE = Path(__file__).resolve().parent
DOT_DIR = HERE / "dot_server"
OP_DIR = HERE / "oidc_provider"
CI = bool(os.environ.get("CI"))
START_TIMEOUT = 60.0

DOT_INSTALL_HINT = ".venv/bin/pip install 'django>=5.2,<6' 'django-oauth-toolkit>=3.4,<4'"


class ThirdPartyServerError(AssertionError):
    """The server, or the 'browser' acting on its pages, did something unexpected."""


# --------------------------------------------------------------------------- the 'browser'


@dataclass
class _Form:
    id: str | None
    action: str | None
    method: str
    fields: list[dict[str, str]] = field(default_factory=list)  # inputs, buttons, textareas


class _PageParser(HTMLParser):
    """Forms (with their inputs and buttons, including ones outside tied by form=ID) and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._form: _Form | None = None
        self._orphans: list[dict[str, str]] = []
        self._link: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = _Form(a.get("id"), a.get("action"), (a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag in ("input", "button", "textarea", "select"):
            a["_tag"] = tag
            if tag == "button":
                a.setdefault("type", "submit")
            owner = a.get("form")
            if owner:
                self._orphans.append(a)
            elif self._form is not None:
                self._form.fields.append(a)
        elif tag == "a" and "href" in a:
            self._link = [a["href"], ""]
            self.links.append(("", ""))

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "a" and self._link is not None:
            self.links[-1] = (self._link[0], self._link[1].strip())
            self._link = None

    def close(self) -> None:
        super().close()
        for a in self._orphans:
            for f in self.forms:
                if f.id == a.get("form"):
                    f.fields.append(a)


def _parse(html: str) -> _PageParser:
    p = _PageParser()
    p.feed(html)
    p.close()
    return p


def _text_excerpt(resp: httpx.Response, limit: int = 600) -> str:
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", resp.text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:limit]


def _same_endpoint(url: str, redirect_uri: str) -> bool:
    a, b = urlsplit(url), urlsplit(redirect_uri)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


@dataclass
class ThirdPartyServer:
    name: str  # "django-oauth-toolkit" | "oidc-provider"
    base_url: str  # http://127.0.0.1:PORT
    issuer: str | None  # OIDC issuer, from discovery
    authorize_url: str
    token_url: str
    revocation_url: str | None
    userinfo_url: str | None
    device_authorization_url: str | None
    client_id: str
    client_secret: str
    redirect_uri: str  # the exact URI registered for the client
    username: str
    password: str
    scope: str
    # extras
    discovery_url: str | None = None
    jwks_uri: str | None = None
    introspection_url: str | None = None
    token_endpoint_auth_method: str = "client_secret_basic"  # what the client is registered with
    access_token_ttl: int = 300
    log_path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # the discovery document, if any

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)

    # ---- acting as the person in a browser

    def browser_login(
        self,
        authorize_url: str,
        *,
        consent: bool = True,
        deliver: bool = True,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """GET ``authorize_url``, log in, consent (or refuse, ``consent=False``), and follow the
        redirects up to the one to ``redirect_uri``; then GET that URL (so a listener there gets
        the code) and return its response. With ``deliver=False`` the redirect response itself
        (its ``Location`` carries ``code``/``state`` or ``error``) is returned instead.
        Pass ``client`` to keep a browser session (cookies) across calls."""
        own = client is None
        browser = client or httpx.Client(timeout=15.0)
        try:
            resp = self._browse(browser, "GET", authorize_url, None, consent=consent)
            location = urljoin(str(resp.url), resp.headers["location"])
            if not deliver:
                return resp
            return browser.get(location)
        finally:
            if own:
                browser.close()

    def device_approve(self, verification_uri_complete_or_uri: str, user_code: str) -> None:
        """Open the verification URI in a fresh 'browser', enter/confirm ``user_code``, log in and
        consent, until the provider says the device sign-in succeeded."""
        with httpx.Client(timeout=15.0) as browser:
            resp = self._browse(
                browser, "GET", verification_uri_complete_or_uri, None, user_code=user_code
            )
        if resp.is_redirect:
            raise ThirdPartyServerError(
                f"device approval ended in a redirect to {resp.headers.get('location')}"
            )

    def _browse(
        self,
        browser: httpx.Client,
        method: str,
        url: str,
        data: dict[str, str] | None,
        *,
        consent: bool = True,
        user_code: str | None = None,
    ) -> httpx.Response:
        """Follow redirects and fill forms. Returns the redirect to ``redirect_uri`` (login flow)
        or, for the device flow, the final page once it has no form left."""
        seen_login = 0
        for _ in range(40):
            resp = browser.request(method, url, data=data, follow_redirects=False)
            if resp.is_redirect:
                location = urljoin(str(resp.url), resp.headers["location"])
                if user_code is None and _same_endpoint(location, self.redirect_uri):
                    return resp
                method, url, data = "GET", location, None
                continue
            if resp.status_code >= 400:
                raise ThirdPartyServerError(
                    f"{self.name}: {resp.request.method} {resp.url} -> {resp.status_code}: "
                    f"{_text_excerpt(resp)}"
                )
            page = _parse(resp.text)
            forms = [f for f in page.forms if f.method == "post"] or page.forms
            if not forms:
                if user_code is not None and "success" in resp.text.lower():
                    return resp
                raise ThirdPartyServerError(
                    f"{self.name}: no form to fill on {resp.url}: {_text_excerpt(resp)}"
                )
            form = next(
                (f for f in forms if any(x.get("type") == "password" for x in f.fields)),
                forms[0],
            )
            is_login = any(x.get("type") == "password" for x in form.fields)
            if is_login:
                seen_login += 1
                if seen_login > 2:
                    raise ThirdPartyServerError(
                        f"{self.name}: log-in refused for {self.username!r}: {_text_excerpt(resp)}"
                    )
            if not is_login and not consent:
                # Refuse: DOT = submit without the 'allow' button; oidc-provider = its abort link.
                if any(x.get("name") == "allow" for x in form.fields):
                    data = self._fill(form, user_code, allow=False)
                else:
                    abort = next(
                        (h for h, t in page.links if "abort" in h.lower() or "cancel" in t.lower()),
                        None,
                    )
                    if abort is None:
                        raise ThirdPartyServerError(f"{self.name}: no way to refuse on {resp.url}")
                    method, url, data = "GET", urljoin(str(resp.url), abort), None
                    continue
            else:
                data = self._fill(form, user_code, allow=True)
            method = form.method.upper()
            url = urljoin(str(resp.url), form.action or str(resp.url))
            if method == "GET":
                url = str(httpx.URL(url, params=data))
                data = None
        raise ThirdPartyServerError(f"{self.name}: too many steps, last at {url}")

    def _fill(self, form: _Form, user_code: str | None, *, allow: bool) -> dict[str, str]:
        data: dict[str, str] = {}
        for f in form.fields:
            name, kind = f.get("name"), (f.get("type") or "text").lower()
            if not name:
                continue
            if kind in ("submit", "button", "image", "reset"):
                # only a consent 'allow' button is sent along; never 'abort'/'cancel'
                if name == "allow" and allow:
                    data[name] = f.get("value", "")
                continue
            if kind in ("checkbox", "radio") and "checked" not in f:
                continue
            value = f.get("value", "")
            if kind == "password":
                value = self.password
            elif kind in ("text", "email") and name in ("username", "login", "email"):
                value = self.username
            elif name == "user_code" and user_code is not None and not value:
                value = user_code
            data[name] = value
        return data


# --------------------------------------------------------------------------- redirect catcher


class RedirectCatcher:
    """A tiny loopback HTTP server on the redirect URI's port recording the query strings it gets.

    >>> with RedirectCatcher(server.redirect_uri) as catcher: ...; catcher.params["code"]
    """

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self.path = parts.path
        self.requests: list[dict[str, list[str]]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                u = urlsplit(self.path)
                if u.path != catcher.path:
                    self.send_error(404)
                    return
                catcher.requests.append(parse_qs(u.query, keep_blank_values=True))
                body = b"vidauth test redirect catcher: you may close this window"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(
            (parts.hostname or "127.0.0.1", parts.port or 80), Handler
        )
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def params(self) -> dict[str, str]:
        """The last request's query, one value per name."""
        if not self.requests:
            raise AssertionError("nothing arrived at the redirect URI")
        return {k: v[0] for k, v in self.requests[-1].items()}

    def __enter__(self) -> RedirectCatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# --------------------------------------------------------------------------- processes


def _tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _unavailable(message: str) -> None:
    """An environment problem (no node, npm registry unreachable): skip locally, fail in CI."""
    if CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _run_step(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, what: str) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            rc = subprocess.run(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    if rc != 0:
        pytest.fail(f"{what} failed (exit {rc}); log {log}:\n{_tail(log)}", pytrace=False)


@contextlib.contextmanager
def _serve(
    cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, ready_url: str, what: str
) -> Iterator[float]:
    """Start ``cmd`` in its own process group, wait until ``ready_url`` answers 200, yield the
    seconds that took, and stop the process group afterwards."""
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = started + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{what} exited with {proc.returncode} before answering; log {log}:\n"
                    f"{_tail(log)}",
                    pytrace=False,
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what} did not answer {ready_url} within {START_TIMEOUT:.0f}s; log {log}:\n"
                    f"{_tail(log)}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield time.monotonic() - started
    finally:
        _stop(proc)


@contextlib.contextmanager
def run_dot_server(
    workdir: Path,
    *,
    redirect_uri: str | None = None,
    access_token_seconds: int = 300,
    username: str = "alice",
    password: str = "alice-dot-password",
    client_id: str = "vidauth-dot-client",
    client_secret: str = "vidauth-dot-client-secret",
) -> Iterator[ThirdPartyServer]:
    """Django OAuth Toolkit: migrate, bootstrap user + app, ``runserver --noreload``."""
    missing = [m for m in ("django", "oauth2_provider") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not importable in {sys.executable}; install with: "
            f"{DOT_INSTALL_HINT}",
            pytrace=False,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redirect_uri = redirect_uri or f"http://127.0.0.1:{free_port()}/redirect"
    base = f"http://127.0.0.1:{port}"
    log = workdir / "dot_server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dotserver.settings",
        "DOT_DATA_DIR": str(workdir / "data"),
        "DOT_ACCESS_TOKEN_SECONDS": str(access_token_seconds),
        "DOT_USERNAME": username,
        "DOT_PASSWORD": password,
        "DOT_CLIENT_ID": client_id,
        "DOT_CLIENT_SECRET": client_secret,
        "DOT_REDIRECT_URI": redirect_uri,
        "PYTHONUNBUFFERED": "1",
    }
    py = sys.executable
    started = time.monotonic()
    _run_step(
        [py, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=DOT_DIR,
        env=env,
        log=log,
        what="django-oauth-toolkit: manage.py migrate",
    )
    _run_step(
        [py, "manage.py", "bootstrap_dot"],
        cwd=DOT_DIR,
        env=env,
        log=log,
        what="django-oauth-toolkit: manage.py bootstrap_dot",
    )
    with _serve(
        [py, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=DOT_DIR,
        env=env,
        log=log,
        ready_url=f"{base}/health",
        what="django-oauth-toolkit",
    ):
        discovery = f"{base}/o/.well-known/openid-configuration"
        meta = httpx.get(discovery, timeout=5.0).json()
        server = ThirdPartyServer(
            name="django-oauth-toolkit",
            base_url=base,
            issuer=meta.get("issuer"),
            authorize_url=f"{base}/o/authorize/",
            token_url=f"{base}/o/token/",
            revocation_url=f"{base}/o/revoke_token/",  # not in DOT's discovery document
            userinfo_url=meta.get("userinfo_endpoint"),
            device_authorization_url=None,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            username=username,
            password=password,
            scope="openid read write",
            discovery_url=discovery,
            jwks_uri=meta.get("jwks_uri"),
            introspection_url=f"{base}/o/introspect/",
            token_endpoint_auth_method="client_secret_basic",  # client_secret_post works too
            access_token_ttl=access_token_seconds,
            log_path=log,
            metadata={**meta, "_startup_seconds": round(time.monotonic() - started, 2)},
        )
        yield server


def _ensure_node_modules() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        _unavailable("oidc-provider needs node >= 18 and npm on PATH")
    assert node is not None and npm is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)", version)
    major = int(m.group(1)) if m else 0
    if major < 18:
        _unavailable(f"oidc-provider 8.x needs node >= 18, found {version or 'nothing'} at {node}")
    if not (OP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=OP_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            _unavailable(
                f"`npm ci` in {OP_DIR} failed (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )
    return node


@contextlib.contextmanager
def run_oidc_provider(
    workdir: Path,
    *,
    redirect_uri: str | None = None,
    access_token_seconds: int = 300,
    username: str = "alice",
    password: str = "alice-op-password",
    client_id: str = "vidauth-op-client",
    client_secret: str = "vidauth-op-client-secret",
    token_endpoint_auth_method: str = "client_secret_basic",
) -> Iterator[ThirdPartyServer]:
    """panva/oidc-provider via ``node server.mjs`` (devInteractions: any login/password works)."""
    node = _ensure_node_modules()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redirect_uri = redirect_uri or f"http://127.0.0.1:{free_port()}/redirect"
    base = f"http://127.0.0.1:{port}"
    log = workdir / "oidc_provider.log"
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_REDIRECT_URIS": redirect_uri,
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_TOKEN_AUTH_METHOD": token_endpoint_auth_method,
        "OIDC_ACCESS_TOKEN_TTL": str(access_token_seconds),
    }
    discovery = f"{base}/.well-known/openid-configuration"
    started = time.monotonic()
    with _serve(
        [node, "server.mjs"],
        cwd=OP_DIR,
        env=env,
        log=log,
        ready_url=discovery,
        what="oidc-provider",
    ):
        meta = httpx.get(discovery, timeout=5.0).json()
        yield ThirdPartyServer(
            name="oidc-provider",
            base_url=base,
            issuer=meta["issuer"],
            authorize_url=meta["authorization_endpoint"],
            token_url=meta["token_endpoint"],
            revocation_url=meta.get("revocation_endpoint"),
            userinfo_url=meta.get("userinfo_endpoint"),
            device_authorization_url=meta.get("device_authorization_endpoint"),
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            username=username,
            password=password,
            scope="openid email profile",
            discovery_url=discovery,
            jwks_uri=meta.get("jwks_uri"),
            introspection_url=meta.get("introspection_endpoint"),
            token_endpoint_auth_method=token_endpoint_auth_method,
            access_token_ttl=access_token_seconds,
            log_path=log,
            metadata={**meta, "_startup_seconds": round(time.monotonic() - started, 2)},
        )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def dot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThirdPartyServer]:
    """Django OAuth Toolkit on 127.0.0.1, one confidential authorization-code client."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    with run_dot_server(tmp_path_factory.mktemp("dot_server"), redirect_uri=redirect_uri) as s:
        yield s


@pytest.fixture(scope="session")
def oidc_provider_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThirdPartyServer]:
    """panva/oidc-provider on 127.0.0.1, one confidential client (code, refresh, device)."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    with run_oidc_provider(
        tmp_path_factory.mktemp("oidc_provider"), redirect_uri=redirect_uri
    ) as s:
        yield s
