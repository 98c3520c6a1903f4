"""Stopping the processes a test started, with what they said when they would not stop."""

from __future__ import annotations

import subprocess

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
