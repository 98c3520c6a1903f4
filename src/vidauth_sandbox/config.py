"""Configuration of the sandbox authorization server: its clients, users and lifetimes.

Everything here is a public, well-known sandbox default: the default client secret and the user
passwords exist only so a developer (or a test) can sign in to a server running on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Where Panopto (an IdentityServer) serves OAuth2 / OpenID Connect, below the site's origin.
OAUTH_PREFIX = "/Panopto/oauth2"
AUTHORIZE_PATH = f"{OAUTH_PREFIX}/connect/authorize"
TOKEN_PATH = f"{OAUTH_PREFIX}/connect/token"
REVOCATION_PATH = f"{OAUTH_PREFIX}/connect/revocation"
USERINFO_PATH = f"{OAUTH_PREFIX}/connect/userinfo"
LOGIN_PATH = f"{OAUTH_PREFIX}/account/login"
DISCOVERY_PATH = f"{OAUTH_PREFIX}/.well-known/openid-configuration"
JWKS_PATH = f"{DISCOVERY_PATH}/jwks"

#: Scopes the sandbox knows (Panopto's).
SUPPORTED_SCOPES = ["openid", "profile", "email", "api", "offline_access"]

DEFAULT_CLIENT_ID = "vidauth-sandbox"
DEFAULT_CLIENT_SECRET = "vidauth-sandbox-secret"  # noqa: S105 - public sandbox default
DEFAULT_REDIRECT_URI = "http://localhost:9127/redirect"
DEFAULT_USERS = {
    "alice": "alice-sandbox-password",
    "bob": "bob-sandbox-password",
}
DEFAULT_APPLICATION_KEY = "sandbox-application-key"


@dataclass
class SandboxClient:
    """A registered OAuth2 client.

    ``client_secret=None`` makes a public client (token endpoint auth method ``none``, PKCE
    required). Redirect URIs are matched as exact strings, with no normalization at all.
    """

    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: list[str]
    grant_types: list[str]
    scope: str = "openid profile email api offline_access"
    token_endpoint_auth_methods: list[str] = field(
        default_factory=lambda: ["client_secret_post", "client_secret_basic"]
    )

    def __post_init__(self) -> None:
        # Registering the same URI twice (the default plus `--redirect-uri` of the same one)
        # means it once: the mismatch error lists each registered URI once.
        self.redirect_uris = list(dict.fromkeys(self.redirect_uris))

    @property
    def is_public(self) -> bool:
        """True for a client without a secret."""
        return self.client_secret is None


def default_client() -> SandboxClient:
    """The built-in confidential client ``vidauth-sandbox`` (all four grant types)."""
    return SandboxClient(
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        redirect_uris=[DEFAULT_REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token", "password", "client_credentials"],
    )


@dataclass
class SandboxConfig:
    """Everything the sandbox authorization server can be configured with."""

    host: str = "127.0.0.1"
    port: int = 0
    clients: list[SandboxClient] = field(default_factory=lambda: [default_client()])
    users: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS), repr=False)
    access_token_lifetime: int = 3600
    code_lifetime: int = 60
    #: Panopto quirk: a confidential client that also sends ``code_verifier`` gets invalid_grant.
    reject_pkce_with_secret: bool = True
    #: Application key of the sandbox's Panopto ID provider (for ``Provider\\user`` passwords).
    id_provider_application_key: str = field(default=DEFAULT_APPLICATION_KEY, repr=False)
    # Discovery knobs (read on every request, so a test may change them while the server runs).
    #: Where the JWKS is served, a path under ``/Panopto/oauth2``; discovery's ``jwks_uri``
    #: points there and every other path (the preset's ``…/openid-configuration/jwks``) is 404.
    jwks_path: str = JWKS_PATH
    #: Discovery answers this HTTP status (an HTML page, no JSON) instead of the document.
    discovery_status: int | None = None
    #: ``Cache-Control: max-age`` sent with the discovery document / the JWKS (None: no header).
    discovery_max_age: int | None = None
    jwks_max_age: int | None = None
    #: Metadata names left out of the discovery document, e.g. ``{"revocation_endpoint"}``.
    discovery_omit: set[str] = field(default_factory=set)
    #: Seconds a rotated refresh token stays usable (Okta's and Auth0's reuse grace period);
    #: 0 is strict one-time rotation, as Panopto does: any reuse revokes the grant.
    refresh_reuse_grace: float = 0.0
    #: Whether ID tokens carry the user's names (``preferred_username``, ``name``, ``email``).
    #: Panopto's do not: names come only from ``/connect/userinfo``, for the scopes granted.
    id_token_names: bool = False
    #: Whether a password grant may ask for ``offline_access``; False answers it
    #: ``invalid_scope``, as IdentityServer does for a client not allowed offline access.
    password_offline_access: bool = True
    #: Seconds every token answer is held back after the request was processed (a slow or
    #: hanging token endpoint).
    token_delay: float = 0.0
