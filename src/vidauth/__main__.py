"""``python -m vidauth`` and the ``vidauth`` console script.

``vidauth token`` with a cached, valid token takes a fast path that needs neither Typer nor
SQLAlchemy; anything it is not sure about falls through to the full command.

Every other command starts without collecting garbage while it imports its modules, and exits
without the interpreter's last walk over every object they made (0.2 to 0.5 s each, a third of a
short command): see :func:`_quick_start`. It also keeps httpx from importing its own command
line.
"""

from __future__ import annotations

import gc
import sys
import threading

#: Seconds of a command's start without garbage collection (its imports).
START_WITHOUT_GC = 2.0


def main() -> None:
    """Entry point."""
    argv = sys.argv[1:]
    if argv == ["token"]:
        from vidauth._fastpath import cached_token

        value = cached_token()
        if value is not None:
            sys.stdout.write(value + "\n")
            sys.stdout.flush()
            raise SystemExit(0)
    _quick_start()
    # httpx imports its own command line (click, pygments, rich's syntax highlighting: about
    # 20 ms) whenever those are installed, and falls back to a stub when that import fails. This
    # process never runs httpx's command line; a None entry makes its import fail.
    if "httpx" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    from vidauth.cli.app import run

    code = run(argv)
    gc.freeze()  # the exit's collection would walk every module's objects, to free nothing
    raise SystemExit(code)


def _quick_start(seconds: float = START_WITHOUT_GC) -> None:
    """No garbage collection for the first ``seconds``: the imports make many objects and no
    garbage, and collections over them cost 0.1 to 0.2 s of a start. Then the heap made so far is
    frozen (never walked again) and collection resumes, so a long command (an upload, the
    service) runs as usual."""
    gc.disable()
    timer = threading.Timer(seconds, _resume_gc)
    timer.daemon = True
    timer.start()


def _resume_gc() -> None:
    gc.freeze()
    gc.enable()


if __name__ == "__main__":
    main()
