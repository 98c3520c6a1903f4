"""The process's one TLS context: built in line, or started on a thread by a command that will
connect (:mod:`vidauth._tls`); a wrong ``SSL_CERT_FILE`` is a configuration error; and the
command's start leaves httpx's own command line unimported."""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import SETTING_NAMES
from tests.helpers.processes import run_vidauth, run_vidauth_in_process
from vidauth import _tls
from vidauth.cli import doctor
from vidauth.config import load_settings
from vidauth.errors import ConfigError, ErrorCode
from vidauth.http import shared_ssl_context


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No context built yet in this process; the names of the threads that build one."""
    monkeypatch.setattr(_tls, "_built", None)
    builders: list[str] = []
    real = httpx.create_ssl_context

    def recording(*args: object, **kwargs: object) -> ssl.SSLContext:
        builders.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx, "create_ssl_context", recording)
    return builders


def test_without_a_start_the_context_is_built_in_line_once(fresh: list[str]) -> None:
    context = _tls.context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
    assert _tls.context() is context
    assert fresh == [threading.current_thread().name]


def test_a_start_builds_it_on_its_own_thread_and_only_once(fresh: list[str]) -> None:
    _tls.start()
    _tls.start()
    context = _tls.context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] > 0
    assert _tls.context() is context
    assert fresh == ["vidauth-tls"]


def test_what_the_thread_met_is_raised_to_the_caller(
    fresh: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-roots.pem"))
    _tls.start()
    with pytest.raises(FileNotFoundError):
        _tls.context()
    with pytest.raises(FileNotFoundError):  # every later caller, not only the first
        _tls.context()
    assert fresh == ["vidauth-tls"]


def _configured(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a command with a (fictitious) Panopto server configured."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(
        VIDAUTH_HOME=str(tmp_path / "home"),
        PANOPTO_SERVER="https://panopto.example.edu",
        PANOPTO_CLIENT_ID="id",
        PANOPTO_CLIENT_SECRET="not-the-real-secret",
        **extra,
    )
    return env


def _roots(tmp_path: Path, kind: str) -> str:
    if kind == "missing":
        return str(tmp_path / "no-such-roots.pem")
    if kind == "directory":
        return str(tmp_path)
    path = tmp_path / "roots.pem"
    path.write_text("not a certificate\n")
    return str(path)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "no such file or directory"),
        ("directory", "is a directory"),
        ("not-pem", "no CA certificate in PEM form in it"),
    ],
)
def test_a_wrong_ssl_cert_file_is_a_configuration_error(
    fresh: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, reason: str
) -> None:
    roots = _roots(tmp_path, kind)
    monkeypatch.setenv("SSL_CERT_FILE", roots)
    _tls.start()
    with pytest.raises(ConfigError) as caught:
        shared_ssl_context()
    assert caught.value.code == ErrorCode.CONFIG_INVALID
    assert caught.value.facts == {"variable": "SSL_CERT_FILE", "path": roots}
    assert f"SSL_CERT_FILE={roots}: cannot load CA certificates ({reason})" in str(caught.value)


def test_doctor_reports_a_wrong_ssl_cert_file_and_asks_no_server(
    fresh: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    roots = _roots(tmp_path, "not-pem")
    monkeypatch.setenv("SSL_CERT_FILE", roots)
    settings = load_settings(
        env_file=False,
        panopto_server="https://panopto.example.edu",
        panopto_client_id="id",
        panopto_client_secret="not-the-real-secret",
        vidauth_home=str(tmp_path / "home"),
    )
    checks = doctor.run_doctor(settings)
    assert [(c.name, c.status) for c in checks] == [
        ("configuration", doctor.OK),
        ("CA roots", doctor.FAIL),
    ]
    assert checks[1].detail.startswith(f"SSL_CERT_FILE={roots}: cannot load CA certificates")
    assert checks[1].fix == "correct SSL_CERT_FILE, or unset it"
    assert doctor.failed(checks)


@pytest.mark.parametrize("kind", ["missing", "not-pem"])
def test_the_command_says_what_is_wrong_with_ssl_cert_file(
    fresh: list[str], tmp_path: Path, kind: str
) -> None:
    roots = _roots(tmp_path, kind)
    env = _configured(tmp_path, SSL_CERT_FILE=roots)
    done = run_vidauth_in_process("status", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"vidauth: SSL_CERT_FILE={roots}: cannot load CA certificates")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "not-the-real-secret" not in done.stderr + done.stdout


@pytest.mark.slow
def test_the_command_leaves_httpx_command_line_unimported(tmp_path: Path) -> None:
    """httpx imports click, pygments and rich's syntax highlighting for its own command line
    whenever they are installed; vidauth's command skips that (about 20 ms of its start)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(VIDAUTH_HOME=str(tmp_path), PYTHONPROFILEIMPORTTIME="1")
    done = run_vidauth("status", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr  # no server configured: a configuration error
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "httpx" in imported and "vidauth.http" in imported
    assert "click" not in imported and "pygments" not in imported
    assert "PANOPTO_SERVER is not set" in done.stderr


def test_a_command_that_talks_to_a_server_starts_the_roots_on_their_thread(
    fresh: list[str], tmp_path: Path
) -> None:
    env = _configured(tmp_path)
    run_vidauth_in_process("--version", env=env, cwd=tmp_path)
    assert _tls._built is None  # nothing to connect to: no thread, nothing loaded
    done = run_vidauth_in_process("status", env=env, cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # not signed in
    _tls.context()
    assert fresh == ["vidauth-tls"]
