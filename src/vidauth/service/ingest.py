"""Receiving ``multipart/form-data`` uploads straight to disk, never whole in memory.

The body is read from ``request.stream()`` and gathered into batches of about 1 MiB; each batch
is parsed (python-multipart's streaming parser) and the file data it holds written with one
``os.writev`` on a worker thread, so the event loop stays free, the worker threads seldom trade
the GIL, and memory per upload stays around one batch. The
file is fsynced before the upload is accepted. Exceeding the size limit aborts with 413 as soon
as the limit is crossed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from vidauth.errors import ConfigError

if TYPE_CHECKING:
    from vidauth.service.jobs import JobView

BATCH_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
IOV_MAX = 1024  # at most this many buffers per writev (POSIX minimum: 16; Linux: 1024)
FORM_OVERHEAD = 1024 * 1024


class IngestError(Exception):
    """The request cannot be accepted: ``status`` and an API error code."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def prepare_upload_dir(path: Path) -> None:
    """Create the spool directory if needed; a :class:`ConfigError` unless it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-")  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise ConfigError(
            f"VIDAUTH_UPLOAD_DIR {path}: cannot write there ({exc.strerror or exc}); "
            "point it at a writable directory"
        ) from None


def remove_owned_file(job: JobView) -> None:
    """Delete a file the service received for ``job`` (and its per-job directory)."""
    if not job.owns_file:
        return
    path = Path(job.file_path)
    shutil.rmtree(path.parent, ignore_errors=True)


def safe_filename(name: str) -> str:
    """A harmless file name that keeps the extension (``../x/Week 1.mp4`` → ``Week 1.mp4``)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", base).strip(" .")
    if len(base) > 180:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 180 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else base[:180]
    return base or "video"


@dataclass
class Received:
    """The form: text fields, and the file written (if one was sent)."""

    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    file_size: int = 0
    filename: str | None = None
    sha256: str | None = None
    """The file's SHA-256 (hex), when asked for (``hash_file``)."""


class _Sink:
    """python-multipart callbacks: text fields in memory (bounded), the file to ``dest_dir``."""

    def __init__(
        self,
        dest_dir: Path,
        max_file_bytes: int,
        fields: Collection[str] | None = None,
        check_field: Callable[[str, str], str | None] | None = None,
        hash_file: bool = False,
    ) -> None:
        self.digest = hashlib.sha256() if hash_file else None
        self.dest_dir = dest_dir
        self.check_field = check_field
        self.max_file_bytes = max_file_bytes
        self.known_fields = fields
        self.received = Received()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value: bytearray | None = None
        self._fd: int | None = None
        self._pending: list[memoryview] = []
        self.ended = False

    def on_end(self) -> None:
        self.ended = True

    # header parsing
    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._value = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if not name:
            raise IngestError(400, "invalid_form", "a form part has no name")
        if self.known_fields is not None and name not in self.known_fields:
            # Refused before the file streams, so that a misspelt field (say "tittle") is
            # not silently dropped.
            raise IngestError(
                400,
                "invalid_form",
                f"unknown form field {name[:60]!r}; the fields are "
                + ", ".join(sorted(self.known_fields)),
            )
        self._name = name
        if filename is not None:
            if name != "file":
                raise IngestError(400, "invalid_form", f"unexpected file in field {name!r}")
            if self.received.file_path is not None:
                raise IngestError(400, "invalid_form", "send one file per upload")
            try:
                shown = filename.decode("utf-8")
            except UnicodeDecodeError:
                raise IngestError(
                    400, "invalid_request", "the file name is not valid UTF-8"
                ) from None
            # The title may be derived from it: checked before a byte of the file is kept.
            problem = self.check_field("file name", shown) if self.check_field else None
            if problem:
                raise IngestError(400, "invalid_request", problem)
            path = self.dest_dir / safe_filename(shown)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.received.file_path = path
            self.received.filename = shown
        else:
            if len(self.received.fields) >= MAX_FIELDS:
                raise IngestError(400, "invalid_form", "too many form fields")
            self._value = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._fd is not None:
            size = end - start
            self.received.file_size += size
            if self.received.file_size > self.max_file_bytes:
                raise IngestError(
                    413,
                    "too_large",
                    f"the file is larger than the limit of {self.max_file_bytes} bytes "
                    "(VIDAUTH_MAX_UPLOAD_BYTES)",
                )
            # Written by flush(), once per batch: one writev instead of a write per chunk.
            self._pending.append(memoryview(data)[start:end])
        elif self._value is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise IngestError(
                    413, "too_large", f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes"
                )

    def flush(self) -> None:
        """Write the file data gathered since the last flush."""
        views = [view for view in self._pending if view]
        self._pending = []
        if self.digest is not None:
            for view in views:
                self.digest.update(view)
        while views and self._fd is not None:
            written = os.writev(self._fd, views[:IOV_MAX])
            if written <= 0:  # never for a regular file with room; do not spin
                raise OSError(errno.ENOSPC, "the upload directory took no more bytes")
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]

    def on_part_end(self) -> None:
        if self._fd is not None:
            self.flush()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self.digest is not None:
                self.received.sha256 = self.digest.hexdigest()
        elif self._value is not None and self._name is not None:
            try:
                value = self._value.decode("utf-8")
            except UnicodeDecodeError:  # refused, never turned into U+FFFD
                raise IngestError(
                    400, "invalid_request", f"{self._name} is not valid UTF-8"
                ) from None
            problem = self.check_field(self._name, value) if self.check_field else None
            if problem:  # as soon as the field ends: before the file streams if it came first
                raise IngestError(400, "invalid_request", problem)
            self.received.fields[self._name] = value
            self._value = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise IngestError(415, "unsupported_media_type", "send the upload as multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary:
        raise IngestError(400, "invalid_form", "the multipart Content-Type has no boundary")
    return boundary


def _write_chunks(parser: MultipartParser, sink: _Sink, chunks: list[bytes]) -> None:
    for chunk in chunks:
        parser.write(chunk)
    sink.flush()


async def receive_form(
    request: Request,
    dest_dir: Path,
    max_file_bytes: int,
    fields: Collection[str] | None = None,
    check_field: Callable[[str, str], str | None] | None = None,
    *,
    hash_file: bool = False,
) -> Received:
    """Parse the request's multipart body, writing the ``file`` part into ``dest_dir``.

    ``fields``: the field names accepted (``file`` among them); any other is a 400.
    ``hash_file``: also compute the file's SHA-256 as it is written (``Received.sha256``).
    ``check_field(name, value)``: a reason to refuse a text field (400) as soon as it ends.
    """
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    limit = max_file_bytes + FORM_OVERHEAD
    if declared is not None:
        try:
            if int(declared) > limit:
                raise IngestError(
                    413,
                    "too_large",
                    f"the request is {declared} bytes; the limit is {max_file_bytes} bytes of "
                    "file (VIDAUTH_MAX_UPLOAD_BYTES)",
                )
        except ValueError:
            raise IngestError(400, "invalid_request", "Content-Length is not a number") from None
    sink = _Sink(dest_dir, max_file_bytes, fields, check_field, hash_file)
    callbacks = {
        name: getattr(sink, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    batch: list[bytes] = []
    pending = 0
    total = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            total += len(chunk)
            if total > limit:
                raise IngestError(
                    413,
                    "too_large",
                    f"the request is over the limit of {max_file_bytes} bytes of file "
                    "(VIDAUTH_MAX_UPLOAD_BYTES)",
                )
            batch.append(chunk)
            pending += len(chunk)
            # Until the file part begins, parse as the bytes come, so that a bad text field
            # is refused before the client sends the file.
            if pending >= BATCH_BYTES or sink.received.file_path is None:
                # Hand the chunks over as they are: joining them would copy every byte once
                # more on the event loop's thread.
                chunks, batch = batch, []
                pending = 0
                await anyio.to_thread.run_sync(_write_chunks, parser, sink, chunks)
        if batch:
            await anyio.to_thread.run_sync(_write_chunks, parser, sink, batch)
        await anyio.to_thread.run_sync(parser.finalize)
        if not sink.ended:
            raise IngestError(400, "invalid_form", "the multipart body ended early")
    except IngestError:
        raise
    except ValueError as exc:  # python-multipart's parse errors
        raise IngestError(400, "invalid_form", f"the multipart body is malformed: {exc}") from None
    finally:
        sink.close()
    return sink.received
