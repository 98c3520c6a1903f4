"""What differs per platform, as data plus a few small hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoints:
    """The OAuth2 / OIDC endpoints of one authorization server."""

    authorize_url: str | None = None
    token_url: str | None = None
    revocation_url: str | None = None
    userinfo_url: str | None = None
    device_authorization_url: str | None = None
    issuer: str | None = None
    discovery_url: str | None = None
    jwks_uri: str | None = None
    #: The fields the profile set itself: they win over discovery and are never replaced.
    explicit: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Provider:
    """A platform preset: endpoints derived from a server or issuer, defaults and quirks.

    ``endpoints`` builds the endpoints from the profile's server/base URL (``None`` when the
    provider takes them from discovery or from the profile itself). Where the provider has an
    issuer, these paths are only the fallback: the discovery document says where each
    endpoint is (:mod:`vidauth.oauth.discovery`).
    """

    name: str
    title: str
    default_scope: str
    endpoints: Callable[[str], Endpoints] | None = None
    scope_separator: str = " "
    client_auth: str = "client_secret_post"
    revocation_client_auth: str = "client_secret_basic"
    pkce: bool = False
    token_headers: Mapping[str, str] = field(default_factory=dict)
    needs_server: bool = False
    requires_state: bool = True
    #: What the server does when a rotated refresh token is presented again: ``strict``
    #: (one-time rotation, reuse revokes the grant: Panopto) or ``grace`` (a reuse period, as
    #: Okta and Auth0 offer). Decides whether a refresh whose answer was lost is sent again.
    refresh_token_reuse: str = "strict"  # noqa: S105 - a policy name
    #: ``Endpoints`` fields the platform serves but leaves out of its discovery document: for
    #: these the preset's path is kept even when discovery works.
    not_in_discovery: frozenset[str] = frozenset()

    def join_scope(self, scopes: list[str]) -> str:
        """Join scopes with this platform's separator (Ingest wants commas)."""
        return self.scope_separator.join(scopes)
