"""The global options and the state of one ``vidauth`` invocation, carried in ``ctx.obj``.

:func:`vidauth.cli.app.run` creates an :class:`Invocation` per run and hands it to click as the
context's object; the root callback fills in its options, and every command reads them from its
own context (click passes ``obj`` down to sub-commands). Nothing here is a module-level global,
so two runs in one process share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer


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
        """The options as keyword arguments of :func:`vidauth.config.load_settings`."""
        return {
            "env_file": self.env_file,
            "vidauth_profile": self.profile,
            "panopto_server": self.server,
            "panopto_client_id": self.client_id,
            "panopto_redirect_uri": self.redirect_uri,
            "vidauth_home": str(self.home) if self.home else None,
            "vidauth_database_url": self.database_url,
        }


@dataclass
class Invocation:
    """One run of the command line: its global options, and what to say if Ctrl-C stops it."""

    options: GlobalOptions = field(default_factory=GlobalOptions)
    #: What the interrupted command's user can do next (a command sets it when it starts).
    interrupt_advice: str | None = None


def invocation(ctx: typer.Context) -> Invocation:
    """The :class:`Invocation` carried by ``ctx`` (a new one if the caller gave none)."""
    return ctx.ensure_object(Invocation)
