"""Omniport (see shared/seeds/003): Django OAuth Toolkit under its own paths.

``{server}/oauth/authorise/`` (British spelling, trailing slash) and ``{server}/open_auth/token/``;
``state`` is required; the code lives one minute, so it is exchanged as soon as the redirect
arrives (``Vidauth.login`` does nothing in between). Client id and secret go in the form body.
"""

from __future__ import annotations

from vidauth.providers.base import Endpoints, Provider


def omniport_endpoints(server: str) -> Endpoints:
    """Endpoints of an Omniport site such as ``https://channeli.in``."""
    base = server.rstrip("/")
    return Endpoints(
        authorize_url=f"{base}/oauth/authorise/",
        token_url=f"{base}/open_auth/token/",
    )


OMNIPORT = Provider(
    name="omniport",
    title="Omniport",
    default_scope="",
    endpoints=omniport_endpoints,
    client_auth="client_secret_post",
    revocation_client_auth="client_secret_post",
    pkce=False,
    needs_server=True,
    requires_state=True,
    # The authorization code lives 60 s: it is exchanged immediately.
)
