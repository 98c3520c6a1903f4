"""``python -m vidauth`` and the ``vidauth`` console script.

``vidauth token`` with a cached, valid token takes a fast path that needs neither Typer nor
SQLAlchemy; anything it is not sure about falls through to the full command.
"""

from __future__ import annotations

import sys


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
    from vidauth.cli.app import run

    raise SystemExit(run(argv))


if __name__ == "__main__":
    main()
