"""High-level helpers: an engine for a signed-in :class:`~vidauth.client.Vidauth`, and
``upload_files`` for callers such as ``vidauth demo``.

Running an upload again never makes a second video: a file that already completed in the same
folder under the same title (same size, mtime and fingerprint, same account and server) is not
sent; its result carries the earlier session (``already_uploaded``). ``again=True`` sends it
anew on purpose."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from vidauth.http import AccessTokenSource
from vidauth.panopto.engine import UploadEngine, UploadEvent, UploadJob, UploadOptions, UploadResult
from vidauth.panopto.files import check_media_file, fingerprint
from vidauth.panopto.leases import LeaseKeeper
from vidauth.panopto.rest import PanoptoRest

if TYPE_CHECKING:
    from vidauth.client import Vidauth
    from vidauth.store.uploads import UploadRecord


@dataclass(frozen=True)
class EngineAccount:
    """The account an engine uploads as, for a caller that holds its own API client and token
    source (the service's worker) rather than the profile's signed-in account."""

    account_id: int
    api: httpx.Client
    tokens: AccessTokenSource


def build_engine(
    va: Vidauth,
    options: UploadOptions | None = None,
    *,
    subject: str | None = None,
    cancel: threading.Event | None = None,
    account: EngineAccount | None = None,
    open_file: Callable[[Path], int] | None = None,
    gate: Callable[[int, str], None] | None = None,
) -> UploadEngine:
    """An UploadEngine for the signed-in account (raises SignInRequired when there is none).

    With ``account`` the engine uploads as that account through its client instead, and holds
    no upload leases of its own (the caller's job leases fence it); ``open_file`` and ``gate``
    go to the engine as they are."""
    options = options or UploadOptions()
    if account is None:
        account_id = va.account(subject).id
        account = EngineAccount(
            account_id,
            va.api_client(subject, min_validity=options.token_min_validity),
            va.token_manager(subject),
        )
        leases: LeaseKeeper | None = LeaseKeeper(va.store.db)
    else:
        leases = None
    return UploadEngine(
        account.api,
        account.tokens,
        va.store.db,
        options,
        account_id=account.account_id,
        server=va.profile.server,
        retry_policy=va.retry_policy,
        cancel=cancel,
        open_file=open_file,
        leases=leases,
        gate=gate,
    )


def upload_files(
    va: Vidauth,
    paths: Sequence[Path],
    folder: str,
    *,
    title: str | None = None,
    description: str | None = None,
    wait: bool = True,
    on_event: Callable[[UploadEvent], None] | None = None,
    options: UploadOptions | None = None,
    again: bool = False,
) -> list[UploadResult]:
    """Upload ``paths`` to ``folder`` (an id or an exact name); one result per path.

    Every file is checked first (UsageError before anything is created); the folder is
    resolved through the API. A file already uploaded there under the same title is not sent
    again (its result has ``already_uploaded``) unless ``again``. Per-file failures are in
    each result's ``error``; use ``result.ok``.
    """
    options = options or UploadOptions()
    options.wait = wait
    for path in paths:
        check_media_file(Path(path), force=options.force)
    with build_engine(va, options) as engine:
        resolved = engine.rest.resolve_folder(folder)
        jobs = [UploadJob(Path(p), resolved.id, title, description) for p in paths]
        return send_or_skip(engine, jobs, on_event, again=again)


def completed_before(
    engine: UploadEngine, jobs: Sequence[UploadJob]
) -> dict[UploadJob, UploadRecord]:
    """The jobs whose very file (size, mtime, fingerprint) already completed in the same
    folder under the same title for the engine's account and server: job → its upload record.
    Decided from the store, per file; nothing is sent to Panopto."""
    found: dict[UploadJob, UploadRecord] = {}
    for job in jobs:
        stat = job.path.stat()
        record = engine.store.find_completed(
            account_id=engine.account_id,
            server=engine.server,
            folder_id=job.folder_id,
            title=job.title or job.path.stem,  # the title the engine gives it
            file_size=stat.st_size,
            file_mtime=stat.st_mtime,
            fingerprint=fingerprint(job.path, stat.st_size),
        )
        if record is not None:
            found[job] = record
    return found


def send_or_skip(
    engine: UploadEngine,
    jobs: Sequence[UploadJob],
    on_event: Callable[[UploadEvent], None] | None = None,
    *,
    again: bool = False,
    on_skipped: Callable[[UploadJob, UploadRecord], None] | None = None,
) -> list[UploadResult]:
    """Upload ``jobs`` with ``engine``, except those :func:`completed_before` finds (unless
    ``again``): one result per job, in order. ``on_skipped`` hears of each file not sent."""
    earlier = {} if again else completed_before(engine, jobs)
    for job, record in earlier.items():
        if on_skipped is not None:
            on_skipped(job, record)
    todo = [job for job in jobs if job not in earlier]
    sent = iter(engine.upload_many(todo, on_event) if todo else [])
    return [_already_uploaded(job, earlier[job]) if job in earlier else next(sent) for job in jobs]


def _already_uploaded(job: UploadJob, record: UploadRecord) -> UploadResult:
    return UploadResult(
        path=str(job.path),
        state=record.state,
        record_id=record.id,
        upload_id=record.session_upload_id,
        session_id=record.session_id,
        viewer_url=record.viewer_url,
        message=f"already uploaded on {record.updated_at:%Y-%m-%d %H:%M} UTC; nothing sent",
        already_uploaded=True,
    )


__all__ = [
    "EngineAccount",
    "PanoptoRest",
    "UploadOptions",
    "build_engine",
    "completed_before",
    "send_or_skip",
    "upload_files",
]
