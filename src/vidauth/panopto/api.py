"""High-level helpers: an engine for a signed-in :class:`~vidauth.client.Vidauth`, and
``upload_files`` for callers such as ``vidauth demo``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidauth.panopto.engine import UploadEngine, UploadEvent, UploadJob, UploadOptions, UploadResult
from vidauth.panopto.files import check_media_file
from vidauth.panopto.rest import PanoptoRest

if TYPE_CHECKING:
    from vidauth.client import Vidauth


def build_engine(
    va: Vidauth,
    options: UploadOptions | None = None,
    *,
    subject: str | None = None,
    cancel: threading.Event | None = None,
) -> UploadEngine:
    """An UploadEngine for the signed-in account (raises SignInRequired when there is none)."""
    options = options or UploadOptions()
    account = va.account(subject)
    return UploadEngine(
        va.api_client(subject, min_validity=options.token_min_validity),
        va.token_manager(subject),
        va.store.db,
        options,
        account_id=account.id,
        server=va.profile.server,
        retry_policy=va.retry_policy,
        cancel=cancel,
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
) -> list[UploadResult]:
    """Upload ``paths`` to ``folder`` (an id or an exact name); one result per path.

    Every file is checked first (UsageError before anything is created); the folder is
    resolved through the API. Per-file failures are in each result's ``error``; use
    ``result.ok``.
    """
    options = options or UploadOptions()
    options.wait = wait
    for path in paths:
        check_media_file(Path(path), force=options.force)
    with build_engine(va, options) as engine:
        resolved = engine.rest.resolve_folder(folder)
        jobs = [UploadJob(Path(p), resolved.id, title, description) for p in paths]
        return engine.upload_many(jobs, on_event)


__all__ = ["PanoptoRest", "UploadOptions", "build_engine", "upload_files"]
