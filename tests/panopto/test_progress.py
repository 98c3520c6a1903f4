"""Progress counts the bytes read from the file for sending, with a speed over a sliding window.

Unit tests drive :class:`ByteMeter` and the part bodies with an injected clock; the end-to-end
test runs ``vidauth upload --json`` against a sandbox whose S3 link is capped, and checks that
progress moves (in the JSON events) long before the first part is acknowledged.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from tests.panopto.test_pieces import FAST, MemoryS3, _plan, _record, _send
from vidauth.panopto.parallelism import controller_for
from vidauth.panopto.progress import ByteMeter, SpeedWindow
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.transfer import MeteredPart, PartTransfer
from vidauth.panopto.upload_types import UploadEvent
from vidauth.store.db import Database
from vidauth.store.uploads import UploadStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_is_measured_over_a_sliding_window() -> None:
    window = SpeedWindow(5.0)
    assert window.rate(0.0) is None
    for second in range(10):  # 1 MB/s for 10 s
        for tenth in range(10):
            window.add(100_000, second + tenth / 10)
    assert window.rate(10.0) == pytest.approx(1e6, rel=0.03)
    for tenth in range(30):  # then 3 MB/s for 3 s: the window holds 2 s at 1 and 3 s at 3
        window.add(300_000, 10 + tenth / 10)
    assert window.rate(13.0) == pytest.approx((2 * 1e6 + 3 * 3e6) / 5, rel=0.05)
    assert window.rate(20.0) == pytest.approx(0.0, abs=1e5)  # nothing for a while: 0, not 3


def test_meter_counts_reads_and_gives_back_a_failed_attempt() -> None:
    clock = Clock()
    events: list[UploadEvent] = []
    meter = ByteMeter("/v.mp4", 1000, 200, events.append, clock=clock, every=1.0)
    meter.read(100)
    assert events[-1].kind == "progress" and events[-1].bytes_done == 300  # the first: at once
    clock.now += 0.5
    meter.read(100)
    assert len(events) == 1  # at most one event a second here
    clock.now += 0.6
    meter.read(100)
    assert events[-1].bytes_done == 500
    assert events[-1].rate == pytest.approx(300 / 1.1, rel=0.01)
    meter.give_back(150)  # an attempt failed: its bytes will be read again
    assert events[-1].bytes_done == 350
    assert meter.rate() == pytest.approx(300 / 1.1, rel=0.01)  # they did cross the link
    clock.now += 1
    meter.read(650)
    assert events[-1].bytes_done == 1000


def test_a_rewound_body_counts_its_bytes_once(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4000))
    meter = ByteMeter(str(path), 4000, 0, lambda _e: None)
    fd = os.open(path, os.O_RDONLY)
    try:
        body = MeteredPart(fd, 1000, 2000, meter, None)
        body.read(1500)  # e.g. a payload hash
        body.seek(0)
        assert meter.sent == 0
        assert body.read() == path.read_bytes()[1000:3000]
        assert meter.sent == 2000
        body.seek(500)
        body.read(100)
        assert meter.sent == 600  # rewound to 500, read to 600
        body.give_back()
        assert meter.sent == 0
    finally:
        os.close(fd)


def test_a_rewound_body_is_paced_once(tmp_path: Path) -> None:
    from vidauth.panopto.pacing import Pacer

    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4000))
    booked: list[int] = []

    class Booking(Pacer):
        def take(self, nbytes: int) -> float:
            booked.append(nbytes)
            return 0.0

    fd = os.open(path, os.O_RDONLY)
    try:
        body = MeteredPart(fd, 0, 4000, ByteMeter(str(path), 4000, 0, lambda _e: None), Booking(1))
        body.read()  # a payload hash
        body.seek(0)
        body.read(1000)
        body.read()  # the send
        assert sum(booked) == 4000
    finally:
        os.close(fd)


class HalfThenDrop(MemoryS3):
    """Reads half of the first two part attempts, then loses the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.drops = 2

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        with self.lock:
            drop = self.drops > 0
            self.drops -= drop
        if drop:
            kw["Body"].read(kw["ContentLength"] // 2)
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return super().upload_part(**kw)


def test_a_retried_part_gives_its_bytes_back_and_counts_them_again(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.migrate()
    store = UploadStore(db)
    media = tmp_path / "talk.mp4"
    media.write_bytes(os.urandom(5 * 1000 + 123))
    s3 = HalfThenDrop()
    s3.uploads.add("mp-1")
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    events: list[UploadEvent] = []
    lock = threading.Lock()

    def emit(event: UploadEvent) -> None:
        with lock:
            events.append(event)

    with cf.ThreadPoolExecutor(2) as pool:
        transfer = PartTransfer(pool, S3Caller(FAST), store, controller_for(2)[1])
        _send(transfer, plan, media, Stop(threading.Event(), record.id), emit)
    assert s3.objects[plan.key] == media.read_bytes()
    done = [e.bytes_done for e in events if e.kind == "progress"]
    assert done[-1] == media.stat().st_size  # every byte counted once in the end
    assert max(done) <= media.stat().st_size  # never more: the dropped halves were given back
    assert any(b < a for a, b in itertools.pairwise(done))  # a give-back was shown


def test_cli_json_progress_moves_before_any_part_is_acknowledged(
    make_panopto: Any, tmp_path: Path
) -> None:
    setup: PanoptoSetup = make_panopto(s3_bandwidth=12e6)
    setup.va  # noqa: B018 - sign in
    source = write_random(tmp_path / "lecture.mp4", 50 * MiB, seed=7)
    folder = setup.panopto.folder_id("Sandbox Courses", "SIT102 Labs")
    child = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "upload", str(source), "--folder", folder,
         "--no-wait", "--json", "--parallel", "2", "--part-size", "20"],
        env=setup.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[tuple[float, dict[str, Any]]] = []
    assert child.stdout is not None
    for line in child.stdout:
        lines.append((time.monotonic(), json.loads(line)))
    assert child.wait(60) == 0, child.stderr.read() if child.stderr else ""
    events = [data for _, data in lines if "event" in data]
    kinds = [e["event"] for e in events]
    first_part = kinds.index("part")
    before = [e for e in events[:first_part] if e["event"] == "progress"]
    # 50 MiB at 12 MB/s, two parts of 25 MiB at once: the first acknowledgement comes after
    # ~4 s. (Parts larger than what loopback's sockets buffer, or they are read at once.)
    assert len(before) >= 4, kinds
    assert 0 < before[0]["bytes_done"] < 25 * MiB
    assert all(e["total"] == 50 * MiB for e in before)
    done = [e["bytes_done"] for e in events if e["event"] == "progress"]
    assert done == sorted(done) and done[-1] == 50 * MiB
    rates = [e["rate"] for e in events if e["event"] == "progress" and "rate" in e]
    # The bytes read lead those on the link by the sockets' buffers (megabytes on loopback,
    # where the receiver's window is large), so the speed starts high and settles at the cap.
    assert rates and 12e6 * 0.6 < rates[-1] < 12e6 * 1.5
    assert events[-1]["event"] == "processing" or "uploaded" in kinds
