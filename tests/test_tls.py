"""The process's one TLS context: built in line, or started on a thread at the command's start
(:mod:`vidauth._tls`); and the command's start leaves httpx's own command line unimported."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import SETTING_NAMES
from vidauth import _tls


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


@pytest.mark.slow
def test_the_command_leaves_httpx_command_line_unimported(tmp_path: Path) -> None:
    """httpx imports click, pygments and rich's syntax highlighting for its own command line
    whenever they are installed; vidauth's command skips that (about 20 ms of its start)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["VIDAUTH_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vidauth", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr  # no server configured: a configuration error
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "httpx" in imported and "vidauth.http" in imported
    assert "click" not in imported and "pygments" not in imported
    assert "PANOPTO_SERVER is not set" in done.stderr
