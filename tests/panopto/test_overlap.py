"""What overlaps the parts: each file's manifest goes beside its parts, not after Complete.

The manifest's three round trips (Create, its one part, Complete) need only the multipart
upload's target, so the engine sends them while the media's parts go; step ``manifest`` is still
recorded after ``assembled``, and a manifest that did not get through early is sent then.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from tests.panopto.test_pieces import FAST, MemoryS3, _finisher, _plan, _record
from vidauth.panopto.api import build_engine
from vidauth.panopto.engine import UploadJob, UploadOptions
from vidauth.panopto.finish import UploadFinisher
from vidauth.panopto.manifest import MANIFEST_NAME
from vidauth.panopto.plan import TransferPlan
from vidauth.panopto.s3calls import Stop
from vidauth.retry import RetryPolicy
from vidauth.store.db import Database
from vidauth.store.uploads import UploadStep, UploadStore


class ManifestS3(MemoryS3):
    """The in-memory target, taking the manifest's part (a bytes body) too."""

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        body = kw["Body"]
        if isinstance(body, bytes):
            kw["Body"] = io.BytesIO(body)
        return super().upload_part(**kw)


def _early(
    tmp_path: Path, s3: MemoryS3, policy: RetryPolicy = FAST
) -> tuple[UploadStore, TransferPlan, Stop, UploadFinisher]:
    """A store, an upload whose multipart upload is open, its stop and a finisher."""
    store = UploadStore(Database(f"sqlite:///{tmp_path / 'store.db'}"))
    store.db.migrate()
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"v" * 2500)
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    return store, plan, Stop(threading.Event(), record.id), _finisher(store, policy)


def test_a_manifest_sent_beside_the_parts_is_not_sent_again(tmp_path: Path) -> None:
    s3 = ManifestS3()
    store, plan, stop, finisher = _early(tmp_path, s3)
    with cf.ThreadPoolExecutor(1) as side:
        early = side.submit(finisher.put_manifest, plan, stop)
        early.result()
        assert plan.step != UploadStep.MANIFEST  # its step waits for Complete's
        finisher.send_manifest(plan, stop, early)
    assert s3.calls == {"create": 1, "upload_part": 1, "complete": 1}
    assert plan.target.key(MANIFEST_NAME) in s3.objects
    assert store.get(plan.record.id).step == UploadStep.MANIFEST


def test_a_manifest_that_failed_beside_the_parts_is_sent_again(tmp_path: Path) -> None:
    s3 = ManifestS3()
    once = RetryPolicy(attempts=1, base_delay=0.001, max_delay=0.001, max_total=1.0)
    store, plan, stop, finisher = _early(tmp_path, s3, once)
    s3.faults["create"] = [EndpointConnectionError(endpoint_url="https://panopto.test")]
    with cf.ThreadPoolExecutor(1) as side:
        early = side.submit(finisher.put_manifest, plan, stop)
        assert early.exception() is not None
        finisher.send_manifest(plan, stop, early)
    assert s3.calls["create"] == 2 and s3.calls["complete"] == 1
    assert plan.target.key(MANIFEST_NAME) in s3.objects
    assert store.get(plan.record.id).step == UploadStep.MANIFEST


def test_a_manifest_still_queued_is_sent_at_once_instead(tmp_path: Path) -> None:
    s3 = ManifestS3()
    store, plan, stop, finisher = _early(tmp_path, s3)
    busy = threading.Event()
    with cf.ThreadPoolExecutor(1) as side:
        side.submit(busy.wait, 10)  # the side thread is busy: the manifest waits its turn
        early = side.submit(finisher.put_manifest, plan, stop)
        finisher.send_manifest(plan, stop, early)
        assert early.cancelled()
        busy.set()
    assert s3.calls == {"create": 1, "upload_part": 1, "complete": 1}
    assert store.get(plan.record.id).step == UploadStep.MANIFEST


@pytest.mark.slow
def test_the_manifest_is_at_the_target_before_the_media_is_assembled(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    folder = panopto.panopto.folder_id("Sandbox Courses", "SIT102 Labs")
    video = write_random(tmp_path / "talk.mp4", 11 * MiB, seed=61)
    held = panopto.panopto.hold("CompleteMultipartUpload", ".mp4")
    options = UploadOptions(part_size_mib=5, wait=False)
    with build_engine(panopto.va, options) as engine, cf.ThreadPoolExecutor(1) as runner:
        running = runner.submit(engine.upload, UploadJob(video, folder))
        try:
            assert held.wait_arrived(60)
            [record] = UploadStore(panopto.va.store.db).list_uploads()
            assert record.session_upload_id is not None
            manifest = panopto.panopto.object_path(record.session_upload_id, MANIFEST_NAME)
            deadline = time.monotonic() + 10
            while not manifest.exists():  # sent beside the parts, before this Complete
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert record.step == UploadStep.COMPLETING  # its step waits for Complete's
        finally:
            held.release()
        result = running.result(60)
    assert result.ok
    assert result.record_id is not None
    finished = UploadStore(panopto.va.store.db).get(result.record_id)
    assert finished is not None and UploadStep.reached(finished.step, UploadStep.MANIFEST)
