"""Issue 19, points 6 and 7: one rule for every text field, on SQLite and PostgreSQL alike.

NUL, control characters, line separators, bidi overrides, lone surrogates and invalid UTF-8
are a 400 naming the field (or a 404 for an upload id), before the video streams: never a 202
that fails later, never ``503 database_unavailable`` that pages an operator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.service.conftest import ServiceSetup, video_bytes

BAD = {
    "NUL": "\x00",
    "C0": "\x01",
    "DEL": "\x7f",
    "C1": "\x85",
    "LS": "\u2028",
    "PS": "\u2029",
    "RLO": "\u202e",
    "RLI": "\u2067",
}


@pytest.fixture(params=["sqlite", "postgres"])
def svc(request: pytest.FixtureRequest, make_service: Callable[..., ServiceSetup]) -> ServiceSetup:
    env = {}
    if request.param == "postgres":
        env["VIDAUTH_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    service = make_service(run_worker=False, **env)
    assert service.ctx.db.is_sqlite == (request.param == "sqlite")
    service.connect("u1")
    return service


def _raw_form(fields: list[tuple[str, bytes]], filename: bytes | None, body: bytes) -> tuple:
    boundary = "b-" + uuid.uuid4().hex
    parts = b""
    for name, value in fields:
        parts += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    if filename is not None:
        parts += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
            + filename
            + b'"\r\nContent-Type: video/mp4\r\n\r\n'
            + body
            + b"\r\n"
        )
    parts += f"--{boundary}--\r\n".encode()
    return parts, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_every_text_field_refuses_the_same_characters(svc: ServiceSetup) -> None:
    for field in ("title", "folder", "external_user_id", "callback_url", "path"):
        for kind, ch in BAD.items():
            fields = {"external_user_id": "u1", "folder": "F", "title": "T"}
            if field == "callback_url":
                fields["callback_url"] = f"{svc.url}/hook{ch}x"
            else:
                fields[field] = f"a{ch}b"
            if field == "path":
                r = svc.api.post_form("/v1/uploads", fields)
            else:
                r = svc.api.upload(content=video_bytes(4096), **fields)  # type: ignore[arg-type]
            assert r.status_code == 400, (field, kind, r.text)
            # path: the same rule, answered like any other unusable path
            error = "invalid_file" if field == "path" else "invalid_request"
            assert r.json()["error"] == error, (field, kind, r.text)
            assert field in r.json()["detail"], (field, kind, r.text)
    assert svc.api.get("/v1/uploads").json()["uploads"] == []


def test_description_keeps_line_breaks_but_not_separators(svc: ServiceSetup) -> None:
    ok = svc.api.upload("u1", content=video_bytes(4096), description="line 1\nline 2\ttab")
    assert ok.status_code == 202, ok.text
    bad = svc.api.upload("u1", content=video_bytes(4096), description="line 1\u2028line 2")
    assert bad.status_code == 400, bad.text
    assert "description" in bad.json()["detail"]


def test_file_name_is_checked_before_the_file_streams(svc: ServiceSetup) -> None:
    # No title: it would be derived from the file name.
    for kind in ("C0", "NUL", "RLO", "LS"):
        body, headers = _raw_form(
            [("external_user_id", b"u1"), ("folder", b"F")],
            f"evil{BAD[kind]}name.mp4".encode(),
            video_bytes(64 * 1024),
        )
        r = svc.api.post("/v1/uploads", content=body, headers=headers)
        assert r.status_code == 400, (kind, r.text)
        assert "file name" in r.json()["detail"], (kind, r.text)
    assert svc.api.get("/v1/uploads").json()["uploads"] == []


def test_invalid_utf8_is_refused_not_replaced(svc: ServiceSetup) -> None:
    for raw in (b"caf\xe9", b"\xed\xa0\x80", b"\xff\xfe"):
        body, headers = _raw_form(
            [("external_user_id", b"u1"), ("folder", b"F"), ("title", b"T" + raw)],
            b"video.mp4",
            video_bytes(4096),
        )
        r = svc.api.post("/v1/uploads", content=body, headers=headers)
        assert r.status_code == 400, (raw, r.text)
        assert "title is not valid UTF-8" in r.json()["detail"]
        name_body, name_headers = _raw_form(
            [("external_user_id", b"u1"), ("folder", b"F")],
            b"v" + raw + b".mp4",
            video_bytes(4096),
        )
        r = svc.api.post("/v1/uploads", content=name_body, headers=name_headers)
        assert r.status_code == 400, (raw, r.text)
        assert "file name" in r.json()["detail"]


def test_lone_surrogate_in_json_is_refused(svc: ServiceSetup) -> None:
    r = svc.api.post(
        "/v1/accounts/u1/connect",
        content=b'{"expected_username": "a\\ud800b"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text  # pydantic's own refusal names the field
    assert "expected_username" in r.json()["detail"]
    r = svc.api.post("/v1/accounts/u1/connect", json={"expected_username": "a\u202eb"})
    assert r.status_code == 400, r.text
    assert "expected_username" in r.json()["detail"]


def test_odd_upload_ids_are_404_not_an_outage(svc: ServiceSetup) -> None:
    for path in ("/v1/uploads/up_%00", "/v1/uploads/%00", "/v1/uploads/a%C2%85"):
        for method in ("GET", "DELETE"):
            r = svc.api.http.request(method, path)
            assert r.status_code == 404, (method, path, r.text)


def test_odd_user_ids_in_paths_are_400(svc: ServiceSetup) -> None:
    for user in ("u%00x", "u%7Fx", "u%E2%80%AEx", "u%C2%85x"):
        _check_user_paths(svc, user)


def _check_user_paths(svc: ServiceSetup, user: str) -> None:
    for method, path in (
        ("GET", f"/v1/accounts/{user}"),
        ("DELETE", f"/v1/accounts/{user}"),
        ("POST", f"/v1/accounts/{user}/connect"),
        ("GET", f"/v1/uploads?external_user_id={user}"),
    ):
        r = svc.api.http.request(method, path)
        assert r.status_code == 400, (method, path, r.text)
        assert "external_user_id" in r.json()["detail"]
