"""Two runs of the same upload at once: the second names the process that holds it and leaves
it alone. The lease itself: expiry by the injected clock, a dead holder, races for it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import database_url
from tests.panopto.conftest import MiB, sha256, wait_for_parts, write_random
from vidauth.store.db import Database
from vidauth.store.leases import Holder, LeaseStore
from vidauth.store.uploads import UploadState, UploadStore


def test_a_second_run_of_the_same_upload_leaves_the_first_alone(
    make_panopto, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    setup = make_panopto(s3_bandwidth=4e6)  # about 11 s for the whole file
    setup.va  # noqa: B018 - sign in
    source = write_random(tmp_path / "big.mp4", 40 * MiB + 3, seed=31)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5", "--parallel", "2")
    first = setup.spawn(*args)
    wait_for_parts(setup, 2, first)

    [row] = json.loads(setup.cli("uploads", "--json").stdout)["uploads"]
    assert row["state"] == "uploading" and row["running"]["pid"] == first.pid
    second = setup.cli(*args)
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"vidauth: upload \d+ is already running \(process {first.pid} on "
        rf"{re.escape(socket.gethostname())}\): let it finish, or stop that process and run "
        r"the same command again",
        line,
    ), line

    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "complete" in out
    [record] = UploadStore(setup.va.store.db).list_uploads()
    assert record.state == UploadState.COMPLETE
    assert sha256(setup.panopto.object_path(record.session_upload_id, "big.mp4")) == sha256(source)


@pytest.fixture(params=["sqlite", "postgres"])
def leases(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(database_url(request.param, tmp_path, request))
    db.migrate()
    upload = UploadStore(db).create(
        folder_id="f",
        object_key="a.mp4",
        file_path="/a.mp4",
        file_size=1,
        file_mtime=0.0,
        fingerprint="x",
        part_size=5,
        title="a",
        state=UploadState.UPLOADING,
    )
    now = [1000.0]
    yield LeaseStore(db, clock=lambda: now[0]), upload.id, now
    db.dispose()


def test_lease_is_exclusive_until_it_expires_or_is_released(leases) -> None:  # type: ignore[no-untyped-def]
    store, upload_id, now = leases
    mine, other = Holder(), Holder()
    assert store.acquire(upload_id, mine, ttl=30) is None
    assert store.acquire(upload_id, mine, ttl=30) is None  # renewing one's own
    held = store.acquire(upload_id, other, ttl=30)
    assert held is not None and held.pid == os.getpid() and held.holder == mine.id
    assert set(store.live([upload_id])) == {upload_id}
    now[0] += 25
    store.renew(mine, ttl=30)
    now[0] += 25  # 50 s after the first take, 25 after the beat
    assert store.acquire(upload_id, other, ttl=30) is not None
    now[0] += 6  # no beat for 31 s: lapsed
    assert store.live([upload_id]) == {}
    assert store.acquire(upload_id, other, ttl=30) is None
    store.release(mine, upload_id)  # not mine any more: nothing happens
    assert store.get(upload_id).holder == other.id  # type: ignore[union-attr]
    store.release(other)
    assert store.get(upload_id) is None


def test_a_lease_of_a_process_that_no_longer_exists_lapses_at_once(leases) -> None:  # type: ignore[no-untyped-def]
    store, upload_id, _ = leases
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = Holder(pid=int(gone.stdout))
    assert store.acquire(upload_id, dead, ttl=3600) is None
    assert store.live([upload_id]) == {}
    assert store.acquire(upload_id, Holder(), ttl=30) is None


def test_only_one_of_many_racing_takers_gets_the_lease(leases) -> None:  # type: ignore[no-untyped-def]
    store, upload_id, _ = leases
    holders = [Holder() for _ in range(6)]
    results: list[object] = []
    start = threading.Barrier(len(holders))

    def take(holder: Holder) -> None:
        start.wait()
        results.append(store.acquire(upload_id, holder, ttl=30))

    threads = [threading.Thread(target=take, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r is None for r in results) == 1, results
