"""``vidauth serve`` as a command: several HTTP processes on one port with one upload worker;
a port or host it cannot listen on is one line and exit 2, before anything starts."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SETTING_NAMES, free_port
from tests.helpers.processes import run_vidauth_in_process
from tests.service.conftest import ApiClient, ServiceSetup, press_start_button, video_bytes


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _python_children(pid: int) -> list[int]:
    """The HTTP processes uvicorn spawned (its multiprocessing helpers are skipped)."""
    return [
        child
        for child in _children(pid)
        if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes()
        and b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wait_healthy(url: str, proc: subprocess.Popen[str], seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


def test_serve_with_two_http_processes_takes_uploads_and_stops_cleanly(
    make_service: Callable[..., ServiceSetup],
) -> None:
    # The fixture's in-test server (no worker of its own) connects the user; the subprocess
    # `vidauth serve --processes 2` shares its database and is the only one running uploads.
    service = make_service(run_worker=False)
    service.connect("u1")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({k.upper(): str(v) for k, v in service.settings_flags.items() if k != "env_file"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "serve", "--processes", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,  # the access log, unread until the end, would fill a pipe
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    api = ApiClient(url, service.key)
    try:
        _wait_healthy(url, proc)
        http_processes = _python_children(proc.pid)
        assert len(http_processes) == 2, _children(proc.pid)

        videos = [video_bytes(600 * 1024, seed=i) for i in range(6)]

        def upload(index: int) -> str:
            # One connection per upload, so that the kernel may hand them to either process.
            one = ApiClient(url, service.key)
            try:
                r = one.upload("u1", content=videos[index], folder="SIT101 Lectures")
            finally:
                one.close()
            assert r.status_code == 202, r.text
            return str(r.json()["upload_id"])

        with ThreadPoolExecutor(6) as pool:
            ids = list(pool.map(upload, range(6)))
        for upload_id in ids:
            done = api.wait_upload(upload_id, timeout=60)
            assert done["state"] == "complete", done
        storage = Path(service.sandbox.panopto.options.storage_dir)
        stored = {_sha256(p.read_bytes()) for p in storage.rglob("*") if p.is_file()}
        assert {_sha256(v) for v in videos} <= stored, "an uploaded video did not arrive intact"
        assert api.get("/v1/accounts/u1").json()["status"] == "connected"
    finally:
        api.close()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    for pid in http_processes:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert str(service.settings_flags["panopto_client_secret"]) not in err


def _serve(
    make_service: Callable[..., ServiceSetup],
    *args: str,
    prefix: tuple[str, ...] = (),
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``vidauth serve ARGS`` (after ``prefix``, e.g. setpriv) on a configured service,
    with extra environment ``variables``. Without a prefix it runs in this process: these
    cases end before anything serves, and what is under test is the line and the exit code."""
    service = make_service(run_worker=False)
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({k.upper(): str(v) for k, v in service.settings_flags.items() if k != "env_file"})
    env.update(variables)
    if not prefix:
        return run_vidauth_in_process("serve", *args, env=env)
    command = [*prefix, sys.executable, "-m", "vidauth", "serve", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("vidauth:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_busy_port_is_one_line_and_exit_2(
    make_service: Callable[..., ServiceSetup], processes: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve(make_service, "--port", str(port), "--processes", processes)
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert f"127.0.0.1:{port} is in use" in line and "--port" in line
    # Refused before the upload worker started.
    assert "worker" not in done.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [("999.1.1.1", "is not an address"), ("192.0.2.77", "not an address of this machine")],
)
def test_bad_host_is_one_line_and_exit_2(
    make_service: Callable[..., ServiceSetup], host: str, expected: str
) -> None:
    done = _serve(make_service, "--host", host, "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert expected in _one_line(done.stderr)


def test_privileged_port_is_one_line_and_exit_2(make_service: Callable[..., ServiceSetup]) -> None:
    first_free = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if first_free == 0:
        pytest.skip("this kernel lets anyone listen on any port")
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # root may listen anywhere: run without the capability that lets it (CI runs as root)
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test this as root"
        prefix = (setpriv, "--bounding-set", "-net_bind_service")
    done = _serve(make_service, "--port", str(first_free - 1), prefix=prefix)
    assert done.returncode == 2, done.stderr
    assert "not allowed to listen" in _one_line(done.stderr)


def test_unwritable_upload_dir_is_one_line_and_exit_2(
    make_service: Callable[..., ServiceSetup], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    # Under a regular file: nobody, root included, can create a directory there.
    spool = str(blocker / "spool")
    done = _serve(make_service, "--port", str(free_port()), VIDAUTH_UPLOAD_DIR=spool)
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert "VIDAUTH_UPLOAD_DIR" in line and "writable directory" in line


# -- the README's recipe: the service against `vidauth sandbox`, as a developer runs it ------


def _read_until(stream: Any, marker: str, proc: subprocess.Popen[str], seconds: float = 40) -> str:
    """Lines of ``stream`` up to and including the first containing ``marker``."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            assert proc.poll() is None, "".join(lines)
            continue
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError(f"no {marker!r} in:\n{''.join(lines)}")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err or ""


def test_readme_recipe_service_against_the_sandbox(tmp_path: Path, postgres_url: str) -> None:
    """`vidauth sandbox --redirect-uri {service}/oauth/callback`, `vidauth serve` with
    VIDAUTH_PUBLIC_URL, a connect link clicked through: connected. serve says where it
    listens, where /docs is and which database it uses, without the database's password."""
    from vidauth_sandbox.browser import BrowserLoginError, complete_browser_login

    sandbox_port, service_port = free_port(), free_port()
    service = f"http://127.0.0.1:{service_port}"
    callback = f"{service}/oauth/callback"
    password = "not-shown-db-password"  # PostgreSQL trusts loopback here: any password works
    database = postgres_url.replace("://postgres@", f"://postgres:{password}@", 1)
    assert password in database
    # what serve prints: the URL up to its query (host, port or socket directory vary with
    # VIDAUTH_TEST_DATABASE_URL) with the password masked
    shown = database.split("?", 1)[0].replace(f":{password}@", ":***@")
    assert shown.startswith("postgresql+psycopg://postgres:***@"), shown
    base = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "sandbox", "--port", str(sandbox_port),
         "--redirect-uri", callback, "--redirect-uri", "http://localhost:9127/redirect"],
        env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    env = dict(
        base,
        PANOPTO_SERVER=f"http://127.0.0.1:{sandbox_port}",
        PANOPTO_CLIENT_ID="vidauth-sandbox",
        PANOPTO_CLIENT_SECRET="vidauth-sandbox-secret",
        VIDAUTH_PUBLIC_URL=service,
        VIDAUTH_HOME=str(tmp_path / "home"),
        VIDAUTH_DATABASE_URL=database,
    )
    serve = None
    try:
        listing = _read_until(sandbox.stdout, "Press Ctrl-C", sandbox)
        assert listing.count("http://localhost:9127/redirect") == 1, listing  # once, not twice
        key = subprocess.run(
            [sys.executable, "-m", "vidauth", "apikey", "create", "dev"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert key.returncode == 0, key.stderr
        serve = subprocess.Popen(
            [sys.executable, "-m", "vidauth", "serve", "--port", str(service_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started = _read_until(serve.stderr, "worker:", serve)
        assert f"listening on {service}" in started
        assert f"API docs:  {service}/docs" in started
        assert f"database:  {shown}" in started
        assert f"callback:  {callback}" in started
        assert password not in started
        _wait_healthy(service, serve)

        api = ApiClient(service, key.stdout.strip())
        try:
            start_url = api.post("/v1/accounts/dev-user/connect").json()["connect_url"]
            with httpx.Client(timeout=30.0) as browser:  # keeps the start page's cookie
                start = press_start_button(start_url, browser)
                assert start.status_code == 303, start.text
                link = start.headers["location"]  # the sandbox's authorize URL
                page = complete_browser_login(link, client=browser)
            assert page.status_code == 200 and "connected" in page.text.lower()
            assert api.get("/v1/accounts/dev-user").json()["status"] == "connected"
        finally:
            api.close()
        # a redirect URI the sandbox does not know: each registered one named once
        wrong = link.replace("oauth%2Fcallback", "oauth%2Fwrong")
        assert wrong != link
        with pytest.raises(BrowserLoginError) as refused:
            complete_browser_login(wrong)
        message = str(refused.value)
        assert "redirect_uri mismatch" in message
        assert message.count(callback) == 1 and message.count("localhost:9127/redirect") == 1
    finally:
        if serve is not None:
            err = _stop(serve)
            assert password not in err
        _stop(sandbox)


def test_masked_database_url() -> None:
    from vidauth.cli.service import masked_database_url

    assert (
        masked_database_url("postgresql+psycopg://vidauth:pa%40ss@db.example.edu:5432/vidauth")
        == "postgresql+psycopg://vidauth:***@db.example.edu:5432/vidauth"
    )
    assert masked_database_url("sqlite:////var/lib/vidauth/vidauth.db").endswith("vidauth.db")
