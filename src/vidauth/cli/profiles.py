"""``vidauth profiles`` and ``vidauth doctor``: the configured profiles, and checking one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

import vidauth.cli.common as common
from vidauth.cli.common import flags, settings

if TYPE_CHECKING:
    from rich.text import Text

#: A check's status → its mark and the mark's style.
_MARKS = {
    "ok": ("✓", "green"),
    "warn": ("!", "yellow"),
    "fail": ("✗", "red"),
    "info": ("i", "blue"),
    "skipped": ("-", "dim"),
}


def _mark(status: str) -> Text | str:
    """The mark of a check's status (the status itself when it has none)."""
    from rich.text import Text

    if status not in _MARKS:
        return status
    mark, style = _MARKS[status]
    return Text(mark, style=style)


def profiles(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the profiles (PANOPTO_* settings and vidauth.toml); secrets show only their source."""
    from vidauth.config import check_all, list_profiles

    chosen = settings(ctx)
    rows = list_profiles(chosen.raw)
    problems = check_all(chosen.raw)
    for row in rows:
        row["selected"] = row["name"] == chosen.profile_name
        row["problem"] = problems.get(row["name"])
    if as_json:
        common.out.print_json(json.dumps({"selected": chosen.profile_name, "profiles": rows}))
    elif not rows:
        common.err.print(
            "No profiles: set PANOPTO_SERVER/PANOPTO_CLIENT_ID/PANOPTO_CLIENT_SECRET in .env, "
            "or add [profiles.NAME] tables to vidauth.toml.",
            markup=False,
            highlight=False,
        )
    if not rows:  # nothing configured is a configuration problem, with or without --json
        raise typer.Exit(2)
    if as_json:
        return
    from rich.text import Text

    from vidauth.cli.tables import Column, print_listing

    columns = [
        Column("", heading=True),
        Column("name", heading=True),
        Column("provider"),
        Column("server / issuer"),
        Column("client id"),
        Column("secret"),
        Column("scope", whole=False),
    ]
    table: list[list[str | Text]] = [
        [
            "*" if row["selected"] else "",
            row["name"],
            row["provider"],
            row["where"] or "",
            row["client_id"] or "",
            row["client_secret"],
            row["scope"] or "",
        ]
        for row in rows
    ]
    if any(row["problem"] for row in rows):
        columns.append(Column("problem", whole=False))
        for cells, row in zip(table, rows, strict=True):
            cells.append(Text("invalid: see below", style="red") if row["problem"] else "")
    print_listing(common.out, "vidauth profiles", columns, table)
    for row in rows:
        if row["problem"]:
            common.err.print(f"{row['name']}: {row['problem']}", markup=False, highlight=False)


def doctor(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Profile to check (default: the selected one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check a profile end to end: configuration, servers, sign-in port, store.

    One row per check: configuration, each server's reachability and TLS, discovery, clock,
    whether the server accepts the client, the redirect URI and its port, the token store.
    Exits 2 when anything fails.
    """
    from vidauth.cli.doctor import failed, run_doctor
    from vidauth.config import load_settings

    given = flags(ctx)
    if profile:
        given["vidauth_profile"] = profile
    checked = load_settings(**given)
    checks = run_doctor(checked)
    if as_json:
        common.out.print_json(
            json.dumps(
                {
                    "profile": checked.profile_name,
                    "ok": not failed(checks),
                    "checks": [c.as_dict() for c in checks],
                }
            )
        )
    else:
        from vidauth.cli.tables import Column, print_listing

        print_listing(
            common.out,
            f"vidauth doctor — profile {checked.profile_name}",
            [
                Column("", heading=True),
                Column("check", heading=True),
                Column("result", whole=False),
                Column("fix", whole=False),
            ],
            [[_mark(c.status), c.name, c.detail, c.fix or ""] for c in checks],
        )
    if failed(checks):
        raise typer.Exit(2)
