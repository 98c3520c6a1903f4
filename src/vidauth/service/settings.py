"""Settings of ``vidauth serve`` / ``vidauth worker``: the VIDAUTH_* service variables.

They are read like the rest of vidauth's settings (environment > ``.env``) and validated once;
every problem is a :class:`~vidauth.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidauth._urls import check_transport
from vidauth.config import Settings, read_env
from vidauth.errors import ConfigError
from vidauth.panopto.pacing import parse_rate
from vidauth.service.webhook_targets import Network, parse_networks

GiB = 1024**3


class ServiceEnv(BaseSettings):
    """The raw service variables (environment > .env)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    vidauth_public_url: str | None = None
    vidauth_callback_path: str = "/oauth/callback"
    vidauth_connect_return_url: str | None = None
    vidauth_upload_dir: str | None = None
    vidauth_shared_dir: str | None = None
    vidauth_max_upload_bytes: int = 20 * GiB
    vidauth_max_request_bytes: int = 1024 * 1024
    vidauth_webhook_secret: SecretStr | None = None
    vidauth_webhook_allow_networks: str = ""
    vidauth_metrics_token: SecretStr | None = None
    vidauth_lease_seconds: float = 30.0
    vidauth_heartbeat_seconds: float = 10.0
    vidauth_poll_seconds: float = 1.0
    vidauth_worker_jobs: int = 2
    vidauth_upload_parallel: int | None = None
    vidauth_part_size_mib: int | None = None
    vidauth_upload_bwlimit: str | None = None
    vidauth_token_min_validity: float = 300.0
    vidauth_processing_poll_max: float = 10.0
    vidauth_job_attempts: int = 8
    vidauth_webhook_attempts: int = 10
    vidauth_webhook_timeout: float = 10.0
    vidauth_header_timeout: float = 10.0
    vidauth_body_idle_timeout: float = 30.0
    vidauth_max_connections_per_client: int = 64
    vidauth_trusted_proxies: str = ""
    vidauth_tenant_spool_bytes: int = 100 * GiB
    vidauth_tenant_waiting_uploads: int = 200
    vidauth_consent_wait_seconds: float = 7 * 86400
    vidauth_page_link_seconds: int = 3600
    vidauth_connect_seconds: int = 600


@dataclass(frozen=True)
class ServiceSettings:
    """Validated service settings."""

    public_url: str
    callback_path: str
    connect_return_url: str | None
    upload_dir: Path
    shared_dir: Path | None
    max_upload_bytes: int
    max_request_bytes: int
    webhook_secret: str | None
    webhook_allow_networks: tuple[Network, ...]
    metrics_token: str | None
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    worker_jobs: int
    upload_parallel: int | None
    """Parts in flight per upload: None adapts them to the link; a number pins it."""
    part_size_mib: int | None
    upload_bwlimit: int | None
    """Bytes/s all uploads of a worker process send at most together (None: no limit)."""
    token_min_validity: float
    processing_poll_max: float
    job_attempts: int
    webhook_attempts: int
    webhook_timeout: float
    """Seconds one delivery may take in all (connect, send, answer)."""
    page_link_seconds: int
    connect_seconds: int
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers."""
    body_idle_timeout: float = 30.0
    """Seconds a request body may stall while the service waits for it."""
    max_connections_per_client: int = 64
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks whose X-Forwarded-For is believed (none: no proxy)."""
    tenant_spool_bytes: int = 100 * GiB
    """Bytes of spooled files one tenant may hold (uploads not finished)."""
    tenant_waiting_uploads: int = 200
    """Uploads not finished one tenant may have."""
    consent_wait_seconds: float = 7 * 86400
    """How long an upload may wait for its user's consent before it fails (file deleted)."""

    @property
    def callback_url(self) -> str:
        """The redirect_uri registered at Panopto: ``{public_url}{callback_path}``."""
        return self.public_url + self.callback_path

    def __repr__(self) -> str:
        return f"ServiceSettings(public_url={self.public_url!r}, upload_dir={self.upload_dir!r})"


def _public_url(value: str | None) -> str:
    example = "e.g. VIDAUTH_PUBLIC_URL=https://vidauth.ontrack.example.edu"
    if not value or not value.strip():
        raise ConfigError(
            f"VIDAUTH_PUBLIC_URL is not set: the service's public base URL, {example}"
        )
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"VIDAUTH_PUBLIC_URL {url!r} is not an absolute URL: {example}")
    if parts.query or parts.fragment:
        raise ConfigError(f"VIDAUTH_PUBLIC_URL {url!r} must not have a query or fragment")
    problem = check_transport(url)
    if problem:
        raise ConfigError(f"VIDAUTH_PUBLIC_URL {url!r}: {problem}")
    return url


def _trusted_proxies(value: str) -> tuple[str, ...]:
    """``10.0.0.5,10.1.0.0/16`` → the addresses and networks; ConfigError naming a bad one."""
    found = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"VIDAUTH_TRUSTED_PROXIES: {item!r} is not an address or network "
                "(e.g. 10.0.0.5 or 10.1.0.0/16)"
            ) from None
        found.append(item)
    return tuple(found)


def load_service_settings(
    settings: Settings, env_file: str | os.PathLike[str] | None = None
) -> ServiceSettings:
    """Read and check the service variables (``settings`` gives VIDAUTH_HOME for defaults)."""
    dotenv = env_file if env_file is not None else ".env"
    raw = read_env(ServiceEnv, dotenv)
    public_url = _public_url(raw.vidauth_public_url)
    path = raw.vidauth_callback_path.strip() or "/oauth/callback"
    if not path.startswith("/") or "?" in path or "#" in path:
        raise ConfigError(
            f"VIDAUTH_CALLBACK_PATH {path!r} must be a path starting with /, e.g. /oauth/callback"
        )
    return_url = (raw.vidauth_connect_return_url or "").strip() or None
    if return_url:
        problem = check_transport(return_url)
        if problem:
            raise ConfigError(f"VIDAUTH_CONNECT_RETURN_URL {return_url!r}: {problem}")
    upload_dir = (
        Path(raw.vidauth_upload_dir).expanduser()
        if raw.vidauth_upload_dir
        else settings.home / "service-uploads"
    )
    shared_dir = Path(raw.vidauth_shared_dir).expanduser() if raw.vidauth_shared_dir else None
    if shared_dir is not None and not shared_dir.is_dir():
        raise ConfigError(f"VIDAUTH_SHARED_DIR {shared_dir}: no such directory")
    positive = {
        "VIDAUTH_MAX_UPLOAD_BYTES": raw.vidauth_max_upload_bytes,
        "VIDAUTH_MAX_REQUEST_BYTES": raw.vidauth_max_request_bytes,
        "VIDAUTH_LEASE_SECONDS": raw.vidauth_lease_seconds,
        "VIDAUTH_HEARTBEAT_SECONDS": raw.vidauth_heartbeat_seconds,
        "VIDAUTH_POLL_SECONDS": raw.vidauth_poll_seconds,
        "VIDAUTH_WORKER_JOBS": raw.vidauth_worker_jobs,
        "VIDAUTH_JOB_ATTEMPTS": raw.vidauth_job_attempts,
        "VIDAUTH_WEBHOOK_ATTEMPTS": raw.vidauth_webhook_attempts,
        "VIDAUTH_WEBHOOK_TIMEOUT": raw.vidauth_webhook_timeout,
        "VIDAUTH_HEADER_TIMEOUT": raw.vidauth_header_timeout,
        "VIDAUTH_BODY_IDLE_TIMEOUT": raw.vidauth_body_idle_timeout,
        "VIDAUTH_MAX_CONNECTIONS_PER_CLIENT": raw.vidauth_max_connections_per_client,
        "VIDAUTH_TENANT_SPOOL_BYTES": raw.vidauth_tenant_spool_bytes,
        "VIDAUTH_TENANT_WAITING_UPLOADS": raw.vidauth_tenant_waiting_uploads,
        "VIDAUTH_CONSENT_WAIT_SECONDS": raw.vidauth_consent_wait_seconds,
        "VIDAUTH_PAGE_LINK_SECONDS": raw.vidauth_page_link_seconds,
        "VIDAUTH_CONNECT_SECONDS": raw.vidauth_connect_seconds,
    }
    if raw.vidauth_upload_parallel is not None:
        positive["VIDAUTH_UPLOAD_PARALLEL"] = raw.vidauth_upload_parallel
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{name} must be positive (got {value})")
    if raw.vidauth_heartbeat_seconds * 2 > raw.vidauth_lease_seconds:
        raise ConfigError(
            "VIDAUTH_HEARTBEAT_SECONDS must be at most half of VIDAUTH_LEASE_SECONDS "
            "(e.g. 10 and 30)"
        )
    try:
        bwlimit = parse_rate(raw.vidauth_upload_bwlimit or "off")
    except ValueError:
        raise ConfigError(
            f"VIDAUTH_UPLOAD_BWLIMIT {raw.vidauth_upload_bwlimit!r} is not a rate: give bytes "
            "per second, or a number with K, M or G (10M = 10 MiB/s), or off"
        ) from None
    secret = raw.vidauth_webhook_secret.get_secret_value() if raw.vidauth_webhook_secret else ""
    try:
        allow = parse_networks(raw.vidauth_webhook_allow_networks)
    except ValueError as exc:
        raise ConfigError(f"VIDAUTH_WEBHOOK_ALLOW_NETWORKS: {exc}") from None
    metrics_token = (
        raw.vidauth_metrics_token.get_secret_value().strip() if raw.vidauth_metrics_token else ""
    )
    if metrics_token and len(metrics_token) < 16:
        raise ConfigError(
            "VIDAUTH_METRICS_TOKEN is shorter than 16 characters: use a long random value, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return ServiceSettings(
        public_url=public_url,
        callback_path=path,
        connect_return_url=return_url,
        upload_dir=upload_dir,
        shared_dir=shared_dir.resolve() if shared_dir else None,
        max_upload_bytes=raw.vidauth_max_upload_bytes,
        max_request_bytes=raw.vidauth_max_request_bytes,
        webhook_secret=secret.strip() or None,
        webhook_allow_networks=allow,
        metrics_token=metrics_token or None,
        lease_seconds=raw.vidauth_lease_seconds,
        heartbeat_seconds=raw.vidauth_heartbeat_seconds,
        poll_seconds=raw.vidauth_poll_seconds,
        worker_jobs=raw.vidauth_worker_jobs,
        upload_parallel=raw.vidauth_upload_parallel,
        part_size_mib=raw.vidauth_part_size_mib,
        upload_bwlimit=bwlimit,
        token_min_validity=max(0.0, raw.vidauth_token_min_validity),
        processing_poll_max=raw.vidauth_processing_poll_max,
        job_attempts=raw.vidauth_job_attempts,
        webhook_attempts=raw.vidauth_webhook_attempts,
        webhook_timeout=raw.vidauth_webhook_timeout,
        header_timeout=raw.vidauth_header_timeout,
        body_idle_timeout=raw.vidauth_body_idle_timeout,
        max_connections_per_client=raw.vidauth_max_connections_per_client,
        trusted_proxies=_trusted_proxies(raw.vidauth_trusted_proxies),
        tenant_spool_bytes=raw.vidauth_tenant_spool_bytes,
        tenant_waiting_uploads=raw.vidauth_tenant_waiting_uploads,
        consent_wait_seconds=raw.vidauth_consent_wait_seconds,
        page_link_seconds=raw.vidauth_page_link_seconds,
        connect_seconds=raw.vidauth_connect_seconds,
    )
