"""Any OpenID provider: endpoints from ``{issuer}/.well-known/openid-configuration``."""

from __future__ import annotations

from vidauth.providers.base import Endpoints, Provider


def oidc_endpoints(issuer: str) -> Endpoints:
    """Only the issuer (exactly as the provider spells it) and its discovery URL; the rest is
    discovered at first use."""
    base = issuer.rstrip("/")
    return Endpoints(issuer=issuer, discovery_url=f"{base}/.well-known/openid-configuration")


OIDC = Provider(
    name="oidc",
    title="OpenID Connect (discovery)",
    default_scope="openid offline_access",
    endpoints=oidc_endpoints,
    client_auth="client_secret_basic",
    revocation_client_auth="client_secret_basic",
    pkce=True,
)
