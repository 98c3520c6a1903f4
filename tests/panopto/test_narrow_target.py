"""Uploads against the narrowest Panopto: only the four multipart calls are answered.

The sandbox's S3 target refuses PutObject, GetObject, HeadObject and ListParts by default (as
nobody knows whether Panopto answers them); every test here goes through real sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, sha256, write_random
from tests.panopto.conftest import upload_engine as engine
from vidauth.cli.doctor import INFO, run_doctor
from vidauth.config import load_settings
from vidauth.panopto.engine import UploadEvent, UploadJob
from vidauth.panopto.manifest import MANIFEST_NAME
from vidauth.store.host_calls import HostCallStore
from vidauth.store.uploads import UploadState, UploadStep, UploadStore

SIT102 = ("Sandbox Courses", "SIT102 Labs")


def interrupted_after_parts(setup: PanoptoSetup, source: Path, parts: int) -> int:
    """Start an upload and stop it once ``parts`` parts are acknowledged; its record id."""
    folder = setup.panopto.folder_id(*SIT102)
    with engine(setup, part_size_mib=5, parallel=1) as eng:

        def stop_after(event: UploadEvent) -> None:
            if event.kind == "part" and event.bytes_done >= parts * 5 * MiB:
                eng.cancel_event.set()

        [result] = eng.upload_many([UploadJob(source, folder)], stop_after)
    assert result.state == UploadState.UPLOADING and result.record_id is not None
    return result.record_id


@pytest.mark.parametrize("refusal", [501, 405, 403])
def test_resume_trusts_the_store_when_list_parts_is_refused(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path, refusal: int
) -> None:
    setup = make_panopto(s3_refusal=refusal)
    source = write_random(tmp_path / "narrow.mp4", 17 * MiB + 99, seed=41)
    record_id = interrupted_after_parts(setup, source, 2)
    store = UploadStore(setup.va.store.db)
    recorded = store.parts(record_id)
    assert len(recorded) >= 2 and store.get(record_id).step == UploadStep.PARTS  # type: ignore[union-attr]
    before = setup.panopto.upload_part_requests

    with engine(setup, part_size_mib=5) as eng:
        result = eng.upload(UploadJob(source, setup.panopto.folder_id(*SIT102)))
    assert result.state == UploadState.COMPLETE and result.resumed
    stored = setup.panopto.object_path(result.upload_id, source.name)
    assert sha256(stored) == sha256(source)
    # only the missing parts went again, and the manifest as one part of its own
    assert setup.panopto.upload_part_requests - before == 4 - len(recorded) + 1
    assert setup.panopto.object_path(result.upload_id, MANIFEST_NAME).exists()
    stats = setup.panopto.s3.stats()
    assert stats["refused_calls"] == {"ListParts": 1}  # asked once; no PutObject, no HEAD
    host = setup.server.url.split("://")[1]
    assert HostCallStore(setup.va.store.db).get(host, "ListParts") == "refused"

    # A second interrupted upload to the same host: ListParts is not asked again.
    other = write_random(tmp_path / "second.mp4", 12 * MiB, seed=42)
    interrupted_after_parts(setup, other, 1)
    with engine(setup, part_size_mib=5) as eng:
        again = eng.upload(UploadJob(other, setup.panopto.folder_id(*SIT102)))
    assert again.state == UploadState.COMPLETE
    assert sha256(setup.panopto.object_path(again.upload_id, other.name)) == sha256(other)
    assert setup.panopto.s3.stats()["refused_calls"] == {"ListParts": 1}

    # `vidauth doctor` shows what was learned about the host.
    checks = run_doctor(load_settings(**setup.flags()), probe_client=False)
    [learned] = [c for c in checks if c.name == "upload hosts"]
    assert learned.status == INFO and host in learned.detail
    assert "ListParts refused" in learned.detail and "signature s3" in learned.detail


def test_list_parts_cross_checks_where_the_host_answers_it(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path
) -> None:
    setup = make_panopto(s3_allow=frozenset({"ListParts"}))
    source = write_random(tmp_path / "checked.mp4", 12 * MiB, seed=43)
    record_id = interrupted_after_parts(setup, source, 1)
    store = UploadStore(setup.va.store.db)
    store.add_part(record_id, 3, '"never-acknowledged"', 2 * MiB)  # the target does not hold it
    with engine(setup, part_size_mib=5) as eng:
        result = eng.upload(UploadJob(source, setup.panopto.folder_id(*SIT102)))
    assert result.state == UploadState.COMPLETE
    assert sha256(setup.panopto.object_path(result.upload_id, source.name)) == sha256(source)
    host = setup.server.url.split("://")[1]
    assert HostCallStore(setup.va.store.db).get(host, "ListParts") == "ok"
    assert setup.panopto.s3.stats()["refused_calls"] == {}


def test_a_fresh_upload_sends_nothing_beyond_the_multipart_calls(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    source = write_random(tmp_path / "plain.mp4", 6 * MiB, seed=44)
    with engine(panopto, part_size_mib=5) as eng:
        result = eng.upload(UploadJob(source, panopto.panopto.folder_id(*SIT102)))
    assert result.state == UploadState.COMPLETE
    assert panopto.panopto.s3.stats()["refused_calls"] == {}
    record = UploadStore(panopto.va.store.db).get(result.record_id)  # type: ignore[arg-type]
    assert record is not None and record.step == UploadStep.FINISHING  # State 1 was sent


@pytest.mark.parametrize("answer", ["empty", "204", "object"])
def test_the_state1_put_may_answer_an_empty_200_or_a_204(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path, answer: str
) -> None:
    setup = make_panopto(state1_answer=answer)
    source = write_random(tmp_path / "finish.mp4", 6 * MiB, seed=45)
    with engine(setup, part_size_mib=5) as eng:
        result = eng.upload(UploadJob(source, setup.panopto.folder_id(*SIT102)))
    assert result.state == UploadState.COMPLETE and result.session_id
    assert sha256(setup.panopto.object_path(result.upload_id, source.name)) == sha256(source)
