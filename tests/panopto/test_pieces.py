"""Focused tests of the upload engine's pieces, each alone: plan/resume and transfer.

The S3 side is an in-memory multipart target (a collaborator, not the code under test); the
store is a real migrated SQLite database.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from vidauth.errors import ErrorCode, RemoteServiceError
from vidauth.panopto.files import fingerprint, part_count
from vidauth.panopto.finish import UploadFinisher
from vidauth.panopto.optional import LIST_PARTS, OptionalCalls
from vidauth.panopto.parallelism import controller_for
from vidauth.panopto.plan import TransferPlan, UploadPlanner
from vidauth.panopto.s3calls import S3Caller, Stop, call_refused, retryable
from vidauth.panopto.signature import SignatureNegotiator
from vidauth.panopto.target import parse_upload_target
from vidauth.panopto.transfer import PartTransfer
from vidauth.panopto.upload_types import UploadEvent, UploadInterrupted, UploadOptions
from vidauth.retry import RetryPolicy
from vidauth.store.db import Database
from vidauth.store.host_calls import HostCallStore
from vidauth.store.uploads import UploadRecord, UploadState, UploadStep, UploadStore

PART = 1000
TARGET = "https://panopto.test/Panopto/Upload/0f0f"


def _error(status: int, code: str, op: str, retry_after: str | None = None) -> ClientError:
    headers = {"retry-after": retry_after} if retry_after else {}
    meta = {"HTTPStatusCode": status, "HTTPHeaders": headers}
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": meta}, op)


class MemoryS3:
    """A multipart target in memory; ``faults[op]`` is a list of exceptions raised in turn."""

    def __init__(self, page_size: int = 1000) -> None:
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.uploads: set[str] = set()
        self.faults: dict[str, list[BaseException]] = {}
        self.calls: dict[str, int] = {}
        self.attempted: list[int] = []  # part numbers, one per UploadPart attempt
        self.page_size = page_size
        self.lock = threading.Lock()

    def _enter(self, op: str) -> None:
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            pending = self.faults.get(op)
            if pending:
                raise pending.pop(0)

    def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self._enter("create")
        self.uploads.add("mp-1")
        return {"UploadId": "mp-1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        with self.lock:
            self.attempted.append(kw["PartNumber"])
        self._enter("upload_part")
        data = kw["Body"].read()
        assert len(data) == kw["ContentLength"]
        with self.lock:
            self.parts[kw["PartNumber"]] = data
        return {"ETag": '"' + hashlib.md5(data).hexdigest() + '"'}  # noqa: S324 - an S3 ETag

    def list_parts(self, **kw: Any) -> dict[str, Any]:
        self._enter("list_parts")
        if kw["UploadId"] not in self.uploads:
            raise _error(404, "NoSuchUpload", "ListParts")
        numbers = sorted(n for n in self.parts if n > kw["PartNumberMarker"])
        page = numbers[: self.page_size]
        return {
            "Parts": [
                {
                    "PartNumber": n,
                    "Size": len(self.parts[n]),
                    "ETag": '"' + hashlib.md5(self.parts[n]).hexdigest() + '"',  # noqa: S324
                }
                for n in page
            ],
            "IsTruncated": len(numbers) > len(page),
            "NextPartNumberMarker": page[-1] if page else 0,
        }

    def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self._enter("complete")
        numbers = [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]]
        assert numbers == sorted(numbers)
        self.objects[kw["Key"]] = b"".join(self.parts[n] for n in numbers)
        self.uploads.discard(kw["UploadId"])
        return {}

    def head_object(self, **kw: Any) -> dict[str, Any]:
        if kw["Key"] not in self.objects:
            raise _error(404, "NotFound", "HeadObject")
        return {"ContentLength": len(self.objects[kw["Key"]])}

    def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.uploads.discard(kw["UploadId"])
        return {}


class OneClient:
    """Stands in for S3Clients: every endpoint gets the same MemoryS3."""

    def __init__(self, s3: MemoryS3) -> None:
        self.s3 = s3

    def get(self, endpoint: str, signature: str) -> MemoryS3:
        return self.s3


FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002, max_total=5.0)


@pytest.fixture
def store(tmp_path: Path) -> UploadStore:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.migrate()
    return UploadStore(db)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "talk.mp4"
    path.write_bytes(os.urandom(5 * PART + 123))  # 6 parts, the last one short
    return path


def _record(store: UploadStore, path: Path, s3_upload_id: str | None = None) -> UploadRecord:
    size = path.stat().st_size
    return store.create(
        account_id=None,
        server=None,
        folder_id="f",
        session_upload_id="su-1",
        upload_target=TARGET,
        s3_upload_id=s3_upload_id,
        object_key=path.name,
        file_path=str(path),
        file_size=size,
        file_mtime=path.stat().st_mtime,
        fingerprint=fingerprint(path, size),
        part_size=PART,
        title="talk",
        description=None,
        state=UploadState.UPLOADING,
    )


def _planner(
    store: UploadStore,
    s3: MemoryS3,
    policy: RetryPolicy = FAST,
    optional: OptionalCalls | None = None,
) -> UploadPlanner:
    return UploadPlanner(
        None,  # type: ignore[arg-type] # these tests never reach Panopto's REST API
        store,
        OneClient(s3),  # type: ignore[arg-type]
        S3Caller(policy),
        UploadOptions(),
        SignatureNegotiator("auto", None),
        optional=optional,
    )


def _finisher(store: UploadStore, policy: RetryPolicy = FAST) -> UploadFinisher:
    return UploadFinisher(
        None,  # type: ignore[arg-type] # Complete and the manifest need no REST call
        store,
        S3Caller(policy),
        UploadOptions(),
        threading.Event(),
    )


def _send(transfer: PartTransfer, plan: TransferPlan, media: Path, stop: Stop, emit: Any) -> int:
    """Send the missing parts, then CompleteMultipartUpload, as the engine does."""
    sent = transfer.send(plan, media, stop, emit)
    _finisher(transfer.store).complete(plan, stop)
    return sent


def _plan(record: UploadRecord, s3: MemoryS3, size: int) -> TransferPlan:
    target = parse_upload_target(TARGET)
    key = target.key(record.object_key)
    return TransferPlan(record, target, s3, key, size, part_count(size, record.part_size))


@pytest.fixture
def pool() -> Iterator[cf.ThreadPoolExecutor]:
    with cf.ThreadPoolExecutor(3) as executor:
        yield executor


# -- plan / resume ----------------------------------------------------------------------------


def test_changed_file_detection(store: UploadStore, media: Path) -> None:
    record = _record(store, media)
    size, mtime = media.stat().st_size, media.stat().st_mtime
    assert not UploadPlanner.changed(record, media, size, mtime)
    assert UploadPlanner.changed(record, media, size + 1, mtime)
    assert UploadPlanner.changed(record, media, size, mtime + 1)
    data = bytearray(media.read_bytes())
    data[0] ^= 0xFF  # same size, same mtime, other bytes
    media.write_bytes(bytes(data))
    os.utime(media, (mtime, mtime))
    assert UploadPlanner.changed(record, media, size, mtime)


def test_prepare_opens_a_multipart_upload_and_records_it(store: UploadStore, media: Path) -> None:
    s3 = MemoryS3()
    record = _record(store, media)
    events: list[UploadEvent] = []
    plan = _planner(store, s3).prepare(
        record, media.stat().st_size, Stop(threading.Event(), record.id), events.append
    )
    assert plan.record.s3_upload_id == "mp-1" == store.get(record.id).s3_upload_id  # type: ignore[union-attr]
    assert plan.count == 6 and plan.missing == [1, 2, 3, 4, 5, 6] and events == []


def test_resume_reconciles_with_list_parts_across_pages(store: UploadStore, media: Path) -> None:
    s3 = MemoryS3(page_size=2)
    data = media.read_bytes()
    s3.uploads.add("mp-1")
    s3.parts = {1: data[:PART], 2: data[PART : 2 * PART], 4: data[3 * PART : 4 * PART]}
    s3.parts[5] = b"short"  # a part the target holds with the wrong size: sent again
    record = _record(store, media, s3_upload_id="mp-1")
    store.add_part(record.id, 3, '"stale"', PART)  # recorded, but the target lost it
    events: list[UploadEvent] = []
    plan = _planner(store, s3).prepare(
        record, len(data), Stop(threading.Event(), record.id), events.append
    )
    assert sorted(plan.parts) == [1, 2, 4] and plan.missing == [3, 5, 6]
    assert store.parts(record.id) == plan.parts
    assert s3.calls["list_parts"] == 2  # four parts, two pages of two
    assert [e.kind for e in events] == ["resumed"] and "3 of 6 parts" in (events[0].message or "")


def test_resume_after_complete_was_sent_asks_nothing_and_keeps_the_recorded_parts(
    store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()
    record = _record(store, media, s3_upload_id="mp-gone")
    for n in range(1, 7):
        store.add_part(record.id, n, f'"{n}"', PART if n < 6 else 123)
    store.update(record.id, step=UploadStep.COMPLETING)
    plan = _planner(store, s3).prepare(
        store.get(record.id),  # type: ignore[arg-type]
        media.stat().st_size,
        Stop(threading.Event(), record.id),
        lambda e: None,
    )
    assert plan.step == UploadStep.COMPLETING and plan.missing == []
    assert s3.calls == {}  # no ListParts, no HeadObject: the store's record is enough


def test_a_complete_answered_no_such_upload_counts_as_assembled(
    store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()  # knows no multipart upload: an earlier Complete went through
    record = _record(store, media, s3_upload_id="mp-gone")
    plan = _plan(record, s3, media.stat().st_size)
    plan.parts = {n: (f'"{n}"', PART) for n in range(1, 7)}
    s3.faults["complete"] = [_error(404, "NoSuchUpload", "CompleteMultipartUpload")]
    _finisher(store).complete(plan, Stop(threading.Event(), record.id))
    assert store.get(record.id).step == UploadStep.ASSEMBLED == plan.step  # type: ignore[union-attr]
    assert s3.calls["complete"] == 1


def test_a_vanished_multipart_upload_is_opened_again(store: UploadStore, media: Path) -> None:
    s3 = MemoryS3()
    record = _record(store, media, s3_upload_id="mp-gone")
    store.add_part(record.id, 1, '"1"', PART)
    plan = _planner(store, s3).prepare(
        record, media.stat().st_size, Stop(threading.Event(), record.id), lambda e: None
    )
    assert plan.record.s3_upload_id == "mp-1" and plan.missing == [1, 2, 3, 4, 5, 6]
    assert store.parts(record.id) == {} and plan.step == UploadStep.PARTS


@pytest.mark.parametrize(
    ("status", "code"),
    [(501, "NotImplemented"), (405, "MethodNotAllowed"), (403, "AccessDenied")],
)
def test_a_refused_list_parts_trusts_the_store_and_is_not_asked_again(
    store: UploadStore, media: Path, status: int, code: str
) -> None:
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    s3.faults["list_parts"] = [_error(status, code, "ListParts")]
    record = _record(store, media, s3_upload_id="mp-1")
    store.add_part(record.id, 2, '"2"', PART)
    store.add_part(record.id, 6, '"short"', 5)  # a size that does not fit the plan: sent again
    optional = OptionalCalls(HostCallStore(store.db))
    planner = _planner(store, s3, optional=optional)
    stop = Stop(threading.Event(), record.id)
    plan = planner.prepare(record, media.stat().st_size, stop, lambda e: None)
    assert plan.missing == [1, 3, 4, 5, 6] and s3.calls["list_parts"] == 1  # never retried
    assert HostCallStore(store.db).get("panopto.test", LIST_PARTS) == "refused"
    # Another process, another upload to the same host: ListParts is not asked again.
    again = _planner(store, s3, optional=OptionalCalls(HostCallStore(store.db)))
    plan = again.prepare(record, media.stat().st_size, stop, lambda e: None)
    assert plan.missing == [1, 3, 4, 5, 6] and s3.calls["list_parts"] == 1


def test_a_signature_access_denied_is_not_a_refused_call() -> None:
    signature = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "Signature version not supported"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "ListParts",
    )
    assert not call_refused(signature)
    assert call_refused(_error(403, "AccessDenied", "ListParts"))
    assert not call_refused(_error(404, "NoSuchUpload", "ListParts"))
    assert not retryable(_error(501, "NotImplemented", "PutObject"))
    assert retryable(_error(503, "SlowDown", "UploadPart"))


def test_list_parts_retries_transient_failures(store: UploadStore, media: Path) -> None:
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    s3.faults["list_parts"] = [
        _error(503, "SlowDown", "ListParts"),
        EndpointConnectionError(endpoint_url=TARGET),
    ]
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _planner(store, s3).prepare(
        record, media.stat().st_size, Stop(threading.Event(), record.id), lambda e: None
    )
    assert plan.missing == [1, 2, 3, 4, 5, 6] and s3.calls["list_parts"] == 3


# -- transfer ---------------------------------------------------------------------------------


def _transfer(
    pool: cf.Executor, store: UploadStore, policy: RetryPolicy = FAST, tokens: Any = None
) -> PartTransfer:
    return PartTransfer(pool, S3Caller(policy), store, controller_for(4)[1], tokens)


def test_transfer_sends_only_missing_parts_and_assembles(
    pool: cf.ThreadPoolExecutor, store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()
    data = media.read_bytes()
    record = _record(store, media, s3_upload_id="mp-1")
    s3.uploads.add("mp-1")
    plan = _plan(record, s3, len(data))
    s3.parts[2] = data[PART : 2 * PART]
    plan.parts[2] = ('"two"', PART)
    events: list[UploadEvent] = []
    sent = _send(
        _transfer(pool, store), plan, media, Stop(threading.Event(), record.id), events.append
    )
    assert sent == len(data) - PART
    assert s3.calls["upload_part"] == 5
    assert s3.objects[plan.key] == data
    assert sorted(store.parts(record.id)) == [1, 3, 4, 5, 6]  # acknowledged parts recorded
    assert max(e.bytes_done for e in events if e.kind == "part") == len(data)


def test_transient_part_failures_are_retried_with_a_fresh_token(
    pool: cf.ThreadPoolExecutor, store: UploadStore, media: Path
) -> None:
    class Tokens:
        calls = 0

        def access_token(self, min_validity: float | None = None) -> str:
            Tokens.calls += 1
            return "t"

        def refreshed_after_rejection(self, rejected: str) -> str:
            return "t"

    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    s3.faults["upload_part"] = [_error(503, "SlowDown", "UploadPart", retry_after="0")] * 2
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    _send(
        _transfer(pool, store, tokens=Tokens()),
        plan,
        media,
        Stop(threading.Event(), record.id),
        lambda e: None,
    )
    assert s3.calls["upload_part"] == 6 + 2 and Tokens.calls == 6 + 2
    assert s3.objects[plan.key] == media.read_bytes()  # a retried body starts at its offset


def test_part_retries_obey_the_policy_bounds(
    pool: cf.ThreadPoolExecutor, store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    s3.faults["upload_part"] = [_error(500, "InternalError", "UploadPart")] * 100
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    one_lane = cf.ThreadPoolExecutor(1)
    try:
        with pytest.raises(RemoteServiceError) as info:
            _transfer(one_lane, store, RetryPolicy(attempts=3, base_delay=0.001)).send(
                plan, media, Stop(threading.Event(), record.id), lambda e: None
            )
    finally:
        one_lane.shutdown()
    error = info.value
    assert error.code == ErrorCode.UPLOAD_TARGET_FAILED
    assert error.facts["attempts"] == 3 and error.facts["status"] == 500
    assert s3.attempted.count(1) == 3  # VIDAUTH_RETRY_ATTEMPTS bounds a part as any call
    assert len(s3.attempted) <= 4  # the failure stops the siblings at their next attempt
    assert "vidauth" not in str(error) and "complete" not in s3.calls


def test_a_refused_part_is_not_retried(
    pool: cf.ThreadPoolExecutor, store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    s3.faults["upload_part"] = [_error(403, "AccessDenied", "UploadPart")]
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    with pytest.raises(RemoteServiceError, match=r"AccessDenied \(HTTP 403\) after 1 attempt"):
        _transfer(pool, store).send(plan, media, Stop(threading.Event(), record.id), lambda e: None)


def test_a_cancelled_transfer_stops_and_stays_resumable(
    pool: cf.ThreadPoolExecutor, store: UploadStore, media: Path
) -> None:
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(UploadInterrupted) as info:
        _transfer(pool, store).send(plan, media, Stop(cancel, record.id), lambda e: None)
    assert info.value.code == ErrorCode.UPLOAD_INTERRUPTED
    assert "upload_part" not in s3.calls and "mp-1" in s3.uploads
