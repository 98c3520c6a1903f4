"""vidauth's stderr log handler follows ``sys.stderr``."""

from __future__ import annotations

import io
import logging

import pytest

from vidauth.logs import configure_logging


def test_log_lines_go_to_the_current_stderr_even_after_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command run in-process swaps stderr and closes it afterwards; a worker thread that logs
    later must reach the stderr of its time, not fail on the closed one."""
    root = logging.getLogger("vidauth")
    before = list(root.handlers)
    level = root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr("sys.stderr", first)
        configure_logging(logging.WARNING)
        logging.getLogger("vidauth.test").warning("one")
        first.close()
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("vidauth.test").warning("two")
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
    assert "two" in second.getvalue()
    assert "Logging error" not in second.getvalue()
