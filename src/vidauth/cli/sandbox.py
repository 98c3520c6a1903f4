"""``vidauth sandbox`` and ``vidauth demo``: the local Panopto-compatible sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import vidauth.cli.common as common


def sandbox(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one).")
    ] = 9128,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    token_lifetime: Annotated[int, typer.Option(help="Access-token lifetime, seconds.")] = 3600,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="Redirect URI registered for the sandbox client (repeatable)."),
    ] = None,
    storage: Annotated[Path | None, typer.Option(help="Where uploads are stored.")] = None,
    s3_latency: Annotated[float, typer.Option(help="Added seconds per S3 request.")] = 0.0,
    s3_bandwidth: Annotated[float, typer.Option(help="S3 bandwidth cap, MB/s (0: none).")] = 0.0,
    s3_request_bandwidth: Annotated[
        float, typer.Option(help="S3 bandwidth cap per request body, MB/s (0: none).")
    ] = 0.0,
    s3_signature: Annotated[
        str,
        typer.Option(help="S3 signature accepted: any, s3v4, s3 (SigV2) or unsigned."),
    ] = "any",
    s3_lazy_complete: Annotated[
        bool,
        typer.Option(
            "--s3-lazy-complete",
            help="Complete without joining the parts (joined when first read).",
        ),
    ] = False,
    s3_max_parts_in_flight: Annotated[
        int, typer.Option(min=0, help="503 SlowDown to UploadParts beyond this many (0: none).")
    ] = 0,
    s3_allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Answer an optional S3 call (repeatable): PutObject, GetObject, HeadObject, "
            "ListParts. None by default, like the narrowest Panopto."
        ),
    ] = None,
    s3_refusal: Annotated[
        int, typer.Option(help="How a call not allowed is refused: 501, 405 or 403.")
    ] = 501,
    state1_answer: Annotated[
        str,
        typer.Option(help="The State-1 PUT's answer: empty (200, no body), 204 or object."),
    ] = "empty",
    processing_delay: Annotated[
        float, typer.Option(min=0, help="Seconds from State 1 to Complete.")
    ] = 1.0,
    id_token_names: Annotated[
        bool,
        typer.Option(
            "--id-token-names",
            help="Put names in ID tokens too (Panopto's carry none: names come from userinfo).",
        ),
    ] = False,
    strict_offline_access: Annotated[
        bool,
        typer.Option(
            "--strict-offline-access",
            help="Answer a password grant asking for offline_access with invalid_scope, as "
            "IdentityServer answers a client not allowed offline access.",
        ),
    ] = False,
) -> None:
    """Run the local Panopto-compatible sandbox (OAuth2 server, REST and upload APIs)."""
    from vidauth._urls import is_loopback_host
    from vidauth.errors import ConfigError, UsageError
    from vidauth_sandbox.full import run_sandbox_cli
    from vidauth_sandbox.panopto_api import STATE1_ANSWERS
    from vidauth_sandbox.s3 import OPTIONAL_CALLS, REFUSALS, SIGNATURE_SCHEMES

    for call in s3_allow or []:
        if call not in OPTIONAL_CALLS:
            raise UsageError(f"--s3-allow {call}: choose from {', '.join(OPTIONAL_CALLS)}")
    if s3_refusal not in REFUSALS:
        raise UsageError(f"--s3-refusal {s3_refusal}: choose 501, 405 or 403")
    if not is_loopback_host(host):
        raise ConfigError(f"--host {host}: the sandbox binds loopback addresses only")
    if state1_answer not in STATE1_ANSWERS:
        raise UsageError(f"--state1-answer {state1_answer}: choose {', '.join(STATE1_ANSWERS)}")
    if s3_signature not in ("any", *SIGNATURE_SCHEMES):
        raise UsageError(
            f"--s3-signature {s3_signature}: choose any, {', '.join(SIGNATURE_SCHEMES)}"
        )
    run_sandbox_cli(
        host=host,
        port=port,
        token_lifetime=token_lifetime,
        redirect_uris=redirect_uri or [],
        storage=storage,
        s3_latency=s3_latency,
        s3_bandwidth_mb=s3_bandwidth or None,
        s3_request_bandwidth_mb=s3_request_bandwidth or None,
        s3_signature=None if s3_signature == "any" else s3_signature,
        s3_max_parts_in_flight=s3_max_parts_in_flight or None,
        s3_lazy_complete=s3_lazy_complete,
        s3_allow=frozenset(s3_allow or []),
        s3_refusal=s3_refusal,
        state1_answer=state1_answer,
        processing_delay=processing_delay,
        id_token_names=id_token_names,
        password_offline_access=not strict_offline_access,
    )


def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's state directory.")] = False,
) -> None:
    """Sign in, show status, call the API and upload a video — all against the built-in sandbox."""
    from vidauth.cli.demo import run_demo

    run_demo(console=common.err, keep=keep)
