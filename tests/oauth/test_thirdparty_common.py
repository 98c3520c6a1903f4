"""Helpers shared by the third-party server tests (holds no tests itself)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.thirdparty.servers import ThirdPartyServer
from vidauth.client import Vidauth
from vidauth.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def write_profile(directory: Path, name: str, **keys: str) -> Path:
    """A vidauth.toml with one profile (values are TOML strings)."""
    lines = [f"[profiles.{name}]"] + [f'{k} = "{v}"' for k, v in keys.items()]
    path = directory / "vidauth.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def vidauth_for(home: Path, profile: str) -> Vidauth:
    """A library client for ``profile`` from ./vidauth.toml."""
    return Vidauth(load_settings(env_file=False, vidauth_home=str(home), vidauth_profile=profile))


class BrowserThread:
    """Runs the server's scripted browser on a thread; re-raises its failure on ``check``."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self.error: BaseException | None = None

        def go() -> None:
            try:
                action()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()

    def check(self) -> None:
        self.thread.join(30)
        if self.error is not None:
            raise self.error


def login_with_browser(va: Vidauth, server: ThirdPartyServer) -> Any:
    """``Vidauth.login`` with the server's scripted browser acting on the link."""
    browsers: list[BrowserThread] = []

    def open_browser(url: str) -> None:
        browsers.append(BrowserThread(lambda: server.browser_login(url)))

    try:
        return va.login(open_browser=open_browser, announce=lambda _s: None, timeout=60)
    finally:
        for browser in browsers:
            browser.check()


def refresh_is_refused(server: ThirdPartyServer, refresh_token: str) -> bool:
    """True when the server rejects ``refresh_token`` (rotated away or revoked)."""
    response = httpx.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(server.client_id, server.client_secret),
        timeout=15,
    )
    return response.status_code == 400 and response.json().get("error") == "invalid_grant"


def cli_login_no_browser(
    *args: str, cwd: Path, env: dict[str, str], act: Callable[[str], None], timeout: float = 60
) -> tuple[int, str]:
    """``vidauth … login --no-browser``: read the link from stderr, let ``act`` finish the
    sign-in (a browser acting on the link), and return the exit code and all of stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            seen.append(line)
            if line.startswith(("http://", "https://")):
                act(line.strip())
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin:
            proc.stdin.close()
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, "".join(seen)
