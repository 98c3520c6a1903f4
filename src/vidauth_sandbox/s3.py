"""An S3-compatible upload target that streams to disk, as Panopto's ``/Panopto/Upload`` does.

Only the operations an uploader needs are implemented, on path-style URLs
``/Panopto/Upload/{prefix}/{key}`` (bucket ``Upload``, endpoint ``{base}/Panopto``):
CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload and
DeleteObject, and — only when ``allow`` names them, since no public client of Panopto uses them
and nobody knows whether Panopto answers them — PutObject, GetObject, HeadObject and ListParts;
otherwise they are refused as ``refusal`` says (501 NotImplemented by default, 405
MethodNotAllowed or 403 AccessDenied). Credentials are never checked. By default
every signature scheme is accepted (SigV2 ``AWS key:sig``, SigV4 and unsigned requests), as
Panopto does today; ``signature=`` makes the target accept only one scheme and refuse the others
the way S3 does (see :func:`refusal_for`), because Panopto's own sample has switched schemes.

Bodies are never held whole in memory: they are read with ``request.stream()`` into a buffer of
at most :data:`FLUSH_BYTES` which is written and hashed on a worker thread. Panopto's limits are
enforced: parts 1..10000, at most 25 MiB per part, every part but the last at least 5 MiB.

Three benchmark knobs: a fixed latency added to every request, a bandwidth cap shared by all
request bodies together (:class:`TokenBucket`), and a cap per request body (what one TCP
connection gets over a long round trip: window / RTT). One throttling knob: ``max_parts_in_flight``
answers ``503 SlowDown`` to an UploadPart that would exceed that many at once, as S3 does to a
client that asks too much of a prefix.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from vidauth_sandbox.holds import Holds
from vidauth_sandbox.ucs import safe_fromstring

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 25 * MiB
MAX_PART_NUMBER = 10_000
MAX_COMPLETE_BODY = 2 * MiB
FLUSH_BYTES = 1 * MiB
BUCKET = "Upload"
#: How many uploads' first-part arrival times the stats keep (the oldest are dropped).
FIRST_PARTS_KEPT = 1000
S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"

#: Calls no public client of Panopto's upload target makes; refused unless allowed.
OPTIONAL_CALLS = ("PutObject", "GetObject", "HeadObject", "ListParts")
#: How a call that is not allowed is refused (status → S3 code, message).
REFUSALS = {
    501: ("NotImplemented", "A header you provided implies functionality that is not implemented"),
    405: ("MethodNotAllowed", "The specified method is not allowed against this resource."),
    403: ("AccessDenied", "Access Denied"),
}

_FAULT_CODES = {500: "InternalError", 503: "SlowDown", 502: "BadGateway", 403: "AccessDenied"}

#: The signature schemes a request can use, in boto3's names (``s3`` is SigV2).
SIGNATURE_SCHEMES = ("s3v4", "s3", "unsigned")
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SLOW_DOWN_MESSAGE = "Please reduce your request rate."


class S3Error(Exception):
    """An S3 error response: HTTP status, S3 error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, resource: str = "", *, head: bool = False) -> Response:
        """The S3 XML error document (headers only for HEAD requests)."""
        request_id = uuid.uuid4().hex[:16].upper()
        headers = {"x-amz-request-id": request_id}
        if head:
            return Response(status_code=self.status, headers=headers)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
        )
        return Response(body, self.status, headers, media_type="application/xml")


class TokenBucket:
    """Caps the combined rate of every caller of :meth:`consume`, like one shared link.

    Each call reserves the next ``n / rate`` seconds of the link and sleeps until its bytes
    would have gone through, so the aggregate never exceeds ``rate`` bytes per second. Safe to
    share between threads and event loops.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0

    def reserve(self, n: int) -> float:
        """Reserve ``n`` bytes of the link; answer how long the caller must wait."""
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + n / self.rate
            return self._free_at - now

    async def consume(self, n: int) -> None:
        """Wait until ``n`` more bytes may pass."""
        delay = self.reserve(n)
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class PartInfo:
    """A stored part: its number, md5 hex (the ETag without quotes), size and file."""

    number: int
    md5: str
    size: int
    path: Path
    last_modified: datetime


@dataclass
class MultipartUpload:
    """An open multipart upload of ``key`` under ``prefix``."""

    upload_id: str
    prefix: str
    key: str
    directory: Path
    parts: dict[int, PartInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredObject:
    """A complete object (put or multipart-completed).

    With ``lazy_complete``, a completed multipart object is kept as its ``parts`` (in
    ``parts_dir``) until it is first read, as S3 does not make CompleteMultipartUpload wait for
    a copy of every byte.
    """

    key: str
    size: int
    etag: str  # quoted, as S3 sends it
    last_modified: datetime
    parts: tuple[Path, ...] = ()
    parts_dir: Path | None = None


def check_key(key: str) -> str:
    """Refuse keys that could escape the upload's directory; answer the key unchanged."""
    parts = key.split("/")
    if (
        not key
        or len(key) > 1024
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise S3Error(400, "InvalidArgument", "object key not accepted by the sandbox")
    return key


def request_signature(request: Request) -> str:
    """Which scheme signed ``request``: ``s3v4``, ``s3`` (SigV2), ``unsigned`` or ``other``.

    Only the shape is read (header ``Authorization: AWS4-HMAC-SHA256 Credential=…`` or
    ``AWS key:signature``, or the presigned-URL query parameters); nothing is verified.
    """
    authorization = request.headers.get("authorization", "").strip()
    query = request.query_params
    if authorization.startswith(SIGV4_ALGORITHM + " ") or query.get("X-Amz-Algorithm") == (
        SIGV4_ALGORITHM
    ):
        return "s3v4"
    if authorization.startswith("AWS ") or ("AWSAccessKeyId" in query and "Signature" in query):
        return "s3"
    return "other" if authorization else "unsigned"


def refusal_for(accepted: str, used: str) -> S3Error | None:
    """The error S3 answers when a target that accepts only ``accepted`` gets ``used``.

    A SigV2 request where SigV4 is required: ``400 InvalidRequest`` naming the mechanism; an
    unsigned request where a signature is required: ``403 AccessDenied``; any other signature
    of the wrong version: ``403 SignatureDoesNotMatch``; an authorization header of no S3
    scheme at all: ``400 InvalidArgument``. None when the request is acceptable.
    """
    if used == accepted:
        return None
    if used == "other":
        return S3Error(400, "InvalidArgument", "Unsupported Authorization Type")
    if accepted == "s3v4" and used == "s3":
        return S3Error(
            400,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. "
            f"Please use {SIGV4_ALGORITHM}.",
        )
    if used == "unsigned":
        return S3Error(403, "AccessDenied", "Access Denied")
    return S3Error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


class S3Storage:
    """On-disk objects per prefix plus the open multipart uploads; thread-safe.

    Layout under ``root``: ``{prefix}/{key}`` holds complete objects, ``.multipart/{id}/`` the
    parts of open multipart uploads and ``.tmp/`` files being received.
    """

    def __init__(self, root: Path, *, lazy_complete: bool = False) -> None:
        self.root = root
        #: Join a completed upload's parts when the object is first read instead of before
        #: CompleteMultipartUpload answers (S3 does not make Complete wait for a copy).
        self.lazy_complete = lazy_complete
        self._lock = threading.Lock()
        self._uploads: dict[str, MultipartUpload] = {}
        self._completed: dict[str, tuple[str, str, str]] = {}  # id -> (prefix, key, etag)
        self._objects: dict[str, dict[str, StoredObject]] = {}
        self._materializing = threading.Lock()
        for sub in (".multipart", ".tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def _path(self, prefix: str, key: str) -> Path:
        return self.root / prefix / check_key(key)

    def object_path(self, prefix: str, key: str) -> Path:
        """Where object ``key`` of ``prefix`` lives (whether or not it exists yet); a completed
        multipart object is concatenated there first (blocking)."""
        with self._lock:
            found = self._objects.get(prefix, {}).get(key)
        if found is not None and found.parts:
            self._materialize(prefix, found)
        return self._path(prefix, key)

    def _materialize(self, prefix: str, found: StoredObject) -> None:
        with self._materializing:
            with self._lock:
                current = self._objects.get(prefix, {}).get(found.key)
            if current is not found:  # done meanwhile, replaced or deleted
                return
            temp = self.temp_path()
            try:
                with temp.open("wb", buffering=0) as out:
                    for part in found.parts:
                        with part.open("rb") as src:
                            _copy(src, out)
                target = self._path(prefix, found.key)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            with self._lock:
                if self._objects.get(prefix, {}).get(found.key) is found:
                    self._objects[prefix][found.key] = StoredObject(
                        found.key, found.size, found.etag, found.last_modified
                    )
            if found.parts_dir is not None:
                shutil.rmtree(found.parts_dir, ignore_errors=True)

    @staticmethod
    def _drop_parts(found: StoredObject | None) -> None:
        if found is not None and found.parts_dir is not None:
            shutil.rmtree(found.parts_dir, ignore_errors=True)

    def temp_path(self) -> Path:
        """A fresh file name on the same file system, for a body being received."""
        return self.root / ".tmp" / uuid.uuid4().hex

    def objects(self, prefix: str) -> dict[str, StoredObject]:
        """A snapshot of the complete objects under ``prefix``."""
        with self._lock:
            return dict(self._objects.get(prefix, {}))

    def get_object(self, prefix: str, key: str) -> StoredObject:
        """The object, or S3 ``NoSuchKey``."""
        with self._lock:
            found = self._objects.get(prefix, {}).get(key)
        if found is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        return found

    def commit_object(self, prefix: str, key: str, temp: Path, size: int, etag: str) -> None:
        """Move a received file into place as object ``key`` (replacing any older one)."""
        target = self._path(prefix, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        with self._lock:
            replaced = self._objects.setdefault(prefix, {}).get(key)
            self._objects[prefix][key] = StoredObject(key, size, etag, datetime.now(UTC))
        self._drop_parts(replaced)

    def delete_object(self, prefix: str, key: str) -> None:
        """Remove an object if it exists (S3 answers 204 either way)."""
        with self._lock:
            found = self._objects.get(prefix, {}).pop(key, None)
        self._drop_parts(found)
        self._path(prefix, key).unlink(missing_ok=True)

    def create_multipart(self, prefix: str, key: str) -> str:
        """Open a multipart upload; answer its UploadId."""
        check_key(key)
        upload_id = uuid.uuid4().hex
        directory = self.root / ".multipart" / upload_id
        directory.mkdir(parents=True)
        with self._lock:
            self._uploads[upload_id] = MultipartUpload(upload_id, prefix, key, directory)
        return upload_id

    def get_multipart(self, prefix: str, key: str, upload_id: str) -> MultipartUpload:
        """The open upload with this id for this prefix and key, or S3 ``NoSuchUpload``."""
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.prefix != prefix or upload.key != key:
            raise S3Error(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
            )
        return upload

    def parts(self, upload: MultipartUpload) -> list[PartInfo]:
        """The upload's parts in part-number order."""
        with self._lock:
            return [upload.parts[n] for n in sorted(upload.parts)]

    def commit_part(
        self, upload: MultipartUpload, number: int, temp: Path, md5: str, size: int
    ) -> None:
        """Move a received part into place (a re-sent part number replaces the old one)."""
        target = upload.directory / f"{number:05d}.part"
        with self._lock:
            if self._uploads.get(upload.upload_id) is not upload:
                temp.unlink(missing_ok=True)
                raise S3Error(404, "NoSuchUpload", "The upload was aborted while receiving.")
            os.replace(temp, target)
            upload.parts[number] = PartInfo(number, md5, size, target, datetime.now(UTC))

    def take_for_completion(
        self, upload: MultipartUpload, wanted: list[tuple[int, str]]
    ) -> list[PartInfo]:
        """Check a CompleteMultipartUpload part list and detach the upload for assembly."""
        if not wanted:
            raise S3Error(400, "MalformedXML", "The part list is empty.")
        numbers = [n for n, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise S3Error(400, "InvalidPartOrder", "Part numbers must be in ascending order.")
        with self._lock:
            chosen: list[PartInfo] = []
            for number, etag in wanted:
                part = upload.parts.get(number)
                if part is None or part.md5 != etag.strip().strip('"').lower():
                    raise S3Error(
                        400,
                        "InvalidPart",
                        f"Part {number} was not found or its ETag does not match.",
                    )
                chosen.append(part)
            for part in chosen[:-1]:
                if part.size < MIN_PART_SIZE:
                    raise S3Error(
                        400,
                        "EntityTooSmall",
                        f"Part {part.number} is {part.size} bytes; every part but the last "
                        f"must be at least {MIN_PART_SIZE} bytes.",
                    )
            if self._uploads.pop(upload.upload_id, None) is None:
                raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.")
        return chosen

    def assemble(self, upload: MultipartUpload, parts: list[PartInfo]) -> str:
        """Make the parts the object (joined now, or when first read with ``lazy_complete``;
        blocking: run on a thread); answer its ETag."""
        digests = b"".join(bytes.fromhex(p.md5) for p in parts)
        etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'
        size = sum(p.size for p in parts)
        unused = {p.path for p in upload.parts.values()} - {p.path for p in parts}
        for path in unused:
            path.unlink(missing_ok=True)
        stored = StoredObject(
            upload.key,
            size,
            etag,
            datetime.now(UTC),
            parts=tuple(p.path for p in parts),
            parts_dir=upload.directory,
        )
        with self._lock:
            replaced = self._objects.setdefault(upload.prefix, {}).get(upload.key)
            self._objects[upload.prefix][upload.key] = stored
            self._completed[upload.upload_id] = (upload.prefix, upload.key, etag)
        self._drop_parts(replaced)
        self._path(upload.prefix, upload.key).unlink(missing_ok=True)  # an older object's bytes
        if not self.lazy_complete:
            self._materialize(upload.prefix, stored)
        return etag

    def completed_etag(self, prefix: str, key: str, upload_id: str) -> str | None:
        """The ETag of an already completed upload (so a retried Complete succeeds)."""
        with self._lock:
            done = self._completed.get(upload_id)
        return done[2] if done and done[:2] == (prefix, key) else None

    def abort(self, upload: MultipartUpload) -> None:
        """Drop an open upload and its parts."""
        with self._lock:
            self._uploads.pop(upload.upload_id, None)
        shutil.rmtree(upload.directory, ignore_errors=True)

    def delete_prefix(self, prefix: str) -> None:
        """Abort every open upload under ``prefix`` and delete its objects (blocking)."""
        with self._lock:
            doomed = [u for u in self._uploads.values() if u.prefix == prefix]
            for upload in doomed:
                del self._uploads[upload.upload_id]
            objects = self._objects.pop(prefix, {})
        for found in objects.values():
            self._drop_parts(found)
        for upload in doomed:
            shutil.rmtree(upload.directory, ignore_errors=True)
        shutil.rmtree(self.root / prefix, ignore_errors=True)


def _copy(src: BinaryIO, out: BinaryIO) -> None:
    """Append ``src`` to ``out`` (unbuffered): in the kernel where it can (copy_file_range)."""
    start = out.tell()
    try:
        left = os.fstat(src.fileno()).st_size
        while left > 0:
            copied = os.copy_file_range(src.fileno(), out.fileno(), left)
            if copied == 0:
                break
            left -= copied
        if left == 0:
            return
    except OSError:
        pass
    src.seek(0)
    out.seek(start)
    out.truncate()
    shutil.copyfileobj(src, out, FLUSH_BYTES)


def _write_chunk(out: BinaryIO, digest: hashlib._Hash, data: bytearray) -> None:
    out.write(data)
    digest.update(data)


def _http_date(moment: datetime) -> str:
    return formatdate(moment.timestamp(), usegmt=True)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml(root: str, body: str, status: int = 200) -> Response:
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_XMLNS}">{body}</{root}>'
    return Response(document, status, media_type="application/xml")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class S3Target:
    """The FastAPI routes of the S3 upload target.

    ``check_prefix(prefix, write)`` decides whether a key prefix (a sessionUpload ID) may be
    used: it raises :class:`S3Error` (404 unknown, 409 not uploading) or returns. Writes need
    the sessionUpload in State 0; reads only need it to exist.
    """

    def __init__(
        self,
        storage: S3Storage,
        check_prefix: Callable[[str, bool], None],
        *,
        latency: float = 0.0,
        bandwidth: float | None = None,
        request_bandwidth: float | None = None,
        signature: str | None = None,
        max_parts_in_flight: int | None = None,
        allow: frozenset[str] | set[str] = frozenset(),
        refusal: int = 501,
    ) -> None:
        if signature is not None and signature not in SIGNATURE_SCHEMES:
            raise ValueError(f"signature must be one of {', '.join(SIGNATURE_SCHEMES)} or None")
        if max_parts_in_flight is not None and max_parts_in_flight < 1:
            raise ValueError("max_parts_in_flight must be at least 1")
        unknown = set(allow) - set(OPTIONAL_CALLS)
        if unknown:
            raise ValueError(f"allow: unknown {sorted(unknown)}; choose from {OPTIONAL_CALLS}")
        if refusal not in REFUSALS:
            raise ValueError(f"refusal must be one of {sorted(REFUSALS)}")
        self.storage = storage
        self.check_prefix = check_prefix
        #: The optional calls this target answers (read per request: a test may change it).
        #: Strict by default, like the narrowest Panopto: none of them.
        self.allow: set[str] = set(allow)
        #: How a call not allowed is refused: 501 NotImplemented, 405 MethodNotAllowed or 403
        #: AccessDenied.
        self.refusal = refusal
        #: Requests refused because their call is not allowed, per call.
        self.refused_calls: dict[str, int] = {}
        #: Requests a test holds at a step boundary (:mod:`vidauth_sandbox.holds`).
        self.holds = Holds()
        self.latency = latency
        self.bucket = TokenBucket(bandwidth) if bandwidth else None
        #: Bytes per second one request body may use at most (None: no cap).
        self.request_bandwidth = request_bandwidth
        #: The only signature scheme accepted, or None for any (Panopto today).
        self.signature = signature
        #: UploadParts beyond this many at once are answered 503 SlowDown (None: no limit).
        self.max_parts_in_flight = max_parts_in_flight
        self._lock = threading.Lock()
        self._faults: deque[int] = deque()
        self.bytes_received = 0
        self.upload_part_requests = 0
        #: Requests seen per scheme (``s3v4``, ``s3``, ``unsigned``, ``other``).
        self.requests_by_signature: dict[str, int] = {}
        #: Requests refused for their signature, per scheme they used.
        self.signature_refusals: dict[str, int] = {}
        #: UploadParts refused with SlowDown for exceeding ``max_parts_in_flight``.
        self.slow_downs = 0
        self.parts_in_flight = 0
        #: The most UploadParts ever received at once (refused ones not counted).
        self.peak_parts_in_flight = 0
        #: When the first UploadPart of each upload (its prefix, the sessionUpload ID) arrived,
        #: in seconds since the epoch, for the newest FIRST_PARTS_KEPT uploads: how soon a
        #: client's first part reaches the target, as a benchmark reads it.
        self.first_part_arrivals: OrderedDict[str, float] = OrderedDict()

    def fail_parts(self, count: int, status: int = 500) -> None:
        """Make the next ``count`` UploadPart requests fail with ``status``, storing nothing."""
        with self._lock:
            self._faults.extend([status] * count)

    def _next_fault(self) -> int | None:
        with self._lock:
            self.upload_part_requests += 1
            return self._faults.popleft() if self._faults else None

    def _note_part_arrival(self, prefix: str) -> None:
        arrived = time.time()
        with self._lock:
            if prefix not in self.first_part_arrivals:
                self.first_part_arrivals[prefix] = arrived
                while len(self.first_part_arrivals) > FIRST_PARTS_KEPT:
                    self.first_part_arrivals.popitem(last=False)

    def stats(self) -> dict[str, object]:
        """Counters of the target, as JSON (``GET /sandbox/s3/stats``)."""
        with self._lock:
            return {
                "signature": self.signature or "any",
                "max_parts_in_flight": self.max_parts_in_flight,
                "requests_by_signature": dict(self.requests_by_signature),
                "signature_refusals": dict(self.signature_refusals),
                "upload_part_requests": self.upload_part_requests,
                "bytes_received": self.bytes_received,
                "slow_downs": self.slow_downs,
                "allow": sorted(self.allow),
                "refused_calls": dict(self.refused_calls),
                "peak_parts_in_flight": self.peak_parts_in_flight,
                "first_part_arrivals": dict(self.first_part_arrivals),
            }

    def _check_signature(self, request: Request) -> None:
        used = request_signature(request)
        with self._lock:
            self.requests_by_signature[used] = self.requests_by_signature.get(used, 0) + 1
        if self.signature is None:
            return
        refusal = refusal_for(self.signature, used)
        if refusal is not None:
            with self._lock:
                self.signature_refusals[used] = self.signature_refusals.get(used, 0) + 1
            raise refusal

    @contextlib.contextmanager
    def _part_slot(self) -> Iterator[bool]:
        """Count an UploadPart in flight from its arrival to its answer; yields False (and
        counts a SlowDown) when it would exceed ``max_parts_in_flight``."""
        with self._lock:
            limit = self.max_parts_in_flight
            admitted = limit is None or self.parts_in_flight < limit
            if admitted:
                self.parts_in_flight += 1
                self.peak_parts_in_flight = max(self.peak_parts_in_flight, self.parts_in_flight)
            else:
                self.slow_downs += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self.parts_in_flight -= 1

    # -- bodies -----------------------------------------------------------------------------

    @staticmethod
    def _check_encoding(request: Request) -> None:
        sha = request.headers.get("x-amz-content-sha256", "")
        if sha.startswith("STREAMING-") or "aws-chunked" in request.headers.get(
            "content-encoding", ""
        ):
            raise S3Error(
                400,
                "NotImplemented",
                "aws-chunked bodies are not supported (as on Panopto); configure boto3 with "
                "request_checksum_calculation='when_required'.",
            )

    @staticmethod
    def _declared_length(request: Request) -> int | None:
        value = request.headers.get("content-length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            raise S3Error(400, "InvalidArgument", "bad Content-Length") from None

    @staticmethod
    def _expected_md5(request: Request) -> bytes | None:
        value = request.headers.get("content-md5")
        if value is None:
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        return digest

    @staticmethod
    def _chunks(request: Request) -> AsyncIterator[bytes]:
        """The request body's chunk iterator, one per request, so reading can resume."""
        chunks: AsyncIterator[bytes] | None = getattr(request.state, "body_chunks", None)
        if chunks is None:
            chunks = request.state.body_chunks = request.stream()
        return chunks

    @staticmethod
    def _has_unread_body(request: Request) -> bool:
        if getattr(request.state, "body_done", False):
            return False
        length = request.headers.get("content-length")
        return "transfer-encoding" in request.headers or (length not in (None, "0"))

    async def _finish_body(self, request: Request, response: Response) -> None:
        """Before answering an error, leave the connection usable.

        A client waiting on ``Expect: 100-continue`` never got the go-ahead and will not send
        the body, so the connection is closed (the server cannot know what comes next).
        Otherwise the rest of the body is read and discarded, so the client can read the
        answer instead of failing on a reset while it is still sending.
        """
        if not self._has_unread_body(request):
            return
        if request.headers.get("expect", "").lower() == "100-continue":
            response.headers["Connection"] = "close"
            return
        async for _chunk in self._chunks(request):
            pass

    async def _receive(self, request: Request, limit: int | None) -> tuple[Path, str, int]:
        """Stream the body to a temporary file; answer (file, md5 hex, size)."""
        self._check_encoding(request)
        expected_md5 = self._expected_md5(request)
        temp = self.storage.temp_path()
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        buffer = bytearray()
        own = TokenBucket(self.request_bandwidth) if self.request_bandwidth else None
        try:
            with temp.open("wb") as out:
                async for chunk in self._chunks(request):
                    if not chunk:
                        continue
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise S3Error(
                            400,
                            "EntityTooLarge",
                            f"Your proposed upload exceeds the maximum size of {limit} bytes.",
                        )
                    if own is not None:
                        await own.consume(len(chunk))
                    if self.bucket is not None:
                        await self.bucket.consume(len(chunk))
                    buffer += chunk
                    if len(buffer) >= FLUSH_BYTES:
                        data, buffer = buffer, bytearray()
                        await anyio.to_thread.run_sync(_write_chunk, out, digest, data)
                if buffer:
                    await anyio.to_thread.run_sync(_write_chunk, out, digest, buffer)
            request.state.body_done = True
            if expected_md5 is not None and digest.digest() != expected_md5:
                raise S3Error(
                    400,
                    "BadDigest",
                    "The Content-MD5 you specified did not match what we received.",
                )
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp, digest.hexdigest(), size

    async def _read_small(self, request: Request, limit: int) -> bytes:
        """Read a small XML body (at most ``limit`` bytes)."""
        self._check_encoding(request)
        data = bytearray()
        async for chunk in self._chunks(request):
            data += chunk
            if len(data) > limit:
                raise S3Error(400, "MaxMessageLengthExceeded", "The request body is too large.")
        request.state.body_done = True
        return bytes(data)

    # -- operations -------------------------------------------------------------------------

    async def create_multipart(self, prefix: str, key: str) -> Response:
        """CreateMultipartUpload: ``POST ?uploads``."""
        self.check_prefix(prefix, True)
        upload_id = self.storage.create_multipart(prefix, key)
        return _xml(
            "InitiateMultipartUploadResult",
            f"<Bucket>{BUCKET}</Bucket><Key>{escape(prefix + '/' + key)}</Key>"
            f"<UploadId>{upload_id}</UploadId>",
        )

    async def upload_part(self, request: Request, prefix: str, key: str) -> Response:
        """UploadPart: ``PUT ?partNumber=N&uploadId=U``; answers the part's md5 as ETag."""
        fault = self._next_fault()
        if fault is not None:
            code = _FAULT_CODES.get(fault, "InjectedFault")
            message = SLOW_DOWN_MESSAGE if code == "SlowDown" else "Injected failure."
            raise S3Error(fault, code, f"{message} (sandbox fail_parts)")
        try:
            number = int(request.query_params["partNumber"])
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PART_NUMBER:
            raise S3Error(
                400,
                "InvalidArgument",
                f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive.",
            )
        self.check_prefix(prefix, True)
        upload = self.storage.get_multipart(prefix, key, request.query_params["uploadId"])
        declared = self._declared_length(request)
        if declared is not None and declared > MAX_PART_SIZE:
            raise S3Error(
                400,
                "EntityTooLarge",
                f"Part of {declared} bytes refused: Panopto accepts parts up to "
                f"{MAX_PART_SIZE} bytes.",
            )
        temp, md5, size = await self._receive(request, MAX_PART_SIZE)
        self.storage.commit_part(upload, number, temp, md5, size)
        with self._lock:
            self.bytes_received += size
        return Response(status_code=200, headers={"ETag": f'"{md5}"'})

    async def list_parts(self, request: Request, prefix: str, key: str) -> Response:
        """ListParts: ``GET ?uploadId=U`` with ``max-parts`` / ``part-number-marker`` paging."""
        self.check_prefix(prefix, False)
        upload_id = request.query_params["uploadId"]
        upload = self.storage.get_multipart(prefix, key, upload_id)
        try:
            max_parts = int(request.query_params.get("max-parts", "1000"))
            marker = int(request.query_params.get("part-number-marker", "0") or "0")
        except ValueError:
            raise S3Error(400, "InvalidArgument", "bad max-parts or part-number-marker") from None
        max_parts = max(0, min(max_parts, 1000))
        remaining = [p for p in self.storage.parts(upload) if p.number > marker]
        page = remaining[:max_parts]
        truncated = len(remaining) > len(page)
        next_marker = page[-1].number if page else marker
        parts_xml = "".join(
            f"<Part><PartNumber>{p.number}</PartNumber>"
            f"<LastModified>{_iso(p.last_modified)}</LastModified>"
            f"<ETag>&quot;{p.md5}&quot;</ETag><Size>{p.size}</Size></Part>"
            for p in page
        )
        return _xml(
            "ListPartsResult",
            f"<Bucket>{BUCKET}</Bucket><Key>{escape(prefix + '/' + key)}</Key>"
            f"<UploadId>{upload_id}</UploadId>"
            f"<PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{next_marker}</NextPartNumberMarker>"
            f"<MaxParts>{max_parts}</MaxParts>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"<StorageClass>STANDARD</StorageClass>{parts_xml}",
        )

    async def complete(self, request: Request, prefix: str, key: str) -> Response:
        """CompleteMultipartUpload: ``POST ?uploadId=U`` with the part list."""
        upload_id = request.query_params["uploadId"]
        body = await self._read_small(request, MAX_COMPLETE_BODY)
        done = self.storage.completed_etag(prefix, key, upload_id)
        if done is None:
            self.check_prefix(prefix, True)
            upload = self.storage.get_multipart(prefix, key, upload_id)
            parts = self.storage.take_for_completion(upload, self._parse_part_list(body))
            done = await anyio.to_thread.run_sync(self.storage.assemble, upload, parts)
        base = str(request.base_url).rstrip("/")
        return _xml(
            "CompleteMultipartUploadResult",
            f"<Location>{escape(base)}/Panopto/{BUCKET}/{escape(prefix + '/' + key)}</Location>"
            f"<Bucket>{BUCKET}</Bucket><Key>{escape(prefix + '/' + key)}</Key>"
            f"<ETag>{escape(done, {chr(34): '&quot;'})}</ETag>",
        )

    @staticmethod
    def _parse_part_list(body: bytes) -> list[tuple[int, str]]:
        try:
            root = safe_fromstring(body)
        except ValueError as exc:
            raise S3Error(
                400, "MalformedXML", f"The XML you provided was not well-formed: {exc}"
            ) from None
        if _local(root.tag) != "CompleteMultipartUpload":
            raise S3Error(400, "MalformedXML", "Expected CompleteMultipartUpload.")
        wanted: list[tuple[int, str]] = []
        for part in root:
            if _local(part.tag) != "Part":
                continue
            fields = {_local(child.tag): (child.text or "").strip() for child in part}
            try:
                wanted.append((int(fields["PartNumber"]), fields["ETag"]))
            except (KeyError, ValueError):
                raise S3Error(400, "MalformedXML", "Each Part needs PartNumber and ETag.") from None
        return wanted

    async def abort(self, request: Request, prefix: str, key: str) -> Response:
        """AbortMultipartUpload: ``DELETE ?uploadId=U`` → 204."""
        self.check_prefix(prefix, False)
        upload = self.storage.get_multipart(prefix, key, request.query_params["uploadId"])
        await anyio.to_thread.run_sync(self.storage.abort, upload)
        return Response(status_code=204)

    async def put_object(self, request: Request, prefix: str, key: str) -> Response:
        """PutObject: ``PUT`` without multipart parameters (the manifest, small media)."""
        self.check_prefix(prefix, True)
        check_key(key)
        if "x-amz-copy-source" in request.headers:
            raise S3Error(501, "NotImplemented", "CopyObject is not supported by the sandbox.")
        temp, md5, size = await self._receive(request, None)
        try:
            self.check_prefix(prefix, True)  # it may have been cancelled meanwhile
            self.storage.commit_object(prefix, key, temp, size, f'"{md5}"')
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Response(status_code=200, headers={"ETag": f'"{md5}"'})

    async def get_object(self, prefix: str, key: str) -> Response:
        """GetObject / HeadObject: the stored file, streamed."""
        self.check_prefix(prefix, False)
        found = self.storage.get_object(prefix, key)
        path = await anyio.to_thread.run_sync(self.storage.object_path, prefix, key)
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers={"ETag": found.etag, "Last-Modified": _http_date(found.last_modified)},
        )

    async def delete_object(self, prefix: str, key: str) -> Response:
        """DeleteObject → 204."""
        self.check_prefix(prefix, True)
        check_key(key)
        self.storage.delete_object(prefix, key)
        return Response(status_code=204)

    def _check_allowed(self, call: str) -> None:
        if call in self.allow:
            return
        with self._lock:
            self.refused_calls[call] = self.refused_calls.get(call, 0) + 1
        code, message = REFUSALS[self.refusal]
        raise S3Error(self.refusal, code, message)

    # -- routing ----------------------------------------------------------------------------

    async def dispatch(self, request: Request, prefix: str, key: str) -> Response:
        """Pick the S3 operation from method and query, answering S3 XML errors."""
        query = request.query_params
        method = request.method
        is_part = method == "PUT" and "uploadId" in query and "partNumber" in query
        if is_part:
            self._note_part_arrival(prefix)
        with self._part_slot() if is_part else contextlib.nullcontext(True) as admitted:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            return await self._dispatch(request, prefix, key, admitted)

    async def _dispatch(self, request: Request, prefix: str, key: str, admitted: bool) -> Response:
        query = request.query_params
        method = request.method
        try:
            if not admitted:
                raise S3Error(503, "SlowDown", SLOW_DOWN_MESSAGE)
            self._check_signature(request)
            check_key(key)
            if method == "POST" and "uploads" in query:
                await self.holds.at("CreateMultipartUpload", key)
                return await self.create_multipart(prefix, key)
            if method == "POST" and "uploadId" in query:
                await self.holds.at("CompleteMultipartUpload", key)
                return await self.complete(request, prefix, key)
            if method == "PUT" and "uploadId" in query and "partNumber" in query:
                await self.holds.at("UploadPart", key)
                return await self.upload_part(request, prefix, key)
            if method == "PUT" and not ({"uploadId", "partNumber"} & set(query)):
                self._check_allowed("PutObject")
                return await self.put_object(request, prefix, key)
            if method == "GET" and "uploadId" in query:
                self._check_allowed("ListParts")
                return await self.list_parts(request, prefix, key)
            if method in ("GET", "HEAD") and not ({"uploadId", "uploads"} & set(query)):
                self._check_allowed("GetObject" if method == "GET" else "HeadObject")
                return await self.get_object(prefix, key)
            if method == "DELETE" and "uploadId" in query:
                await self.holds.at("AbortMultipartUpload", key)
                return await self.abort(request, prefix, key)
            if method == "DELETE":
                return await self.delete_object(prefix, key)
            raise S3Error(501, "NotImplemented", "This S3 operation is not supported.")
        except S3Error as error:
            response = error.response(f"/{BUCKET}/{prefix}/{key}", head=method == "HEAD")
            await self._finish_body(request, response)
            return response

    def router(self, path: str = "/Panopto/Upload") -> APIRouter:
        """Routes for ``{path}/{prefix}/{key...}`` (every method the operations use)."""
        router = APIRouter()

        async def s3_object(request: Request, prefix: str, key: str) -> Response:
            return await self.dispatch(request, prefix, key)

        async def s3_stats() -> JSONResponse:
            return JSONResponse(self.stats())

        router.add_api_route(
            f"{path}/{{prefix}}/{{key:path}}",
            s3_object,
            methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
            include_in_schema=False,
        )
        router.add_api_route(
            "/sandbox/s3/stats", s3_stats, methods=["GET"], include_in_schema=False
        )
        return router
