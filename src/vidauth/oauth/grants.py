"""Grants without a browser: client credentials, resource-owner password, Panopto's ID provider.

None of them returns a refresh token a person could lose, so each has a *regrant*: a function the
:class:`~vidauth.oauth.manager.TokenManager` calls to fetch a new token when the old one expires
(client credentials always; the ID-provider grant re-derives its password from the application
key, as Panopto's sample does). A plain password is never kept, so a password grant without a
refresh token needs `vidauth login` again.
"""

from __future__ import annotations

import base64
import hashlib
import re

from vidauth.config import Profile, Secret
from vidauth.domain.tokens import TokenSet
from vidauth.errors import ConfigError, ErrorCode, SignInRequired
from vidauth.logs import register_secret
from vidauth.oauth.manager import Regrant
from vidauth.oauth.token_endpoint import TokenEndpoint

CLIENT_CREDENTIALS = "client_credentials"
PASSWORD = "password"  # noqa: S105 - a grant type name
ID_PROVIDER = "id_provider"
USER_ONLY_SCOPES = frozenset({"openid", "offline_access", "profile", "email", "address", "phone"})


def split_scope(scope: str | None) -> list[str]:
    """Scopes separated by spaces or commas (Ingest uses commas)."""
    return [s for s in re.split(r"[\s,]+", scope or "") if s]


def application_scope(profile: Profile) -> str | None:
    """The profile's scope without the user-only scopes (Panopto's Server Application: ``api``)."""
    scopes = [s for s in split_scope(profile.scope) if s not in USER_ONLY_SCOPES]
    return profile.provider.join_scope(scopes) if scopes else None


def client_subject(profile: Profile) -> str:
    """The account key of an application token."""
    return f"client:{profile.client_id}"


def client_credentials(endpoint: TokenEndpoint, profile: Profile) -> TokenSet:
    """An application token (RFC 6749 §4.4); the client must have a secret."""
    if profile.client_secret is None:
        raise ConfigError(
            f"profile {profile.name!r} has no client secret: client credentials need one; set "
            "client_secret"
        )
    return endpoint.client_credentials(application_scope(profile))


def password(
    endpoint: TokenEndpoint,
    profile: Profile,
    username: str,
    secret: Secret,
    scope: str | None = None,
) -> TokenSet:
    """Resource-owner password grant (RFC 6749 §4.3) with ``scope`` (default: the profile's)."""
    asked = scope if scope is not None else profile.scope
    return endpoint.password(_username(username), secret.value, asked or None)


def id_provider_password(username: str, application_key: str) -> str:
    """Panopto's ID-provider password: base64(sha256(lower(username) + "|" + lower(key)))."""
    payload = f"{username.lower()}|{application_key.lower()}".encode()
    derived = base64.b64encode(hashlib.sha256(payload).digest()).decode("ascii")
    register_secret(derived)  # a password like any other
    return derived


def id_provider_scope(profile: Profile) -> str | None:
    """The scope without ``offline_access``: the key can always get a new token, so no
    long-lived refresh token is asked for (Panopto's sample asks for ``openid api``)."""
    scopes = [s for s in split_scope(profile.scope) if s != "offline_access"]
    return profile.provider.join_scope(scopes) if scopes else None


def id_provider(
    endpoint: TokenEndpoint, profile: Profile, username: str, application_key: Secret
) -> TokenSet:
    """The Panopto ID-provider grant for ``Provider\\user``."""
    name = _username(username)
    if "\\" not in name:
        raise ConfigError(
            f"user name {name!r}: an ID-provider user name carries the provider's prefix, "
            "e.g. 'NetID\\john'",
            option="username",
            value=name,
        )
    derived = id_provider_password(name, application_key.value)
    return endpoint.password(name, derived, id_provider_scope(profile))


def _username(username: str) -> str:
    name = username.strip()
    if not name:
        raise ConfigError(
            "the user name is empty: give the user name to sign in as", option="username", value=""
        )
    return name


def application_key(profile: Profile) -> Secret:
    """The ID provider's application key, read again from the profile's reference."""
    from vidauth.profiles import resolve_reference

    if not profile.application_key:
        raise SignInRequired(
            f"the ID-provider token of profile {profile.name!r} expired and the profile names no "
            'application key: set application_key = "env:NAME" in vidauth.toml (or '
            "PANOPTO_APPLICATION_KEY=env:NAME)",
            code=ErrorCode.SIGN_IN_EXPIRED,
            profile=profile.name,
        )
    where = "PANOPTO_APPLICATION_KEY" if profile.name == "default" else "application_key"
    return resolve_reference(profile.application_key, where, allow_literal=False)


def regrant_for(
    grant_type: str, endpoint: TokenEndpoint, profile: Profile, username: str | None
) -> Regrant | None:
    """How to get a new grant without a person for an account stored with ``grant_type``."""
    if grant_type == CLIENT_CREDENTIALS:
        return lambda: client_credentials(endpoint, profile)
    if grant_type == ID_PROVIDER and username:
        return lambda: id_provider(endpoint, profile, username, application_key(profile))
    return None
