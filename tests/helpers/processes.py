"""Running ``python -m vidauth`` as a user would, and stopping the processes a test started
with what they said when they would not stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def stop_or_explain(proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    """Wait for ``proc`` (already signalled) to exit; if it does not, kill it and fail the test
    with the end of its stderr, so a hang is diagnosed rather than left running."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
        pytest.fail(f"the process did not stop within {timeout:.0f} s; stderr: {stderr[-3000:]}")


def run_vidauth(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m vidauth *args`` in ``cwd`` with ``env``: output captured as text, no stdin
    (so a prompt cannot wait for a test)."""
    return subprocess.run(
        [sys.executable, "-m", "vidauth", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
