"""The README's "Trying the service against the sandbox" recipe, run as written (its ports
swapped for free ones): sandbox, API key with a webhook secret, ``vidauth serve``, the README's
``receiver.py``, a connect link signed in through, an upload — ending with the receiver
printing a notification whose signature it verified."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import SETTING_NAMES, free_port
from tests.service.conftest import open_connect_link, video_bytes

pytestmark = pytest.mark.slow  # starts processes or servers: not in the quick tier

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe() -> tuple[str, str]:
    """(the shell block, receiver.py) of the recipe."""
    text = README.read_text()
    section = text[text.index("**Trying the service against the sandbox**") :]
    shell = re.search(r"```sh\n(.*?)```", section, re.S)
    receiver = re.search(r"```python\n(.*?)```", section, re.S)
    assert shell and receiver
    assert "receiver.py PORT" in receiver.group(1)
    return shell.group(1), receiver.group(1)


def test_the_readme_recipe_ends_with_a_verified_webhook(tmp_path: Path) -> None:
    shell, receiver = _recipe()
    for port in ("9128", "8080", "8090"):
        assert port in shell
        shell = shell.replace(port, str(free_port()))
    (tmp_path / "receiver.py").write_text(receiver)
    (tmp_path / "demo.mp4").write_bytes(video_bytes(300_000, seed=5))
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIDAUTH_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen(
        ["bash", "-c", shell],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the recipe's background servers, stopped together below
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()

    def wait_for(pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                found = re.search(pattern, line)
                if found:
                    return found
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n{''.join(lines)}")

    try:
        link = wait_for(r"Open (\S+) in a browser").group(1)
        page = open_connect_link(link)  # alice / alice-sandbox-password, Allow
        assert page.status_code == 200, page.text
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        upload_id = wait_for(r'"upload_id":\s*"(up_[^"]+)"').group(1)
        verified = wait_for(r"verified upload\.complete of (\S+) \(webhook-id (msg_\S+)\)")
        assert verified.group(1) == upload_id
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """Stop the recipe's shell and the servers it left running in the background."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    proc.wait(10)
