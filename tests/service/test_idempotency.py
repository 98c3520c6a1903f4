"""``Idempotency-Key`` on ``POST /v1/uploads``: a retried request never makes a second upload.

Through real HTTP against the service and the sandbox; what reached Panopto is counted in the
sandbox (sessionUploads), what was queued in the service's own list of uploads.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import free_port
from tests.service.conftest import ApiClient, ServiceSetup, video_bytes
from vidauth.service import idempotency
from vidauth.service.idempotency import IdempotencyKeys, request_hash
from vidauth.service.ingest import Received
from vidauth.service.models import IdempotencyKey, Job

FOLDER = "SIT101 Lectures"


def _post(
    api: ApiClient,
    key: str | bytes | None,
    *,
    content: bytes | None = None,
    path: str | None = None,
    title: str = "Lecture 1",
    user: str = "u1",
    filename: str = "lecture.mp4",
) -> httpx.Response:
    data = {"external_user_id": user, "folder": FOLDER, "title": title}
    if path is not None:
        data["path"] = path
    headers = {"Idempotency-Key": key} if key is not None else {}
    if content is not None:
        files = {"file": (filename, content, "video/mp4")}
        return api.http.post("/v1/uploads", data=data, files=files, headers=headers)
    # multipart without a file part (httpx would send a urlencoded form)
    boundary = "idem-" + uuid.uuid4().hex
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in data.items()
    )
    headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    return api.http.post("/v1/uploads", content=f"{body}--{boundary}--\r\n", headers=headers)


def _uploads(service: ServiceSetup, api: ApiClient | None = None) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (api or service.api).get("/v1/uploads").json()["uploads"]
    return listed


def _session_uploads(service: ServiceSetup) -> int:
    panopto = service.sandbox.panopto
    with panopto._lock:
        return len(panopto._uploads)


def _jobs(service: ServiceSetup) -> int:
    with service.ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


# -- the same key again -----------------------------------------------------------------------


def test_same_key_twice_makes_one_upload_and_returns_the_first_answer(
    service: ServiceSetup,
) -> None:
    service.connect("u1")
    key = str(uuid.uuid4())
    content = video_bytes(300_000, seed=3)
    first = _post(service.api, key, content=content)
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    upload_id = first.json()["upload_id"]
    done = service.api.wait_upload(upload_id)
    assert done["state"] == "complete", done

    again = _post(service.api, key, content=content)  # the backend's retry
    assert again.status_code == 202, again.text
    assert again.content == first.content  # the same body, byte for byte ("queued")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == f"/v1/uploads/{upload_id}"
    assert [u["upload_id"] for u in _uploads(service)] == [upload_id]
    assert _session_uploads(service) == 1
    # the retry's copy of the file was not kept
    assert not list(service.ctx.service.upload_dir.rglob("*.mp4"))


def test_normalized_fields_are_the_same_request(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    content = video_bytes(50_000, seed=4)
    first = _post(service.api, "k-1", content=content, title="Lecture 1")
    assert first.status_code == 202, first.text
    again = _post(service.api, "k-1", content=content, title="  Lecture 1 ")
    assert again.status_code == 202 and again.json() == first.json()
    assert len(_uploads(service)) == 1


def test_without_a_key_each_request_is_an_upload(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    content = video_bytes(50_000, seed=5)
    ids = {_post(service.api, None, content=content).json()["upload_id"] for _ in range(2)}
    assert len(ids) == 2 and len(_uploads(service)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Lecture 2"},
        {"content": video_bytes(50_000, seed=7)},  # same size, other bytes
        {"content": video_bytes(50_001, seed=6)},
        {"filename": "other.mp4"},
        {"user": "u2"},
    ],
)
def test_same_key_with_another_request_is_422_naming_the_key(
    tenant_service: ServiceSetup, change: dict[str, Any]
) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    service.connect("u2")
    request: dict[str, Any] = {"content": video_bytes(50_000, seed=6), "title": "Lecture 1"}
    first = _post(service.api, "order-42", **request)
    assert first.status_code == 202, first.text
    other = _post(service.api, "order-42", **{**request, **change})
    assert other.status_code == 422, other.text
    body = other.json()
    assert body["error"] == "idempotency_key_reused"
    assert "'order-42'" in body["detail"]
    assert [u["upload_id"] for u in _uploads(service)] == [first.json()["upload_id"]]


def test_path_upload_with_a_key(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    (service.tenant_dir / "talk.mp4").write_bytes(video_bytes(40_000, seed=8))
    first = _post(service.api, "p-1", path="talk.mp4")
    assert first.status_code == 202, first.text
    assert _post(service.api, "p-1", path="talk.mp4").content == first.content
    assert _post(service.api, "p-1", path="other.mp4").status_code == 422
    assert len(_uploads(service)) == 1


def test_keys_are_per_tenant(service: ServiceSetup) -> None:
    other = service.client(service.new_key(tenant="other"))
    service.connect("u1")
    service.connect("u1", api=other)
    content = video_bytes(40_000, seed=9)
    mine = _post(service.api, "shared-key", content=content)
    theirs = _post(other, "shared-key", content=content)
    assert mine.status_code == theirs.status_code == 202, (mine.text, theirs.text)
    assert mine.json()["upload_id"] != theirs.json()["upload_id"]
    assert len(_uploads(service)) == 1 and len(_uploads(service, other)) == 1


def test_a_refused_request_does_not_use_up_the_key(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    content = video_bytes(40_000, seed=10)
    refused = _post(service.api, "retry-me", content=content)  # u1 has not connected yet
    assert refused.status_code == 409 and refused.json()["error"] == "not_connected"
    service.connect("u1")
    accepted = _post(service.api, "retry-me", content=content)
    assert accepted.status_code == 202, accepted.text
    assert "idempotent-replayed" not in accepted.headers
    # a refused request with another body under the key of an accepted one is still 422
    assert _post(service.api, "retry-me", content=b"not a video").status_code == 422


@pytest.mark.parametrize(
    "key",
    # (other control characters never reach the app: the HTTP server refuses the request)
    ["", "x" * 256, "tab\there", "caf\xe9".encode("latin-1")],
    ids=["empty", "too-long", "tab", "non-ascii"],
)
def test_bad_keys_are_400(tenant_service: ServiceSetup, key: str | bytes) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    r = _post(service.api, key, content=video_bytes(10_000))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request" and "Idempotency-Key" in r.json()["detail"]
    assert _uploads(service) == []


def test_longest_and_odd_keys_are_accepted(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    for key in ("x" * 255, "a b", "!~\"'{}<>", "1"):
        r = _post(service.api, key, content=video_bytes(10_000, seed=len(key)))
        assert r.status_code == 202, (key, r.text)


def test_two_key_headers_are_400(tenant_service: ServiceSetup) -> None:
    service = tenant_service  # a tenant of its own on the module's service
    service.connect("u1")
    files = {"file": ("a.mp4", video_bytes(10_000), "video/mp4")}
    r = service.api.http.post(
        "/v1/uploads",
        data={"external_user_id": "u1", "folder": FOLDER},
        files=files,
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert r.status_code == 400 and "one Idempotency-Key" in r.json()["detail"]


# -- a key whose first request is still in flight, died, or expired --------------------------


def _path_request(service: ServiceSetup, name: str = "held.mp4") -> str:
    """A shared-dir file and the hash of the form _post sends for it."""
    (service.tenant_dir / name).write_bytes(video_bytes(20_000, seed=11))
    fields = {"external_user_id": "u1", "folder": FOLDER, "title": "Lecture 1", "path": name}
    return request_hash(Received(fields=fields))


def _hold(service: ServiceSetup, key: str, digest: str, **row: Any) -> None:
    """A claim as another request would have left it."""
    now = time.time()
    values = {"upload_id": "up_" + "0" * 24, "created_at": now, "claimed_at": now, **row}
    with service.ctx.db.session() as session:
        session.add(IdempotencyKey(tenant="default", key=key, request_hash=digest, **values))


def test_key_in_progress_is_409_with_retry_after(service: ServiceSetup) -> None:
    service.connect("u1")
    digest = _path_request(service)
    _hold(service, "busy", digest)
    started = time.monotonic()
    r = _post(service.api, "busy", path="held.mp4")
    waited = time.monotonic() - started
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "idempotency_key_in_progress" and "'busy'" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1
    assert idempotency.WAIT_SECONDS - 0.5 <= waited < idempotency.WAIT_SECONDS + 5
    assert _uploads(service) == []


def test_second_request_waits_for_the_first_answer(service: ServiceSetup) -> None:
    service.connect("u1")
    digest = _path_request(service)
    _hold(service, "slow", digest, upload_id="up_" + "1" * 24)
    body = '{"upload_id":"up_111111111111111111111111","state":"queued"}'

    def finish_first() -> None:
        time.sleep(1.0)
        with service.ctx.db.session() as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == "slow")
                .values(status_code=202, response_body=body)
            )

    threading.Thread(target=finish_first, daemon=True).start()
    r = _post(service.api, "slow", path="held.mp4")
    assert r.status_code == 202 and r.text == body
    assert r.headers["idempotent-replayed"] == "true"
    assert _uploads(service) == []  # this request queued nothing


def test_a_dead_claim_is_taken_over(service: ServiceSetup) -> None:
    service.connect("u1")
    digest = _path_request(service)
    old = time.time() - idempotency.STALE_SECONDS - 1
    _hold(service, "dead", digest, claimed_at=old, created_at=old)  # its upload never queued
    r = _post(service.api, "dead", path="held.mp4")
    assert r.status_code == 202, r.text
    assert "idempotent-replayed" not in r.headers
    assert [u["upload_id"] for u in _uploads(service)] == [r.json()["upload_id"]]
    assert _post(service.api, "dead", path="held.mp4").content == r.content


def test_a_dead_claim_whose_upload_was_queued_answers_that_upload(service: ServiceSetup) -> None:
    service.connect("u1")
    digest = _path_request(service)
    queued = _post(service.api, None, path="held.mp4").json()["upload_id"]
    old = time.time() - idempotency.STALE_SECONDS - 1
    _hold(service, "died-late", digest, upload_id=queued, claimed_at=old, created_at=old)
    r = _post(service.api, "died-late", path="held.mp4")
    assert r.status_code == 202 and r.json()["upload_id"] == queued, r.text
    assert r.headers["idempotent-replayed"] == "true"
    assert len(_uploads(service)) == 1


def test_a_key_older_than_a_day_is_new(service: ServiceSetup) -> None:
    service.connect("u1")
    digest = _path_request(service)
    day_ago = time.time() - idempotency.KEEP_SECONDS - 1
    _hold(service, "old", "0" * 64, status_code=202, response_body="{}", created_at=day_ago)
    r = _post(service.api, "old", path="held.mp4")  # another request: fine once expired
    assert r.status_code == 202 and r.json()["upload_id"], r.text
    with service.ctx.db.session() as session:
        row = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "old")).one()
        assert row.request_hash == digest and row.created_at > day_ago


def test_sweep_deletes_keys_older_than_the_keep_time(service: ServiceSetup) -> None:
    now = time.time()
    digest = "0" * 64
    _hold(service, "fresh", digest, created_at=now - idempotency.KEEP_SECONDS + 60)
    _hold(service, "stale", digest, created_at=now - idempotency.KEEP_SECONDS - 60)
    assert idempotency.KEEP_SECONDS >= 24 * 3600
    keys = IdempotencyKeys(service.ctx.db)
    assert keys.sweep(now) == 1
    with service.ctx.db.session() as session:
        left = session.scalars(select(IdempotencyKey.key)).all()
    assert left == ["fresh"]


# -- racing requests --------------------------------------------------------------------------


@pytest.fixture
def race_service(
    request: pytest.FixtureRequest, make_service: Callable[..., ServiceSetup]
) -> Iterator[tuple[ServiceSetup, str]]:
    """The service on SQLite or on PostgreSQL, plus a second instance (its own app, database
    pool and key store) on the same database, as behind a load balancer: (setup, second URL)."""
    from vidauth._serving import BackgroundServer
    from vidauth.service.app import create_app
    from vidauth.service.context import ServiceContext

    env = {}
    if request.param == "postgres":
        env["VIDAUTH_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    service = make_service(**env)
    assert service.ctx.db.is_sqlite == (request.param == "sqlite")
    ctx = ServiceContext(service.ctx.settings, service.ctx.service)
    second = BackgroundServer(create_app(ctx), port=free_port()).start()
    try:
        yield service, second.url
    finally:
        second.stop()
        ctx.close()


@pytest.mark.parametrize(
    "race_service", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_identical_requests_racing_make_one_upload(
    race_service: tuple[ServiceSetup, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, second_url = race_service
    service.connect("u1")
    other = service.client(service.key)
    other.http.base_url = httpx.URL(second_url)
    # Both requests reach the claim together: each waits for the other before its INSERT.
    together = threading.Barrier(2, timeout=30)
    first_calls = threading.local()
    real_claim = IdempotencyKeys.claim

    def claim(self: IdempotencyKeys, *args: Any) -> Any:
        if not getattr(first_calls, "done", False):
            first_calls.done = True
            together.wait()
        return real_claim(self, *args)

    monkeypatch.setattr(IdempotencyKeys, "claim", claim)
    content = video_bytes(200_000, seed=12)
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda api: _post(api, key, content=content), [service.api, other]))
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert answers[0].content == answers[1].content  # the same upload_id
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == ["", "true"]
    upload_id = answers[0].json()["upload_id"]
    assert _jobs(service) == 1
    done = service.api.wait_upload(upload_id)
    assert done["state"] == "complete", done
    assert _session_uploads(service) == 1


@pytest.mark.postgres
def test_many_retries_racing_on_postgres_make_one_upload_per_key(
    make_service: Callable[..., ServiceSetup], postgres_url: str
) -> None:
    service = make_service(VIDAUTH_DATABASE_URL=postgres_url, run_worker=False)
    service.connect("u1")
    keys = [f"batch-{n}" for n in range(8)]
    contents = {key: video_bytes(20_000, seed=n) for n, key in enumerate(keys)}
    start = threading.Barrier(len(keys) * 3, timeout=30)

    def send(key: str) -> httpx.Response:
        api = ApiClient(service.url, service.key)
        try:
            start.wait()
            return _post(api, key, content=contents[key], title=key)
        finally:
            api.close()

    with ThreadPoolExecutor(len(keys) * 3) as pool:
        sent = [(key, pool.submit(send, key)) for key in keys for _ in range(3)]
        answers = [(key, future.result()) for key, future in sent]
    assert all(r.status_code == 202 for _, r in answers), [r.text for _, r in answers]
    by_key: dict[str, set[str]] = {}
    for key, r in answers:
        by_key.setdefault(key, set()).add(r.json()["upload_id"])
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert _jobs(service) == len(keys)
    assert sorted(u["title"] for u in _uploads(service)) == sorted(keys)


def test_request_hash_normalizes_the_fields(tmp_path: Path) -> None:
    # The hash covers the file only when there is one; fields alone otherwise.
    with_file = Received(fields={"title": "x"}, file_path=tmp_path / "a", filename="a", sha256="0")
    other_file = Received(fields={"title": "x"}, file_path=tmp_path / "a", filename="a", sha256="1")
    assert request_hash(with_file) != request_hash(other_file)
    assert request_hash(Received(fields={"title": "x", "description": ""})) == request_hash(
        Received(fields={"title": " x"})
    )
    assert request_hash(Received(fields={"description": "x"})) != request_hash(
        Received(fields={"description": " x"})
    )
