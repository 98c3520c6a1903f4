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


def run_vidauth_in_process(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """What :func:`run_vidauth` answers, from ``vidauth.cli.run`` in this process: for tests
    about what a command says and does, not about the process (imports, signals, exit on
    kill), without the second or so of a new interpreter's imports.

    ``env`` replaces the environment for the call and ``cwd`` the working directory; output is
    captured as text and no stdin is read. vidauth's logging set-up is undone afterwards.
    ``timeout`` is accepted for a like signature (the call runs to its end)."""
    import contextlib
    import io
    import logging
    import os

    from vidauth.cli import run

    del timeout
    logger = logging.getLogger("vidauth")
    handlers, level = list(logger.handlers), logger.level
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        logger.handlers[:] = handlers
        logger.setLevel(level)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "vidauth", *args], code, out.getvalue(), err.getvalue()
    )
