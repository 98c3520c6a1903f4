"""``vidauth upload``, ``vidauth uploads [cancel]``, ``vidauth folders``, ``vidauth sessions``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import vidauth.cli.common as common
from vidauth._times import rfc3339
from vidauth.cli.common import on_interrupt, open_vidauth, will_connect
from vidauth.cli.errors import exit_code, sentence
from vidauth.cli.progress import JsonReporter, PlainReporter, RichReporter
from vidauth.errors import UsageError, VidauthError

if TYPE_CHECKING:
    from vidauth.panopto.engine import UploadEngine, UploadJob, UploadOptions
    from vidauth.panopto.upload_types import UploadResult

uploads_app = typer.Typer(
    help="Uploads recorded in the store: list them, or cancel one.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def upload(
    ctx: typer.Context,
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
    will_connect()
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.engine import UploadOptions

    limit = _check_options(signature, parallel, folder, part_size, bwlimit)
    checked = _resolve_files(files, force=force)
    options = UploadOptions(parallel=parallel, part_size_mib=part_size, wait=wait, force=force)
    tracker = _Tracker(_reporter(as_json))
    on_interrupt(ctx, "nothing was sent; run the same command again")
    with open_vidauth(ctx) as va:
        try:
            _apply_profile(options, va.profile, signature, bwlimit, limit)
            with build_engine(va, options, subject=account) as engine:
                jobs = _jobs(engine, folder, checked, title, description)
                results = _send(
                    engine,
                    jobs,
                    tracker,
                    again=again,
                    on_skipped=lambda job, record: _announce_earlier(
                        tracker.reporter, as_json, job, record
                    ),
                )
        except KeyboardInterrupt as exc:  # the engine has stopped and released its leases
            raise _interrupted(va, tracker.begun) from exc
        finally:
            tracker.reporter.close()
    _report(results, tracker.reporter, as_json)


def _check_options(
    signature: str | None,
    parallel: int | None,
    folder: str,
    part_size: int | None,
    bwlimit: str | None,
) -> int | None:
    """Refuse a bad option before anything is read or sent; the --bwlimit rate (None: none)."""
    from vidauth.panopto.files import part_size as choose_part_size
    from vidauth.panopto.signature import check_choice

    if signature is not None:
        check_choice(signature)
    if parallel is not None and not 1 <= parallel <= 64:
        raise UsageError(f"--parallel {parallel}: choose 1 to 64 parts in flight")
    if not folder.strip():
        raise UsageError("--folder is empty: give a folder id (GUID) or its exact name")
    if part_size is not None:
        choose_part_size(0, part_size)
    return _bwlimit(bwlimit, "--bwlimit") if bwlimit is not None else None


def _resolve_files(files: list[Path], *, force: bool) -> list[Path]:
    """Each file checked as a video to upload (``force``: any readable file), given once."""
    from vidauth.panopto.files import check_media_file

    checked = [check_media_file(path, force=force) for path in files]
    if len(set(checked)) != len(checked):
        raise UsageError("the same file is given twice: give each file once")
    return checked


def _reporter(as_json: bool) -> Any:
    """JSON lines with --json, bars on a terminal, else plain lines now and then."""
    if as_json:
        return JsonReporter()
    if common.err.is_terminal:
        return RichReporter(common.err)
    return PlainReporter(common.err)


@dataclass
class _Tracker:
    """Passes the engine's events to the reporter, noting each file's upload record (for the
    line after Ctrl-C)."""

    reporter: Any
    #: file → its upload record
    begun: dict[str, int] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        if event.record_id is not None:
            self.begun[event.path] = event.record_id
        self.reporter(event)


def _apply_profile(
    options: UploadOptions,
    profile: Any,
    signature: str | None,
    bwlimit: str | None,
    limit: int | None,
) -> None:
    """What the command line left open, from the profile's keys."""
    # the flag, else the profile's `signature` key, else auto; explicit ones used as is
    options.signature = signature or getattr(profile, "signature", None) or "auto"
    # the flag (even `off`), else the profile's `bwlimit` key, else none
    options.bwlimit = limit if bwlimit is not None else getattr(profile, "bwlimit", None)


def _jobs(
    engine: UploadEngine,
    folder: str,
    files: list[Path],
    title: str | None,
    description: str | None,
) -> list[UploadJob]:
    """One job per file, into ``folder`` (an id or an exact name, resolved at Panopto)."""
    from vidauth.panopto.engine import UploadJob

    target = engine.rest.resolve_folder(folder)
    return [UploadJob(path, target.id, title, description) for path in files]


def _send(
    engine: UploadEngine,
    jobs: list[UploadJob],
    report: Callable[[Any], None],
    *,
    again: bool,
    on_skipped: Callable[[Any, Any], None],
) -> list[UploadResult]:
    """Send the jobs (but not again what this folder already has), reporting progress; Ctrl-C
    tells the engine to stop before it leaves."""
    from vidauth.panopto.api import send_or_skip

    try:
        return send_or_skip(engine, jobs, report, again=again, on_skipped=on_skipped)
    except KeyboardInterrupt:
        engine.cancel_event.set()
        raise


def _report(results: list[UploadResult], reporter: Any, as_json: bool) -> None:
    """A line per file (a JSON result with --json); exit with the first failure's code."""
    for result in results:
        if as_json:
            reporter.line({"result": result.as_dict()})
            continue
        name = Path(result.path).name
        if result.already_uploaded:
            common.out.print(
                f"{name}: already uploaded (upload {result.upload_id}); session "
                f"{result.session_id} {result.viewer_url or ''}".rstrip(),
                markup=False,
                highlight=False,
            )
        elif result.ok and result.session_id:
            common.out.print(
                f"{name}: upload {result.upload_id} complete; session {result.session_id} "
                f"{result.viewer_url or ''}".rstrip(),
                markup=False,
                highlight=False,
            )
        elif result.ok:
            common.out.print(
                f"{name}: upload {result.upload_id} sent; Panopto is processing it "
                f"(check with `vidauth uploads`)",
                markup=False,
                highlight=False,
            )
        else:
            line = sentence(result.error) if result.error else result.message
            common.err.print(f"vidauth: {line}", markup=False, highlight=False)
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
    from vidauth.domain.rates import RATE_NOTATION, parse_rate

    try:
        return parse_rate(text)
    except ValueError:
        raise UsageError(f"{where} {text!r} is not a rate: give {RATE_NOTATION}") from None


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


@uploads_app.callback(invoke_without_command=True)
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

    with open_vidauth(ctx) as va:
        records = UploadStore(va.store.db).list_uploads()
        running = LeaseStore(va.store.db).live(r.id for r in records)
    rows = [_listed(r.as_dict(), running.get(r.id)) for r in records]
    if as_json:
        common.out.print_json(json.dumps({"uploads": rows}))
        return
    if not rows:  # a listing of the local store: empty is an answer (exit 0)
        common.err.print("No uploads recorded.")
        return
    from vidauth.cli.tables import Column, print_listing

    print_listing(
        common.out,
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


@uploads_app.command("cancel")
def uploads_cancel(
    ctx: typer.Context,
    upload_id: Annotated[str, typer.Argument(help="Record id or sessionUpload ID.")],
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """Cancel an upload: abort the S3 multipart upload and DELETE the sessionUpload."""
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.plan import not_found
    from vidauth.store.uploads import UploadStore

    with open_vidauth(ctx) as va:
        if UploadStore(va.store.db).find(upload_id) is None:  # say so before any sign-in check
            raise not_found(upload_id)
        with build_engine(va, subject=account) as engine:
            record = engine.cancel(engine.find(upload_id).id)
    common.err.print(
        f"Cancelled upload {record.id} ({Path(record.file_path).name}, "
        f"sessionUpload {record.session_upload_id}).",
        markup=False,
        highlight=False,
    )


def folders(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Folders whose name contains TEXT.")] = None,
    parent: Annotated[str | None, typer.Option(help="List the folders in this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """List Panopto folders (top level, children of --parent, or matching --search)."""
    from vidauth.panopto.rest import PanoptoRest

    if search is not None and parent is not None:
        raise UsageError("give --search or --parent, not both")
    with open_vidauth(ctx) as va, va.api_client(account) as api:
        rest = PanoptoRest(api)
        found = rest.search_folders(search) if search else rest.folder_children(parent)
    rows = [
        {"id": f.id, "name": f.name, "parent_id": f.parent_id, "parent": f.parent_name}
        for f in found
    ]
    if as_json:
        common.out.print_json(json.dumps({"folders": rows}))
        return
    if not rows:  # an empty answer, not an error (exit 0)
        common.err.print("No folders found.")
        return
    from vidauth.cli.tables import Column, print_listing

    print_listing(
        common.out,
        f"Panopto folders ({len(rows)})",
        [Column("name", heading=True), Column("id"), Column("parent")],
        [[row["name"] or "", row["id"] or "", row["parent"] or ""] for row in rows],
    )


def sessions(
    ctx: typer.Context,
    folder: Annotated[str, typer.Option("--folder", help="Folder id (GUID) or exact name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    account: Annotated[str | None, typer.Option(help="Account (subject or name).")] = None,
) -> None:
    """List the sessions (recordings) in a folder."""
    from vidauth.panopto.rest import PanoptoRest

    with open_vidauth(ctx) as va, va.api_client(account) as api:
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
        common.out.print_json(json.dumps({"folder": target.id, "sessions": rows}))
        return
    if not rows:  # an empty folder is an answer (exit 0)
        common.err.print(f"No sessions in {target.name}.", markup=False, highlight=False)
        return
    from vidauth.cli.tables import Column, print_listing

    print_listing(
        common.out,
        f"Sessions in {target.name} ({len(rows)})",
        [
            Column("name", heading=True),
            Column("start"),
            Column("id"),
            Column("viewer", below=True),
        ],
        [[s.name, s.start_time or "", s.id, s.viewer_url or ""] for s in found],
    )
