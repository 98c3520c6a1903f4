"""The ``vidauth`` command line.

:mod:`vidauth.cli.app` is the root: it imports the command modules (:mod:`~vidauth.cli.auth`,
:mod:`~vidauth.cli.upload`, :mod:`~vidauth.cli.profiles`, :mod:`~vidauth.cli.service`,
:mod:`~vidauth.cli.sandbox`) and registers their commands. They share
:mod:`~vidauth.cli.common` and :mod:`~vidauth.cli.options` below them, and the helpers
:mod:`~vidauth.cli.errors` (how errors read, exit codes), :mod:`~vidauth.cli.tables` and
:mod:`~vidauth.cli.help`; none imports the root. Importing this package loads none of them.
"""

from __future__ import annotations


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in this process and return its exit code (see :func:`vidauth.cli.app.run`)."""
    from vidauth.cli.app import run as run_app

    return run_app(argv)
