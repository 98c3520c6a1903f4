"""The ``vidauth`` command line (Typer + Rich): the root app, its global options, and
:func:`run`.

This is the one module that wires the command line: it imports each command module (imports run
from here downwards; no command module imports this one) and registers its commands.

Exit codes: 0 ok, 1 unexpected, 2 configuration/usage, 3 sign-in needed/denied,
4 remote service failed after retries, 130 interrupted (Ctrl-C: one line says what to do).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import vidauth.cli.common as common
from vidauth.cli import auth, profiles, sandbox, service, upload
from vidauth.cli.options import GlobalOptions, Invocation, invocation
from vidauth.errors import VidauthError

app = typer.Typer(
    name="vidauth",
    help="Sign in to video platforms with OAuth2 and upload videos (Panopto first).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    """``--version``: the installed distribution's version on stdout."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from vidauth import __version__

    try:
        number = installed("vidauth")
    except PackageNotFoundError:  # run from a source tree
        number = __version__
    sys.stdout.write(f"vidauth {number}\n")
    raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", help="Read settings from this file instead of ./.env."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Profile from vidauth.toml (default: the PANOPTO_* settings)."
        ),
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="Panopto site, e.g. deakin.au.panopto.com.")
    ] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="API client id.")] = None,
    redirect_uri: Annotated[
        str | None,
        typer.Option(
            "--redirect-uri",
            help="The client's registered redirect URI (default http://localhost:9127/redirect).",
        ),
    ] = None,
    home: Annotated[Path | None, typer.Option("--home", help="State directory.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The store: sqlite:///path.db (default, in --home) or postgresql+psycopg://…",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print vidauth's version and exit.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    """Global options; put them before the command: ``vidauth --env-file x.env login``."""
    invocation(ctx).options = GlobalOptions(
        env_file=env_file,
        profile=profile,
        server=server,
        client_id=client_id,
        redirect_uri=redirect_uri,
        home=home,
        database_url=database_url,
    )
    from vidauth.logs import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING)


# The order here is the order of `vidauth --help` (groups are listed after the commands).
for _command in (
    auth.login,
    auth.token,
    auth.status,
    auth.logout,
    sandbox.sandbox,
    sandbox.demo,
    upload.upload,
    upload.folders,
    upload.sessions,
    profiles.profiles,
    profiles.doctor,
    service.serve,
    service.worker,
):
    app.command()(_command)
app.add_typer(upload.uploads_app, name="uploads")
app.add_typer(service.apikey_app, name="apikey")


# -- entry point ---------------------------------------------------------------------------


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped the command; carried past Typer, which would end it silently."""


def _speak_on_interrupt(command: Any) -> None:
    """Make ``command`` raise :class:`Interrupted` on Ctrl-C: Typer's ``main`` turns a
    KeyboardInterrupt into ``Exit(130)`` and, outside standalone mode, returns 130 without a
    word, so the interrupt must leave the command as another exception."""
    invoke = command.invoke

    def invoke_interruptible(ctx: Any) -> Any:
        try:
            return invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted from exc

    command.invoke = invoke_interruptible


def _interrupted(state: Invocation) -> int:
    """Print the one line about Ctrl-C (SIGINT) and answer its exit code, 130."""
    advice = f": {state.interrupt_advice}" if state.interrupt_advice else ""
    common.err.print(f"vidauth: interrupted{advice}", markup=False, highlight=False)
    return 130


def command() -> Any:
    """The click command tree of ``vidauth``, with plain ``--help`` (built anew each call)."""
    from vidauth.cli.help import tidy_help

    return tidy_help(typer.main.get_command(app))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (errors become one line on stderr)."""
    state = Invocation()
    root = command()
    _speak_on_interrupt(root)
    try:
        result = root.main(args=argv, prog_name="vidauth", standalone_mode=False, obj=state)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (Interrupted, typer.Abort):
        return _interrupted(state)
    except typer.TyperException as exc:  # click's usage errors (Typer vendors click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            common.err.print(f"vidauth: {exc}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except VidauthError as exc:
        from vidauth.cli.errors import exit_code, sentence

        common.err.print(f"vidauth: {sentence(exc)}", markup=False, highlight=False)
        return exit_code(exc)
    except KeyboardInterrupt:
        return _interrupted(state)
    except Exception as exc:
        if os.environ.get("VIDAUTH_DEBUG"):
            raise
        common.err.print(
            f"vidauth: unexpected error ({type(exc).__name__}); run again with "
            "VIDAUTH_DEBUG=1 to see the traceback and report it",
            markup=False,
        )
        return 1
    return result if isinstance(result, int) else 0
