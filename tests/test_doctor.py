"""`vidauth doctor`: a checklist with a fix per failure, exit 2 when anything fails."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SandboxSetup
from vidauth.cli import run
from vidauth.config import load_settings
from vidauth.doctor import FAIL, OK, run_doctor, tls_check


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


def test_redirect_port_in_use(sandbox: SandboxSetup) -> None:
    port = int(sandbox.redirect_uri.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        checks = run_doctor(load_settings(**sandbox.flags()), probe_client=False)
    redirect = next(c for c in checks if c.name == "redirect URI")
    assert redirect.status == FAIL and f"port {port}" in (redirect.fix or "")


def test_missing_configuration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor"]) == 2
    assert "PANOPTO_SERVER" in capsys.readouterr().out


def test_unreachable_server(tmp_path: Path) -> None:
    from tests.conftest import free_port

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
