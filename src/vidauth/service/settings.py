"""Settings of ``vidauth serve`` / ``vidauth worker``: the VIDAUTH_* service variables.

Each variable is declared once, as a field of :class:`ServiceSettings` (the field ``x`` is the
variable ``VIDAUTH_X``), with its default and its check beside it. They are read like the rest of
vidauth's settings (environment > ``.env``) and checked once; every problem is a
:class:`~vidauth.errors.ConfigError` naming the variable (fact ``variable``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vidauth._urls import check_transport
from vidauth.config import Settings, read_env
from vidauth.domain.rates import RATE_NOTATION, parse_rate
from vidauth.errors import ConfigError
from vidauth.service.webhook_targets import Network, parse_networks

GiB = 1024**3
ENV_PREFIX = "VIDAUTH_"
DEFAULT_CALLBACK_PATH = "/oauth/callback"


def _variable(info: ValidationInfo) -> str:
    """The environment variable of the field being checked."""
    return f"{ENV_PREFIX}{info.field_name or ''}".upper()


def _problem(info: ValidationInfo, message: str) -> ConfigError:
    """A ConfigError about the variable of the field being checked."""
    return ConfigError(message, variable=_variable(info))


def _positive(value: float, info: ValidationInfo) -> float:
    if value <= 0:
        raise _problem(info, f"{_variable(info)} must be positive (got {value})")
    return value


def _text_or_none(value: Any) -> Any:
    """A blank variable counts as not set."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


PositiveInt = Annotated[int, AfterValidator(_positive)]
PositiveFloat = Annotated[float, AfterValidator(_positive)]


class ServiceSettings(BaseSettings):
    """The checked service settings (environment > .env); frozen."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", case_sensitive=False, frozen=True
    )

    home: Path = Field(exclude=True, repr=False)
    """VIDAUTH_HOME as vidauth's settings resolved it (flags included): where defaults live."""
    public_url: str = Field("", validate_default=True)
    callback_path: str = DEFAULT_CALLBACK_PATH
    connect_return_url: str | None = None
    upload_dir: Path = Field(None, validate_default=True)
    """None: ``<VIDAUTH_HOME>/service-uploads``."""
    shared_dir: Path | None = None
    max_upload_bytes: PositiveInt = 20 * GiB
    max_request_bytes: PositiveInt = 1024 * 1024
    webhook_secret: str | None = Field(None, repr=False)
    webhook_allow_networks: Annotated[tuple[Network, ...], NoDecode] = ()
    metrics_token: str | None = Field(None, repr=False)
    lease_seconds: PositiveFloat = 30.0
    heartbeat_seconds: PositiveFloat = 10.0
    poll_seconds: PositiveFloat = 1.0
    worker_jobs: PositiveInt = 2
    upload_parallel: PositiveInt | None = None
    """Parts in flight per upload: None adapts them to the link; a number pins it."""
    part_size_mib: int | None = None
    upload_bwlimit: int | None = None
    """Bytes/s all uploads of a worker process send at most together (None: no limit)."""
    token_min_validity: float = 300.0
    processing_poll_max: float = 10.0
    job_attempts: PositiveInt = 8
    webhook_attempts: PositiveInt = 10
    webhook_timeout: PositiveFloat = 10.0
    """Seconds one delivery may take in all (connect, send, answer)."""
    header_timeout: PositiveFloat = 10.0
    """Seconds a client has to send a request's headers."""
    body_idle_timeout: PositiveFloat = 30.0
    """Seconds a request body may stall while the service waits for it."""
    max_connections_per_client: PositiveInt = 64
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses or networks whose X-Forwarded-For is believed (none: no proxy)."""
    tenant_spool_bytes: PositiveInt = 100 * GiB
    """Bytes of spooled files one tenant may hold (uploads not finished)."""
    tenant_waiting_uploads: PositiveInt = 200
    """Uploads not finished one tenant may have."""
    consent_wait_seconds: PositiveFloat = 7 * 86400
    """How long an upload may wait for its user's consent before it fails (file deleted)."""
    page_link_seconds: PositiveInt = 3600
    connect_seconds: PositiveInt = 600

    @property
    def callback_url(self) -> str:
        """The redirect_uri registered at Panopto: ``{public_url}{callback_path}``."""
        return self.public_url + self.callback_path

    def __repr__(self) -> str:
        return f"ServiceSettings(public_url={self.public_url!r}, upload_dir={self.upload_dir!r})"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str, info: ValidationInfo) -> str:
        example = "e.g. VIDAUTH_PUBLIC_URL=https://vidauth.ontrack.example.edu"
        if not value.strip():
            raise _problem(
                info, f"VIDAUTH_PUBLIC_URL is not set: the service's public base URL, {example}"
            )
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _problem(info, f"VIDAUTH_PUBLIC_URL {url!r} is not an absolute URL: {example}")
        if parts.query or parts.fragment:
            raise _problem(info, f"VIDAUTH_PUBLIC_URL {url!r} must not have a query or fragment")
        problem = check_transport(url)
        if problem:
            raise _problem(info, f"VIDAUTH_PUBLIC_URL {url!r}: {problem}")
        return url

    @field_validator("callback_path")
    @classmethod
    def _callback_path(cls, value: str, info: ValidationInfo) -> str:
        path = value.strip() or DEFAULT_CALLBACK_PATH
        if not path.startswith("/") or "?" in path or "#" in path:
            raise _problem(
                info,
                f"VIDAUTH_CALLBACK_PATH {path!r} must be a path starting with /, "
                "e.g. /oauth/callback",
            )
        return path

    @field_validator("connect_return_url")
    @classmethod
    def _connect_return_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        url = (value or "").strip() or None
        problem = check_transport(url) if url else None
        if problem:
            raise _problem(info, f"VIDAUTH_CONNECT_RETURN_URL {url!r}: {problem}")
        return url

    @field_validator("upload_dir", mode="before")
    @classmethod
    def _upload_dir(cls, value: Any, info: ValidationInfo) -> Path:
        if not value:
            return Path(info.data["home"]) / "service-uploads"
        return Path(value).expanduser()

    @field_validator("shared_dir", mode="before")
    @classmethod
    def _shared_dir(cls, value: Any, info: ValidationInfo) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_dir():
            raise _problem(info, f"VIDAUTH_SHARED_DIR {path}: no such directory")
        return path.resolve()

    @field_validator("webhook_secret", "metrics_token", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        return _text_or_none(value.strip() if isinstance(value, str) else value)

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and len(value) < 16:
            raise _problem(
                info,
                "VIDAUTH_METRICS_TOKEN is shorter than 16 characters: use a long random value, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        return value

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _webhook_allow_networks(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_networks(value)
        except ValueError as exc:
            raise _problem(info, f"VIDAUTH_WEBHOOK_ALLOW_NETWORKS: {exc}") from None

    @field_validator("upload_bwlimit", mode="before")
    @classmethod
    def _upload_bwlimit(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_rate(value or "off")
        except ValueError:
            raise _problem(
                info, f"VIDAUTH_UPLOAD_BWLIMIT {value!r} is not a rate: give {RATE_NOTATION}"
            ) from None

    @field_validator("token_min_validity")
    @classmethod
    def _token_min_validity(cls, value: float) -> float:
        return max(0.0, value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: Any, info: ValidationInfo) -> Any:
        """``10.0.0.5,10.1.0.0/16`` → the addresses and networks, each checked."""
        if not isinstance(value, str):
            return value
        found = []
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise _problem(
                    info,
                    f"VIDAUTH_TRUSTED_PROXIES: {item!r} is not an address or network "
                    "(e.g. 10.0.0.5 or 10.1.0.0/16)",
                ) from None
            found.append(item)
        return tuple(found)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> ServiceSettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ConfigError(
                "VIDAUTH_HEARTBEAT_SECONDS must be at most half of VIDAUTH_LEASE_SECONDS "
                "(e.g. 10 and 30)",
                variable="VIDAUTH_HEARTBEAT_SECONDS",
            )
        return self


def load_service_settings(
    settings: Settings, env_file: str | os.PathLike[str] | None = None
) -> ServiceSettings:
    """Read and check the service variables (``settings`` gives VIDAUTH_HOME for defaults)."""
    dotenv = env_file if env_file is not None else ".env"
    return read_env(ServiceSettings, dotenv, home=settings.home)
