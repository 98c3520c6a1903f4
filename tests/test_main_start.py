"""``python -m vidauth``'s start: no garbage collection while the command imports its modules,
then collection as usual over a frozen heap."""

from __future__ import annotations

import gc
import time

from vidauth import __main__ as entry


def test_collection_is_off_while_starting_then_resumes_over_a_frozen_heap() -> None:
    assert gc.isenabled()
    try:
        entry._quick_start(0.05)
        assert not gc.isenabled()
        deadline = time.monotonic() + 5
        while not gc.isenabled():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
