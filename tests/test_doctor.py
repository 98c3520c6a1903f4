"""`vidauth doctor`: a checklist with a fix per failure, exit 2 when anything fails."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import SETTING_NAMES, SandboxSetup
from tests.helpers.ports import free_port
from tests.helpers.processes import run_vidauth, run_vidauth_in_process
from vidauth.cli import run
from vidauth.cli.doctor import FAIL, OK, SKIPPED, run_doctor, tls_check
from vidauth.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def statuses(checks: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {c.name.split(" ")[0]: c.status for c in checks}


def test_all_green_against_the_sandbox(
    sandbox: SandboxSetup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.flags().items():
        monkeypatch.setenv(name.upper(), str(value))
    assert run(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {c["name"].split(" ")[0]: c for c in report["checks"]}
    assert report["ok"] and {c["status"] for c in report["checks"]} <= {OK, "info"}
    assert "plain http on loopback" in names["server"]["detail"]
    assert "accepted the client" in names["client"]["detail"]
    assert set(names) >= {"configuration", "discovery", "server", "clock", "client", "redirect"}
    assert run(["doctor"]) == 0  # the Rich checklist
    assert sandbox.client_secret not in capsys.readouterr().out


def test_wrong_secret_fails_the_client_check(sandbox: SandboxSetup) -> None:
    settings = load_settings(**sandbox.flags(panopto_client_secret="not-the-secret"))
    checks = run_doctor(settings)
    client = next(c for c in checks if c.name == "client")
    assert client.status == FAIL and client.fix and "client_secret" in client.fix
    assert all("not-the-secret" not in f"{c.detail} {c.fix}" for c in checks)


def _port(redirect_uri: str) -> int:
    return int(redirect_uri.rsplit(":", 1)[1].split("/")[0])


def test_redirect_port_in_use(sandbox: SandboxSetup) -> None:
    port = _port(sandbox.redirect_uri)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        checks = run_doctor(load_settings(**sandbox.flags()), probe_client=False)
    redirect = next(c for c in checks if c.name == "redirect URI")
    assert redirect.status == FAIL and f"port {port}" in (redirect.fix or "")
    assert f"port {port} is in use" in redirect.detail
    if sys.platform == "linux":  # /proc tells who listens: this very process
        assert f"(pid {os.getpid()})" in redirect.detail, redirect.detail


def _time_wait_on(port: int) -> int:
    """Connections in TIME_WAIT (state 06) whose local port is ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "06" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _leave_time_wait_on(port: int) -> None:
    """Serve one connection on ``port`` and close it from the server's side first, as the
    loopback listener does after answering the browser: the server's end stays in TIME_WAIT.

    A sign-in leaves such a connection only when the listener closes before the browser does,
    which is a race; this makes the state the test is about certain."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)) as browser:
            accepted, _ = server.accept()
            accepted.close()  # the server's FIN goes first
            assert browser.recv(1) == b""  # the browser sees it, then closes
    deadline = time.monotonic() + 5
    while _time_wait_on(port) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="reads TIME_WAIT from /proc/net/tcp")
def test_redirect_port_is_free_right_after_a_sign_in(sandbox: SandboxSetup) -> None:
    """issue 14: the sign-in leaves its connections in TIME_WAIT on the redirect port; the
    listener binds over them, so doctor must call the port free."""
    port = _port(sandbox.redirect_uri)
    with sandbox.vidauth() as va:
        sandbox.login(va)  # through the real loopback listener
    if _time_wait_on(port) == 0:  # the browser happened to close first
        _leave_time_wait_on(port)
    assert _time_wait_on(port) >= 1, "no TIME_WAIT on the port: the test proves nothing"
    with socket.socket() as naive, pytest.raises(OSError):  # what the old probe did
        naive.bind(("127.0.0.1", port))
    checks = run_doctor(load_settings(**sandbox.flags()), probe_client=False)
    redirect = next(c for c in checks if c.name == "redirect URI")
    assert redirect.status == OK and f"port {port} is free" in redirect.detail, redirect
    with sandbox.vidauth() as va:  # and the listener can indeed bind it again
        assert sandbox.login(va).username == "alice"


def test_missing_configuration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor"]) == 2
    assert "PANOPTO_SERVER" in capsys.readouterr().out


def test_unreachable_server(tmp_path: Path) -> None:
    settings = load_settings(
        env_file=False,
        panopto_server=f"http://127.0.0.1:{free_port()}",
        panopto_client_id="x",
        panopto_client_secret="y",
        vidauth_home=str(tmp_path / "home"),
        vidauth_retry_attempts=1,
    )
    found = statuses(run_doctor(settings))
    assert found["server"] == FAIL and found["store"] == OK


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server on loopback whose certificate nobody trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    listener.close()


def test_tls_certificate_is_really_verified(self_signed_server: int) -> None:
    check = tls_check(f"https://localhost:{self_signed_server}")
    assert check.status == FAIL and "certificate not valid" in check.detail
    assert check.fix and "certificate" in check.fix


def _env(tmp_path: Path, server: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(
        PANOPTO_SERVER=server,
        PANOPTO_CLIENT_ID="doctor-test",
        PANOPTO_CLIENT_SECRET="doctor-test-secret",
        PANOPTO_REDIRECT_URI=f"http://127.0.0.1:{free_port()}/redirect",
        VIDAUTH_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(ROOT / "src"),
        COLUMNS="80",
        **extra,
    )
    env.pop("VIDAUTH_DEBUG", None)
    return env


def test_unreachable_server_is_said_once_and_blocks_the_rest(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    done = run_vidauth_in_process("doctor", env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr == "", "doctor speaks only in its table without -v"
    assert done.stdout.count("cannot connect") == 1, done.stdout
    assert "skipped: server unreachable" in done.stdout
    assert "check the server name, that it is running" in done.stdout  # the fix, once
    assert elapsed < 20, f"doctor took {elapsed:.1f} s on a refused connection"
    report = json.loads(run_vidauth_in_process("doctor", "--json", env=env, cwd=tmp_path).stdout)
    found = {c["name"].split(" ")[0]: c for c in report["checks"]}
    assert found["server"]["status"] == FAIL
    for name in ("discovery", "clock", "client"):
        assert found[name] == {
            "name": name,
            "status": SKIPPED,
            "detail": "skipped: server unreachable",
            "fix": None,
        }
    assert found["redirect"]["status"] == OK and found["store"]["status"] == OK


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return


def test_retry_warnings_show_only_with_verbose(tmp_path: Path) -> None:
    """A reachable server that answers 503: the retries happen (and are logged with -v),
    but without -v stderr stays empty and the table says what failed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = _env(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
        quiet = run_vidauth("doctor", env=env, cwd=tmp_path)
        loud = run_vidauth("-v", "doctor", env=env, cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert quiet.returncode == loud.returncode == 2
    assert quiet.stderr == "", quiet.stderr
    assert "discovery" in quiet.stdout and "503" in quiet.stdout
    # at 80 columns the fix is whole, its path included (it used to end in "openid-c…")
    assert "…" not in quiet.stdout
    assert "/.well-known/openid-configuration" in quiet.stdout.split(), quiet.stdout
    assert "WARNING vidauth.http" in loud.stderr and "retrying" in loud.stderr
