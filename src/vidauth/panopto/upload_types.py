"""What the upload pieces exchange: options, a job, progress events and results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from vidauth.errors import ErrorCode, VidauthError
from vidauth.store.uploads import UploadState

#: Parts in flight at the start when adapting (see :mod:`vidauth.panopto.parallelism`).
DEFAULT_PARALLEL = 8


class UploadInterrupted(VidauthError):
    """The upload was stopped on request (cancellation hook, Ctrl-C); it can be resumed."""

    exit_code = 130
    default_code = ErrorCode.UPLOAD_INTERRUPTED


@dataclass
class UploadOptions:
    """How uploads run. Retries follow the engine's :class:`~vidauth.retry.RetryPolicy`."""

    parallel: int | None = None
    """Parts in flight, shared by every file of the engine: None adapts the number to the
    link (from 8, within 256 MiB of parts); a number pins it."""
    part_size_mib: int | None = None
    """Whole MiB, 5..25; None picks 8 MiB or what the file size needs."""
    signature: str = "auto"
    """S3 signature: ``auto`` (found per upload host and remembered), or one of ``s3``
    (SigV2), ``s3v4`` and ``unsigned``, used as it is."""
    wait: bool = True
    """Wait until Panopto has processed the upload."""
    force: bool = False
    """Accept files without a video/audio extension."""
    token_min_validity: float = 300.0
    """Seconds a token must have left before each part."""
    bwlimit: int | None = None
    """Bytes per second at most, shared by every part of every engine of the process with
    the same limit (:mod:`vidauth.panopto.pacing`); None: no limit."""
    poll_initial: float = 1.0
    poll_max: float = 10.0
    poll_timeout: float = 4 * 3600.0


@dataclass(frozen=True)
class UploadJob:
    """One file to upload to one folder."""

    path: Path
    folder_id: str
    title: str | None = None
    description: str | None = None


class EventKind(StrEnum):
    """The kinds of :class:`UploadEvent` (strings, as the JSON events print them)."""

    STARTED = "started"
    RESUMED = "resumed"
    RESTARTED = "restarted"
    PROGRESS = "progress"
    PART = "part"
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class UploadEvent:
    """Progress, delivered to the ``progress`` callback (from worker threads too).

    ``kind``: one of :class:`EventKind`. ``progress``: ``bytes_done`` counts the bytes read
    from the file for sending (parts held before included; a retried part counts its bytes
    again, not twice) and ``rate`` is the speed in bytes/s over the last seconds. ``part``:
    ``bytes_done`` is what the target holds.
    """

    kind: EventKind
    path: str
    total: int
    bytes_done: int = 0
    record_id: int | None = None
    upload_id: str | None = None
    message: str | None = None
    session_id: str | None = None
    viewer_url: str | None = None
    rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for ``--json`` event lines)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class UploadResult:
    """How one file's upload ended."""

    path: str
    state: str
    record_id: int | None = None
    upload_id: str | None = None
    session_id: str | None = None
    viewer_url: str | None = None
    message: str | None = None
    bytes_sent: int = 0
    resumed: bool = False
    already_uploaded: bool = False
    """True when nothing was sent: this very file had already completed in the folder under
    the title (the session and viewer URL are the earlier upload's)."""
    error: VidauthError | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the file reached the expected state (complete, or processing when not
        waiting)."""
        return self.error is None and self.state in (UploadState.COMPLETE, UploadState.PROCESSING)

    @property
    def exit_code(self) -> int:
        """0 when ok, else the error's exit code."""
        if self.ok:
            return 0
        return self.error.exit_code if self.error else 4

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        data = {k: v for k, v in self.__dict__.items() if k != "error"}
        data["ok"] = self.ok
        if self.error is not None:
            data["error"] = str(self.error)
            data["code"] = str(self.error.code)
        return data


Progress = Callable[[UploadEvent], None]
