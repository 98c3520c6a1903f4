"""A plain OAuth2 server: every endpoint comes from the profile."""

from __future__ import annotations

from vidauth.providers.base import Provider

GENERIC = Provider(
    name="oauth2",
    title="OAuth 2.0 (endpoints from the profile)",
    default_scope="",
    endpoints=None,
    client_auth="client_secret_basic",
    revocation_client_auth="client_secret_basic",
    pkce=True,
)
