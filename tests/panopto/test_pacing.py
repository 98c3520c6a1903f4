"""The bandwidth limit: rclone's notation, one pacer shared by all parts, and ``--bwlimit``
end to end (a whole ``vidauth upload`` against the sandbox, timed as a user sees it)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from vidauth.domain.rates import parse_rate
from vidauth.panopto.pacing import MIN_BURST, Pacer, shared_pacer


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10M", 10 * MiB),
        ("10m", 10 * MiB),
        ("512K", 512 * 1024),
        ("1.5G", int(1.5 * 1024**3)),
        ("1000000", 1_000_000),
        ("2MiB/s", 2 * MiB),
        ("off", None),
        ("0", None),
    ],
)
def test_rates_in_rclone_notation(text: str, rate: int | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "10X", "-5M", "1e9", "M", "10 M M", "0.1"])
def test_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


class FakeTime:
    """A clock that moves only when somebody sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_a_pacer_holds_the_rate_with_a_small_burst() -> None:
    t = FakeTime()
    pacer = Pacer(1_000_000, clock=t.clock, sleep=t.sleep)
    assert pacer.take(MIN_BURST) == 0.0  # the burst goes at once
    for _ in range(1000):
        pacer.take(16 * 1024)
    sent = MIN_BURST + 1000 * 16 * 1024
    assert t.now == pytest.approx((sent - pacer.burst) / 1e6, rel=1e-6)


def test_a_pause_is_not_made_up_beyond_the_burst() -> None:
    t = FakeTime()
    pacer = Pacer(1_000_000, clock=t.clock, sleep=t.sleep)
    pacer.take(500_000)
    t.now += 60.0  # a minute without reads
    before = t.now
    pacer.take(pacer.burst)
    assert t.now == before  # the burst, no more
    pacer.take(100_000)
    assert t.now - before == pytest.approx(0.1, rel=1e-6)


def test_parts_share_one_pacer() -> None:
    """Eight parts reading at once get the rate together, not each."""
    t = FakeTime()
    pacer = Pacer(2_000_000, clock=t.clock, sleep=t.sleep)
    threads = [
        threading.Thread(target=lambda: [pacer.take(8192) for _ in range(250)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert t.now >= (8 * 250 * 8192 - pacer.burst) / 2e6 * 0.999
    assert shared_pacer(5 * MiB) is shared_pacer(5 * MiB) and shared_pacer(None) is None


def test_cli_bwlimit_holds_the_rate_over_the_transfer(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    source = write_random(tmp_path / "lecture.mp4", 16 * MiB, seed=3)
    folder = panopto.panopto.folder_id("Sandbox Courses", "SIT102 Labs")
    child = panopto.spawn(
        "upload", str(source), "--folder", folder, "--no-wait", "--json", "--bwlimit", "8M"
    )
    assert child.stdout is not None
    stamps: dict[str, float] = {}
    progress: list[dict[str, Any]] = []
    for line in child.stdout:
        data = json.loads(line)
        kind = data.get("event")
        if kind == "progress":
            progress.append(data)
        if kind in ("started", "uploaded"):
            stamps[kind] = time.monotonic()
    assert child.wait(60) == 0
    seconds = stamps["uploaded"] - stamps["started"]
    # 16 MiB at 8 MiB/s: 2 s (less the 0.4 MiB burst), plus CreateMultipartUpload and
    # Complete; the upper bound leaves room for a loaded machine
    assert 1.85 < seconds < 4.0, seconds
    assert progress[-1]["bytes_done"] == 16 * MiB
    assert progress[-1]["rate"] < 8 * MiB * 1.1


def test_cli_refuses_a_bad_bwlimit_in_one_line(panopto: PanoptoSetup, tmp_path: Path) -> None:
    source = write_random(tmp_path / "lecture.mp4", MiB, seed=3)
    done = panopto.cli("upload", str(source), "--folder", "x", "--bwlimit", "fast")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "'fast' is not a rate" in done.stderr
    assert "10M = 10 MiB/s" in done.stderr and "Traceback" not in done.stderr


def test_the_profile_key(tmp_path: Path) -> None:
    from vidauth.errors import ConfigError
    from vidauth.profiles import build_profile, file_source, read_profiles_file

    path = tmp_path / "vidauth.toml"
    base = '[profiles.home]\nprovider = "panopto"\nserver = "https://x.test"\nclient_id = "c"\n'
    path.write_text(base + 'bwlimit = "4M"\n')
    model = read_profiles_file(path)["home"]
    assert build_profile("home", model, file_source(path, "home")).bwlimit == 4 * MiB
    path.write_text(base + "bwlimit = 1000000\n")
    model = read_profiles_file(path)["home"]
    assert build_profile("home", model, file_source(path, "home")).bwlimit == 1_000_000
    path.write_text(base + 'bwlimit = "fast"\n')
    model = read_profiles_file(path)["home"]
    with pytest.raises(ConfigError, match=r"bwlimit = 'fast' is not a rate"):
        build_profile("home", model, file_source(path, "home"))


@pytest.mark.parametrize(("value", "rate"), [("10M", 10 * MiB), ("off", None), ("fast", 0)])
def test_the_service_setting(
    value: str, rate: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidauth.config import load_settings
    from vidauth.errors import ConfigError
    from vidauth.service.settings import load_service_settings

    monkeypatch.setenv("VIDAUTH_UPLOAD_BWLIMIT", value)
    monkeypatch.setenv("VIDAUTH_PUBLIC_URL", "http://127.0.0.1:8000")
    settings = load_settings(env_file=False, vidauth_home=str(tmp_path / "home"))
    if rate == 0:
        with pytest.raises(ConfigError, match="VIDAUTH_UPLOAD_BWLIMIT 'fast' is not a rate"):
            load_service_settings(settings, env_file=tmp_path / "no.env")
        return
    service = load_service_settings(settings, env_file=tmp_path / "no.env")
    assert service.upload_bwlimit == rate


def test_engines_of_a_process_share_the_limit(panopto: PanoptoSetup) -> None:
    """A worker runs one engine per job: with the same limit they share one pacer."""
    from vidauth.panopto.engine import UploadEngine, UploadOptions

    va = panopto.va
    engines = [
        UploadEngine(va.api_client(), None, va.store.db, UploadOptions(bwlimit=3 * MiB))
        for _ in range(2)
    ]
    try:
        first, second = (engine.transfer.pacer for engine in engines)
        assert first is not None and first is second and first.rate == 3 * MiB
    finally:
        for engine in engines:
            engine.close()


def test_the_parts_in_flight_stay_below_what_the_limit_needs() -> None:
    from vidauth.panopto.pacing import parts_for
    from vidauth.panopto.parallelism import InFlightController

    assert parts_for(5 * MiB, 8 * MiB) == 4  # 20 MiB in 4 s: 2.5 parts, +1
    assert parts_for(100 * MiB, 8 * MiB) == 51
    assert parts_for(1024, 8 * MiB) == 2
    now = [0.0]
    controller = InFlightController(32, clock=lambda: now[0])
    controller.limit_to(4, "the bandwidth limit needs no more")
    assert controller.limit == 4
    controller.part_started()
    for _ in range(300):  # a link that would reward more parts: never beyond the bound
        now[0] += 8 * MiB / (controller.limit * 5e6)
        controller.part_done(8 * MiB)
        assert controller.limit <= 4
    controller.start_near(30)
    assert controller.limit <= 4
    pinned = InFlightController(8, pinned=True)
    pinned.limit_to(2, "no")
    assert pinned.limit == 8


def test_an_engine_with_a_limit_bounds_its_parts_in_flight(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.engine import UploadJob, UploadOptions
    from vidauth.panopto.pacing import parts_for

    video = write_random(tmp_path / "small.mp4", 6 * MiB, seed=5)
    folder = panopto.panopto.folder_id("Sandbox Courses", "SIT102 Labs")
    options = UploadOptions(part_size_mib=5, wait=False, bwlimit=5 * MiB)
    with build_engine(panopto.va, options) as engine:
        engine.upload(UploadJob(video, folder))
        assert engine.parallelism.maximum == parts_for(5 * MiB, 5 * MiB) == 5
        assert engine.parallelism.limit <= 5
