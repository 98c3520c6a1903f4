"""Ctrl-C (SIGINT) to a real ``vidauth upload`` / ``vidauth login`` process, through a pipe and
on a terminal: one line says it was interrupted and how to go on, exit 130, and the stopped
upload is listed as paused, not as uploading."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from tests.panopto.conftest import MiB, PanoptoSetup, wait_for_parts, write_random

UPLOAD_LINE = re.compile(
    r"vidauth: interrupted; paused upload (\d+) \(big\.mp4\) at (\d+) %: "
    r"run the same command again to resume"
)
LOGIN_LINE = (
    "vidauth: interrupted: the sign-in did not finish and nothing was saved; "
    "run `vidauth login` again"
)


def _upload_args(tmp_path: Path) -> tuple[str, ...]:
    source = write_random(tmp_path / "big.mp4", 60 * MiB + 5, seed=21)
    return ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5", "--parallel", "2")


class Terminal:
    """A child process on its own pseudo-terminal, as its controlling terminal: writing ^C to
    the terminal is what pressing Ctrl-C does (the line discipline sends SIGINT)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x50\x00\x00\x00\x00\x00")  # 24x80

        # The child makes the terminal its controlling one, then becomes the command (no
        # preexec_fn: it is unsafe in a process with threads, as pytest's is).
        take_terminal = (
            "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", take_terminal, *argv],
            env={**env, "TERM": "xterm", "COLUMNS": "80"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def press_ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            assert time.monotonic() < deadline, bytes(self.output)[-2000:]
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        os.close(self.master)
        return code, self.output.decode(errors="replace")


def _listed_state(setup: PanoptoSetup) -> dict[str, object]:
    done = setup.cli("uploads", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["uploads"]
    return dict(row)


def test_sigint_to_an_upload_through_a_pipe(make_panopto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup = make_panopto(s3_bandwidth=15e6)
    setup.va  # noqa: B018 - sign in
    args = _upload_args(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", *args],
        env=setup.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_parts(setup, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 130, err
    match = UPLOAD_LINE.fullmatch(lines[-1])
    assert match, lines[-3:]
    assert "Traceback" not in err.decode() and "Aborted" not in err.decode()
    row = _listed_state(setup)
    assert row["state"] == "paused" and str(row["id"]) == match.group(1)
    assert row["bytes_done"] >= 3 * 5 * MiB and "running" not in row
    table = setup.cli("uploads")
    assert "paused" in table.stdout and "uploading" not in table.stdout
    again = setup.cli(*args, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming upload" in again.stderr


def test_ctrl_c_on_a_terminal_during_an_upload(make_panopto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup = make_panopto(s3_bandwidth=15e6)
    setup.va  # noqa: B018 - sign in
    term = Terminal([sys.executable, "-m", "vidauth", *_upload_args(tmp_path)], setup.env())
    wait_for_parts(setup, 3, term.proc)
    term.press_ctrl_c()
    code, output = term.finish()
    assert code == 130, output[-2000:]
    assert UPLOAD_LINE.search(output), output[-2000:]
    assert "Traceback" not in output
    assert _listed_state(setup)["state"] == "paused"


def test_sigint_to_login_through_a_pipe_and_on_a_terminal(make_panopto) -> None:  # type: ignore[no-untyped-def]
    setup = make_panopto()
    argv = [sys.executable, "-m", "vidauth", "login", "--no-browser"]
    proc = subprocess.Popen(
        argv,
        env=setup.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while "Waiting for" not in (line := proc.stderr.readline()):
        assert line, "login ended before waiting for the redirect"
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert rest.strip().splitlines()[-1] == LOGIN_LINE

    term = Terminal(argv, setup.env())
    term.wait_for("Waiting for")
    term.press_ctrl_c()
    code, output = term.finish()
    assert code == 130, output
    assert LOGIN_LINE in " ".join(output.split()), output
    assert "Traceback" not in output
