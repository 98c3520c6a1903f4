"""Every listing at 80 columns, on a terminal (a pty) and into a pipe: ids, URLs, server names,
variable names and fixes appear whole; every listing also has ``--json``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.processes import run_vidauth_in_process
from tests.panopto.conftest import MiB, PanoptoSetup, write_random

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = 80
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def _env(panopto: PanoptoSetup) -> dict[str, str]:
    env = panopto.env(COLUMNS=str(COLUMNS), LINES="40", PYTHONPATH=str(ROOT / "src"))
    env.pop("NO_COLOR", None)
    env.pop("VIDAUTH_DEBUG", None)
    return env


def _on_pipe(panopto: PanoptoSetup, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "vidauth", *args],
        env=_env(panopto),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout


def _on_pty(panopto: PanoptoSetup, *args: str) -> tuple[int, str]:
    """stdout on a pseudo-terminal of 80 columns, as a person's shell has; ANSI removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    env = _env(panopto)
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=30)
    raw = b"".join(chunks).decode("utf-8", "replace")
    return code, ANSI.sub("", raw).replace("\r\n", "\n")


RUNNERS = {"pipe": _on_pipe, "pty": _on_pty}


def _json(panopto: PanoptoSetup, *args: str) -> Any:
    """The ``--json`` answer, from the CLI in this process (what is under test is how the
    processes above print the same listing)."""
    done = run_vidauth_in_process(*args, "--json", env=_env(panopto))
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def uploaded(panopto: PanoptoSetup, tmp_path: Path) -> dict[str, Any]:
    """One upload, complete and processed, so that every listing has something long in it."""
    video = write_random(tmp_path / "week-one-lecture-recording.mp4", MiB, seed=3)
    done = run_vidauth_in_process(
        "upload", str(video), "--folder", "SIT102 Labs", "--json", env=panopto.env()
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert result["viewer_url"] and len(result["viewer_url"]) > 50
    return dict(result)


def _words(*texts: str | None) -> list[str]:
    return [word for text in texts if text for word in text.split()]


@pytest.mark.parametrize("where", sorted(RUNNERS))
def test_listings_keep_values_whole_at_80_columns(
    panopto: PanoptoSetup, uploaded: dict[str, Any], where: str
) -> None:
    show = RUNNERS[where]
    whole: dict[tuple[str, ...], list[str]] = {}

    status = _json(panopto, "status")
    whole[("status",)] = [
        v for a in status["accounts"] for v in (a["account"], a["server"], a["expires_at"])
    ]
    profiles = _json(panopto, "profiles")
    whole[("profiles",)] = [
        v
        for p in profiles["profiles"]
        for v in (p["where"], p["client_id"], p["client_secret"])
        if v
    ]
    uploads = _json(panopto, "uploads")
    whole[("uploads",)] = [
        v
        for u in uploads["uploads"]
        for v in (u["upload_id"], u["session_id"], u["viewer_url"], Path(u["file"]).name)
        if v
    ]
    folders = _json(panopto, "folders", "--search", "SIT102")
    whole[("folders", "--search", "SIT102")] = [
        v for f in folders["folders"] for v in (f["id"], f["name"]) if v
    ]
    folder = next(f["id"] for f in folders["folders"] if f["name"] == "SIT102 Labs")
    sessions = _json(panopto, "sessions", "--folder", folder)
    whole[("sessions", "--folder", folder)] = [
        v for s in sessions["sessions"] for v in (s["id"], s["viewer_url"]) if v
    ]
    doctor = _json(panopto, "doctor")
    # prose: every word whole (a URL inside a sentence is one word); the clock row's detail is a
    # measurement ("2 s ahead") that may differ between the two runs, so only its name and fix
    whole[("doctor",)] = _words(
        *(
            f"{c['name']} {'' if c['name'] == 'clock' else c['detail']} {c['fix'] or ''}"
            for c in doctor["checks"]
        )
    )

    assert uploaded["viewer_url"] in whole[("uploads",)]
    for args, values in whole.items():
        assert values, f"{args}: nothing to look for"
        code, text = show(panopto, *args)
        assert code == 0, text
        assert "…" not in text, f"vidauth {' '.join(args)} cut a value:\n{text}"
        tokens = set(re.split(r"[\s│┃]+", text))
        for value in values:
            if " " in value:  # a name with spaces: on one line
                assert any(value in line for line in text.splitlines()), (value, text)
            else:
                assert value in tokens, f"{value!r} is not whole in {args}:\n{text}"


def test_an_empty_answer_exits_0(panopto: PanoptoSetup) -> None:
    """Signed in, a search that matches nothing is an answer, not an error (and --json agrees)."""
    code, out = _on_pipe(panopto, "folders", "--search", "no-such-folder-anywhere")
    assert code == 0 and out == ""
    assert _json(panopto, "folders", "--search", "no-such-folder-anywhere") == {"folders": []}
    assert _json(panopto, "uploads") == {"uploads": []}
