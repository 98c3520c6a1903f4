"""The whole sandbox: the OAuth2/OIDC server plus Panopto's REST, sessionUpload and S3 APIs."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from vidauth_sandbox.config import SandboxConfig
from vidauth_sandbox.panopto_api import PanoptoSandbox, PanoptoSandboxOptions
from vidauth_sandbox.server import SandboxServer, serve_until_interrupted


class FullSandbox(SandboxServer):
    """A SandboxServer with the Panopto API mounted; ``panopto`` holds its state and knobs."""

    panopto: PanoptoSandbox


def build_full_sandbox(
    config: SandboxConfig | None = None,
    *,
    storage_dir: Path | None = None,
    processing_delay: float = 1.0,
    s3_latency: float = 0.0,
    s3_bandwidth: float | None = None,
    s3_request_bandwidth: float | None = None,
    s3_signature: str | None = None,
    s3_max_parts_in_flight: int | None = None,
    s3_lazy_complete: bool = False,
    s3_allow: frozenset[str] | set[str] = frozenset(),
    s3_refusal: int = 501,
    state1_answer: str = "empty",
) -> FullSandbox:
    """A not-yet-started sandbox serving both the authorization server and the Panopto API.

    Uploads are streamed to ``storage_dir`` (a new temporary directory when not given).
    """
    server = FullSandbox(config)
    options = PanoptoSandboxOptions(
        storage_dir=storage_dir or Path(tempfile.mkdtemp(prefix="vidauth-sandbox-")),
        processing_delay=processing_delay,
        s3_latency=s3_latency,
        s3_bandwidth=s3_bandwidth,
        s3_request_bandwidth=s3_request_bandwidth,
        s3_signature=s3_signature,
        s3_max_parts_in_flight=s3_max_parts_in_flight,
        s3_lazy_complete=s3_lazy_complete,
        s3_allow=frozenset(s3_allow),
        s3_refusal=s3_refusal,
        state1_answer=state1_answer,
    )
    server.panopto = PanoptoSandbox(options, authenticate=server.state.authenticate_access_token)
    server.app.include_router(server.panopto.router())
    return server


def start_full_sandbox(config: SandboxConfig | None = None, **options: object) -> FullSandbox:
    """Build and start the whole sandbox (see :func:`build_full_sandbox` for the options)."""
    server = build_full_sandbox(config, **options)  # type: ignore[arg-type]
    server.start()
    return server


def run_sandbox_cli(
    *,
    host: str,
    port: int,
    token_lifetime: int,
    redirect_uris: list[str],
    storage: Path | None,
    s3_latency: float,
    s3_bandwidth_mb: float | None,
    s3_request_bandwidth_mb: float | None = None,
    s3_signature: str | None = None,
    s3_max_parts_in_flight: int | None = None,
    s3_lazy_complete: bool = False,
    s3_allow: frozenset[str] = frozenset(),
    s3_refusal: int = 501,
    state1_answer: str = "empty",
    processing_delay: float = 1.0,
    id_token_names: bool = False,
    password_offline_access: bool = True,
) -> None:
    """``vidauth sandbox``: serve the whole sandbox until Ctrl-C."""
    config = SandboxConfig(
        host=host,
        port=port,
        access_token_lifetime=token_lifetime,
        id_token_names=id_token_names,
        password_offline_access=password_offline_access,
    )
    if redirect_uris:
        config.clients = [
            dataclasses.replace(client, redirect_uris=[*client.redirect_uris, *redirect_uris])
            for client in config.clients
        ]
    server = build_full_sandbox(
        config,
        storage_dir=storage,
        s3_latency=s3_latency,
        s3_bandwidth=s3_bandwidth_mb * 1e6 if s3_bandwidth_mb else None,
        s3_request_bandwidth=s3_request_bandwidth_mb * 1e6 if s3_request_bandwidth_mb else None,
        s3_signature=s3_signature,
        s3_max_parts_in_flight=s3_max_parts_in_flight,
        s3_lazy_complete=s3_lazy_complete,
        s3_allow=s3_allow,
        s3_refusal=s3_refusal,
        state1_answer=state1_answer,
        processing_delay=processing_delay,
    )
    serve_until_interrupted(
        server,
        describe_extra=(
            "  panopto:   REST {url}/Panopto/api/v1/,"
            " uploads {url}/Panopto/PublicAPI/REST/sessionUpload",
        ),
    )
