"""``vidauth sandbox`` as a developer runs it: a process serving discovery and the REST API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.helpers.processes import stop_or_explain


def test_sandbox_command_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidauth",
            "sandbox",
            "--port",
            "0",
            "--redirect-uri",
            "http://127.0.0.1:9999/cb",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        url = lines[0].split()[-1]
        assert url.startswith("http://127.0.0.1:")
        assert any("http://127.0.0.1:9999/cb" in line for line in lines)
        doc = httpx.get(f"{url}/Panopto/oauth2/.well-known/openid-configuration").json()
        assert doc["issuer"] == f"{url}/Panopto/oauth2"
        assert httpx.get(f"{url}/Panopto/api/v1/folders/search?searchQuery=x").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        stop_or_explain(proc)
    assert proc.returncode == 0


def test_sandbox_refuses_non_loopback_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vidauth", "sandbox", "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "loopback" in done.stderr


def test_sandbox_on_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "vidauth", "sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"vidauth: 127.0.0.1:{port} is in use: stop what listens there, or choose another --port"
    )


def test_ctrl_c_does_not_wait_for_a_client_stuck_mid_request() -> None:
    """A client that sent half a request must not hold the sandbox open (uvicorn's default
    graceful shutdown waits for every connection)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        host, port = lines[0].split()[-1].removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as stuck:
            stuck.sendall(
                b"POST /Panopto/Upload/x/v.mp4?partNumber=1&uploadId=u HTTP/1.1\r\n"
                b"Host: x\r\nContent-Length: 1000000\r\n\r\nonly-the-start"
            )
            time.sleep(0.5)
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
            took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert took < 8, f"the sandbox took {took:.1f} s to stop"
