"""Parts in flight end to end: a target that answers SlowDown beyond 3 parts at once, and a
pinned ``--parallel``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, sha256, write_random
from vidauth.panopto.api import build_engine
from vidauth.panopto.engine import UploadJob, UploadOptions
from vidauth.panopto.parallelism import INITIAL_PARTS_IN_FLIGHT
from vidauth.store.uploads import UploadStore
from vidauth_sandbox.panopto_api import PanoptoSandbox

FOLDER = PanoptoSandbox.folder_id("Sandbox Courses", "SIT102 Labs")


def test_a_throttling_target_still_completes_with_fewer_parts_in_flight(
    make_panopto: Callable[..., PanoptoSetup],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    from vidauth.cli import run

    setup = make_panopto(s3_max_parts_in_flight=3, s3_latency=0.05)
    setup.va  # noqa: B018 - sign in
    for key, value in setup.env().items():
        if key.startswith(("PANOPTO_", "VIDAUTH_")):
            monkeypatch.setenv(key, value)
    video = write_random(tmp_path / "throttled.mp4", 61 * MiB, seed=21)  # 13 parts of 5 MiB
    code = run(["-v", "upload", str(video), "--folder", "SIT102 Labs", "--part-size", "5"])
    assert code == 0
    [record] = UploadStore(setup.va.store.db).list_uploads()
    assert record.state == "complete"
    assert sha256(setup.panopto.object_path(record.session_upload_id, video.name)) == sha256(video)
    stats = setup.panopto.s3.stats()
    assert stats["slow_downs"] >= 1  # it started with the first guess and was told to slow down
    # …and did, instead of being refused part after part: the first burst (up to 13 - 3
    # parts) is refused together, then few more
    assert stats["slow_downs"] < 2 * 13
    backoffs = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("parts in flight") and "slow down" in r.getMessage()
    ]
    first = INITIAL_PARTS_IN_FLIGHT
    assert backoffs
    assert backoffs[0] == f"parts in flight {first} -> {first // 2}: the target asked to slow down"


def test_parallel_pins_the_parts_in_flight(panopto: PanoptoSetup, tmp_path: Path) -> None:
    video = write_random(tmp_path / "pinned.mp4", 31 * MiB, seed=22)
    panopto.panopto.s3.latency = 0.05
    with build_engine(panopto.va, UploadOptions(parallel=2, part_size_mib=5, wait=False)) as e:
        e.upload(UploadJob(video, FOLDER))
        assert e.parallelism.changes == [] and e.slots.peak == 2
    assert panopto.panopto.s3.stats()["peak_parts_in_flight"] == 2


def test_adaptive_starts_parts_spaced_and_within_the_bound(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "adaptive.mp4", 51 * MiB, seed=23)
    panopto.panopto.s3.latency = 0.05
    with build_engine(panopto.va, UploadOptions(part_size_mib=5, wait=False)) as e:
        e.upload(UploadJob(video, FOLDER))
        assert 1 < e.slots.peak <= INITIAL_PARTS_IN_FLIGHT  # 11 parts, from the first guess
        assert 0 < e.slots.spacing <= 0.05  # round trip (~50 ms) / the parts in flight
        assert e.slots.bytes_in_flight == 0 and e.slots.in_flight == 0
    assert panopto.panopto.s3.stats()["slow_downs"] == 0
