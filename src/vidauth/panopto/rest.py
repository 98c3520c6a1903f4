"""Panopto's REST API v1 and sessionUpload API over an authenticated ``httpx.Client``.

The client comes from :meth:`vidauth.client.Vidauth.api_client`: it sends fresh bearer tokens,
refreshes once and retries once on 401/403, and retries transient failures. What is left to
map here is the final answer: 401/403 → :class:`PermissionDenied` (exit 3), 404 → a caller's
:class:`UsageError`, 429/5xx/connection failures → :class:`RemoteServiceError` (exit 4).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from vidauth.errors import ErrorCode, PermissionDenied, RemoteServiceError, UsageError
from vidauth.http import RETRY_EXTENSION, raise_for_exhausted, transport_failure

V1 = "/Panopto/api/v1"
SESSION_UPLOAD = "/Panopto/PublicAPI/REST/sessionUpload"
MAX_PAGES = 10_000


class SessionUploadState:
    """sessionUpload states, as Panopto numbers them."""

    UPLOADING = 0
    UPLOAD_COMPLETE = 1
    UPLOAD_CANCELLED = 2
    PROCESSING = 3
    COMPLETE = 4
    PROCESSING_ERROR = 5
    DELETING_FILES = 6
    DELETED = 7
    DELETING_ERROR = 8

    FAILED = frozenset({2, 5, 7, 8})
    NAMES = {
        0: "Uploading",
        1: "UploadComplete",
        2: "UploadCancelled",
        3: "Processing",
        4: "Complete",
        5: "ProcessingError",
        6: "DeletingFiles",
        7: "Deleted",
        8: "DeletingError",
    }


@dataclass(frozen=True)
class Folder:
    """A Panopto folder."""

    id: str
    name: str
    parent_id: str | None
    parent_name: str | None
    url: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Folder:
        """From the REST API's folder object."""
        parent = data.get("ParentFolder") or {}
        return cls(
            id=str(data.get("Id")),
            name=str(data.get("Name") or ""),
            parent_id=parent.get("Id"),
            parent_name=parent.get("Name"),
            url=(data.get("Urls") or {}).get("FolderUrl"),
        )


@dataclass(frozen=True)
class SessionInfo:
    """A Panopto session (recording)."""

    id: str
    name: str
    start_time: str | None
    duration: float | None
    viewer_url: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionInfo:
        """From the REST API's session object."""
        return cls(
            id=str(data.get("Id")),
            name=str(data.get("Name") or ""),
            start_time=data.get("StartTime"),
            duration=data.get("Duration"),
            viewer_url=(data.get("Urls") or {}).get("ViewerUrl"),
        )


def state_name(state: object) -> str:
    """Panopto's name for a sessionUpload state number."""
    return SessionUploadState.NAMES.get(state, str(state)) if isinstance(state, int) else str(state)


def is_guid(value: str) -> bool:
    """True when ``value`` is a GUID."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _api_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        error = data.get("Error")
        if isinstance(error, dict) and error.get("Message"):
            return str(error["Message"])
        if data.get("Message"):
            return str(data["Message"])
    return ""


class PanoptoRest:
    """Typed calls to Panopto's REST v1 and sessionUpload APIs."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    # -- plumbing ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        not_found: str | None = None,
        not_found_code: ErrorCode = ErrorCode.USAGE,
        not_found_facts: dict[str, Any] | None = None,
        retry: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one call; answer a 2xx response or raise the matching vidauth error."""
        if retry is not None:
            kwargs["extensions"] = {RETRY_EXTENSION: retry}
        try:
            response = self.api.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_failure(exc, what) from None
        if response.is_success:
            return response
        status = response.status_code
        detail = _api_message(response)
        if status in (401, 403):
            raise PermissionDenied(
                f"{what} refused (HTTP {status}{': ' + detail if detail else ''}) even with a "
                "fresh token",
                status=status,
            )
        if status == 404 and not_found:
            raise UsageError(not_found, code=not_found_code, status=404, **(not_found_facts or {}))
        raise_for_exhausted(response, what)
        raise RemoteServiceError(
            f"{what} failed: HTTP {status}{': ' + detail if detail else ''}; "
            "check the request or try again later"
        )

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        """A call answering a JSON object."""
        response = self.request(method, path, what, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RemoteServiceError(f"{what}: Panopto answered something that is not JSON")
        return data

    def pages(
        self, path: str, what: str, params: dict[str, str] | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list: ``pageNumber`` from 0 until ``Results`` is empty."""
        for number in range(MAX_PAGES):
            data = self.json(
                "GET", path, what, params={**(params or {}), "pageNumber": str(number)}, **kwargs
            )
            results = data.get("Results") or []
            if not results:
                return
            yield from results

    # -- folders and sessions ----------------------------------------------------------------

    def folder(self, folder_id: str) -> Folder:
        """``GET folders/{id}``."""
        data = self.json(
            "GET",
            f"{V1}/folders/{folder_id}",
            f"reading folder {folder_id}",
            not_found=f"folder {folder_id} was not found",
            not_found_code=ErrorCode.FOLDER_NOT_FOUND,
            not_found_facts={"folder_id": folder_id},
        )
        return Folder.from_json(data)

    def search_folders(self, text: str) -> list[Folder]:
        """``GET folders/search?searchQuery=…``, every page."""
        return [
            Folder.from_json(item)
            for item in self.pages(
                f"{V1}/folders/search", "searching folders", {"searchQuery": text}
            )
        ]

    def folder_children(self, parent_id: str | None) -> list[Folder]:
        """``GET folders/{id}/children`` (None: the top level), every page."""
        parent = parent_id or "00000000-0000-0000-0000-000000000000"
        return [
            Folder.from_json(item)
            for item in self.pages(
                f"{V1}/folders/{parent}/children",
                f"listing the folders in {parent}",
                not_found=f"folder {parent} was not found",
                not_found_code=ErrorCode.FOLDER_NOT_FOUND,
                not_found_facts={"folder_id": parent},
            )
        ]

    def folder_sessions(self, folder_id: str) -> list[SessionInfo]:
        """``GET folders/{id}/sessions``, every page."""
        return [
            SessionInfo.from_json(item)
            for item in self.pages(
                f"{V1}/folders/{folder_id}/sessions",
                f"listing the sessions in folder {folder_id}",
                not_found=f"folder {folder_id} was not found",
                not_found_code=ErrorCode.FOLDER_NOT_FOUND,
                not_found_facts={"folder_id": folder_id},
            )
        ]

    def session(self, session_id: str) -> SessionInfo:
        """``GET sessions/{id}``."""
        data = self.json(
            "GET",
            f"{V1}/sessions/{session_id}",
            f"reading session {session_id}",
            not_found=f"session {session_id} was not found",
        )
        return SessionInfo.from_json(data)

    def resolve_folder(self, spec: str) -> Folder:
        """A folder by id (GUID) or by exact name; ambiguity or no match is a UsageError."""
        spec = spec.strip()
        if not spec:
            raise UsageError(
                "the folder is empty: give a folder id or its exact name", option="folder", value=""
            )
        if is_guid(spec):
            return self.folder(spec)
        found = self.search_folders(spec)
        exact = [f for f in found if f.name == spec] or [
            f for f in found if f.name.casefold() == spec.casefold()
        ]
        if len(exact) == 1:
            return exact[0]
        candidates = exact or found
        listed = "; ".join(
            f"{f.name} ({f.id}{', in ' + f.parent_name if f.parent_name else ''})"
            for f in candidates[:10]
        )
        more = f" and {len(candidates) - 10} more" if len(candidates) > 10 else ""
        if len(exact) > 1:
            raise UsageError(
                f"folder {spec!r} matches {len(exact)} folders: {listed}{more}; "
                "give the folder id instead",
                code=ErrorCode.FOLDER_AMBIGUOUS,
                name=spec,
                matches=[f.id for f in exact],
            )
        if candidates:
            raise UsageError(
                f"no folder is named exactly {spec!r}; similar: {listed}{more}",
                code=ErrorCode.FOLDER_NOT_FOUND,
                name=spec,
                similar=[f.id for f in candidates],
            )
        raise UsageError(
            f"no folder named {spec!r} was found", code=ErrorCode.FOLDER_NOT_FOUND, name=spec
        )

    # -- sessionUpload -------------------------------------------------------------------------

    def create_session_upload(self, folder_id: str) -> dict[str, Any]:
        """``POST sessionUpload {"FolderId"}`` → the sessionUpload (``ID``, ``UploadTarget``)."""
        data = self.json(
            "POST",
            SESSION_UPLOAD,
            f"creating an upload in folder {folder_id}",
            json={"FolderId": folder_id},
            retry="unsent",
            not_found=f"folder {folder_id} was not found",
            not_found_code=ErrorCode.FOLDER_NOT_FOUND,
            not_found_facts={"folder_id": folder_id},
        )
        if not data.get("ID") or not data.get("UploadTarget"):
            raise RemoteServiceError(
                "creating an upload: Panopto answered without ID or UploadTarget; try again later"
            )
        return data

    def get_session_upload(self, upload_id: str) -> dict[str, Any]:
        """``GET sessionUpload/{ID}``."""
        return self.json(
            "GET",
            f"{SESSION_UPLOAD}/{upload_id}",
            f"reading upload {upload_id}",
            not_found=f"upload {upload_id} no longer exists at Panopto",
        )

    def finish_session_upload(self, session_upload: dict[str, Any]) -> dict[str, Any]:
        """``PUT sessionUpload/{ID}`` with ``State: 1``: every file is there, process it.

        Panopto's samples ignore the answer or accept an empty one: any 2xx is taken, and
        unless it is the sessionUpload object itself the upload is read back to confirm.
        """
        body = {**session_upload, "State": SessionUploadState.UPLOAD_COMPLETE}
        upload_id = session_upload["ID"]
        response = self.request(
            "PUT",
            f"{SESSION_UPLOAD}/{upload_id}",
            f"completing upload {upload_id}",
            json=body,
            not_found=f"upload {upload_id} no longer exists at Panopto: upload the file again",
        )
        try:
            data = response.json() if response.content.strip() else None
        except ValueError:
            data = None
        if isinstance(data, dict) and "State" in data:
            return data
        return self.get_session_upload(str(upload_id))

    def delete_session_upload(self, upload_id: str) -> httpx.Response:
        """``DELETE sessionUpload/{ID}`` (cancel); answers the raw response (404/409 allowed)."""
        try:
            response = self.api.delete(f"{SESSION_UPLOAD}/{upload_id}")
        except httpx.TransportError as exc:
            raise transport_failure(exc, f"cancelling upload {upload_id}") from None
        if response.status_code in (401, 403):
            raise PermissionDenied(
                f"cancelling upload {upload_id} refused (HTTP {response.status_code})",
                status=response.status_code,
            )
        return response
