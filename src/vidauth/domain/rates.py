"""A bandwidth limit written as people write it: rclone's notation.

Bytes per second, or a number with ``K``, ``M``, ``G`` or ``T`` (powers of 1024: ``10M`` is
10 MiB/s); ``off`` or ``0`` mean no limit. Profiles, the service's settings and ``--bwlimit``
read it here, below the upload engine that paces by it.
"""

from __future__ import annotations

import re

#: How the notation is described to whoever wrote a rate that is not one.
RATE_NOTATION = "bytes per second, or a number with K, M or G (10M = 10 MiB/s), or off"

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([BKMGT]?)\s*(?:i?B?)?(?:/s)?\s*$", re.I)


def parse_rate(text: str) -> int | None:
    """Bytes per second from ``10M``, ``512K``, ``1.5G`` or ``1000000``; None for ``off``/``0``.

    Raises ValueError for anything else.
    """
    if text.strip().lower() in ("off", "none", ""):
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"not a rate: {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value != value or value == float("inf"):
        raise ValueError(f"not a rate: {text!r}")
    rate = int(value)
    if rate == 0 and value > 0:
        raise ValueError(f"a rate below one byte per second: {text!r}")
    return rate or None
