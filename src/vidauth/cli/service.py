"""``vidauth serve``, ``vidauth worker`` and ``vidauth apikey create|list|revoke``: the service."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vidauth.cli.common import fail, flags, settings
from vidauth.errors import UsageError, VidauthError

apikey_app = typer.Typer(help="API keys of the HTTP service.", no_args_is_help=True)


def _context(given: dict[str, Any]) -> Any:
    """The service context from the global options (``given``: as ``GlobalOptions.flags()``)."""
    from vidauth.config import load_settings
    from vidauth.service.context import ServiceContext
    from vidauth.service.settings import load_service_settings

    loaded = load_settings(**given)
    env_file = Path(given["env_file"]) if given.get("env_file") else None
    return ServiceContext(loaded, load_service_settings(loaded, env_file))


SERVE_FLAGS_ENV = "VIDAUTH_SERVE_FLAGS"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Only serve HTTP; run uploads elsewhere.")
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="HTTP processes sharing the port, so that uploads are received on several "
            "cores (the upload worker still runs once, in the first process).",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="One line per request (method, path without its query string, status).",
        ),
    ] = True,
) -> None:
    """Run the HTTP service (and, unless --no-worker, an upload worker on threads)."""
    import uvicorn

    from vidauth._serving import listen_socket
    from vidauth.logs import configure_logging, install_redaction
    from vidauth.service.ingest import prepare_upload_dir
    from vidauth.service.protection import uvicorn_options
    from vidauth.service.runner import service_app
    from vidauth.service.worker import Worker

    configure_logging(logging.INFO)
    try:
        context = _context(flags(ctx))
        context.store  # noqa: B018 - open and migrate the store before listening
        prepare_upload_dir(context.service.upload_dir)
    except VidauthError as exc:
        raise fail(exc) from None
    try:
        sock = listen_socket(host, port)
    except UsageError as exc:
        context.close()
        raise fail(exc) from None
    _announce(
        sock, host, context, worker="off (--no-worker)" if no_worker else "on", processes=processes
    )
    options: dict[str, Any] = {
        "log_level": log_level,
        "access_log": access_log,
        "timeout_keep_alive": 30,
        # header and body-idle timeouts, a cap per client, X-Forwarded-For from trusted proxies
        **uvicorn_options(context.service),
    }
    worker = None
    if processes == 1:
        config = uvicorn.Config(service_app(context, run_worker=not no_worker), **options)
    else:
        # uvicorn's supervisor spawns the processes, each building its own app (and database
        # connections) from the same global options, handed over in the environment.
        given = {k: str(v) for k, v in flags(ctx).items() if v is not None}
        os.environ[SERVE_FLAGS_ENV] = json.dumps(given)
        config = uvicorn.Config(
            "vidauth.cli.service:http_process_app", factory=True, workers=processes, **options
        )
        worker = None if no_worker else Worker(context).start()
    install_redaction()  # uvicorn.Config configured its loggers: filter their handlers too
    try:
        started = _run_uvicorn(config, sock)
    finally:
        if worker is not None:
            worker.stop()
        sock.close()
        context.close()
    if not started:
        sys.stderr.write("vidauth: the service did not start (the error is above)\n")
        raise typer.Exit(1)


def masked_database_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1] if "@" in url else url


def _announce(sock: socket.socket, host: str, ctx: Any, *, worker: str, processes: int) -> None:
    """Where the service is, before uvicorn's own lines: its address, its API docs, the
    database it uses (never a password) and the callback to register at Panopto."""
    port = sock.getsockname()[1]
    try:
        everywhere = ipaddress.ip_address(host).is_unspecified  # 0.0.0.0 or ::
    except ValueError:
        everywhere = False
    shown = f"[{host}]" if ":" in host else host
    local = ("[::1]" if ":" in host else "127.0.0.1") if everywhere else shown
    lines = [
        f"vidauth serve: listening on http://{shown}:{port}"
        + (" (every address of this machine)" if everywhere else ""),
        f"  API docs:  http://{local}:{port}/docs  (ReDoc at /redoc, OpenAPI at /openapi.json)",
        f"  database:  {masked_database_url(ctx.settings.database_url)}",
        f"  callback:  {ctx.service.callback_url}  (the API client's Redirect URL)",
        f"  worker:    {worker}" + (f"; {processes} HTTP processes" if processes > 1 else ""),
    ]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _run_uvicorn(config: Any, sock: socket.socket) -> bool:
    """Serve on ``sock`` until stopped (as ``uvicorn.run`` does); whether it started."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return True
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return bool(server.started)


def http_process_app() -> Any:
    """The app of one of ``serve --processes N``'s HTTP processes (a uvicorn factory)."""
    from vidauth.logs import configure_logging
    from vidauth.service.app import create_app
    from vidauth.service.protection import uvicorn_options

    configure_logging(logging.INFO)
    ctx = _context(json.loads(os.environ.get(SERVE_FLAGS_ENV, "{}")))
    uvicorn_options(ctx.service)  # this process's limits (the class is configured per process)
    return create_app(ctx)


def worker(
    ctx: typer.Context,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Uploads run at once (default VIDAUTH_WORKER_JOBS)."),
    ] = None,
) -> None:
    """Run an upload worker: claims jobs from the shared database until stopped."""
    from vidauth.logs import configure_logging
    from vidauth.service.worker import Worker

    configure_logging(logging.INFO)
    try:
        context = _context(flags(ctx))
        runner = Worker(context, jobs)
        context.store  # noqa: B018
    except VidauthError as exc:
        raise fail(exc) from None

    def stop(_signum: int, _frame: object) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run_forever()
    context.close()


def _key_db(ctx: typer.Context) -> Any:
    """The store's database, migrated (no service settings needed for key management)."""
    from vidauth.service.migrate import migrate_service
    from vidauth.store import Database

    chosen = settings(ctx)
    db = Database(chosen.database_url)
    migrate_service(db)
    return chosen, db


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. ontrack-production.")],
    tenant: Annotated[
        str, typer.Option(help="The tenant whose users and uploads the key may act on.")
    ] = "default",
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            help="Where the secret signing this key's webhooks is: env:NAME or file:PATH "
            "(stored encrypted; without it, VIDAUTH_WEBHOOK_SECRET signs, if set).",
        ),
    ] = None,
) -> None:
    """Create an API key and print it (alone, once): only its hash is kept."""
    from vidauth.profiles import resolve_reference
    from vidauth.service.auth import create_api_key
    from vidauth.store import TokenStore

    if not name.strip() or not tenant.strip():
        sys.stderr.write("vidauth: the key's name and tenant must not be empty\n")
        raise typer.Exit(2)
    try:
        secret = (
            resolve_reference(webhook_secret, "--webhook-secret", allow_literal=False).value
            if webhook_secret is not None
            else None
        )
        if secret is not None and len(secret) < 16:
            sys.stderr.write(
                "vidauth: --webhook-secret: the secret is shorter than 16 characters; "
                "use a long random value\n"
            )
            raise typer.Exit(2)
        chosen, db = _key_db(ctx)
        cipher = (
            TokenStore.open(db, chosen.home, chosen.secret_keys).cipher
            if secret is not None
            else None
        )
        key = create_api_key(db, name.strip(), tenant.strip(), webhook_secret=secret, cipher=cipher)
        db.dispose()
    except VidauthError as exc:
        raise fail(exc) from None
    sys.stdout.write(key + "\n")
    sys.stdout.flush()


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "never"


@apikey_app.command("list")
def apikey_list(
    ctx: typer.Context,
    revoked: Annotated[bool, typer.Option("--revoked", help="Also list revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """List the API keys: id, name, tenant, created, last used — never a key or its hash."""
    from vidauth._times import rfc3339
    from vidauth.service.auth import list_api_keys

    try:
        _settings, db = _key_db(ctx)
        keys = list_api_keys(db, include_revoked=revoked)
        db.dispose()
    except VidauthError as exc:
        raise fail(exc) from None
    if as_json:
        for k in keys:
            sys.stdout.write(
                json.dumps(
                    {
                        "id": k.id,
                        "name": k.name,
                        "tenant": k.tenant,
                        "created_at": rfc3339(k.created_at),
                        "last_used_at": (rfc3339(k.last_used_at)),
                        "revoked_at": (rfc3339(k.revoked_at)),
                        "webhook_secret": k.has_webhook_secret,
                    }
                )
                + "\n"
            )
        return
    if not keys:
        sys.stderr.write("no API keys: create one with `vidauth apikey create NAME`\n")
        return
    rows = [("ID", "NAME", "TENANT", "CREATED", "LAST USED", "WEBHOOK SECRET", "REVOKED")]
    rows += [
        (
            str(k.id),
            k.name,
            k.tenant,
            _when(k.created_at),
            _when(k.last_used_at),
            "own" if k.has_webhook_secret else "-",
            _when(k.revoked_at) if k.revoked_at else "-",
        )
        for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")


@apikey_app.command("revoke")
def apikey_revoke(
    ctx: typer.Context,
    key_id: Annotated[
        int, typer.Argument(metavar="ID", help="The key's id (vidauth apikey list).")
    ],
) -> None:
    """Revoke an API key: every instance refuses it from the next request on."""
    from vidauth.service.auth import revoke_api_key

    try:
        _settings, db = _key_db(ctx)
        info = revoke_api_key(db, key_id)
        db.dispose()
    except VidauthError as exc:
        raise fail(exc) from None
    if info is None:
        sys.stderr.write(f"vidauth: no API key {key_id}; list them with `vidauth apikey list`\n")
        raise typer.Exit(2)
    sys.stderr.write(f"revoked API key {info.id} ({info.name}, tenant {info.tenant})\n")
