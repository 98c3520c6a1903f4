"""How ``vidauth upload`` shows its progress: JSON lines, plain lines, or Rich bars.

Each reporter is called with the upload engine's events (from several threads) and closed
when the uploads end.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any


class JsonReporter:
    """JSON lines on stdout: one per event, then one per result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        self.line({"event": event.kind, **event.as_dict()})

    def line(self, data: dict[str, Any]) -> None:
        with self._lock:
            sys.stdout.write(json.dumps(data, default=str) + "\n")
            sys.stdout.flush()

    def close(self) -> None:
        """Nothing to release."""


def human_rate(rate: float | None) -> str:
    """``12.3 MB/s`` (decimal units, as network speeds are given), or ``?`` when unknown."""
    if rate is None:
        return "?"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.1f} {unit}"
    return f"{rate:.0f} B/s"


class PlainReporter:
    """Periodic plain lines on stderr (every 5 s or 10 % per file) when not on a terminal.

    The bytes are those read from the file for sending (``progress`` events), with the speed
    over the last seconds.
    """

    def __init__(self, console: Any, every: float = 5.0) -> None:
        self.console = console
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, event: Any) -> None:
        name = Path(event.path).name
        with self._lock:
            if event.kind == "progress":
                when, tenth = self._last.get(event.path, (0.0, -1))
                now = time.monotonic()
                step = int(10 * event.bytes_done / event.total) if event.total else 10
                if now - when < self.every and step <= tenth:
                    return
                self._last[event.path] = (now, max(step, tenth))
                pct = 100 * event.bytes_done / event.total if event.total else 100
                self.console.print(
                    f"{name}: {pct:.0f}% ({event.bytes_done}/{event.total} bytes, "
                    f"{human_rate(event.rate)})",
                    markup=False,
                    highlight=False,
                )
            elif event.kind != "part":
                _describe(self.console, event)

    def close(self) -> None:
        """Nothing to release."""


class RichReporter:
    """A Rich progress bar per file on a terminal: the bytes read for sending, the speed over
    the last seconds (the engine's, not Rich's estimate from finished parts) and the time left
    at that speed."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[left]}"),
            console=console,
        )
        self.progress.start()
        self._tasks: dict[str, Any] = {}
        self._first: dict[str, tuple[float, int]] = {}  # per file: first progress (time, bytes)
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            task = self._tasks.get(event.path)
            if task is None and event.total:
                task = self._tasks[event.path] = self.progress.add_task(
                    Path(event.path).name, total=event.total, speed="?", left="-:--:--"
                )
            if task is not None and event.kind == "progress":
                self._first.setdefault(event.path, (time.monotonic(), event.bytes_done))
                self.progress.update(
                    task,
                    completed=event.bytes_done,
                    speed=human_rate(event.rate),
                    left=_time_left(event.total - event.bytes_done, event.rate),
                )
            elif task is not None and event.kind == "uploaded":
                # the finished bar shows the file's average speed, from its first byte read
                when, done = self._first.get(event.path, (time.monotonic(), event.total))
                seconds = time.monotonic() - when
                average = (
                    (event.total - done) / seconds if seconds > 0 and done < event.total else None
                )
                self.progress.update(
                    task, completed=event.total, speed=human_rate(average), left="0:00:00"
                )
            if event.kind not in ("part", "progress"):
                _describe(self.progress.console, event)

    def close(self) -> None:
        """Stop redrawing."""
        self.progress.stop()


def _time_left(left: int, rate: float | None) -> str:
    if not rate:
        return "-:--:--"
    seconds = int(left / rate)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _describe(console: Any, event: Any) -> None:
    name = Path(event.path).name
    text = {
        "started": f"{name}: upload {event.upload_id} (record {event.record_id}) started",
        "resumed": f"{name}: {event.message} (upload {event.upload_id})",
        "restarted": f"{name}: {event.message}",
        "uploaded": f"{name}: all bytes sent; telling Panopto to process it",
        "processing": f"{name}: Panopto is processing upload {event.upload_id}",
        "complete": f"{name}: complete",
    }.get(event.kind)
    if text:
        console.print(text, markup=False, highlight=False)
