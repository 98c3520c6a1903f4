"""``vidauth demo``: the main job end to end on the embedded sandbox — no account, no network.

It starts the sandbox in-process, runs the real sign-in (loopback listener, code exchange, ID
token validation, encrypted store) with the sandbox's scripted browser clicking Allow, shows the
status, calls the API with the token, uploads a small video it generates itself (synthetic
frames; sessionUpload, S3 multipart, UCS manifest) and waits until the sandbox has processed it,
then signs out and cleans up.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from vidauth.errors import VidauthError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(console: Console, keep: bool = False) -> None:
    """Run the demo; raises VidauthError (with its exit code) when a step fails."""
    from vidauth.client import Vidauth
    from vidauth.config import load_settings
    from vidauth_sandbox import SandboxClient, SandboxConfig
    from vidauth_sandbox.browser import complete_browser_login
    from vidauth_sandbox.full import start_full_sandbox

    workdir = Path(tempfile.mkdtemp(prefix="vidauth-demo-"))
    redirect_uri = f"http://127.0.0.1:{_free_port()}/redirect"
    client = SandboxClient(
        client_id="vidauth-demo",
        client_secret=secrets.token_urlsafe(24),
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
    )
    sandbox = start_full_sandbox(
        SandboxConfig(clients=[client]), storage_dir=workdir / "uploads", processing_delay=1.0
    )
    console.print(f"[bold]1.[/] Sandbox running at {sandbox.url} (a local Panopto look-alike)")
    settings = load_settings(
        env_file=False,
        panopto_server=sandbox.url,
        panopto_client_id=client.client_id,
        panopto_client_secret=client.client_secret,
        panopto_redirect_uri=redirect_uri,
        vidauth_home=str(workdir / "home"),
        vidauth_database_url=f"sqlite:///{workdir / 'home' / 'vidauth.db'}",
    )
    try:
        with Vidauth(settings) as va:
            _sign_in(console, va, complete_browser_login)
            _show_status(console, va)
            _call_api(console, va)
            _upload(console, va, workdir)
            va.logout(revoke=True)
            console.print(
                "[bold]6.[/] Signed out: tokens revoked at the server and deleted locally"
            )
    finally:
        sandbox.stop()
        if keep:
            console.print(f"State kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    console.print(
        "[bold green]Demo finished: sign-in, token, status, API call and upload all worked.[/]"
    )


def _sign_in(console: Console, va: object, robot: object) -> None:
    from vidauth.client import Vidauth

    assert isinstance(va, Vidauth)
    console.print(
        "[bold]2.[/] Signing in: vidauth listens on the redirect URI, then opens the "
        "link; the sandbox's scripted browser logs in as alice and clicks Allow"
    )
    failures: list[BaseException] = []

    def open_browser(url: str) -> None:
        def click_through() -> None:
            try:
                robot(url)  # type: ignore[operator]
            except BaseException as exc:
                failures.append(exc)

        threading.Thread(target=click_through, daemon=True, name="demo-browser").start()

    def announce(url: str) -> None:
        console.print(f"   link: {url}", markup=False, highlight=False, soft_wrap=True)

    try:
        account = va.login(open_browser=open_browser, announce=announce, timeout=30)
    except VidauthError:
        if failures:
            raise VidauthError(f"the sandbox browser failed: {failures[0]}") from None
        raise
    console.print(
        f"   signed in as {account.username} (subject {account.subject}); the ID "
        "token's signature, issuer, audience and nonce were verified"
    )


def _show_status(console: Console, va: object) -> None:
    from vidauth.cli.tables import Column, print_listing
    from vidauth.client import Vidauth

    assert isinstance(va, Vidauth)
    rows = []
    for a in va.store.list_accounts(va.profile.key):
        left = f"{(a.expires_at or 0) - time.time():.0f} s" if a.expires_at else "-"
        rows.append(
            [
                a.username or a.subject,
                a.server or "",
                a.scope or "",
                left,
                "yes" if a.has_refresh_token else "no",
            ]
        )
    # the same listing as `vidauth status`: the server URL is never cut
    print_listing(
        console,
        "3. vidauth status",
        [
            Column("account", heading=True),
            Column("server"),
            Column("scopes", whole=False),
            Column("expires in"),
            Column("refreshable"),
        ],
        rows,
    )


def _call_api(console: Console, va: object) -> None:
    from vidauth.client import Vidauth
    from vidauth.errors import RemoteServiceError

    assert isinstance(va, Vidauth)
    with va.api_client() as api:
        response = api.get("/Panopto/api/v1/folders/search", params={"searchQuery": "SIT"})
        if response.status_code != 200:
            raise RemoteServiceError(f"the demo's API call failed: HTTP {response.status_code}")
        names = [f["Name"] for f in response.json().get("Results", [])]
    console.print(
        f"[bold]4.[/] API call with the bearer token: GET folders/search?searchQuery=SIT"
        f" → {len(names)} folders: {', '.join(names)}"
    )


DEMO_FOLDER = "SIT102 Labs"


def _upload(console: Console, va: object, workdir: Path) -> None:
    from vidauth.client import Vidauth
    from vidauth.errors import RemoteServiceError
    from vidauth.panopto.api import upload_files
    from vidauth.panopto.engine import UploadEvent, UploadOptions
    from vidauth.panopto.synthetic import make_test_video

    assert isinstance(va, Vidauth)
    video = make_test_video(workdir / "vidauth-demo.avi", seconds=3.0)
    size_kib = video.stat().st_size / 1024
    console.print(
        f"[bold]5.[/] Uploading {video.name} ({size_kib:.0f} KiB of synthetic frames) to the "
        f'folder "{DEMO_FOLDER}": sessionUpload, S3 multipart, UCS manifest, then waiting for '
        "processing"
    )

    def show(event: UploadEvent) -> None:
        if event.kind in ("started", "uploaded", "processing"):
            detail = f" (upload id {event.upload_id})" if event.kind == "started" else ""
            console.print(f"   {event.kind}{detail}", highlight=False)

    options = UploadOptions(poll_initial=0.5, poll_max=1.0, poll_timeout=60.0)
    (result,) = upload_files(
        va,
        [video],
        DEMO_FOLDER,
        title="vidauth demo: synthetic frames & <tags> — été",
        description="Uploaded by vidauth demo",
        on_event=show,
        options=options,
    )
    if not result.ok:
        raise result.error or RemoteServiceError(f"the demo upload ended {result.state}")
    console.print(
        f"   complete: session {result.session_id}; viewer {result.viewer_url}",
        highlight=False,
    )
