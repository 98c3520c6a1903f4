"""The network dropping mid-upload: one clear line, exit 4, and a rerun that resumes.

vidauth talks to the sandbox through a TCP relay on loopback that the test can cut (every live
connection closed, new ones refused) and restore on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.panopto.conftest import MiB, manifest_bytes, sha256, write_random
from vidauth.store.uploads import UploadStore
from vidauth_sandbox.config import OAUTH_PREFIX


class Relay:
    """Forwards 127.0.0.1:<port> to ``upstream`` until cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        """Listen (again, on the same port)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and stop accepting: the network is gone."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, dest: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                dest.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dest.shutdown(socket.SHUT_WR)


def test_network_drop_mid_upload_fails_cleanly_and_a_rerun_resumes(
    make_panopto: Any, tmp_path: Path
) -> None:
    from vidauth.client import Vidauth
    from vidauth.config import load_settings

    setup = make_panopto(s3_bandwidth=10e6)
    host, port = setup.server.url.removeprefix("http://").split(":")
    relay = Relay((host, int(port)))
    # the site is reached through the relay, like a proxy in front of it: so is its issuer
    setup.server.state.issuer = relay.url + OAUTH_PREFIX
    home = tmp_path / "via-relay"
    # sign in through the relay: the account, its API calls and its UploadTarget all use it
    va = Vidauth(load_settings(**setup.flags(panopto_server=relay.url, vidauth_home=str(home))))
    setup.login(va)
    env = setup.env(PANOPTO_SERVER=relay.url, VIDAUTH_HOME=str(home))
    size = 30 * MiB + 123
    source = write_random(tmp_path / "dropped.mp4", size, seed=31)
    command = ["upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", *command, "--parallel", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = UploadStore(va.store.db)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = store.list_uploads()
        if records and len(store.parts(records[0].id)) >= 2:
            break
        time.sleep(0.05)
    relay.cut()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    lines = [line for line in err.splitlines() if line.startswith("vidauth:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "could not reach the upload target" in lines[0] and "again to resume" in lines[0]
    [record] = store.list_uploads()
    assert record.state == "uploading"  # kept for the rerun
    acked = store.parts(record.id)
    assert 2 <= len(acked) < 7

    relay.restore()
    before = setup.panopto.bytes_received
    done = subprocess.run(
        [sys.executable, "-m", "vidauth", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "resuming upload" in done.stderr
    missing = size - sum(part_size for _, part_size in acked.values())
    sent_again = setup.panopto.bytes_received - before
    sent_again -= manifest_bytes(setup, record.session_upload_id)
    assert sent_again <= missing  # acknowledged parts not resent
    assert sha256(setup.panopto.object_path(record.session_upload_id, source.name)) == sha256(
        source
    )
    va.close()
    relay.cut()
