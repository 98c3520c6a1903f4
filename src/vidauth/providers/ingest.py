"""Ingest (see shared/seeds/004): fixed endpoints at login.ingest.io, comma-separated scopes.

Quirks: client authentication by HTTP Basic, ``Accept: application/vnd.ingest.v1+json`` on token
requests, ``expires_in`` possibly a string (``TokenSet.from_response`` copes), and the user is the
``sub`` of the JWT access token (no ID token, no userinfo).
"""

from __future__ import annotations

from vidauth.providers.base import Endpoints, Provider

INGEST_LOGIN = "https://login.ingest.io"


def ingest_endpoints(server: str | None = None) -> Endpoints:
    """Ingest's endpoints; ``server`` replaces ``https://login.ingest.io`` (tests, proxies)."""
    base = (server or INGEST_LOGIN).rstrip("/")
    return Endpoints(authorize_url=f"{base}/authorize", token_url=f"{base}/token")


INGEST = Provider(
    name="ingest",
    title="Ingest",
    default_scope="read_videos,write_videos",
    endpoints=ingest_endpoints,
    scope_separator=",",
    client_auth="client_secret_basic",
    revocation_client_auth="client_secret_basic",
    pkce=False,
    token_headers={"Accept": "application/vnd.ingest.v1+json"},
    needs_server=False,
    # The subject comes from the JWT access token's sub; client credentials need a scope.
)
