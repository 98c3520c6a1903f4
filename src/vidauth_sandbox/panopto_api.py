"""Panopto's REST API v1 and sessionUpload API, emulated for the sandbox.

``PanoptoSandbox(options, authenticate).router()`` serves, at the app's root:

- ``/Panopto/api/v1/``: folders (by id, children, search, sessions) and sessions (by id,
  search), paged like Panopto: ``{"Results": [...]}``, ``pageNumber`` from 0,
  ``maxNumberResults`` (10 by default so paging is real), no total.
- ``/Panopto/PublicAPI/REST/sessionUpload``: create, read, complete (``State: 1``) and cancel
  uploads. Completing checks the manifest (:mod:`vidauth_sandbox.ucs`) and the files it names;
  the state then reads 1 (UploadComplete) for a quarter of ``processing_delay``, 3 (Processing)
  until it has passed and 4 (Complete) after, with the new session visible through the REST
  API. The State-1 PUT answers as ``state1_answer`` says (by default an empty 200). State is
  computed from timestamps on read, so no background thread is needed.
- ``/Panopto/Upload/{ID}/{key}``: the S3 upload target (:mod:`vidauth_sandbox.s3`).

Both APIs take ``Authorization: Bearer <token>``, checked with ``authenticate`` (401 with
``WWW-Authenticate: Bearer`` otherwise). Every user sees the same shared folder tree (see
:data:`SHARED_FOLDERS`) plus a personal folder ``"{subject}'s folder"``. Ids are stable uuid5s.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vidauth_sandbox.holds import Hold
from vidauth_sandbox.s3 import S3Error, S3Storage, S3Target
from vidauth_sandbox.ucs import MAX_MANIFEST_BYTES, Manifest, ManifestError, parse_manifest

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
_NAMESPACE = uuid.UUID("0d6c5d3e-8f5e-4f0b-9c55-5a9d3d1f7a21")

#: The shared tree as (path, description); a path's last element is the folder's name.
SHARED_FOLDERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Sandbox Courses",), "Courses of the vidauth sandbox"),
    (("Sandbox Courses", "SIT101 Lectures"), "Recorded lectures for SIT101"),
    (("Sandbox Courses", "SIT102 Labs"), "Lab walkthroughs for SIT102"),
    (("Sandbox Courses", "Duplicate Name"), "A second folder called Duplicate Name"),
    (("Duplicate Name",), "A folder whose name is not unique"),
    *(((f"Archive {n:02d}",), f"Archived recordings, batch {n}") for n in range(1, 26)),
)
#: Seed sessions as (folder path, name, start time).
SHARED_SESSIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("Sandbox Courses", "SIT101 Lectures"), "Week 1 Introduction", "2025-03-03T09:00:00Z"),
    (("Sandbox Courses", "SIT101 Lectures"), "Week 2 Version Control", "2025-03-10T09:00:00Z"),
    (("Sandbox Courses", "SIT102 Labs"), "Lab 1 Setting Up", "2025-03-04T14:00:00Z"),
)


class PanoptoUploadState:
    """sessionUpload states, as Panopto numbers them."""

    UPLOADING = 0
    UPLOAD_COMPLETE = 1
    UPLOAD_CANCELLED = 2
    PROCESSING = 3
    COMPLETE = 4
    PROCESSING_ERROR = 5


#: What the State-1 PUT may answer (the ``state1_answer`` option).
STATE1_ANSWERS = ("empty", "204", "object")


@dataclass
class PanoptoSandboxOptions:
    """Knobs of the Panopto API sandbox."""

    storage_dir: Path
    """Where uploaded objects are streamed (one subdirectory per sessionUpload)."""
    processing_delay: float = 1.0
    """Seconds from UploadComplete through Processing (3) to Complete (4)."""
    s3_latency: float = 0.0
    """Added to every S3 request, in seconds (benchmark knob)."""
    s3_bandwidth: float | None = None
    """Bytes per second shared by all S3 request bodies together (benchmark knob)."""
    s3_lazy_complete: bool = False
    """CompleteMultipartUpload answers without joining the parts; they are joined when the
    object is first read (benchmark knob: S3 does not copy every byte while Complete waits)."""
    s3_request_bandwidth: float | None = None
    """Bytes per second one S3 request body gets at most (a connection's window / RTT)."""
    s3_signature: str | None = None
    """Accept only this S3 signature scheme (``s3v4``, ``s3``, ``unsigned``); None: any."""
    s3_max_parts_in_flight: int | None = None
    """Answer 503 SlowDown to UploadParts beyond this many at once; None: no limit."""
    state1_answer: str = "empty"
    """What the State-1 PUT answers: ``empty`` (200 with no body, the default: the C# sample
    allows for it), ``204`` (No Content), or ``object`` (the sessionUpload)."""
    s3_allow: frozenset[str] = frozenset()
    """Optional S3 calls the target answers (``PutObject``, ``GetObject``, ``HeadObject``,
    ``ListParts``); none by default, like the narrowest Panopto."""
    s3_refusal: int = 501
    """How a call not allowed is refused: 501 NotImplemented, 405 MethodNotAllowed or 403
    AccessDenied."""


@dataclass(frozen=True)
class Folder:
    """A folder; ``owner`` is None for shared folders, the subject for a personal one."""

    id: str
    name: str
    description: str | None
    parent_id: str | None
    owner: str | None = None


@dataclass(frozen=True)
class Session:
    """A session (a recording). It shows in the REST API from ``visible_at`` (monotonic)."""

    id: str
    name: str
    description: str | None
    folder_id: str
    start_time: str
    duration: float | None
    visible_at: float = 0.0


@dataclass
class SessionUpload:
    """One sessionUpload. ``state`` is the stored state; reads derive 3 → 4 from the clock."""

    id: str
    folder_id: str
    owner: str
    state: int = PanoptoUploadState.UPLOADING
    message: str | None = None
    completed_at: float | None = None
    session_id: str | None = None


class ApiError(Exception):
    """A REST error answered as ``{"Error": {"ErrorCode", "Message", "Success": false}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def response(self) -> JSONResponse:
        """The JSON error response."""
        body = {"Error": {"ErrorCode": self.code, "Message": self.message, "Success": False}}
        return JSONResponse(body, self.status, self.headers)


def _guid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _parse_guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(400, "InvalidGuid", f"{value!r} is not a GUID") from None


def _sort_key(item: Folder | Session) -> tuple[str, str]:
    return item.name.casefold(), item.id


def _page(request: Request, items: list[Any]) -> list[Any]:
    """Slice ``items`` by ``pageNumber`` (from 0) and ``maxNumberResults``."""
    try:
        number = int(request.query_params.get("pageNumber", "0"))
        size = int(request.query_params.get("maxNumberResults", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        raise ApiError(400, "BadRequest", "pageNumber and maxNumberResults are integers") from None
    if number < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(
            400, "BadRequest", f"pageNumber must be >= 0 and maxNumberResults 1..{MAX_PAGE_SIZE}"
        )
    return items[number * size : (number + 1) * size]


def _search_query(request: Request) -> str:
    query = request.query_params.get("searchQuery", "").strip()
    if not query:
        raise ApiError(400, "BadRequest", "searchQuery is required")
    return query.casefold()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PanoptoSandbox:
    """State and routes of the emulated Panopto REST, sessionUpload and S3 APIs (thread-safe).

    ``authenticate(bearer_token)`` answers the user's subject, or None for a bad token.
    """

    def __init__(
        self, options: PanoptoSandboxOptions, authenticate: Callable[[str], str | None]
    ) -> None:
        self.options = options
        self.authenticate = authenticate
        self._lock = threading.RLock()
        self._folders: dict[str, Folder] = {}
        self._sessions: dict[str, Session] = {}
        self._uploads: dict[str, SessionUpload] = {}
        self._denied: set[str] = set()
        self._seed()
        options.storage_dir.mkdir(parents=True, exist_ok=True)
        self.storage = S3Storage(options.storage_dir, lazy_complete=options.s3_lazy_complete)
        self.s3 = S3Target(
            self.storage,
            self._check_prefix,
            latency=options.s3_latency,
            bandwidth=options.s3_bandwidth,
            request_bandwidth=options.s3_request_bandwidth,
            signature=options.s3_signature,
            max_parts_in_flight=options.s3_max_parts_in_flight,
            allow=options.s3_allow,
            refusal=options.s3_refusal,
        )

    # -- seed data and lookups ----------------------------------------------------------------

    def _seed(self) -> None:
        for path, description in SHARED_FOLDERS:
            parent = _guid("folder:" + "/".join(path[:-1])) if len(path) > 1 else None
            folder_id = _guid("folder:" + "/".join(path))
            self._folders[folder_id] = Folder(folder_id, path[-1], description, parent)
        for path, name, start in SHARED_SESSIONS:
            session_id = _guid(f"session:{'/'.join(path)}/{name}")
            folder_id = _guid("folder:" + "/".join(path))
            self._sessions[session_id] = Session(
                session_id, name, f"Seed session: {name}", folder_id, start, 3600.0
            )

    @staticmethod
    def folder_id(*path: str) -> str:
        """A shared folder's stable id by path: ``folder_id("Sandbox Courses", "SIT102 Labs")``."""
        return _guid("folder:" + "/".join(path))

    @staticmethod
    def personal_folder_id(subject: str) -> str:
        """The stable id of ``subject``'s personal folder."""
        return _guid("personal:" + subject)

    def _ensure_personal(self, subject: str) -> None:
        folder_id = self.personal_folder_id(subject)
        with self._lock:
            if folder_id not in self._folders:
                self._folders[folder_id] = Folder(
                    folder_id, f"{subject}'s folder", f"Personal folder of {subject}", None, subject
                )

    def _visible(self, folder: Folder, subject: str) -> bool:
        return folder.owner is None or folder.owner == subject

    def _folder(self, folder_id: str, subject: str) -> Folder:
        """A folder the user may use, or 404 / 403."""
        folder_id = _parse_guid(folder_id)
        with self._lock:
            folder = self._folders.get(folder_id)
            denied = folder_id in self._denied
        if folder is None:
            raise ApiError(404, "NotFound", f"folder {folder_id} was not found")
        if denied or not self._visible(folder, subject):
            raise ApiError(403, "Forbidden", f"you do not have access to folder {folder_id}")
        return folder

    def _visible_sessions(self, subject: str) -> list[Session]:
        now = time.monotonic()
        with self._lock:
            return [
                s
                for s in self._sessions.values()
                if s.visible_at <= now and self._visible(self._folders[s.folder_id], subject)
            ]

    # -- test and fault hooks -----------------------------------------------------------------

    def hold(self, point: str, key: str | None = None) -> Hold:
        """Hold the next request at ``point`` until the test releases it
        (:mod:`vidauth_sandbox.holds`): an S3 operation, or ``State1``."""
        return self.s3.holds.hold(point, key)

    def fail_parts(self, count: int, status: int = 500) -> None:
        """Make the next ``count`` UploadPart requests fail with ``status`` (S3 XML error)."""
        self.s3.fail_parts(count, status)

    def deny_folder(self, folder_id: str) -> None:
        """Answer 403 to REST and sessionUpload calls on this folder from now on."""
        with self._lock:
            self._denied.add(_parse_guid(folder_id))

    @property
    def bytes_received(self) -> int:
        """Total UploadPart body bytes accepted."""
        return self.s3.bytes_received

    @property
    def upload_part_requests(self) -> int:
        """Number of UploadPart requests received (failed ones included)."""
        return self.s3.upload_part_requests

    def object_path(self, upload_id: str, filename: str) -> Path:
        """Where the object ``filename`` of sessionUpload ``upload_id`` is stored."""
        return self.storage.object_path(upload_id, filename)

    def session_upload_state(self, upload_id: str) -> dict[str, Any]:
        """The sessionUpload as the API would answer it (without the UploadTarget)."""
        with self._lock:
            upload = self._uploads[upload_id]
        return self._upload_json(upload, "")

    # -- JSON shapes ----------------------------------------------------------------------------

    def _folder_json(self, folder: Folder, base: str) -> dict[str, Any]:
        with self._lock:
            parent = self._folders.get(folder.parent_id) if folder.parent_id else None
        list_url = f"{base}/Panopto/Pages/Sessions/List.aspx#folderID=%22{folder.id}%22"
        return {
            "Id": folder.id,
            "Name": folder.name,
            "Description": folder.description,
            "ParentFolder": {"Id": parent.id, "Name": parent.name} if parent else None,
            "Urls": {
                "FolderUrl": list_url,
                "EmbedUrl": f"{base}/Panopto/Pages/EmbeddedList.aspx?folderID={folder.id}",
                "ShareSettingsUrl": f"{base}/Panopto/Pages/Sessions/List.aspx"
                f"#folderID=%22{folder.id}%22&showShareDialog=true",
            },
        }

    def _session_json(self, session: Session, base: str) -> dict[str, Any]:
        with self._lock:
            folder = self._folders[session.folder_id]
        return {
            "Id": session.id,
            "Name": session.name,
            "Description": session.description,
            "StartTime": session.start_time,
            "Duration": session.duration,
            "Folder": folder.id,
            "FolderDetails": {"Id": folder.id, "Name": folder.name},
            "Urls": {
                "ViewerUrl": f"{base}/Panopto/Pages/Viewer.aspx?id={session.id}",
                "EmbedUrl": f"{base}/Panopto/Pages/Embed.aspx?id={session.id}",
                "ShareSettingsUrl": f"{base}/Panopto/Pages/Sessions/Share.aspx?id={session.id}",
            },
        }

    def _current_state(self, upload: SessionUpload) -> tuple[int, str | None]:
        """(state, SessionId) now: after State 1, as at Panopto, the upload reads 1
        (UploadComplete) for the first quarter of ``processing_delay``, then 3 (Processing),
        then 4 (Complete) once the delay has passed."""
        if upload.state == PanoptoUploadState.PROCESSING and upload.completed_at is not None:
            elapsed = time.monotonic() - upload.completed_at
            if elapsed >= self.options.processing_delay:
                return PanoptoUploadState.COMPLETE, upload.session_id
            if elapsed < self.options.processing_delay / 4:
                return PanoptoUploadState.UPLOAD_COMPLETE, None
        return upload.state, None

    def _upload_json(self, upload: SessionUpload, base: str) -> dict[str, Any]:
        with self._lock:
            state, session_id = self._current_state(upload)
            message = upload.message
        return {
            "ID": upload.id,
            "FolderId": upload.folder_id,
            "SessionId": session_id,
            "UploadTarget": f"{base}/Panopto/Upload/{upload.id}",
            "State": state,
            "MessageID": None,
            "Message": message,
        }

    # -- authentication -------------------------------------------------------------------------

    def _subject(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "Unauthorized",
                "a bearer access token is required",
                {"WWW-Authenticate": "Bearer"},
            )
        subject = self.authenticate(token)
        if subject is None:
            raise ApiError(
                401,
                "Unauthorized",
                "the access token is invalid or expired",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        self._ensure_personal(subject)
        return subject

    # -- REST v1 --------------------------------------------------------------------------------

    async def get_folder(self, request: Request) -> Response:
        """``GET folders/{id}``."""
        subject = self._subject(request)
        folder = self._folder(request.path_params["folder_id"], subject)
        return JSONResponse(self._folder_json(folder, _base(request)))

    async def folder_children(self, request: Request) -> Response:
        """``GET folders/{id}/children``; the zero GUID lists the top level."""
        subject = self._subject(request)
        parent_id: str | None = _parse_guid(request.path_params["folder_id"])
        if parent_id == ZERO_GUID:
            parent_id = None
        else:
            self._folder(request.path_params["folder_id"], subject)
        with self._lock:
            children = [
                f
                for f in self._folders.values()
                if f.parent_id == parent_id and self._visible(f, subject)
            ]
        page = _page(request, sorted(children, key=_sort_key))
        return JSONResponse({"Results": [self._folder_json(f, _base(request)) for f in page]})

    async def search_folders(self, request: Request) -> Response:
        """``GET folders/search?searchQuery=…`` (case-insensitive substring of the name)."""
        subject = self._subject(request)
        query = _search_query(request)
        with self._lock:
            found = [
                f
                for f in self._folders.values()
                if query in f.name.casefold() and self._visible(f, subject)
            ]
        page = _page(request, sorted(found, key=_sort_key))
        return JSONResponse({"Results": [self._folder_json(f, _base(request)) for f in page]})

    async def folder_sessions(self, request: Request) -> Response:
        """``GET folders/{id}/sessions``."""
        subject = self._subject(request)
        folder = self._folder(request.path_params["folder_id"], subject)
        sessions = [s for s in self._visible_sessions(subject) if s.folder_id == folder.id]
        page = _page(request, sorted(sessions, key=lambda s: (s.start_time, s.id)))
        return JSONResponse({"Results": [self._session_json(s, _base(request)) for s in page]})

    async def get_session(self, request: Request) -> Response:
        """``GET sessions/{id}``."""
        subject = self._subject(request)
        session_id = _parse_guid(request.path_params["session_id"])
        found = {s.id: s for s in self._visible_sessions(subject)}.get(session_id)
        if found is None:
            raise ApiError(404, "NotFound", f"session {session_id} was not found")
        self._folder(found.folder_id, subject)
        return JSONResponse(self._session_json(found, _base(request)))

    async def search_sessions(self, request: Request) -> Response:
        """``GET sessions/search?searchQuery=…``."""
        subject = self._subject(request)
        query = _search_query(request)
        found = [s for s in self._visible_sessions(subject) if query in s.name.casefold()]
        page = _page(request, sorted(found, key=_sort_key))
        return JSONResponse({"Results": [self._session_json(s, _base(request)) for s in page]})

    # -- sessionUpload --------------------------------------------------------------------------

    async def _json_body(self, request: Request) -> dict[str, Any]:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > 64 * 1024:
                raise ApiError(413, "BadRequest", "the request body is too large")
        try:
            body = json.loads(bytes(data) or b"null")
        except ValueError:
            raise ApiError(400, "BadRequest", "the body must be JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        return body

    def _owned_upload(self, request: Request, subject: str) -> SessionUpload:
        upload_id = _parse_guid(request.path_params["upload_id"])
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, "NotFound", f"sessionUpload {upload_id} was not found")
        if upload.owner != subject:
            raise ApiError(403, "Forbidden", "this sessionUpload belongs to another user")
        return upload

    async def create_upload(self, request: Request) -> Response:
        """``POST sessionUpload`` with ``{"FolderId"}`` → 201 and the new sessionUpload."""
        subject = self._subject(request)
        body = await self._json_body(request)
        folder_id = body.get("FolderId")
        if not isinstance(folder_id, str):
            raise ApiError(400, "BadRequest", "FolderId is required")
        folder = self._folder(folder_id, subject)
        upload = SessionUpload(str(uuid.uuid4()), folder.id, subject)
        with self._lock:
            self._uploads[upload.id] = upload
        return JSONResponse(self._upload_json(upload, _base(request)), 201)

    async def get_upload(self, request: Request) -> Response:
        """``GET sessionUpload/{ID}``."""
        upload = self._owned_upload(request, self._subject(request))
        return JSONResponse(self._upload_json(upload, _base(request)))

    async def update_upload(self, request: Request) -> Response:
        """``PUT sessionUpload/{ID}`` with ``State: 1`` (complete) or ``2`` (cancel)."""
        upload = self._owned_upload(request, self._subject(request))
        state = (await self._json_body(request)).get("State")
        if state == PanoptoUploadState.UPLOAD_CANCELLED:
            return await self._cancel(request, upload)
        if state != PanoptoUploadState.UPLOAD_COMPLETE:
            raise ApiError(400, "BadRequest", "State must be 1 (UploadComplete) or 2 (cancel)")
        await self.s3.holds.at("State1")
        with self._lock:
            current = upload.state
        if current in (PanoptoUploadState.PROCESSING, PanoptoUploadState.PROCESSING_ERROR):
            return self._state1_answer(upload, request)  # a repeated PUT
        if current != PanoptoUploadState.UPLOADING:
            raise ApiError(409, "Conflict", "the sessionUpload is not uploading")
        try:
            manifest = await anyio.to_thread.run_sync(self._check_upload, upload)
        except ManifestError as exc:
            with self._lock:
                upload.state, upload.message = PanoptoUploadState.PROCESSING_ERROR, str(exc)
            return JSONResponse(self._upload_json(upload, _base(request)))
        now = time.monotonic()
        session = Session(
            str(uuid.uuid4()),
            manifest.title,
            manifest.description,
            upload.folder_id,
            manifest.date.strftime("%Y-%m-%dT%H:%M:%SZ") if manifest.date else _iso_now(),
            None,
            visible_at=now + self.options.processing_delay,
        )
        with self._lock:
            self._sessions[session.id] = session
            upload.state, upload.completed_at = PanoptoUploadState.PROCESSING, now
            upload.session_id = session.id
        return self._state1_answer(upload, request)

    def _state1_answer(self, upload: SessionUpload, request: Request) -> Response:
        """The State-1 PUT's answer, as ``state1_answer`` says."""
        if self.options.state1_answer == "204":
            return Response(status_code=204)
        if self.options.state1_answer == "empty":
            return Response(status_code=200)
        return JSONResponse(self._upload_json(upload, _base(request)))

    def _check_upload(self, upload: SessionUpload) -> Manifest:
        """Find, parse and check the manifest and the files it names (blocking)."""
        objects = self.storage.objects(upload.id)
        manifests = sorted(k for k in objects if k.lower().endswith(".xml"))
        if not manifests:
            raise ManifestError("no manifest (*.xml) was uploaded")
        if len(manifests) > 1:
            raise ManifestError(f"more than one manifest was uploaded: {', '.join(manifests)}")
        if objects[manifests[0]].size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        data = self.storage.object_path(upload.id, manifests[0]).read_bytes()
        manifest = parse_manifest(data)
        for video in manifest.videos:
            if video.file not in objects:
                raise ManifestError(
                    f"the manifest names {video.file!r}, which was not uploaded "
                    "(upload every file before setting State 1)"
                )
        return manifest

    async def delete_upload(self, request: Request) -> Response:
        """``DELETE sessionUpload/{ID}``: cancel (State 2), delete files, abort uploads."""
        upload = self._owned_upload(request, self._subject(request))
        return await self._cancel(request, upload)

    async def _cancel(self, request: Request, upload: SessionUpload) -> Response:
        with self._lock:
            state, _ = self._current_state(upload)
            if state in (
                PanoptoUploadState.UPLOAD_COMPLETE,
                PanoptoUploadState.PROCESSING,
                PanoptoUploadState.COMPLETE,
            ):
                raise ApiError(409, "Conflict", "the sessionUpload has already been processed")
            upload.state, upload.message = PanoptoUploadState.UPLOAD_CANCELLED, None
        await anyio.to_thread.run_sync(self.storage.delete_prefix, upload.id)
        return JSONResponse(self._upload_json(upload, _base(request)))

    # -- S3 -------------------------------------------------------------------------------------

    def _check_prefix(self, prefix: str, write: bool) -> None:
        with self._lock:
            upload = self._uploads.get(prefix)
            state = upload.state if upload else None
        if upload is None or state == PanoptoUploadState.UPLOAD_CANCELLED:
            raise S3Error(404, "NoSuchSessionUpload", f"no sessionUpload {prefix} is open")
        if write and state != PanoptoUploadState.UPLOADING:
            raise S3Error(
                409,
                "InvalidSessionUploadState",
                f"sessionUpload {prefix} is in State {state}, not 0 (Uploading)",
            )

    # -- routes ---------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """Every route of the REST v1, sessionUpload and S3 APIs, to include at the app's root."""
        router = APIRouter()
        v1 = "/Panopto/api/v1"
        upload = "/Panopto/PublicAPI/REST/sessionUpload"
        routes: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
            ("GET", f"{v1}/folders/search", self.search_folders),
            ("GET", f"{v1}/folders/{{folder_id}}", self.get_folder),
            ("GET", f"{v1}/folders/{{folder_id}}/children", self.folder_children),
            ("GET", f"{v1}/folders/{{folder_id}}/sessions", self.folder_sessions),
            ("GET", f"{v1}/sessions/search", self.search_sessions),
            ("GET", f"{v1}/sessions/{{session_id}}", self.get_session),
            ("POST", upload, self.create_upload),
            ("GET", f"{upload}/{{upload_id}}", self.get_upload),
            ("PUT", f"{upload}/{{upload_id}}", self.update_upload),
            ("DELETE", f"{upload}/{{upload_id}}", self.delete_upload),
        ]
        for method, path, handler in routes:
            router.add_api_route(path, _answer_errors(handler), methods=[method])
        router.include_router(self.s3.router())
        return router


def _answer_errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler so :class:`ApiError` becomes Panopto's JSON error response."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
