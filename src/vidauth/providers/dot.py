"""Django OAuth Toolkit: ``{server}/o/…``, PKCE required, refresh tokens rotated.

Its discovery document (``/o/.well-known/openid-configuration``) lists no revocation endpoint,
so the preset's ``/o/revoke_token/`` is kept; every other endpoint comes from discovery.
"""

from __future__ import annotations

from vidauth.providers.base import Endpoints, Provider


def dot_endpoints(server: str) -> Endpoints:
    """Endpoints of a DOT install mounted at ``/o/`` on ``server``."""
    base = f"{server.rstrip('/')}/o"
    return Endpoints(
        authorize_url=f"{base}/authorize/",
        token_url=f"{base}/token/",
        revocation_url=f"{base}/revoke_token/",
        userinfo_url=f"{base}/userinfo/",
        issuer=base,
        discovery_url=f"{base}/.well-known/openid-configuration",
        jwks_uri=f"{base}/.well-known/jwks.json",
    )


DOT = Provider(
    name="dot",
    title="Django OAuth Toolkit",
    default_scope="openid read write",
    endpoints=dot_endpoints,
    client_auth="client_secret_basic",
    revocation_client_auth="client_secret_basic",
    pkce=True,
    needs_server=True,
    # DOT serves /o/revoke_token/ but its discovery document does not list it.
    not_in_discovery=frozenset({"revocation_url"}),
)
