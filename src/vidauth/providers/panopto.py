"""Panopto: an IdentityServer under ``/Panopto/oauth2`` (see shared/notes/panopto.md).

The issuer is ``https://{server}/Panopto/oauth2``; its discovery document says where every
endpoint and the JWKS are. The paths below are the fallback when discovery is unreachable.
"""

from __future__ import annotations

from vidauth.providers.base import Endpoints, Provider


def panopto_endpoints(server: str) -> Endpoints:
    """Endpoints of a Panopto site, from its origin such as ``https://deakin.au.panopto.com``."""
    base = f"{server.rstrip('/')}/Panopto/oauth2"
    return Endpoints(
        authorize_url=f"{base}/connect/authorize",
        token_url=f"{base}/connect/token",
        revocation_url=f"{base}/connect/revocation",
        userinfo_url=f"{base}/connect/userinfo",
        issuer=base,
        discovery_url=f"{base}/.well-known/openid-configuration",
        jwks_uri=f"{base}/.well-known/openid-configuration/jwks",
    )


PANOPTO = Provider(
    name="panopto",
    title="Panopto",
    default_scope="openid api offline_access",
    endpoints=panopto_endpoints,
    client_auth="client_secret_post",
    revocation_client_auth="client_secret_basic",
    # A server-side web app that sends code_verifier with its secret is reported to get
    # invalid_grant, so PKCE is off unless a profile asks for it.
    pkce=False,
    needs_server=True,
)
