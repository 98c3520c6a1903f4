"""The sandbox's Panopto REST v1 and sessionUpload APIs, over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from fastapi import FastAPI

from vidauth._serving import BackgroundServer
from vidauth_sandbox.panopto_api import ZERO_GUID, PanoptoSandbox, PanoptoSandboxOptions
from vidauth_sandbox.ucs import UCS_NAMESPACE, ManifestError, parse_manifest, safe_fromstring

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
V1 = "/Panopto/api/v1"
UPLOAD = "/Panopto/PublicAPI/REST/sessionUpload"
SIT101 = PanoptoSandbox.folder_id("Sandbox Courses", "SIT101 Lectures")


@dataclass
class Api:
    sandbox: PanoptoSandbox
    url: str
    http: httpx.Client

    def get(self, path: str, token: str | None = "alice-token", **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(self.url + path, params=params, headers=headers)

    def call(self, method: str, path: str, token: str = "alice-token", **kw: Any) -> httpx.Response:
        return self.http.request(
            method, self.url + path, headers={"Authorization": f"Bearer {token}"}, **kw
        )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    options = PanoptoSandboxOptions(storage_dir=tmp_path / "uploads", processing_delay=0.3)
    sandbox = PanoptoSandbox(options, authenticate=TOKENS.get)
    app = FastAPI()
    app.include_router(sandbox.router())
    with BackgroundServer(app) as server, httpx.Client(timeout=10) as http:
        yield Api(sandbox, server.url, http)


def walk(api: Api, path: str, size: int = 4, **params: Any) -> list[dict[str, Any]]:
    """Every result of a paged list, walking pageNumber until an empty page."""
    results: list[dict[str, Any]] = []
    for page in range(100):
        response = api.get(path, pageNumber=page, maxNumberResults=size, **params)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"Results"}
        batch = response.json()["Results"]
        assert len(batch) <= size
        if not batch:
            return results
        results.extend(batch)
    raise AssertionError("paging never ended")


def manifest(title: str = "My talk", files: tuple[str, ...] = ("talk.mp4",)) -> bytes:
    videos = "".join(
        f"<Video><Start>PT0S</Start><File>{escape(f)}</File><Type>Primary</Type></Video>"
        for f in files
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Session xmlns="{UCS_NAMESPACE}">'
        f"<Title>{escape(title)}</Title><Description>Recorded in the sandbox</Description>"
        f"<Date>2025-05-01T10:00:00Z</Date><Videos>{videos}</Videos></Session>"
    ).encode()


def start_upload(api: Api, folder: str = SIT101) -> dict[str, Any]:
    response = api.call("POST", UPLOAD, json={"FolderId": folder})
    assert response.status_code == 201, response.text
    return response.json()


def put_object(api: Api, upload: dict[str, Any], name: str, data: bytes) -> None:
    """Send ``data`` as a one-part multipart upload: the strict target refuses PutObject, as
    no public client of Panopto uses it."""
    url = f"{upload['UploadTarget']}/{name}"
    created = api.http.post(url, params={"uploads": ""})
    assert created.status_code == 200, created.text
    upload_id = safe_fromstring(created.content).findtext("{*}UploadId")
    part = api.http.put(url, params={"uploadId": upload_id, "partNumber": 1}, content=data)
    assert part.status_code == 200, part.text
    body = (
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        f"<ETag>{part.headers['ETag']}</ETag></Part></CompleteMultipartUpload>"
    )
    done = api.http.post(url, params={"uploadId": upload_id}, content=body)
    assert done.status_code == 200, done.text


def complete(api: Api, upload: dict[str, Any]) -> dict[str, Any]:
    """The State-1 PUT; its answer may be empty (the default), so the upload is read back
    unless the answer is the object."""
    body = {**upload, "State": 1}
    response = api.call("PUT", f"{UPLOAD}/{upload['ID']}", json=body)
    assert response.status_code in (200, 204), response.text
    if response.content:
        return response.json()  # type: ignore[no-any-return]
    return api.call("GET", f"{UPLOAD}/{upload['ID']}").json()  # type: ignore[no-any-return]


def wait_terminal(api: Api, upload_id: str, timeout: float = 5) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = api.call("GET", f"{UPLOAD}/{upload_id}").json()
        seen.append(current)
        if current["State"] in (2, 4, 5):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never terminal: {seen[-1]}")


# -- REST v1 ---------------------------------------------------------------------------------


def test_paging_walks_every_folder_once(api: Api) -> None:
    top = walk(api, f"{V1}/folders/{ZERO_GUID}/children")
    names = [f["Name"] for f in top]
    assert "Sandbox Courses" in names and "alice's folder" in names
    assert len(top) > 10  # more than one default page
    seen = list(top)
    for folder in top:
        seen.extend(walk(api, f"{V1}/folders/{folder['Id']}/children", size=2))
    ids = [f["Id"] for f in seen]
    assert len(ids) == len(set(ids)) >= 30
    default_page = api.get(f"{V1}/folders/{ZERO_GUID}/children").json()["Results"]
    assert len(default_page) == 10
    # bob sees the same shared tree but his own personal folder
    bob = [f["Name"] for f in walk_as(api, "bob-token")]
    assert "bob's folder" in bob and "alice's folder" not in bob


def walk_as(api: Api, token: str) -> list[dict[str, Any]]:
    path = f"{V1}/folders/{ZERO_GUID}/children"
    return api.get(path, token=token, maxNumberResults=1000).json()["Results"]


def test_folder_shape_and_search(api: Api) -> None:
    folder = api.get(f"{V1}/folders/{SIT101}").json()
    assert folder["Name"] == "SIT101 Lectures"
    parent = folder["ParentFolder"]
    assert parent == {"Id": PanoptoSandbox.folder_id("Sandbox Courses"), "Name": "Sandbox Courses"}
    assert set(folder["Urls"]) == {"FolderUrl", "EmbedUrl", "ShareSettingsUrl"}
    assert folder["Urls"]["FolderUrl"].startswith(api.url + "/Panopto/")
    assert api.get(f"{V1}/folders/{parent['Id']}").json()["ParentFolder"] is None

    duplicates = walk(api, f"{V1}/folders/search", searchQuery="duplicate name")
    assert [f["Name"] for f in duplicates] == ["Duplicate Name", "Duplicate Name"]
    assert len({f["Id"] for f in duplicates}) == 2
    archives = walk(api, f"{V1}/folders/search", size=10, searchQuery="Archive")
    assert len(archives) == 25
    assert api.get(f"{V1}/folders/search").status_code == 400

    sessions = walk(api, f"{V1}/folders/{SIT101}/sessions")
    assert [s["Name"] for s in sessions] == ["Week 1 Introduction", "Week 2 Version Control"]
    one = api.get(f"{V1}/sessions/{sessions[0]['Id']}").json()
    assert one["Folder"] == SIT101
    assert one["Urls"]["ViewerUrl"] == f"{api.url}/Panopto/Pages/Viewer.aspx?id={one['Id']}"
    found = walk(api, f"{V1}/sessions/search", searchQuery="lab 1")
    assert [s["Name"] for s in found] == ["Lab 1 Setting Up"]


def test_errors_404_401_403(api: Api) -> None:
    missing = "11111111-2222-3333-4444-555555555555"
    for path in (f"{V1}/folders/{missing}", f"{V1}/sessions/{missing}", f"{UPLOAD}/{missing}"):
        response = api.get(path)
        assert response.status_code == 404
        error = response.json()["Error"]
        assert error["Success"] is False and error["ErrorCode"] and error["Message"]

    for token in (None, "wrong-token"):
        response = api.get(f"{V1}/folders/{SIT101}", token=token)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "wrong-token" not in response.text
    assert api.call("POST", UPLOAD, token="nope", json={"FolderId": SIT101}).status_code == 401

    # another user's personal folder is not yours
    bobs = PanoptoSandbox.personal_folder_id("bob")
    api.get(f"{V1}/folders/{ZERO_GUID}/children", token="bob-token")
    assert api.get(f"{V1}/folders/{bobs}").status_code == 403

    api.sandbox.deny_folder(SIT101)
    assert api.get(f"{V1}/folders/{SIT101}").status_code == 403
    assert api.get(f"{V1}/folders/{SIT101}/sessions").status_code == 403
    response = api.call("POST", UPLOAD, json={"FolderId": SIT101})
    assert response.status_code == 403
    assert response.json()["Error"]["Success"] is False
    assert api.call("POST", UPLOAD, json={"FolderId": missing}).status_code == 404


# -- sessionUpload ---------------------------------------------------------------------------


def test_session_upload_state_machine(api: Api) -> None:
    title = "Q&A <live> \"quoted\" 'single' — Ünïcode 講義"
    upload = start_upload(api)
    assert upload["State"] == 0 and upload["SessionId"] is None
    assert upload["FolderId"] == SIT101
    assert upload["UploadTarget"] == f"{api.url}/Panopto/Upload/{upload['ID']}"
    assert {"MessageID", "Message"} <= set(upload)

    put_object(api, upload, "talk.mp4", b"\x00video" * 1000)
    put_object(api, upload, "session.xml", manifest(title))
    assert api.sandbox.object_path(upload["ID"], "talk.mp4").read_bytes() == b"\x00video" * 1000
    # only the creator sees it
    assert api.call("GET", f"{UPLOAD}/{upload['ID']}", token="bob-token").status_code == 403

    first = complete(api, upload)
    assert first["State"] == 1 and first["SessionId"] is None  # UploadComplete, as set
    states = wait_terminal(api, upload["ID"])
    seen = [s["State"] for s in states]
    assert seen == sorted(seen) and 3 in seen and set(seen) <= {1, 3, 4}  # 1 → 3 → 4
    done = states[-1]
    assert done["State"] == 4 and done["SessionId"]
    assert complete(api, upload)["State"] == 4  # a repeated PUT is harmless

    session = api.get(f"{V1}/sessions/{done['SessionId']}").json()
    assert session["Name"] == title
    assert session["Description"] == "Recorded in the sandbox"
    assert session["Folder"] == SIT101
    assert session["Urls"]["ViewerUrl"] == (
        f"{api.url}/Panopto/Pages/Viewer.aspx?id={done['SessionId']}"
    )
    names = [s["Name"] for s in walk(api, f"{V1}/folders/{SIT101}/sessions")]
    assert title in names
    # the upload target is closed for writing now
    response = api.http.post(f"{upload['UploadTarget']}/late.mp4", params={"uploads": ""})
    assert response.status_code == 409 and "<Code>" in response.text
    assert api.call("DELETE", f"{UPLOAD}/{upload['ID']}").status_code == 409


def test_session_invisible_while_processing(api: Api) -> None:
    upload = start_upload(api)
    put_object(api, upload, "talk.mp4", b"v")
    put_object(api, upload, "m.xml", manifest("Not yet"))
    complete(api, upload)
    assert "Not yet" not in [s["Name"] for s in walk(api, f"{V1}/folders/{SIT101}/sessions")]
    wait_terminal(api, upload["ID"])
    assert "Not yet" in [s["Name"] for s in walk(api, f"{V1}/folders/{SIT101}/sessions")]


@pytest.mark.parametrize(
    ("objects", "reason"),
    [
        ({"talk.mp4": b"v", "m.xml": manifest(files=("other.mp4",))}, "other.mp4"),
        ({"talk.mp4": b"v", "m.xml": b"<Session><Title>broken"}, "well-formed"),
        ({"talk.mp4": b"v"}, "no manifest"),
        (
            {"talk.mp4": b"v", "m.xml": manifest().replace(UCS_NAMESPACE.encode(), b"urn:x")},
            "namespace",
        ),
        ({"talk.mp4": b"v", "m.xml": manifest(title="  ")}, "Title"),
        (
            {
                "talk.mp4": b"v",
                "m.xml": b'<!DOCTYPE S [<!ENTITY x "boom">]><Session xmlns="'
                + UCS_NAMESPACE.encode()
                + b'"><Title>&x;</Title></Session>',
            },
            "DTD",
        ),
    ],
)
def test_bad_manifest_is_processing_error(api: Api, objects: dict[str, bytes], reason: str) -> None:
    upload = start_upload(api)
    for name, data in objects.items():
        put_object(api, upload, name, data)
    result = complete(api, upload)
    assert result["State"] == 5
    assert reason in result["Message"]
    assert api.call("GET", f"{UPLOAD}/{upload['ID']}").json()["State"] == 5


def test_delete_cancels_and_removes_files(api: Api) -> None:
    upload = start_upload(api)
    put_object(api, upload, "talk.mp4", b"v" * 100)
    path = api.sandbox.object_path(upload["ID"], "talk.mp4")
    assert path.exists()
    opened = api.http.post(f"{upload['UploadTarget']}/big.mp4?uploads")
    multipart_id = opened.text.split("<UploadId>")[1].split("</UploadId>")[0]
    part_url = f"{upload['UploadTarget']}/big.mp4?partNumber=1&uploadId={multipart_id}"
    assert api.http.put(part_url, content=b"p" * 10).status_code == 200
    response = api.call("DELETE", f"{UPLOAD}/{upload['ID']}")
    assert response.status_code == 200 and response.json()["State"] == 2
    assert not path.exists()
    assert api.call("GET", f"{UPLOAD}/{upload['ID']}").json()["State"] == 2
    reopened = api.http.post(f"{upload['UploadTarget']}/talk.mp4", params={"uploads": ""})
    assert reopened.status_code == 404
    assert api.http.put(part_url, content=b"p" * 10).status_code == 404
    assert not list((api.sandbox.options.storage_dir / ".multipart").iterdir())
    assert api.call("PUT", f"{UPLOAD}/{upload['ID']}", json={"State": 1}).status_code == 409


def test_bad_requests(api: Api) -> None:
    assert api.call("POST", UPLOAD, json={}).status_code == 400
    assert api.call("POST", UPLOAD, content=b"not json").status_code == 400
    assert api.get(f"{V1}/folders/not-a-guid").status_code == 400
    response = api.get(f"{V1}/folders/{ZERO_GUID}/children", maxNumberResults=0)
    assert response.status_code == 400
    upload = start_upload(api)
    assert api.call("PUT", f"{UPLOAD}/{upload['ID']}", json={"State": 4}).status_code == 400


# -- the manifest parser -----------------------------------------------------------------------


def test_manifest_parser() -> None:
    parsed = parse_manifest(manifest("A & B", ("a.mp4", "b.mp4")))
    assert parsed.title == "A & B"
    assert [v.file for v in parsed.videos] == ["a.mp4", "b.mp4"]
    assert parsed.date is not None and parsed.date.year == 2025
    with pytest.raises(ManifestError, match="no Videos"):
        parse_manifest(manifest(files=()))
    billion = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    with pytest.raises(ValueError, match="DTD"):
        safe_fromstring(billion)
    external = b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>'
    with pytest.raises(ValueError, match="DTD"):
        safe_fromstring(external)


@pytest.mark.parametrize(("answer", "status"), [("empty", 200), ("204", 204), ("object", 200)])
def test_the_state1_answer_knob(tmp_path: Path, answer: str, status: int) -> None:
    options = PanoptoSandboxOptions(
        storage_dir=tmp_path / "uploads", processing_delay=0.3, state1_answer=answer
    )
    sandbox = PanoptoSandbox(options, authenticate=TOKENS.get)
    app = FastAPI()
    app.include_router(sandbox.router())
    with BackgroundServer(app) as server, httpx.Client(timeout=10) as http:
        api = Api(sandbox, server.url, http)
        upload = start_upload(api)
        put_object(api, upload, "talk.mp4", b"v")
        put_object(api, upload, "m.xml", manifest())
        response = api.call("PUT", f"{UPLOAD}/{upload['ID']}", json={**upload, "State": 1})
        assert response.status_code == status
        if answer == "object":
            assert response.json()["State"] == 1
        else:
            assert response.content == b""
        assert wait_terminal(api, upload["ID"])[-1]["State"] == 4
