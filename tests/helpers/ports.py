"""Ports for the servers the tests start."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: One byte of this file per port: a process that handed a port out holds a lock on its byte
#: until it exits, so no other process of the suite (an xdist worker, another run on the same
#: machine) hands out the same one.
_LOCK_FILE = Path(tempfile.gettempdir()) / "vidauth-test-ports.lock"

_lock = threading.Lock()
_lock_fd: int | None = None
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = _RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _reserve(port: int) -> bool:
    """Take ``port``'s byte lock in the shared lock file, held as long as this process lives
    (POSIX record locks go with the process: a worker that dies frees its ports)."""
    global _lock_fd
    if _lock_fd is None:
        _lock_fd = os.open(_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False  # another process of the suite has it
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on, outside the kernel's ephemeral range, and
    handed out to no other test of this run or of another run on this machine.

    A port the kernel hands out for port 0 comes from the same range as the local ports of
    outgoing connections, so one of those (to the sandbox, to PostgreSQL) could take it
    between this call and the server's bind: it happened, as "address in use" at a test's
    setup. Ports outside that range are never given to outgoing connections.

    Many ports are picked long before a server binds them (a redirect URI's port is bound
    only during a sign-in), so a probe's bind alone cannot tell another xdist worker that a
    port is taken: each port handed out is also locked for the life of the process
    (:func:`_reserve`) and never handed out twice by it.
    """
    low, high = _ephemeral_range()
    candidates = [port for port in range(10000, 65536) if not low <= port <= high]
    with _lock:
        for _ in range(500):
            port = random.choice(candidates)
            if port in _handed_out:
                continue
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if not _reserve(port):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1 outside the ephemeral range")
