"""The upload engine against the sandbox over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.panopto.conftest import MiB, PanoptoSetup, manifest_bytes, sha256, write_random
from tests.panopto.conftest import upload_engine as engine
from vidauth.panopto.engine import UploadEngine, UploadEvent, UploadJob, UploadOptions
from vidauth.store.uploads import UploadState

SIT102 = ("Sandbox Courses", "SIT102 Labs")


def test_multipart_upload_assembles_the_same_bytes(panopto: PanoptoSetup, tmp_path: Path) -> None:
    source = write_random(tmp_path / "lecture.mp4", 17 * MiB + 12345)
    folder = panopto.panopto.folder_id(*SIT102)
    events: list[UploadEvent] = []
    with engine(panopto, part_size_mib=5, parallel=4) as eng:
        result = eng.upload(
            UploadJob(source, folder, title='Week 3 & <Tests> "ünï"'), events.append
        )
    assert result.state == UploadState.COMPLETE, result
    assert result.session_id and result.viewer_url and result.session_id in result.viewer_url
    stored = panopto.panopto.object_path(result.upload_id, "lecture.mp4")
    assert sha256(stored) == sha256(source)
    sent = source.stat().st_size + manifest_bytes(panopto, result.upload_id)
    assert panopto.panopto.bytes_received == sent
    assert [e.kind for e in events if e.kind not in ("part", "progress")] == [
        "started",
        "uploaded",
        "processing",
        "complete",
    ]
    assert sum(1 for e in events if e.kind == "part") == 4
    with panopto.va.api_client() as api:
        session = api.get(f"/Panopto/api/v1/sessions/{result.session_id}").json()
    assert session["Name"] == 'Week 3 & <Tests> "ünï"'


def test_a_part_failing_twice_is_retried_without_restarting(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    source = write_random(tmp_path / "retry.mp4", 11 * MiB, seed=2)
    folder = panopto.panopto.folder_id(*SIT102)
    panopto.panopto.fail_parts(2)
    with engine(panopto, part_size_mib=5, parallel=2) as eng:
        result = eng.upload(UploadJob(source, folder))
    assert result.state == UploadState.COMPLETE
    assert panopto.panopto.upload_part_requests == 3 + 2 + 1  # and the manifest's one part
    sent = source.stat().st_size + manifest_bytes(panopto, result.upload_id)
    assert panopto.panopto.bytes_received == sent
    assert sha256(panopto.panopto.object_path(result.upload_id, "retry.mp4")) == sha256(source)


def test_upload_outlives_the_token_and_survives_a_401(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path
) -> None:
    setup = make_panopto(access_token_lifetime=2, s3_bandwidth=6e6)
    va = setup.va
    source = write_random(tmp_path / "long.mp4", 20 * MiB, seed=3)
    folder = setup.panopto.folder_id(*SIT102)
    first_token = va.token_manager().access_token(0)
    started = time.monotonic()

    def on_event(event: UploadEvent) -> None:
        if event.kind == "uploaded":
            setup.reject_next = 1  # the next API call (GET before State 1) gets a 401

    with engine(setup, part_size_mib=5, parallel=2) as eng:
        result = eng.upload(UploadJob(source, folder), on_event)
    assert result.state == UploadState.COMPLETE
    assert time.monotonic() - started > 3  # longer than the token's life
    assert setup.rejections == 1  # the 401 was answered by a refresh and one retry
    refreshes = setup.server.state.stats_snapshot()["token_successes"]["refresh_token"]
    assert refreshes >= 2
    assert va.token_manager().access_token(0) != first_token
    assert sha256(setup.panopto.object_path(result.upload_id, "long.mp4")) == sha256(source)


def test_a_persistent_403_is_a_permission_error(panopto: PanoptoSetup, tmp_path: Path) -> None:
    from vidauth.errors import PermissionDenied

    source = write_random(tmp_path / "denied.mp4", MiB)
    folder = panopto.panopto.folder_id(*SIT102)
    panopto.panopto.deny_folder(folder)
    with engine(panopto) as eng:
        result = eng.upload_many([UploadJob(source, folder)])[0]
    assert isinstance(result.error, PermissionDenied) and result.exit_code == 3
    assert "HTTP 403" in str(result.error) and "\n" not in str(result.error)


def test_cancel_aborts_and_deletes(panopto: PanoptoSetup, tmp_path: Path) -> None:
    import threading

    source = write_random(tmp_path / "stop.mp4", 15 * MiB, seed=4)
    folder = panopto.panopto.folder_id(*SIT102)
    stop = threading.Event()

    def on_event(event: UploadEvent) -> None:
        if event.kind == "part":
            stop.set()

    va = panopto.va
    with UploadEngine(
        va.api_client(),
        va.token_manager(),
        va.store.db,
        UploadOptions(part_size_mib=5, parallel=1),
        account_id=va.account().id,
        cancel=stop,
    ) as eng:
        result = eng.upload_many([UploadJob(source, folder)], on_event)[0]
        assert result.error is not None and result.exit_code == 130
        assert result.state == UploadState.UPLOADING and result.record_id
    with engine(panopto) as eng:
        record = eng.cancel(result.record_id)
        assert record.state == UploadState.CANCELLED
        assert eng.cancel(result.record_id).state == UploadState.CANCELLED  # idempotent
    remote = panopto.panopto.session_upload_state(result.upload_id)
    assert remote["State"] == 2


def test_changed_file_starts_over(panopto: PanoptoSetup, tmp_path: Path) -> None:
    import threading

    source = write_random(tmp_path / "edit.mp4", 12 * MiB, seed=5)
    folder = panopto.panopto.folder_id(*SIT102)
    stop = threading.Event()
    va = panopto.va
    with UploadEngine(
        va.api_client(),
        va.token_manager(),
        va.store.db,
        UploadOptions(part_size_mib=5, parallel=1),
        account_id=va.account().id,
        cancel=stop,
    ) as eng:
        first = eng.upload_many(
            [UploadJob(source, folder)], lambda e: stop.set() if e.kind == "part" else None
        )[0]
    assert first.exit_code == 130
    write_random(source, 12 * MiB, seed=6)
    events: list[UploadEvent] = []
    with engine(panopto, part_size_mib=5) as eng:
        second = eng.upload(UploadJob(source, folder), events.append)
    assert second.state == UploadState.COMPLETE and not second.resumed
    assert second.upload_id != first.upload_id
    assert any(e.kind == "restarted" and "changed" in (e.message or "") for e in events)
    assert panopto.panopto.session_upload_state(first.upload_id)["State"] == 2
    assert sha256(panopto.panopto.object_path(second.upload_id, "edit.mp4")) == sha256(source)
