"""The ``vidauth`` command line (Typer + Rich).

Exit codes: 0 ok, 1 unexpected, 2 configuration/usage, 3 sign-in needed/denied,
4 remote service failed after retries, 130 interrupted (Ctrl-C: one line says what to do).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vidauth.errors import VidauthError

app = typer.Typer(
    name="vidauth",
    help="Sign in to video platforms with OAuth2 and upload videos (Panopto first).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class GlobalOptions:
    """Options given before the command (they override the environment and .env)."""

    env_file: Path | None = None
    profile: str | None = None
    server: str | None = None
    client_id: str | None = None
    redirect_uri: str | None = None
    home: Path | None = None
    database_url: str | None = None

    def flags(self) -> dict[str, Any]:
        return {
            "env_file": self.env_file,
            "vidauth_profile": self.profile,
            "panopto_server": self.server,
            "panopto_client_id": self.client_id,
            "panopto_redirect_uri": self.redirect_uri,
            "vidauth_home": str(self.home) if self.home else None,
            "vidauth_database_url": self.database_url,
        }


_options = GlobalOptions()

#: What the interrupted command's user can do next (a command sets it when it starts).
_on_interrupt: list[str] = []


def on_interrupt(advice: str) -> None:
    """Say ``advice`` after "interrupted" if Ctrl-C (SIGINT) stops this command."""
    _on_interrupt[:] = [advice]


def _interrupted() -> int:
    """Print the one line about Ctrl-C (SIGINT) and answer its exit code, 130."""
    advice = f": {_on_interrupt[0]}" if _on_interrupt else ""
    err.print(f"vidauth: interrupted{advice}", markup=False, highlight=False)
    return 130


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
    _options.env_file = env_file
    _options.profile = profile
    _options.server = server
    _options.client_id = client_id
    _options.redirect_uri = redirect_uri
    _options.home = home
    _options.database_url = database_url
    from vidauth.logs import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING)


def _vidauth() -> Any:
    from vidauth.client import Vidauth
    from vidauth.config import load_settings

    return Vidauth(load_settings(**_options.flags()))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "no expiry given"
    from vidauth._times import rfc3339

    return str(rfc3339(epoch))


# -- sign-in -------------------------------------------------------------------------------


@app.command()
def login(
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="Only print the link; you may paste the final redirected URL here."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sign-in.", min=1)] = 300,
    client_credentials: Annotated[
        bool,
        typer.Option(
            "--client-credentials", help="Sign the application in (no user; renewed automatically)."
        ),
    ] = False,
    username: Annotated[
        str | None,
        typer.Option(
            "--username", help="Password sign-in as this user (ID provider: 'NetID\\john')."
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="env:NAME or file:PATH holding the password (else you are asked)."
        ),
    ] = None,
    application_key: Annotated[
        str | None,
        typer.Option(
            "--application-key",
            help="env:NAME or file:PATH holding a Panopto ID provider's application key.",
        ),
    ] = None,
    device: Annotated[
        bool,
        typer.Option("--device", help="Sign in on another device with a code (RFC 8628)."),
    ] = False,
) -> None:
    """Sign in: prints a link, receives the redirect on the loopback address, stores tokens.

    Other grants: --client-credentials, --username (password or ID provider), --device.
    """
    from vidauth.errors import UsageError

    modes = [client_credentials, username is not None, device]
    if sum(modes) > 1:
        raise UsageError("choose one of --client-credentials, --username and --device")
    if (password or application_key) and username is None:
        raise UsageError("--password and --application-key go with --username NAME")
    if username is not None and not username.strip():
        raise UsageError("--username is empty: give the user's name (ID provider: 'NetID\\john')")
    if password and application_key:
        raise UsageError("give --password or --application-key, not both")
    on_interrupt("the sign-in did not finish and nothing was saved; run `vidauth login` again")
    with _vidauth() as va:
        va.store  # noqa: B018 - open the store (and fail on a bad key) before anything else
        if client_credentials:
            account = va.login_client_credentials()
        elif username is not None:
            account = _login_password(va, username, password, application_key)
        elif device:
            account = va.login_device(_announce_device)
        else:
            account = _login_browser(va, no_browser=no_browser, timeout=timeout)
        who = account.username or account.subject
        err.print(
            f"Signed in as {who} to {account.server or va.profile.name}; token valid "
            f"until {_when(account.expires_at)}.",
            markup=False,
        )
        if _ends_with_its_token(account):
            err.print(
                "No refresh token was granted (the client may not keep access offline): this "
                f"sign-in ends at {_when(account.expires_at)}; run `vidauth login` again then.",
                markup=False,
            )


def _ends_with_its_token(account: Any) -> bool:
    """A password sign-in without a refresh token: nothing renews it (the ID-provider and
    client-credentials grants renew themselves)."""
    return account.grant_type == "password" and not account.has_refresh_token


def _login_browser(va: Any, *, no_browser: bool, timeout: float) -> Any:
    from vidauth.oauth.authorization_code import stdin_if_interactive

    def announce(text: str) -> None:
        if text.startswith(("http://", "https://")):
            err.print("Open this link to sign in:", style="bold")
            err.print(text, markup=False, highlight=False)
            if no_browser:
                err.print(
                    "Waiting for the redirect; on another machine, paste the address "
                    "the browser ends on here."
                )
            else:
                err.print("Waiting for you to finish in the browser…")
        else:
            err.print(text, markup=False, highlight=False)

    def open_browser(url: str) -> None:
        if not webbrowser.open(url):
            err.print("Could not open a browser: open the link yourself.")

    return va.login(
        open_browser=None if no_browser else open_browser,
        announce=announce,
        timeout=timeout,
        paste_from=stdin_if_interactive() if no_browser else None,
    )


def _login_password(
    va: Any, username: str, password: str | None, application_key: str | None
) -> Any:
    """Password or ID-provider sign-in; secrets only from references or a hidden prompt."""
    from vidauth.config import Secret
    from vidauth.profiles import resolve_reference

    key_ref = application_key or (None if password else va.profile.application_key)
    if key_ref:
        key = resolve_reference(key_ref, "--application-key", allow_literal=False)
        account = va.login_password(username, application_key=key)
        if key_ref != va.profile.application_key:
            err.print(
                f"Note: to renew this sign-in automatically, add application_key = "
                f'"{key_ref}" to the profile (PANOPTO_APPLICATION_KEY for the default one).',
                markup=False,
            )
        return account
    if password:
        secret = resolve_reference(password, "--password", allow_literal=False)
    else:
        secret = Secret(typer.prompt(f"Password for {username}", hide_input=True, err=True))
    return va.login_password(username, secret)


def _announce_device(started: Any) -> None:
    err.print("To sign in, open this address on any device:", style="bold")
    err.print(started.verification_uri, markup=False, highlight=False)
    err.print(f"and enter the code: {started.user_code}", markup=False, highlight=False)
    if started.verification_uri_complete:
        err.print("or open directly:", markup=False)
        err.print(started.verification_uri_complete, markup=False, highlight=False)
    err.print(f"Waiting for approval (the code expires in {started.expires_in:g} s)…")


@app.command()
def token(
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
    min_validity: Annotated[float, typer.Option(help="Refresh when fewer seconds remain.")] = 60,
) -> None:
    """Print a valid access token on stdout and nothing else (refreshing when needed)."""
    with _vidauth() as va:
        value = va.token_manager(account).access_token(min_validity)
    sys.stdout.write(value + "\n")


def _answer_lost(row: dict[str, Any]) -> bool:
    """A status row whose last refresh lost its answer (moot once sign-in is needed anyway)."""
    return bool(row["refresh_outcome_unknown"]) and row["status"] != "needs_signin"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Signed-in accounts: account, server, scopes, expiry (never a token)."""
    with _vidauth() as va:
        key = va.profile.key  # a configuration mistake is reported before the store is opened
        accounts = va.store.list_accounts(key)
        rows = [
            {
                "account": a.username or a.subject,
                "subject": a.subject,
                "server": a.server,
                "client_id": a.client_id,
                "status": a.status,
                "grant": a.grant_type,
                "scopes": (a.scope or "").split(),
                "expires_at": _when(a.expires_at) if a.expires_at else None,
                # a refresh token the server refused renews nothing
                "refreshable": a.has_refresh_token and a.status != "needs_signin",
                # the last refresh was sent and its answer lost: its refresh token may be spent
                "refresh_outcome_unknown": a.refresh_outcome_unknown,
                "ends_at": _when(a.expires_at)
                if a.expires_at and _ends_with_its_token(a)
                else None,
            }
            for a in accounts
        ]
        if as_json:
            out.print_json(json.dumps({"profile": va.profile.name, "accounts": rows}))
        elif rows:
            from vidauth.cli_tables import Column, print_listing

            print_listing(
                out,
                f"vidauth — profile {va.profile.name}",
                [
                    Column("account", heading=True),
                    Column("server"),
                    Column("status"),
                    Column("scopes", whole=False),
                    Column("expires_at"),
                    Column("refreshable"),
                ],
                [
                    [
                        row["account"],
                        row["server"] or "",
                        row["status"],
                        " ".join(row["scopes"]),
                        row["expires_at"] or "-",
                        "yes"
                        if row["refreshable"]
                        else "no: last answer lost"
                        if _answer_lost(row)
                        else f"no: ends {row['ends_at']}"
                        if row["ends_at"]
                        else "no",
                    ]
                    for row in rows
                ],
            )
        expired = [row["account"] for row in rows if row["status"] == "needs_signin"]
        if expired and not as_json:
            err.print(
                f"The sign-in of {', '.join(expired)} is no longer valid: run `vidauth login`.",
                markup=False,
                highlight=False,
            )
        lost = [row["account"] for row in rows if _answer_lost(row)]
        if lost and not as_json:
            err.print(
                f"The last refresh of {', '.join(lost)} was sent but its answer was lost, so "
                "the sign-in may have been used up: if the next command is refused, run "
                "`vidauth login`.",
                markup=False,
                highlight=False,
            )
        if not rows:  # the same exit code with --json: the format never changes the answer
            if not as_json:
                err.print(
                    f"Not signed in to {va.profile.server or va.profile.name}: "
                    "run `vidauth login`.",
                    markup=False,
                    highlight=False,
                )
            raise typer.Exit(3)


@app.command()
def logout(
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Also revoke the tokens at the server.")
    ] = False,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
    all_accounts: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Delete every account in the store, "
            "without decrypting (e.g. after losing the key).",
        ),
    ] = False,
) -> None:
    """Delete the local tokens (and with --revoke, revoke them at the server first)."""
    if all_accounts:
        from vidauth.config import load_settings
        from vidauth.errors import UsageError
        from vidauth.store import Database, TokenStore

        if revoke or account:
            raise UsageError(
                "--all deletes local tokens only: drop --revoke/--account, or sign "
                "out accounts one by one with --revoke"
            )
        db = Database(load_settings(**_options.flags()).database_url)
        try:
            count = TokenStore.forget_all(db)
        finally:
            db.dispose()
        err.print(f"Deleted {count} account(s) and their tokens from the local store.")
        return
    with _vidauth() as va:
        key = va.profile.key  # a configuration mistake is reported before the store is opened
        if account is None and not va.store.list_accounts(key):
            err.print(
                f"Not signed in to {va.profile.server or va.profile.name}: nothing to sign out.",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(3)  # as `status`: "not signed in" is 3, whatever the command
        unrevokable = revoke and not va.profile.endpoints.revocation_url
        info = va.logout(account, revoke=revoke and not unrevokable)
        if unrevokable:  # the local sign-out still happens: exit 0 with a warning
            where = (
                f"revocation_url in [profiles.{va.profile.name}] of vidauth.toml"
                if va.profile.source.endswith(".toml")
                else "revocation_url in a vidauth.toml profile for this site"
            )
            err.print(
                f"Signed out {info.username or info.subject}: tokens deleted here but not "
                f"revoked — {va.profile.provider.title} advertises no revocation endpoint; to "
                f"revoke at the server, set {where}.",
                markup=False,
            )
            return
    done = "revoked and deleted" if revoke else "deleted"
    err.print(f"Signed out {info.username or info.subject}: tokens {done}.", markup=False)


# -- sandbox and demo ----------------------------------------------------------------------


@app.command()
def sandbox(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one).")
    ] = 9128,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    token_lifetime: Annotated[int, typer.Option(help="Access-token lifetime, seconds.")] = 3600,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="Redirect URI registered for the sandbox client (repeatable)."),
    ] = None,
    storage: Annotated[Path | None, typer.Option(help="Where uploads are stored.")] = None,
    s3_latency: Annotated[float, typer.Option(help="Added seconds per S3 request.")] = 0.0,
    s3_bandwidth: Annotated[float, typer.Option(help="S3 bandwidth cap, MB/s (0: none).")] = 0.0,
    s3_request_bandwidth: Annotated[
        float, typer.Option(help="S3 bandwidth cap per request body, MB/s (0: none).")
    ] = 0.0,
    s3_signature: Annotated[
        str,
        typer.Option(help="S3 signature accepted: any, s3v4, s3 (SigV2) or unsigned."),
    ] = "any",
    s3_lazy_complete: Annotated[
        bool,
        typer.Option(
            "--s3-lazy-complete",
            help="Complete without joining the parts (joined when first read).",
        ),
    ] = False,
    s3_max_parts_in_flight: Annotated[
        int, typer.Option(min=0, help="503 SlowDown to UploadParts beyond this many (0: none).")
    ] = 0,
    s3_allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Answer an optional S3 call (repeatable): PutObject, GetObject, HeadObject, "
            "ListParts. None by default, like the narrowest Panopto."
        ),
    ] = None,
    s3_refusal: Annotated[
        int, typer.Option(help="How a call not allowed is refused: 501, 405 or 403.")
    ] = 501,
    state1_answer: Annotated[
        str,
        typer.Option(help="The State-1 PUT's answer: empty (200, no body), 204 or object."),
    ] = "empty",
    processing_delay: Annotated[
        float, typer.Option(min=0, help="Seconds from State 1 to Complete.")
    ] = 1.0,
    id_token_names: Annotated[
        bool,
        typer.Option(
            "--id-token-names",
            help="Put names in ID tokens too (Panopto's carry none: names come from userinfo).",
        ),
    ] = False,
    strict_offline_access: Annotated[
        bool,
        typer.Option(
            "--strict-offline-access",
            help="Answer a password grant asking for offline_access with invalid_scope, as "
            "IdentityServer answers a client not allowed offline access.",
        ),
    ] = False,
) -> None:
    """Run the local Panopto-compatible sandbox (OAuth2 server, REST and upload APIs)."""
    from vidauth._urls import is_loopback_host
    from vidauth.errors import ConfigError, UsageError
    from vidauth_sandbox.full import run_sandbox_cli
    from vidauth_sandbox.panopto_api import STATE1_ANSWERS
    from vidauth_sandbox.s3 import OPTIONAL_CALLS, REFUSALS, SIGNATURE_SCHEMES

    for call in s3_allow or []:
        if call not in OPTIONAL_CALLS:
            raise UsageError(f"--s3-allow {call}: choose from {', '.join(OPTIONAL_CALLS)}")
    if s3_refusal not in REFUSALS:
        raise UsageError(f"--s3-refusal {s3_refusal}: choose 501, 405 or 403")
    if not is_loopback_host(host):
        raise ConfigError(f"--host {host}: the sandbox binds loopback addresses only")
    if state1_answer not in STATE1_ANSWERS:
        raise UsageError(f"--state1-answer {state1_answer}: choose {', '.join(STATE1_ANSWERS)}")
    if s3_signature not in ("any", *SIGNATURE_SCHEMES):
        raise UsageError(
            f"--s3-signature {s3_signature}: choose any, {', '.join(SIGNATURE_SCHEMES)}"
        )
    run_sandbox_cli(
        host=host,
        port=port,
        token_lifetime=token_lifetime,
        redirect_uris=redirect_uri or [],
        storage=storage,
        s3_latency=s3_latency,
        s3_bandwidth_mb=s3_bandwidth or None,
        s3_request_bandwidth_mb=s3_request_bandwidth or None,
        s3_signature=None if s3_signature == "any" else s3_signature,
        s3_max_parts_in_flight=s3_max_parts_in_flight or None,
        s3_lazy_complete=s3_lazy_complete,
        s3_allow=frozenset(s3_allow or []),
        s3_refusal=s3_refusal,
        state1_answer=state1_answer,
        processing_delay=processing_delay,
        id_token_names=id_token_names,
        password_offline_access=not strict_offline_access,
    )


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's state directory.")] = False,
) -> None:
    """Sign in, show status, call the API and upload a video — all against the built-in sandbox."""
    from vidauth.demo import run_demo

    run_demo(console=err, keep=keep)


# -- entry point ---------------------------------------------------------------------------


def _register_optional_commands() -> None:
    """Commands that live in their own modules (upload, service, profiles…)."""
    import importlib

    for module in ("vidauth.cli_upload", "vidauth.cli_profiles", "vidauth.cli_service"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app)


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


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (errors become one line on stderr)."""
    from vidauth.cli_help import tidy_help

    _register_optional_commands()
    _on_interrupt.clear()
    command = tidy_help(typer.main.get_command(app))
    _speak_on_interrupt(command)
    try:
        result = command.main(args=argv, prog_name="vidauth", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (Interrupted, typer.Abort):
        return _interrupted()
    except typer.TyperException as exc:  # click's usage errors (Typer vendors click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"vidauth: {exc}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except VidauthError as exc:
        from vidauth.cli_errors import exit_code, sentence

        err.print(f"vidauth: {sentence(exc)}", markup=False, highlight=False)
        return exit_code(exc)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        if os.environ.get("VIDAUTH_DEBUG"):
            raise
        err.print(
            f"vidauth: unexpected error ({type(exc).__name__}); run again with "
            "VIDAUTH_DEBUG=1 to see the traceback and report it",
            markup=False,
        )
        return 1
    return result if isinstance(result, int) else 0
