"""Profiles: what one is, the one place every profile is built, and the ``vidauth.toml`` file.

A profile is one client registration at one authorization server. The ``default`` profile
comes from the PANOPTO_* settings (:func:`vidauth.config.load_settings`); named ones from
``vidauth.toml`` (``./vidauth.toml``, else ``$VIDAUTH_HOME/vidauth.toml``)::

    [profiles.dot]
    provider = "dot"                       # panopto | ingest | omniport | dot | oidc | oauth2
    server = "https://id.example.edu"
    client_id = "vidauth"
    client_secret = "env:DOT_CLIENT_SECRET" # a literal, env:NAME or file:PATH
    scope = "openid read write"

Both kinds are a :class:`ProfileModel` turned into a :class:`Profile` by :func:`build_profile`;
only the wording of their messages differs (a :class:`Source`). Every mistake is a
:class:`ConfigError` (exit 2) naming the setting and where it is. Secrets are read from their
``env:``/``file:`` references when the profile is built and are never shown.

This module imports nothing from :mod:`vidauth.config`; ``config`` builds on it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from vidauth._defaults import DEFAULT_PROFILE, DEFAULT_REDIRECT_URI, profile_key
from vidauth._urls import UrlError, checked_url
from vidauth.domain.signatures import SignatureChoice
from vidauth.errors import ConfigError
from vidauth.logs import register_secret
from vidauth.providers import Endpoints, Provider, get_provider

PROFILES_FILE = "vidauth.toml"
URL_KEYS = (
    "authorize_url",
    "token_url",
    "revocation_url",
    "userinfo_url",
    "device_authorization_url",
)


@dataclass(frozen=True)
class Secret:
    """A secret value that never shows itself in ``repr``/``str`` (tracebacks, logs)."""

    value: str = field(repr=False)

    def __post_init__(self) -> None:
        register_secret(self.value)  # masked in every log record from now on

    def __str__(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Profile:
    """One client registration at one authorization server, resolved and validated."""

    name: str
    provider: Provider
    client_id: str
    client_secret: Secret | None
    redirect_uri: str
    scope: str
    endpoints: Endpoints
    server: str | None = None
    client_auth: str = "client_secret_post"
    pkce: bool = False
    #: ``strict`` or ``grace``: see :attr:`vidauth.providers.base.Provider.refresh_token_reuse`.
    refresh_token_reuse: str = "strict"  # noqa: S105 - a policy name
    authorize_params: dict[str, str] = field(default_factory=dict)
    #: A reference (``env:NAME`` / ``file:PATH``) to a Panopto ID provider's application key;
    #: never the key itself. Resolved only when a grant needs it.
    application_key: str | None = None
    #: The S3 signature uploads use (``auto``, ``s3``, ``s3v4``, ``unsigned``); None: auto.
    signature: str | None = None
    #: Bytes per second uploads send at most (the ``bwlimit`` key: ``10M``, ``512K``, a number of
    #: bytes per second); None: no limit.
    bwlimit: int | None = None
    #: Where the profile was defined (a vidauth.toml path, or ``.env/environment``).
    source: str = ".env/environment"

    @property
    def key(self) -> str:
        """Identifies the store's rows for this profile: the server (or token URL) + client id."""
        where = self.server or self.endpoints.issuer or self.endpoints.token_url or ""
        return profile_key(self.provider.name, where, self.client_id)

    @property
    def api_base(self) -> str:
        """Base of the platform's API (Panopto: the site origin)."""
        return self.server or ""


class ProfileModel(BaseModel):
    """A profile's settings as given (strict types, no unknown keys): one ``[profiles.NAME]``
    table, or the PANOPTO_* settings of the default profile."""

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
    refresh_token_reuse: Literal["strict", "grace"] | None = None
    authorize_params: dict[str, str] | None = None
    application_key: str | None = None
    signature: SignatureChoice | None = None
    bwlimit: str | int | None = None


class ProfilesFile(BaseModel):
    """The whole file: only ``[profiles.*]`` tables."""

    model_config = ConfigDict(extra="forbid", strict=True)

    profiles: dict[str, ProfileModel] = {}


@dataclass(frozen=True)
class Source:
    """Where a profile's settings come from, and how messages name them.

    ``name(key)`` is how a message names the setting ``key`` (``PANOPTO_SERVER``, or
    ``…/vidauth.toml: [profiles.x] server``); ``example(key)`` an example to add, or "".
    ``references``: ``client_secret`` may be ``env:``/``file:`` and ``application_key`` must be.
    """

    label: str
    name: Callable[[str], str]
    example: Callable[[str], str] = lambda _key: ""
    references: bool = True

    @property
    def where(self) -> str:
        """The profile as a whole, for messages that are not about one key."""
        return self.name("").rstrip()


def file_source(path: Path, profile: str) -> Source:
    """A ``[profiles.NAME]`` table of ``path``."""
    where = f"{path}: [profiles.{profile}]"
    return Source(label=str(path), name=lambda key: f"{where} {key}".rstrip())


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


# -- building a Profile --------------------------------------------------------------------


def check_url(value: str, key: str, source: Source, **rule: bool) -> str:
    """``value`` stripped, when the URL rule (:func:`vidauth._urls.checked_url`) accepts it;
    else a ConfigError naming the setting as ``source`` does."""
    try:
        checked_url(value, **rule)
    except UrlError as exc:
        example = source.example(key) or "e.g. https://login.example.com"
        raise ConfigError(
            f"{source.name(key)} {value.strip()!r}: {exc.reason} ({example})"
        ) from None
    return value.strip()


def validate_redirect_uri(value: str, variable: str = "PANOPTO_REDIRECT_URI") -> str:
    """``value`` when it is an absolute http(s) URL without fragment (http only to loopback);
    ``variable`` names the setting in the ConfigError."""
    source = Source(
        label=variable,
        name=lambda _key: variable,
        example=lambda _key: f"e.g. {variable}={DEFAULT_REDIRECT_URI}",
    )
    check_url(value, "redirect_uri", source, fragment=False)
    return value


def _endpoints(
    provider: Provider, model: ProfileModel, source: Source
) -> tuple[str | None, Endpoints]:
    server = check_url(model.server, "server", source, bare_host=True) if model.server else None
    if server and "://" not in server:
        server = "https://" + server
    server = server.rstrip("/") if server else None
    issuer = check_url(model.issuer, "issuer", source) if model.issuer else None
    explicit = {
        k: check_url(getattr(model, k), k, source)
        for k in URL_KEYS
        if getattr(model, k) is not None
    }
    if provider.name == "oidc":
        if not issuer:
            raise ConfigError(
                f"{source.where} provider 'oidc' needs issuer, e.g. https://id.example.edu"
            )
        assert provider.endpoints is not None
        endpoints = provider.endpoints(issuer)
    elif provider.endpoints is not None:
        if provider.needs_server and not server:
            raise ConfigError(
                f"{source.where} provider {provider.name!r} needs server, e.g. "
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
        raise ConfigError(f"{source.where} needs token_url (or issuer, for discovery)")
    return server, endpoints


def build_profile(name: str, model: ProfileModel, source: Source | Path) -> Profile:
    """Validate ``model`` into a :class:`Profile` (secrets resolved from their references).

    ``source``: where the settings come from (a vidauth.toml path means its ``[profiles.name]``).
    """
    if isinstance(source, Path):
        source = file_source(source, name)
    provider = get_provider(model.provider)
    server, endpoints = _endpoints(provider, model, source)
    if not model.client_id.strip():
        raise ConfigError(f"{source.name('client_id')} is empty; set your client's id")
    secret = None
    if model.client_secret is not None:
        secret = (
            resolve_reference(model.client_secret, source.name("client_secret"))
            if source.references
            else Secret(model.client_secret.strip())
        )
    if (
        source.references
        and model.application_key is not None
        and not is_reference(model.application_key)
    ):
        raise ConfigError(
            f"{source.name('application_key')}: give env:NAME or file:PATH, never the key itself"
        )
    redirect_uri = model.redirect_uri or DEFAULT_REDIRECT_URI
    check_url(redirect_uri, "redirect_uri", source, fragment=False)
    bwlimit = _bwlimit(model.bwlimit, source.name("bwlimit"))
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
        refresh_token_reuse=model.refresh_token_reuse or provider.refresh_token_reuse,
        authorize_params=dict(model.authorize_params or {}),
        application_key=model.application_key,
        signature=model.signature,
        bwlimit=bwlimit,
        source=source.label,
    )


def _bwlimit(value: str | int | None, name: str) -> int | None:
    """Bytes per second from the ``bwlimit`` key (None: no limit), or a ConfigError."""
    from vidauth.domain.rates import RATE_NOTATION, parse_rate

    if value is None:
        return None
    try:
        return parse_rate(str(value))
    except ValueError:
        raise ConfigError(f"{name} = {value!r} is not a rate: give {RATE_NOTATION}") from None


# -- the file ------------------------------------------------------------------------------


def find_profiles_file(home: Path) -> Path | None:
    """``./vidauth.toml`` when present, else ``home/vidauth.toml`` when present."""
    here = Path.cwd() / PROFILES_FILE
    if here.is_file():
        return here
    there = home / PROFILES_FILE
    return there if there.is_file() else None


def read_profiles_file(path: Path) -> dict[str, ProfileModel]:
    """The validated ``[profiles.*]`` tables of ``path``."""
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
    return parsed.profiles


def _one_line(path: Path, exc: ValidationError) -> str:
    """The first problem, unknown keys before all others: a misspelt key is also reported as
    the missing key it was meant to be, and the misspelling is the one to name."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    in_profile = len(loc) >= 2 and loc[0] == "profiles"
    where = f"[profiles.{loc[1]}]" if in_profile else ""
    key = ".".join(loc[2:]) if len(loc) >= 3 else ".".join(loc)
    if first["type"] == "extra_forbidden":
        return _unknown_key(path, loc, key, where)
    if first["type"] == "missing":
        return f"{path}: {where} {key} is missing; add it".replace(":  ", ": ")
    got = first.get("input")
    shown = f" (got {type(got).__name__})" if got is not None and key != "client_secret" else ""
    return f"{path}: {where} {key}: {first['msg']}{shown}".replace(":  ", ": ")


def _unknown_key(path: Path, loc: list[str], key: str, where: str) -> str:
    if len(loc) == 3 and loc[0] == "profiles":
        known = list(ProfileModel.model_fields)
        place = f"in {where} of {path}"
    elif len(loc) == 1:
        known = list(ProfilesFile.model_fields)
        place = f"in {path} (only [profiles.NAME] tables belong there)"
    else:
        return f"{path}: {where} unknown key {key}".replace(":  ", ": ")
    close = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f"did you mean {close[0]}?" if close else "known keys: " + ", ".join(known)
    return f"unknown key {key} {place} — {hint}"


def list_rows(
    default: ProfileModel | None, path: Path | None, named: dict[str, ProfileModel]
) -> list[dict[str, Any]]:
    """Every profile, for display: no secret values, only where each secret comes from."""
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, ProfileModel, str, str]] = []
    if default is not None:
        secret = "PANOPTO_CLIENT_SECRET" if default.client_secret else "none"
        entries.append((DEFAULT_PROFILE, default, secret, ".env/environment"))
    for name, model in sorted(named.items()):
        entries.append((name, model, describe_reference(model.client_secret), str(path)))
    for name, model, secret, source in entries:
        rows.append(
            {
                "name": name,
                "provider": model.provider,
                "where": model.server or model.issuer or model.token_url or "",
                "client_id": model.client_id,
                "client_secret": secret,
                "application_key": model.application_key,
                "redirect_uri": model.redirect_uri or DEFAULT_REDIRECT_URI,
                "scope": model.scope
                if model.scope is not None
                else get_provider(model.provider).default_scope,
                "source": source,
            }
        )
    return rows
