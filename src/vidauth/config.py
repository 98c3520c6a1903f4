"""Settings: command-line flags > environment > ``.env`` (or ``--env-file``) > defaults.

``load_settings`` reads and validates everything once and returns plain dataclasses, so the rest
of vidauth never touches the environment. Every problem is a :class:`ConfigError` whose message
names the variable, what is wrong and an example.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidauth._urls import check_transport, is_loopback_host, is_valid_host
from vidauth.errors import ConfigError
from vidauth.providers import Endpoints, Provider, get_provider

DEFAULT_REDIRECT_URI = "http://localhost:9127/redirect"
DEFAULT_PROFILE = "default"


class EnvSettings(BaseSettings):
    """The raw variables, as pydantic-settings finds them (init kwargs > env > .env)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

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
class Secret:
    """A secret value that never shows itself in ``repr``/``str`` (tracebacks, logs)."""

    value: str = field(repr=False)

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
    authorize_params: dict[str, str] = field(default_factory=dict)
    #: A reference (``env:NAME`` / ``file:PATH``) to a Panopto ID provider's application key;
    #: never the key itself. Resolved only when a grant needs it.
    application_key: str | None = None
    #: Where the profile was defined (a vidauth.toml path, or ``.env/environment``).
    source: str = ".env/environment"

    @property
    def key(self) -> str:
        """Identifies the store's rows for this profile: the server (or token URL) + client id."""
        where = self.server or self.endpoints.issuer or self.endpoints.token_url or ""
        return f"{self.provider.name}|{where}|{self.client_id}"

    @property
    def api_base(self) -> str:
        """Base of the platform's API (Panopto: the site origin)."""
        return self.server or ""


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
    from platformdirs import user_data_path

    return user_data_path("vidauth", appauthor=False)


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
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
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
        dotenv = ".env"
    elif not Path(env_file).is_file():
        raise ConfigError(f"--env-file {env_file}: no such file; give the path of your .env file")
    else:
        dotenv = env_file
    raw = read_env(EnvSettings, dotenv, **given)
    home = Path(raw.vidauth_home).expanduser() if raw.vidauth_home else default_home()
    database_url = raw.vidauth_database_url or f"sqlite:///{home / 'vidauth.db'}"
    _check_database_url(database_url)
    keys: tuple[Secret, ...] = ()
    if raw.vidauth_secret_key is not None:
        keys = tuple(
            Secret(k.strip())
            for k in raw.vidauth_secret_key.get_secret_value().split(",")
            if k.strip()
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


def normalize_server(value: str) -> str:
    """``deakin.au.panopto.com`` or a URL → ``https://host[:port]``; plain http only to loopback."""
    text = value.strip()
    example = "e.g. PANOPTO_SERVER=deakin.au.panopto.com"
    if not text:
        raise ConfigError(f"PANOPTO_SERVER is empty: set your Panopto site's host name, {example}")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        host = None
    if not host or not is_valid_host(host) or any(c.isspace() for c in text):
        raise ConfigError(f"PANOPTO_SERVER {value.strip()!r} is not a host name or URL: {example}")
    problem = check_transport(text)
    if problem:
        raise ConfigError(f"PANOPTO_SERVER {value.strip()!r}: {problem} ({example})")
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def validate_redirect_uri(value: str, variable: str = "PANOPTO_REDIRECT_URI") -> str:
    """An absolute http(s) URL without fragment; plain http only to loopback."""
    example = f"e.g. {variable}={DEFAULT_REDIRECT_URI}"
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{variable} {value!r} is not an absolute http(s) URL: {example}")
    if parts.fragment:
        raise ConfigError(f"{variable} {value!r} must not contain a #fragment: {example}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{variable} {value!r} has an invalid port: {example}") from None
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"{variable} {value!r}: plain http is allowed only to loopback hosts; use https"
        )
    return value


def resolve_profile(raw: EnvSettings, name: str = DEFAULT_PROFILE) -> Profile:
    """The profile called ``name``; ``default`` is built from the PANOPTO_* variables."""
    if name != DEFAULT_PROFILE:
        from vidauth.profiles import load_named_profile

        return load_named_profile(name, raw)
    provider = get_provider("panopto")
    if not raw.panopto_server:
        raise ConfigError(
            "PANOPTO_SERVER is not set: add it to .env, e.g. PANOPTO_SERVER=deakin.au.panopto.com"
        )
    server = normalize_server(raw.panopto_server)
    if not raw.panopto_client_id or not raw.panopto_client_id.strip():
        raise ConfigError(
            "PANOPTO_CLIENT_ID is not set: add your API client's id to .env, "
            "e.g. PANOPTO_CLIENT_ID=0a1b2c3d-4e5f-6789-abcd-ef0123456789"
        )
    secret = raw.panopto_client_secret.get_secret_value() if raw.panopto_client_secret else ""
    if not secret.strip():
        raise ConfigError(
            "PANOPTO_CLIENT_SECRET is not set: add your API client's secret to .env, "
            "e.g. PANOPTO_CLIENT_SECRET=<the secret shown when you created the API client>"
        )
    assert provider.endpoints is not None
    return Profile(
        name=DEFAULT_PROFILE,
        provider=provider,
        server=server,
        client_id=raw.panopto_client_id.strip(),
        client_secret=Secret(secret.strip()),
        redirect_uri=validate_redirect_uri(raw.panopto_redirect_uri or DEFAULT_REDIRECT_URI),
        scope=provider.default_scope,
        endpoints=provider.endpoints(server),
        client_auth=provider.client_auth,
        pkce=provider.pkce,
        application_key=raw.panopto_application_key or None,
    )
