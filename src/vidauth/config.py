"""Settings: command-line flags > environment > ``.env`` (or ``--env-file``) > defaults.

``load_settings`` reads and validates everything once and returns plain dataclasses, so the rest
of vidauth never touches the environment. ``Settings.profile()`` is the selected profile: the
``default`` one from the PANOPTO_* settings, or a named one from ``vidauth.toml``; both are
built by :func:`vidauth.profiles.build_profile`. Every problem is a :class:`ConfigError` whose
message names the variable, what is wrong and an example.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidauth import _defaults
from vidauth._defaults import DEFAULT_PROFILE, DEFAULT_REDIRECT_URI, DOTENV_FILE
from vidauth._urls import UrlError, site_origin
from vidauth.errors import ConfigError
from vidauth.profiles import (
    PROFILES_FILE,
    Profile,
    ProfileModel,
    Secret,
    Source,
    build_profile,
    find_profiles_file,
    list_rows,
    read_profiles_file,
    validate_redirect_uri,
)

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_REDIRECT_URI",
    "EnvSettings",
    "Profile",
    "RetrySettings",
    "Secret",
    "Settings",
    "check_all",
    "default_home",
    "list_profiles",
    "load_settings",
    "normalize_server",
    "read_env",
    "resolve_profile",
    "validate_redirect_uri",
]


class EnvSettings(BaseSettings):
    """The raw variables, as pydantic-settings finds them (init kwargs > env > .env)."""

    model_config = SettingsConfigDict(env_file=DOTENV_FILE, extra="ignore", case_sensitive=False)

    panopto_server: str | None = None
    panopto_client_id: str | None = None
    panopto_client_secret: SecretStr | None = None
    panopto_redirect_uri: str | None = None
    #: Where the Panopto ID provider's application key is: ``env:NAME`` or ``file:PATH``.
    panopto_application_key: str | None = None
    vidauth_home: str | None = None
    vidauth_database_url: str | None = None
    vidauth_secret_key: SecretStr | None = None
    vidauth_profile: str | None = None
    vidauth_retry_attempts: int | None = None
    vidauth_retry_max_seconds: float | None = None


@dataclass(frozen=True)
class RetrySettings:
    """Bounds of the retry policy shared by token, API and upload calls."""

    attempts: int = 5
    max_seconds: float = 120.0


@dataclass(frozen=True)
class Settings:
    """Everything a command needs: where state lives, the encryption key(s), the profile."""

    home: Path
    database_url: str
    secret_keys: tuple[Secret, ...]
    profile_name: str
    retry: RetrySettings
    raw: EnvSettings = field(repr=False)

    def profile(self) -> Profile:
        """The selected profile; raises ConfigError when something it needs is missing."""
        return resolve_profile(self.raw, self.profile_name)


def default_home() -> Path:
    """The platform's user data directory for vidauth."""
    return Path(_defaults.default_home())


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def read_env(
    model: type[SettingsT], dotenv: str | os.PathLike[str] | None, **given: Any
) -> SettingsT:
    """``model`` read from ``given``, the environment and the ``dotenv`` file; a one-line
    :class:`ConfigError` for a wrong value or a file that cannot be read as UTF-8 text."""
    try:
        return model(_env_file=os.fspath(dotenv) if dotenv is not None else None, **given)
    except ValidationError as exc:
        first = exc.errors()[0]
        prefix = model.model_config.get("env_prefix") or ""
        name = f"{prefix}{first['loc'][0]}".upper() if first["loc"] else "a setting"
        raise ConfigError(f"{name}: {first['msg']}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{dotenv}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{dotenv}: cannot read it ({exc.strerror or exc})") from None


def load_settings(
    *, env_file: str | os.PathLike[str] | bool | None = None, **flags: Any
) -> Settings:
    """Read flags (``panopto_server=…`` etc., None = not given), the environment and .env.

    ``env_file``: a path; None for ``./.env`` when present; False to read no file at all.
    """
    given = {k: v for k, v in flags.items() if v is not None}
    dotenv: str | os.PathLike[str] | None
    if env_file is False:
        dotenv = None
    elif env_file is None or env_file is True:
        dotenv = DOTENV_FILE
    elif not Path(env_file).is_file():
        raise ConfigError(
            f"env file {env_file}: no such file; give the path of your .env file",
            option="env_file",
            value=str(env_file),
        )
    else:
        dotenv = env_file
    raw = read_env(EnvSettings, dotenv, **given)
    home = Path(_defaults.home_dir(raw.vidauth_home))
    database_url = raw.vidauth_database_url or _defaults.default_database_url(home)
    _check_database_url(database_url)
    keys: tuple[Secret, ...] = ()
    if raw.vidauth_secret_key is not None:
        keys = tuple(
            Secret(k) for k in _defaults.split_keys(raw.vidauth_secret_key.get_secret_value())
        )
        if not keys:
            raise ConfigError(
                "VIDAUTH_SECRET_KEY is empty: unset it to use the generated key file, or set a "
                "Fernet key (python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            )
    retry = RetrySettings(
        attempts=raw.vidauth_retry_attempts or RetrySettings.attempts,
        max_seconds=raw.vidauth_retry_max_seconds or RetrySettings.max_seconds,
    )
    if retry.attempts < 1 or retry.max_seconds <= 0:
        raise ConfigError("VIDAUTH_RETRY_ATTEMPTS and VIDAUTH_RETRY_MAX_SECONDS must be positive")
    return Settings(
        home=home,
        database_url=database_url,
        secret_keys=keys,
        profile_name=raw.vidauth_profile or DEFAULT_PROFILE,
        retry=retry,
        raw=raw,
    )


def _check_database_url(url: str) -> None:
    scheme = url.split(":", 1)[0]
    if scheme not in {"sqlite", "postgresql", "postgresql+psycopg"}:
        raise ConfigError(
            f"VIDAUTH_DATABASE_URL: unsupported scheme {scheme!r}; use sqlite:///path/vidauth.db "
            "or postgresql+psycopg://user@host/dbname"
        )


# -- the default profile: the PANOPTO_* settings --------------------------------------------

_SERVER_EXAMPLE = "e.g. PANOPTO_SERVER=deakin.au.panopto.com"
ENV_SOURCE = Source(
    label=".env/environment",
    name=lambda key: f"PANOPTO_{key.upper()}" if key else ".env/environment",
    example=lambda key: (
        _SERVER_EXAMPLE
        if key == "server"
        else f"e.g. PANOPTO_REDIRECT_URI={DEFAULT_REDIRECT_URI}"
        if key == "redirect_uri"
        else ""
    ),
    # PANOPTO_CLIENT_SECRET is the secret itself; PANOPTO_APPLICATION_KEY is checked by the
    # grant that needs it, so a profile without ID-provider sign-in never trips over it.
    references=False,
)


def normalize_server(value: str) -> str:
    """``deakin.au.panopto.com`` or a URL → ``https://host[:port]``; plain http only to loopback."""
    if not value.strip():
        raise ConfigError(
            f"PANOPTO_SERVER is empty: set your Panopto site's host name, {_SERVER_EXAMPLE}"
        )
    try:
        return site_origin(value)
    except UrlError as exc:
        raise ConfigError(
            f"PANOPTO_SERVER {value.strip()!r}: {exc.reason} ({_SERVER_EXAMPLE})"
        ) from None


def default_model(raw: EnvSettings) -> ProfileModel:
    """The PANOPTO_* settings as a profile's settings, as given (not yet checked)."""
    secret = raw.panopto_client_secret.get_secret_value() if raw.panopto_client_secret else None
    return ProfileModel(
        provider="panopto",
        server=(raw.panopto_server or "").strip() or None,
        client_id=(raw.panopto_client_id or "").strip(),
        client_secret=secret.strip() if secret and secret.strip() else None,
        redirect_uri=raw.panopto_redirect_uri or None,
        application_key=raw.panopto_application_key or None,
    )


def default_profile(raw: EnvSettings) -> Profile:
    """The ``default`` profile; the PANOPTO_* variables it needs are checked in order."""
    model = default_model(raw)
    if not raw.panopto_server:
        raise ConfigError(f"PANOPTO_SERVER is not set: add it to .env, {_SERVER_EXAMPLE}")
    server = normalize_server(raw.panopto_server)
    if not model.client_id:
        raise ConfigError(
            "PANOPTO_CLIENT_ID is not set: add your API client's id to .env, "
            "e.g. PANOPTO_CLIENT_ID=0a1b2c3d-4e5f-6789-abcd-ef0123456789"
        )
    if model.client_secret is None:
        raise ConfigError(
            "PANOPTO_CLIENT_SECRET is not set: add your API client's secret to .env, "
            "e.g. PANOPTO_CLIENT_SECRET=<the secret shown when you created the API client>"
        )
    return build_profile(DEFAULT_PROFILE, model.model_copy(update={"server": server}), ENV_SOURCE)


# -- selecting a profile -------------------------------------------------------------------


def profiles_path(raw: EnvSettings) -> Path | None:
    """``./vidauth.toml`` when present, else ``$VIDAUTH_HOME/vidauth.toml`` when present."""
    return find_profiles_file(Path(_defaults.home_dir(raw.vidauth_home)))


def named_profiles(raw: EnvSettings) -> tuple[Path | None, dict[str, ProfileModel]]:
    """The profiles file (if any) and its validated tables."""
    path = profiles_path(raw)
    return (path, read_profiles_file(path)) if path is not None else (None, {})


def resolve_profile(raw: EnvSettings, name: str = DEFAULT_PROFILE) -> Profile:
    """The profile called ``name``; ``default`` is built from the PANOPTO_* variables."""
    if name == DEFAULT_PROFILE:
        return default_profile(raw)
    path, profiles = named_profiles(raw)
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
    path, profiles = named_profiles(raw)
    return list_rows(default_model(raw) if raw.panopto_server else None, path, profiles)


def check_all(raw: EnvSettings) -> dict[str, str | None]:
    """Resolve every profile; name → None when valid, else the one-line problem."""
    result: dict[str, str | None] = {}
    names = [DEFAULT_PROFILE] if raw.panopto_server else []
    names += sorted(named_profiles(raw)[1])
    for name in names:
        try:
            resolve_profile(raw, name)
            result[name] = None
        except ConfigError as exc:
            result[name] = exc.message
    return result
