"""``vidauth upload``, ``vidauth uploads [cancel]``, ``vidauth folders``, ``vidauth sessions``."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vidauth._times import rfc3339
from vidauth.cli_errors import exit_code, sentence
from vidauth.cli_tables import Column, print_listing
from vidauth.errors import UsageError, VidauthError

if TYPE_CHECKING:
    from vidauth.panopto.upload_types import UploadResult

_REGISTERED = "_vidauth_upload_registered"


def register(app: typer.Typer) -> None:
    """Add the upload and browsing commands to ``app`` (once)."""
    if getattr(app, _REGISTERED, False):
        return
    setattr(app, _REGISTERED, True)
    app.command("upload")(upload)
    app.command("folders")(folders)
    app.command("sessions")(sessions)
    uploads_app = typer.Typer(
        help="Uploads recorded in the store: list them, or cancel one.",
        invoke_without_command=True,
        no_args_is_help=False,
    )
    uploads_app.callback(invoke_without_command=True)(uploads_list)
    uploads_app.command("cancel")(uploads_cancel)
    app.add_typer(uploads_app, name="uploads")


def _cli() -> Any:
    from vidauth import cli

    return cli


# -- progress reporters ----------------------------------------------------------------------


class JsonReporter:
    """JSON lines on stdout: one per event, then one per result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        self.line({"event": event.kind, **event.as_dict()})

    def line(self, data: dict[str, Any]) -> None:
        with self._lock:
            sys.stdout.write(json.dumps(data, default=str) + "\n")
            sys.stdout.flush()

    def close(self) -> None:
        """Nothing to release."""


def human_rate(rate: float | None) -> str:
    """``12.3 MB/s`` (decimal units, as network speeds are given), or ``?`` when unknown."""
    if rate is None:
        return "?"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.1f} {unit}"
    return f"{rate:.0f} B/s"


class PlainReporter:
    """Periodic plain lines on stderr (every 5 s or 10 % per file) when not on a terminal.

    The bytes are those read from the file for sending (``progress`` events), with the speed
    over the last seconds.
    """

    def __init__(self, console: Any, every: float = 5.0) -> None:
        self.console = console
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, event: Any) -> None:
        name = Path(event.path).name
        with self._lock:
            if event.kind == "progress":
                when, tenth = self._last.get(event.path, (0.0, -1))
                now = time.monotonic()
                step = int(10 * event.bytes_done / event.total) if event.total else 10
                if now - when < self.every and step <= tenth:
                    return
                self._last[event.path] = (now, max(step, tenth))
                pct = 100 * event.bytes_done / event.total if event.total else 100
                self.console.print(
                    f"{name}: {pct:.0f}% ({event.bytes_done}/{event.total} bytes, "
                    f"{human_rate(event.rate)})",
                    markup=False,
                    highlight=False,
                )
            elif event.kind != "part":
                _describe(self.console, event)

    def close(self) -> None:
        """Nothing to release."""


class RichReporter:
    """A Rich progress bar per file on a terminal: the bytes read for sending, the speed over
    the last seconds (the engine's, not Rich's estimate from finished parts) and the time left
    at that speed."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[left]}"),
            console=console,
        )
        self.progress.start()
        self._tasks: dict[str, Any] = {}
        self._first: dict[str, tuple[float, int]] = {}  # per file: first progress (time, bytes)
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            task = self._tasks.get(event.path)
            if task is None and event.total:
                task = self._tasks[event.path] = self.progress.add_task(
                    Path(event.path).name, total=event.total, speed="?", left="-:--:--"
                )
            if task is not None and event.kind == "progress":
                self._first.setdefault(event.path, (time.monotonic(), event.bytes_done))
                self.progress.update(
                    task,
                    completed=event.bytes_done,
                    speed=human_rate(event.rate),
                    left=_time_left(event.total - event.bytes_done, event.rate),
                )
            elif task is not None and event.kind == "uploaded":
                # the finished bar shows the file's average speed, from its first byte read
                when, done = self._first.get(event.path, (time.monotonic(), event.total))
                seconds = time.monotonic() - when
                average = (
                    (event.total - done) / seconds if seconds > 0 and done < event.total else None
                )
                self.progress.update(
                    task, completed=event.total, speed=human_rate(average), left="0:00:00"
                )
            if event.kind not in ("part", "progress"):
                _describe(self.progress.console, event)

    def close(self) -> None:
        """Stop redrawing."""
        self.progress.stop()


def _time_left(left: int, rate: float | None) -> str:
    if not rate:
        return "-:--:--"
    seconds = int(left / rate)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _describe(console: Any, event: Any) -> None:
    name = Path(event.path).name
    text = {
        "started": f"{name}: upload {event.upload_id} (record {event.record_id}) started",
        "resumed": f"{name}: {event.message} (upload {event.upload_id})",
        "restarted": f"{name}: {event.message}",
        "uploaded": f"{name}: all bytes sent; telling Panopto to process it",
        "processing": f"{name}: Panopto is processing upload {event.upload_id}",
        "complete": f"{name}: complete",
    }.get(event.kind)
    if text:
        console.print(text, markup=False, highlight=False)


# -- commands --------------------------------------------------------------------------------


def upload(
    # readable=False: vidauth checks each file itself, with a one-line error (exit 2).
    files: Annotated[list[Path], typer.Argument(help="Video files to upload.", readable=False)],
    folder: Annotated[str, typer.Option("--folder", help="Folder id (GUID) or exact name.")],
    title: Annotated[
        str | None, typer.Option(help="Session title (default: the file name without extension).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Session description.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until Panopto has processed it.")
    ] = True,
    parallel: Annotated[
        int | None,
        typer.Option(help="Pin the parts in flight, shared by all files (default: adapted)."),
    ] = None,
    part_size: Annotated[
        int | None,
        typer.Option(
            "--part-size",
            help="Part size in MiB, a whole number 5..23 (largest 23 MiB: Panopto may fail "
            "parts above 25,000,000 bytes).",
        ),
    ] = None,
    bwlimit: Annotated[
        str | None,
        typer.Option(
            "--bwlimit",
            help="Bandwidth limit in bytes/s, shared by all files: 10M = 10 MiB/s (K, M, G "
            "suffixes; off = none). Default: the profile's bwlimit key.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON-lines events and results.")] = False,
    force: Annotated[bool, typer.Option(help="Upload files without a video extension.")] = False,
    signature: Annotated[
        str | None,
        typer.Option(help="S3 signature: auto (default), s3, s3v4 or unsigned."),
    ] = None,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Upload even a file that already went to this folder under this title "
            "(makes a second session).",
        ),
    ] = False,
) -> None:
    """Upload videos to a Panopto folder (parallel, resumable: rerun to resume).

    A file already uploaded to the folder under the same title is not sent again: the
    existing session is printed instead (--again uploads it anew).
    """
    from vidauth.panopto.api import build_engine, send_or_skip
    from vidauth.panopto.engine import UploadJob, UploadOptions
    from vidauth.panopto.files import check_media_file
    from vidauth.panopto.files import part_size as choose_part_size
    from vidauth.panopto.signature import check_choice

    cli = _cli()
    if signature is not None:
        check_choice(signature)
    if parallel is not None and not 1 <= parallel <= 64:
        raise UsageError(f"--parallel {parallel}: choose 1 to 64 parts in flight")
    if not folder.strip():
        raise UsageError("--folder is empty: give a folder id (GUID) or its exact name")
    if part_size is not None:
        choose_part_size(0, part_size)
    limit = _bwlimit(bwlimit, "--bwlimit") if bwlimit is not None else None
    checked = [check_media_file(path, force=force) for path in files]
    if len(set(checked)) != len(checked):
        raise UsageError("the same file is given twice: give each file once")
    options = UploadOptions(parallel=parallel, part_size_mib=part_size, wait=wait, force=force)
    reporter: Any
    if as_json:
        reporter = JsonReporter()
    elif cli.err.is_terminal:
        reporter = RichReporter(cli.err)
    else:
        reporter = PlainReporter(cli.err)
    begun: dict[str, int] = {}  # file → its upload record, for the line after Ctrl-C

    def report(event: Any) -> None:
        if event.record_id is not None:
            begun[event.path] = event.record_id
        reporter(event)

    cli.on_interrupt("nothing was sent; run the same command again")
    with cli._vidauth() as va:
        try:
            # the flag, else the profile's `signature` key, else auto; explicit ones used as is
            options.signature = signature or getattr(va.profile, "signature", None) or "auto"
            # the flag, else the profile's `bwlimit` key, else none
            options.bwlimit = limit if bwlimit is not None else getattr(va.profile, "bwlimit", None)
            with build_engine(va, options, subject=account) as engine:
                target = engine.rest.resolve_folder(folder)
                jobs = [UploadJob(path, target.id, title, description) for path in checked]
                try:
                    results = send_or_skip(
                        engine,
                        jobs,
                        report,
                        again=again,
                        on_skipped=lambda job, record: _announce_earlier(
                            reporter, as_json, job, record
                        ),
                    )
                except KeyboardInterrupt:
                    engine.cancel_event.set()
                    raise
        except KeyboardInterrupt as exc:  # the engine has stopped and released its leases
            raise _interrupted(va, begun) from exc
        finally:
            reporter.close()
    for result in results:
        if as_json:
            reporter.line({"result": result.as_dict()})
            continue
        name = Path(result.path).name
        if result.already_uploaded:
            cli.out.print(
                f"{name}: already uploaded (upload {result.upload_id}); session "
                f"{result.session_id} {result.viewer_url or ''}".rstrip(),
                markup=False,
                highlight=False,
            )
        elif result.ok and result.session_id:
            cli.out.print(
                f"{name}: upload {result.upload_id} complete; session {result.session_id} "
                f"{result.viewer_url or ''}".rstrip(),
                markup=False,
                highlight=False,
            )
        elif result.ok:
            cli.out.print(
                f"{name}: upload {result.upload_id} sent; Panopto is processing it "
                f"(check with `vidauth uploads`)",
                markup=False,
                highlight=False,
            )
        else:
            line = sentence(result.error) if result.error else result.message
            cli.err.print(f"vidauth: {line}", markup=False, highlight=False)
    codes = [_exit_code(r) for r in results if not r.ok]
    if codes:
        raise typer.Exit(codes[0])


def _interrupted(va: Any, begun: dict[str, int]) -> VidauthError:
    """The error that tells which uploads stopped where, after Ctrl-C."""
    from vidauth.panopto.upload_types import UploadInterrupted
    from vidauth.store.uploads import UploadState, UploadStore

    store = UploadStore(va.store.db)
    stopped = []
    for record_id in begun.values():
        record = store.get(record_id)
        if record is not None and record.state in UploadState.RESUMABLE:
            pct = 100 * record.bytes_done / record.file_size if record.file_size else 100
            stopped.append(f"upload {record.id} ({Path(record.file_path).name}) at {pct:.0f} %")
    if not stopped:
        return UploadInterrupted("interrupted before any upload began; nothing to resume")
    return UploadInterrupted(
        f"interrupted; paused {', '.join(stopped)}", record_id=next(iter(begun.values()))
    )


def _bwlimit(text: str, where: str) -> int | None:
    """Bytes per second from ``text`` (None: no limit), or a one-line UsageError."""
    from vidauth.panopto.pacing import parse_rate

    try:
        return parse_rate(text)
    except ValueError:
        raise UsageError(
            f"{where} {text!r} is not a rate: give bytes per second, or a number with K, M or G "
            "(10M = 10 MiB/s), or off"
        ) from None


def _announce_earlier(reporter: Any, as_json: bool, job: Any, record: Any) -> None:
    """Say that ``job``'s file is not sent again, and how to send it anyway."""
    if as_json:
        reporter.line(
            {
                "event": "already_uploaded",
                "path": str(job.path),
                "record_id": record.id,
                "upload_id": record.session_upload_id,
                "session_id": record.session_id,
                "viewer_url": record.viewer_url,
                "completed_at": rfc3339(record.updated_at),
            }
        )
        return
    reporter.console.print(
        f"{job.path.name}: uploaded to this folder as {record.title!r} on "
        f"{record.updated_at:%Y-%m-%d %H:%M} UTC (upload {record.id}); not sent again — "
        "pass --again to make a second session",
        markup=False,
        highlight=False,
    )


def _exit_code(result: UploadResult) -> int:
    return exit_code(result.error) if result.error else result.exit_code


def uploads_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List recorded uploads with their state and progress.

    ``paused``: stopped part way (Ctrl-C, a crash); the same upload command resumes it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from vidauth.store.leases import LeaseStore
    from vidauth.store.uploads import UploadStore

    cli = _cli()
    with cli._vidauth() as va:
        records = UploadStore(va.store.db).list_uploads()
        running = LeaseStore(va.store.db).live(r.id for r in records)
    rows = [_listed(r.as_dict(), running.get(r.id)) for r in records]
    if as_json:
        cli.out.print_json(json.dumps({"uploads": rows}))
        return
    if not rows:  # a listing of the local store: empty is an answer (exit 0)
        cli.err.print("No uploads recorded.")
        return
    print_listing(
        cli.out,
        "vidauth uploads",
        [
            Column("id", heading=True),
            Column("file", heading=True),
            Column("state"),
            Column("progress"),
            Column("upload id"),
            Column("session"),
            Column("viewer", below=True),
            Column("message", whole=False),
        ],
        [
            [
                str(row["id"]),
                Path(row["file"]).name,
                row["state"],
                f"{100 * row['progress']:.0f}%",
                row["upload_id"] or "-",
                row["session_id"] or "",
                row["viewer_url"] or "",
                row["message"] or "",
            ]
            for row in rows
        ],
    )


def _listed(row: dict[str, Any], lease: Any) -> dict[str, Any]:
    """A listing row: an upload that is sending parts but held by no live process is
    ``paused`` (stopped or killed; the same command resumes it); a running one names its
    process."""
    if row["state"] == "uploading":
        if lease is None:
            row["state"] = "paused"
        else:
            row["running"] = {"pid": lease.pid, "host": lease.host}
            row["message"] = row["message"] or f"running: process {lease.pid} on {lease.host}"
    return row


def uploads_cancel(
    upload_id: Annotated[str, typer.Argument(help="Record id or sessionUpload ID.")],
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """Cancel an upload: abort the S3 multipart upload and DELETE the sessionUpload."""
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.plan import not_found
    from vidauth.store.uploads import UploadStore

    cli = _cli()
    with cli._vidauth() as va:
        if UploadStore(va.store.db).find(upload_id) is None:  # say so before any sign-in check
            raise not_found(upload_id)
        with build_engine(va, subject=account) as engine:
            record = engine.cancel(engine.find(upload_id).id)
    cli.err.print(
        f"Cancelled upload {record.id} ({Path(record.file_path).name}, "
        f"sessionUpload {record.session_upload_id}).",
        markup=False,
        highlight=False,
    )


def folders(
    search: Annotated[str | None, typer.Option(help="Folders whose name contains TEXT.")] = None,
    parent: Annotated[str | None, typer.Option(help="List the folders in this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """List Panopto folders (top level, children of --parent, or matching --search)."""
    from vidauth.panopto.rest import PanoptoRest

    cli = _cli()
    if search is not None and parent is not None:
        raise UsageError("give --search or --parent, not both")
    with cli._vidauth() as va, va.api_client(account) as api:
        rest = PanoptoRest(api)
        found = rest.search_folders(search) if search else rest.folder_children(parent)
    rows = [
        {"id": f.id, "name": f.name, "parent_id": f.parent_id, "parent": f.parent_name}
        for f in found
    ]
    if as_json:
        cli.out.print_json(json.dumps({"folders": rows}))
        return
    if not rows:  # an empty answer, not an error (exit 0)
        cli.err.print("No folders found.")
        return
    print_listing(
        cli.out,
        f"Panopto folders ({len(rows)})",
        [Column("name", heading=True), Column("id"), Column("parent")],
        [[row["name"] or "", row["id"] or "", row["parent"] or ""] for row in rows],
    )


def sessions(
    folder: Annotated[str, typer.Option("--folder", help="Folder id (GUID) or exact name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """List the sessions (recordings) in a folder."""
    from vidauth.panopto.rest import PanoptoRest

    cli = _cli()
    with cli._vidauth() as va, va.api_client(account) as api:
        rest = PanoptoRest(api)
        target = rest.resolve_folder(folder)
        found = rest.folder_sessions(target.id)
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "start_time": s.start_time,
            "duration": s.duration,
            "viewer_url": s.viewer_url,
        }
        for s in found
    ]
    if as_json:
        cli.out.print_json(json.dumps({"folder": target.id, "sessions": rows}))
        return
    if not rows:  # an empty folder is an answer (exit 0)
        cli.err.print(f"No sessions in {target.name}.", markup=False, highlight=False)
        return
    print_listing(
        cli.out,
        f"Sessions in {target.name} ({len(rows)})",
        [
            Column("name", heading=True),
            Column("start"),
            Column("id"),
            Column("viewer", below=True),
        ],
        [[s.name, s.start_time or "", s.id, s.viewer_url or ""] for s in found],
    )
