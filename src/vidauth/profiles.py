"""Named profiles from ``vidauth.toml`` (``./vidauth.toml``, else ``$VIDAUTH_HOME/vidauth.toml``).

A profile is one client registration at one authorization server::

    [profiles.dot]
    provider = "dot"                       # panopto | ingest | omniport | dot | oidc | oauth2
    server = "https://id.example.edu"
    client_id = "vidauth"
    client_secret = "env:DOT_CLIENT_SECRET" # a literal, env:NAME or file:PATH
    scope = "openid read write"

The PANOPTO_* variables (``.env``) remain the ``default`` profile. Every mistake is a
:class:`ConfigError` (exit 2) naming the file, the profile and the key. Secrets are read from
their ``env:``/``file:`` references when the profile is resolved and are never shown: listings
show where each secret comes from instead.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from vidauth._urls import check_transport, is_valid_host
from vidauth.config import (
    DEFAULT_PROFILE,
    DEFAULT_REDIRECT_URI,
    EnvSettings,
    Profile,
    Secret,
    default_home,
    resolve_profile,
    validate_redirect_uri,
)
from vidauth.errors import ConfigError
from vidauth.providers import Endpoints, get_provider

PROFILES_FILE = "vidauth.toml"
URL_KEYS = (
    "authorize_url",
    "token_url",
    "revocation_url",
    "userinfo_url",
    "device_authorization_url",
)


class ProfileModel(BaseModel):
    """One ``[profiles.NAME]`` table, exactly as written (strict types, no unknown keys)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: Literal["panopto", "ingest", "omniport", "dot", "oidc", "oauth2"]
    client_id: str
    server: str | None = None
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    revocation_url: str | None = None
    userinfo_url: str | None = None
    device_authorization_url: str | None = None
    client_secret: str | None = None
    redirect_uri: str | None = None
    scope: str | None = None
    client_auth: Literal["client_secret_post", "client_secret_basic"] | None = None
    pkce: bool | None = None
    authorize_params: dict[str, str] | None = None
    application_key: str | None = None


class ProfilesFile(BaseModel):
    """The whole file: only ``[profiles.*]`` tables."""

    model_config = ConfigDict(extra="forbid", strict=True)

    profiles: dict[str, ProfileModel] = {}


# -- secret references ---------------------------------------------------------------------


def is_reference(value: str) -> bool:
    """True for ``env:NAME`` and ``file:PATH``."""
    return value.startswith(("env:", "file:"))


def resolve_reference(value: str, what: str, *, allow_literal: bool = True) -> Secret:
    """The secret behind ``env:NAME`` / ``file:PATH`` (or ``value`` itself when a literal).

    ``what`` names the setting in error messages (e.g. ``client_secret in ./vidauth.toml``).
    """
    if value.startswith("env:"):
        name = value[4:].strip()
        if not name:
            raise ConfigError(f"{what}: 'env:' needs a variable name, e.g. env:PANOPTO_SECRET")
        found = os.environ.get(name)
        if found is None or not found.strip():
            raise ConfigError(f"{what}: environment variable {name} is not set; export it")
        return Secret(found.strip())
    if value.startswith("file:"):
        path = Path(value[5:].strip()).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{what}: cannot read {path} ({exc.strerror or type(exc).__name__}); "
                "check the path and its permissions"
            ) from None
        if not text:
            raise ConfigError(f"{what}: {path} is empty; put the secret in it")
        return Secret(text)
    if not allow_literal:
        raise ConfigError(
            f"{what}: give a reference, env:NAME or file:PATH, never the secret itself "
            "(command lines end up in shell history and process lists)"
        )
    if not value.strip():
        raise ConfigError(f"{what} is empty: set it, or use env:NAME / file:PATH")
    return Secret(value.strip())


def describe_reference(value: str | None) -> str:
    """Where a secret comes from, without the secret: ``env:X``, ``file:/p``, ``literal``."""
    if value is None:
        return "none"
    if is_reference(value):
        return value
    return "literal in the file"


# -- the file ------------------------------------------------------------------------------


def profiles_path(raw: EnvSettings) -> Path | None:
    """``./vidauth.toml`` when present, else ``$VIDAUTH_HOME/vidauth.toml`` when present."""
    here = Path.cwd() / PROFILES_FILE
    if here.is_file():
        return here
    home = Path(raw.vidauth_home).expanduser() if raw.vidauth_home else default_home()
    there = home / PROFILES_FILE
    return there if there.is_file() else None


def read_profiles(raw: EnvSettings) -> tuple[Path | None, dict[str, ProfileModel]]:
    """The profiles file (if any) and its validated tables."""
    path = profiles_path(raw)
    if path is None:
        return None, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror}); check its permissions"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    try:
        parsed = ProfilesFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(path, exc)) from None
    if DEFAULT_PROFILE in parsed.profiles:
        raise ConfigError(
            f"{path}: [profiles.{DEFAULT_PROFILE}]: the name {DEFAULT_PROFILE!r} is the PANOPTO_* "
            "settings; rename this profile"
        )
    return path, parsed.profiles


def _one_line(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = f"[profiles.{loc[1]}]" if len(loc) >= 2 and loc[0] == "profiles" else ""
    key = ".".join(loc[2:]) if len(loc) >= 3 else ".".join(loc)
    if first["type"] == "extra_forbidden":
        known = ", ".join(ProfileModel.model_fields) if len(loc) == 3 else "[profiles.NAME]"
        return f"{path}: {where} unknown key {key!r}; known keys: {known}".replace(":  ", ": ")
    if first["type"] == "missing":
        return f"{path}: {where} {key} is missing; add it".replace(":  ", ": ")
    got = first.get("input")
    shown = f" (got {type(got).__name__})" if got is not None and key != "client_secret" else ""
    return f"{path}: {where} {key}: {first['msg']}{shown}".replace(":  ", ": ")


# -- building a Profile --------------------------------------------------------------------


def _url(value: str, key: str, where: str, *, bare_host_ok: bool = False) -> str:
    text = value.strip()
    if bare_host_ok and "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{where} {key} {value!r}: invalid port") from None
    if not parts.hostname or not is_valid_host(parts.hostname) or any(c.isspace() for c in text):
        raise ConfigError(f"{where} {key} {value!r} is not a URL, e.g. https://login.example.com")
    problem = check_transport(text)
    if problem:
        raise ConfigError(f"{where} {key} {value!r}: {problem}")
    return text.rstrip("/") if key == "server" else text


def build_profile(name: str, model: ProfileModel, path: Path) -> Profile:
    """Validate one table into a :class:`Profile` (secrets resolved from their references)."""
    where = f"{path}: [profiles.{name}]"
    provider = get_provider(model.provider)
    server = _url(model.server, "server", where, bare_host_ok=True) if model.server else None
    issuer = _url(model.issuer, "issuer", where) if model.issuer else None
    explicit = {
        k: _url(getattr(model, k), k, where) for k in URL_KEYS if getattr(model, k) is not None
    }
    if provider.name == "oidc":
        if not issuer:
            raise ConfigError(f"{where} provider 'oidc' needs issuer, e.g. https://id.example.edu")
        assert provider.endpoints is not None
        endpoints = provider.endpoints(issuer)
    elif provider.endpoints is not None:
        if provider.needs_server and not server:
            raise ConfigError(
                f"{where} provider {provider.name!r} needs server, e.g. "
                'server = "https://video.example.edu"'
            )
        endpoints = provider.endpoints(server or "")
    else:
        endpoints = Endpoints()
    if issuer and provider.name != "oidc":
        endpoints = replace(
            endpoints,
            issuer=issuer,
            discovery_url=endpoints.discovery_url
            or f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        )
    endpoints = replace(endpoints, **explicit, explicit=frozenset(explicit))
    if not endpoints.token_url and not endpoints.discovery_url:
        raise ConfigError(f"{where} needs token_url (or issuer, for discovery)")
    if not model.client_id.strip():
        raise ConfigError(f"{where} client_id is empty; set your client's id")
    secret = None
    if model.client_secret is not None:
        secret = resolve_reference(model.client_secret, f"{where} client_secret")
    if model.application_key is not None and not is_reference(model.application_key):
        raise ConfigError(
            f"{where} application_key: give env:NAME or file:PATH, never the key itself"
        )
    redirect_uri = validate_redirect_uri(
        model.redirect_uri or DEFAULT_REDIRECT_URI, f"{where} redirect_uri"
    )
    return Profile(
        name=name,
        provider=provider,
        client_id=model.client_id.strip(),
        client_secret=secret,
        redirect_uri=redirect_uri,
        scope=model.scope if model.scope is not None else provider.default_scope,
        endpoints=endpoints,
        server=server,
        client_auth=model.client_auth or provider.client_auth,
        pkce=model.pkce if model.pkce is not None else provider.pkce,
        authorize_params=dict(model.authorize_params or {}),
        application_key=model.application_key,
        source=str(path),
    )


def load_named_profile(name: str, raw: EnvSettings) -> Profile:
    """The profile ``name`` from vidauth.toml (called by ``config.resolve_profile``)."""
    path, profiles = read_profiles(raw)
    if path is None:
        raise ConfigError(
            f"profile {name!r}: no {PROFILES_FILE} in the current directory or VIDAUTH_HOME; "
            f"create one with a [profiles.{name}] table"
        )
    model = profiles.get(name)
    if model is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"profile {name!r} is not in {path} (profiles there: {known})")
    return build_profile(name, model, path)


def list_profiles(raw: EnvSettings) -> list[dict[str, Any]]:
    """Every profile, for display: no secret values, only where each secret comes from."""
    rows: list[dict[str, Any]] = []
    if raw.panopto_server:
        rows.append(
            {
                "name": DEFAULT_PROFILE,
                "provider": "panopto",
                "where": raw.panopto_server,
                "client_id": raw.panopto_client_id,
                "client_secret": "PANOPTO_CLIENT_SECRET" if raw.panopto_client_secret else "none",
                "application_key": raw.panopto_application_key,
                "redirect_uri": raw.panopto_redirect_uri or DEFAULT_REDIRECT_URI,
                "scope": get_provider("panopto").default_scope,
                "source": ".env/environment",
            }
        )
    path, profiles = read_profiles(raw)
    for name, model in sorted(profiles.items()):
        rows.append(
            {
                "name": name,
                "provider": model.provider,
                "where": model.server or model.issuer or model.token_url or "",
                "client_id": model.client_id,
                "client_secret": describe_reference(model.client_secret),
                "application_key": model.application_key,
                "redirect_uri": model.redirect_uri or DEFAULT_REDIRECT_URI,
                "scope": model.scope
                if model.scope is not None
                else get_provider(model.provider).default_scope,
                "source": str(path),
            }
        )
    return rows


def check_all(raw: EnvSettings) -> dict[str, str | None]:
    """Resolve every profile; name → None when valid, else the one-line problem."""
    result: dict[str, str | None] = {}
    names = [DEFAULT_PROFILE] if raw.panopto_server else []
    names += sorted(read_profiles(raw)[1])
    for name in names:
        try:
            resolve_profile(raw, name)
            result[name] = None
        except ConfigError as exc:
            result[name] = exc.message
    return result
