"""What every command module shares: the two consoles (made when first used), settings and a
client from the global options, the advice after Ctrl-C, and failing with an error's exit code.

Command modules import this (and :mod:`vidauth.cli.options`), never :mod:`vidauth.cli.app`.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import typer

from vidauth.cli.options import invocation
from vidauth.errors import VidauthError

if TYPE_CHECKING:
    from rich.console import Console

    from vidauth.client import Vidauth
    from vidauth.config import Settings

    #: Standard output and standard error as Rich consoles, made when first used
    #: (:func:`__getattr__`): use them as ``common.out`` and ``common.err``.
    out: Console
    err: Console

_consoles_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``out`` and ``err``: Rich consoles on stdout and stderr, made when first used. Rich's
    import is 20 to 30 ms of a command's start, which a command that prints nothing through
    them (``upload --json``, say) does not pay."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _consoles_lock:
        console = globals().get(name)
        if console is None:
            from rich.console import Console

            console = Console(stderr=name == "err", soft_wrap=True)
            globals()[name] = console
    return console


def flags(ctx: typer.Context) -> dict[str, Any]:
    """The global options of this run, as keyword arguments of ``load_settings``."""
    return invocation(ctx).options.flags()


def settings(ctx: typer.Context) -> Settings:
    """The settings: the global options over the environment and .env."""
    from vidauth.config import load_settings as load

    return load(**flags(ctx))


def will_connect() -> None:
    """Start loading the CA roots on a thread (:mod:`vidauth._tls`), for a command that will
    talk to a server, before it imports the rest of what it needs: OpenSSL loads them without
    the interpreter's lock, so on a second core they cost the start nothing."""
    from vidauth import _tls

    _tls.start()


def open_vidauth(ctx: typer.Context) -> Vidauth:
    """A :class:`~vidauth.client.Vidauth` for the selected profile (a context manager)."""
    will_connect()
    from vidauth.client import Vidauth

    return Vidauth(settings(ctx))


def on_interrupt(ctx: typer.Context, advice: str) -> None:
    """Say ``advice`` after "interrupted" if Ctrl-C (SIGINT) stops this command."""
    invocation(ctx).interrupt_advice = advice


def fail(exc: VidauthError) -> typer.Exit:
    """The exit for ``exc``: its message on stderr, its exit code (raise what this returns)."""
    sys.stderr.write(f"vidauth: {exc}\n")
    return typer.Exit(exc.exit_code)
