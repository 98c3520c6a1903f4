"""A local, in-memory, Panopto-compatible OAuth2 / OpenID Connect server for demos and tests.

See ``README.md`` in this package for endpoints, default credentials and quirks emulated.
"""

from __future__ import annotations

from vidauth_sandbox.app import create_app
from vidauth_sandbox.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    SandboxClient,
    SandboxConfig,
)
from vidauth_sandbox.server import SandboxServer, run_sandbox
from vidauth_sandbox.state import SandboxState, SandboxStats, SandboxUser, id_provider_password

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REDIRECT_URI",
    "SandboxClient",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "SandboxStats",
    "SandboxUser",
    "create_app",
    "id_provider_password",
    "run_sandbox",
]
