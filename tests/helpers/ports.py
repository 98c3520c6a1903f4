"""Ports for the servers the tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = _RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on, outside the kernel's ephemeral range.

    A port the kernel hands out for port 0 comes from the same range as the local ports of
    outgoing connections, so one of those (to the sandbox, to PostgreSQL) could take it
    between this call and the server's bind: it happened, as "address in use" at a test's
    setup. Ports outside that range are never given to outgoing connections.
    """
    low, high = _ephemeral_range()
    candidates = [port for port in range(10000, 65536) if not low <= port <= high]
    for _ in range(200):
        port = random.choice(candidates)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1 outside the ephemeral range")
