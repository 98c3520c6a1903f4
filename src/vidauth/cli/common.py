"""What every command module shares: the two consoles, settings and a client from the global
options, the advice after Ctrl-C, and failing with an error's exit code.

Command modules import this (and :mod:`vidauth.cli.options`), never :mod:`vidauth.cli.app`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from vidauth.cli.options import invocation
from vidauth.errors import VidauthError

if TYPE_CHECKING:
    from vidauth.client import Vidauth
    from vidauth.config import Settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def flags(ctx: typer.Context) -> dict[str, Any]:
    """The global options of this run, as keyword arguments of ``load_settings``."""
    return invocation(ctx).options.flags()


def settings(ctx: typer.Context) -> Settings:
    """The settings: the global options over the environment and .env."""
    from vidauth.config import load_settings as load

    return load(**flags(ctx))


def open_vidauth(ctx: typer.Context) -> Vidauth:
    """A :class:`~vidauth.client.Vidauth` for the selected profile (a context manager)."""
    from vidauth.client import Vidauth

    return Vidauth(settings(ctx))


def on_interrupt(ctx: typer.Context, advice: str) -> None:
    """Say ``advice`` after "interrupted" if Ctrl-C (SIGINT) stops this command."""
    invocation(ctx).interrupt_advice = advice


def fail(exc: VidauthError) -> typer.Exit:
    """The exit for ``exc``: its message on stderr, its exit code (raise what this returns)."""
    sys.stderr.write(f"vidauth: {exc}\n")
    return typer.Exit(exc.exit_code)
