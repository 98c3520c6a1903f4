"""``vidauth login``, ``token``, ``status`` and ``logout``: signing in and out."""

from __future__ import annotations

import json
import sys
import webbrowser
from typing import Annotated, Any

import typer

import vidauth.cli.common as common
from vidauth.cli.common import on_interrupt, open_vidauth, settings


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "no expiry given"
    from vidauth._times import rfc3339

    return str(rfc3339(epoch))


def login(
    ctx: typer.Context,
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
    on_interrupt(ctx, "the sign-in did not finish and nothing was saved; run `vidauth login` again")
    with open_vidauth(ctx) as va:
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
        common.err.print(
            f"Signed in as {who} to {account.server or va.profile.name}; token valid "
            f"until {_when(account.expires_at)}.",
            markup=False,
        )
        if _ends_with_its_token(account):
            common.err.print(
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
            common.err.print("Open this link to sign in:", style="bold")
            common.err.print(text, markup=False, highlight=False)
            if no_browser:
                common.err.print(
                    "Waiting for the redirect; on another machine, paste the address "
                    "the browser ends on here."
                )
            else:
                common.err.print("Waiting for you to finish in the browser…")
        else:
            common.err.print(text, markup=False, highlight=False)

    def open_browser(url: str) -> None:
        if not webbrowser.open(url):
            common.err.print("Could not open a browser: open the link yourself.")

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
            common.err.print(
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
    common.err.print("To sign in, open this address on any device:", style="bold")
    common.err.print(started.verification_uri, markup=False, highlight=False)
    common.err.print(f"and enter the code: {started.user_code}", markup=False, highlight=False)
    if started.verification_uri_complete:
        common.err.print("or open directly:", markup=False)
        common.err.print(started.verification_uri_complete, markup=False, highlight=False)
    common.err.print(f"Waiting for approval (the code expires in {started.expires_in:g} s)…")


def token(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
    min_validity: Annotated[float, typer.Option(help="Refresh when fewer seconds remain.")] = 60,
) -> None:
    """Print a valid access token on stdout and nothing else (refreshing when needed)."""
    with open_vidauth(ctx) as va:
        value = va.token_manager(account).access_token(min_validity)
    sys.stdout.write(value + "\n")


def _answer_lost(row: dict[str, Any]) -> bool:
    """A status row whose last refresh lost its answer (moot once sign-in is needed anyway)."""
    return bool(row["refresh_outcome_unknown"]) and row["status"] != "needs_signin"


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Signed-in accounts: account, server, scopes, expiry (never a token)."""
    with open_vidauth(ctx) as va:
        key = va.profile.key  # a configuration mistake is reported before the store is opened
        accounts = va.store.list_accounts(key)
        rows: list[dict[str, Any]] = [
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
            common.out.print_json(json.dumps({"profile": va.profile.name, "accounts": rows}))
        elif rows:
            from vidauth.cli.tables import Column, print_listing

            print_listing(
                common.out,
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
            common.err.print(
                f"The sign-in of {', '.join(expired)} is no longer valid: run `vidauth login`.",
                markup=False,
                highlight=False,
            )
        lost = [row["account"] for row in rows if _answer_lost(row)]
        if lost and not as_json:
            common.err.print(
                f"The last refresh of {', '.join(lost)} was sent but its answer was lost, so "
                "the sign-in may have been used up: if the next command is refused, run "
                "`vidauth login`.",
                markup=False,
                highlight=False,
            )
        if not rows:  # the same exit code with --json: the format never changes the answer
            if not as_json:
                common.err.print(
                    f"Not signed in to {va.profile.server or va.profile.name}: "
                    "run `vidauth login`.",
                    markup=False,
                    highlight=False,
                )
            raise typer.Exit(3)


def logout(
    ctx: typer.Context,
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
        from vidauth.errors import UsageError
        from vidauth.store import Database, TokenStore

        if revoke or account:
            raise UsageError(
                "--all deletes local tokens only: drop --revoke/--account, or sign "
                "out accounts one by one with --revoke"
            )
        db = Database(settings(ctx).database_url)
        try:
            count = TokenStore.forget_all(db)
        finally:
            db.dispose()
        common.err.print(f"Deleted {count} account(s) and their tokens from the local store.")
        return
    with open_vidauth(ctx) as va:
        key = va.profile.key  # a configuration mistake is reported before the store is opened
        if account is None and not va.store.list_accounts(key):
            common.err.print(
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
            common.err.print(
                f"Signed out {info.username or info.subject}: tokens deleted here but not "
                f"revoked — {va.profile.provider.title} advertises no revocation endpoint; to "
                f"revoke at the server, set {where}.",
                markup=False,
            )
            return
    done = "revoked and deleted" if revoke else "deleted"
    common.err.print(f"Signed out {info.username or info.subject}: tokens {done}.", markup=False)
