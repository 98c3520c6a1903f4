"""Fixtures: the whole sandbox (OAuth2 + Panopto API + S3 target) and a signed-in vidauth."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SETTING_NAMES, free_port

MiB = 1024 * 1024


@dataclass
class PanoptoSetup:
    """A running full sandbox, flags for a vidauth talking to it, and a signed-in Vidauth."""

    server: Any
    panopto: Any
    client_id: str
    client_secret: str
    redirect_uri: str
    home: Path
    #: Refuse this many more API requests with 401, whatever their token (a revoked token).
    reject_next: int = 0
    rejections: int = 0
    _va: Any = None

    def flags(self, **extra: Any) -> dict[str, Any]:
        flags = {
            "env_file": False,
            "panopto_server": self.server.url,
            "panopto_client_id": self.client_id,
            "panopto_client_secret": self.client_secret,
            "panopto_redirect_uri": self.redirect_uri,
            "vidauth_home": str(self.home),
        }
        flags.update(extra)
        return flags

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a ``python -m vidauth`` subprocess."""
        env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        env.update({k.upper(): str(v) for k, v in self.flags().items() if k != "env_file"})
        env.update(extra)
        return env

    def vidauth(self) -> Any:
        from vidauth.client import Vidauth
        from vidauth.config import load_settings

        return Vidauth(load_settings(**self.flags()))

    @property
    def va(self) -> Any:
        """A signed-in Vidauth (signed in on first use)."""
        if self._va is None:
            self._va = self.vidauth()
            self.login(self._va)
        return self._va

    def login(self, va: Any) -> Any:
        from vidauth_sandbox.browser import complete_browser_login

        def open_browser(url: str) -> None:
            threading.Thread(target=complete_browser_login, args=(url,), daemon=True).start()

        return va.login(open_browser=open_browser, announce=lambda _s: None, timeout=30)

    def cli(
        self, *args: str, timeout: float = 60, **popen: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m vidauth ARGS`` against this sandbox."""
        return subprocess.run(
            [sys.executable, "-m", "vidauth", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **popen,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "vidauth", *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def close(self) -> None:
        if self._va is not None:
            self._va.close()
        self.server.stop()


def start_panopto(
    tmp_path: Path, *, access_token_lifetime: int = 3600, **options: Any
) -> PanoptoSetup:
    """Build and start the full sandbox with one confidential client.

    (Uses its own build so the API's ``authenticate`` can be wrapped to force 401s; switch to
    ``vidauth_sandbox.full.build_full_sandbox`` when that hook is not needed.)
    """
    from vidauth_sandbox import SandboxClient, SandboxConfig, SandboxServer
    from vidauth_sandbox.panopto_api import PanoptoSandbox, PanoptoSandboxOptions

    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    client = SandboxClient(
        client_id=f"test-{uuid.uuid4().hex[:8]}",
        client_secret="test-client-secret-" + uuid.uuid4().hex,
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
    )
    server = SandboxServer(
        SandboxConfig(clients=[client], access_token_lifetime=access_token_lifetime)
    )
    setup = PanoptoSetup(
        server, None, client.client_id, client.client_secret or "", redirect_uri, tmp_path / "home"
    )

    def authenticate(token: str) -> str | None:
        if setup.reject_next > 0:
            setup.reject_next -= 1
            setup.rejections += 1
            return None
        return server.state.authenticate_access_token(token)

    options.setdefault("storage_dir", tmp_path / "objects")
    options.setdefault("processing_delay", 0.5)
    setup.panopto = PanoptoSandbox(PanoptoSandboxOptions(**options), authenticate=authenticate)
    server.app.include_router(setup.panopto.router())
    server.start()
    return setup


@pytest.fixture
def make_panopto(tmp_path: Path) -> Iterator[Callable[..., PanoptoSetup]]:
    """A factory of full sandboxes (knobs: access_token_lifetime, s3_latency, s3_bandwidth…)."""
    started: list[PanoptoSetup] = []

    def make(**options: Any) -> PanoptoSetup:
        setup = start_panopto(tmp_path, **options)
        started.append(setup)
        return setup

    yield make
    for setup in started:
        setup.close()


@pytest.fixture
def panopto(make_panopto: Callable[..., PanoptoSetup]) -> PanoptoSetup:
    """A full sandbox with default knobs, signed in as alice."""
    setup = make_panopto()
    setup.va  # noqa: B018 - sign in
    return setup


def write_random(path: Path, size: int, seed: int = 1) -> Path:
    """A file of ``size`` pseudo-random bytes (written in 1 MiB blocks)."""
    import random

    rng = random.Random(seed)
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(MiB, left)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def manifest_bytes(setup: PanoptoSetup, upload_id: str | None) -> int:
    """The size of the manifest vidauth sent to ``upload_id``: it goes as a one-part multipart
    upload, so the target's ``bytes_received`` counts it with the media's parts."""
    from vidauth.panopto.manifest import MANIFEST_NAME

    assert upload_id is not None
    return setup.panopto.object_path(upload_id, MANIFEST_NAME).stat().st_size


def sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_engine(setup: PanoptoSetup, **options: Any) -> Any:
    """An :class:`~vidauth.panopto.engine.UploadEngine` for the signed-in sandbox account."""
    from vidauth.panopto.engine import UploadEngine, UploadOptions

    va = setup.va
    return UploadEngine(
        va.api_client(),
        va.token_manager(),
        va.store.db,
        UploadOptions(**options),
        account_id=va.account().id,
        server=va.profile.server,
    )


def wait_for_parts(setup: PanoptoSetup, count: int, proc: subprocess.Popen[Any]) -> None:
    """Wait until the running upload ``proc`` has ``count`` parts acknowledged in the store."""
    from vidauth.store.uploads import UploadStore

    store = UploadStore(setup.va.store.db)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and proc.poll() is None:
        records = store.list_uploads()
        if records and len(store.parts(records[0].id)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {count} parts acknowledged (exit {proc.poll()})")


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(
    panopto: PanoptoSetup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> RunCli:
    """Run the CLI in-process against the sandbox; answer (exit code, stdout, stderr)."""
    from vidauth.cli import run

    for key, value in panopto.env().items():
        if key.startswith(("PANOPTO_", "VIDAUTH_")):
            monkeypatch.setenv(key, value)

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
