"""The plateau of parts in flight is remembered per upload host and the next upload starts there.

A unit test drives the transfer with an injected clock (so the controller measures and doubles)
over an in-memory target; the end-to-end test seeds the store and counts the parts the sandbox's
S3 target receives at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import os
import threading
from pathlib import Path

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from tests.panopto.test_pieces import FAST, TARGET, MemoryS3, _plan, _record, _send
from vidauth.panopto.api import build_engine
from vidauth.panopto.engine import UploadJob, UploadOptions
from vidauth.panopto.parallelism import INITIAL_PARTS_IN_FLIGHT, InFlightController, PartSlots
from vidauth.panopto.s3calls import S3Caller, Stop
from vidauth.panopto.signature import upload_host
from vidauth.panopto.transfer import PartTransfer
from vidauth.store.db import Database
from vidauth.store.plateaus import PlateauStore
from vidauth.store.uploads import UploadStore


def test_the_transfer_starts_near_the_remembered_plateau_and_records_the_new_one(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.migrate()
    store, plateaus = UploadStore(db), PlateauStore(db)
    host = upload_host(TARGET.rsplit("/Upload", 1)[0])
    plateaus.remember(host, INITIAL_PARTS_IN_FLIGHT + 4)
    media = tmp_path / "talk.mp4"
    media.write_bytes(os.urandom(200 * 1000))  # 200 parts of 1000 bytes
    s3 = MemoryS3()
    s3.uploads.add("mp-1")
    record = _record(store, media, s3_upload_id="mp-1")
    plan = _plan(record, s3, media.stat().st_size)
    assert upload_host(plan.target.endpoint) == host
    ticks = itertools.count()
    lock = threading.Lock()

    def clock() -> float:  # every look at the clock is a tenth of a second later
        with lock:
            return next(ticks) / 10

    controller = InFlightController(2 * INITIAL_PARTS_IN_FLIGHT, clock=clock)
    slots = PartSlots(controller, clock=clock)
    slots.spacing = 0.0
    with cf.ThreadPoolExecutor(4) as pool:
        transfer = PartTransfer(pool, S3Caller(FAST), store, slots, plateaus=plateaus)
        _send(transfer, plan, media, Stop(threading.Event(), record.id), lambda _e: None)
    steps = [(c.old, c.new) for c in controller.changes]
    # started near what was remembered
    assert steps[0] == (INITIAL_PARTS_IN_FLIGHT, INITIAL_PARTS_IN_FLIGHT + 4)
    assert s3.objects[plan.key] == media.read_bytes()
    assert plateaus.get(host) == controller.plateau() is not None


def test_the_next_upload_starts_with_the_parts_in_flight_remembered(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    wide = INITIAL_PARTS_IN_FLIGHT + 8  # parts: more than the first guess
    video = write_random(tmp_path / "wide.mp4", wide * 5 * MiB, seed=31)
    s3 = panopto.panopto.s3
    s3.latency = 0.3  # every part waits, so all that may start are in flight together
    plateaus = PlateauStore(panopto.va.store.db)
    host = upload_host(panopto.server.url + "/Panopto")
    plateaus.remember(host, wide)
    with build_engine(panopto.va, UploadOptions(part_size_mib=5, wait=False)) as engine:
        engine.upload(UploadJob(video, panopto.panopto.folder_id("Sandbox Courses", "SIT102 Labs")))
        assert engine.slots.peak > INITIAL_PARTS_IN_FLIGHT
    assert s3.stats()["peak_parts_in_flight"] > INITIAL_PARTS_IN_FLIGHT


def test_a_plateau_can_be_forgotten(tmp_path: Path) -> None:
    plateaus = PlateauStore(Database(f"sqlite:///{tmp_path / 'store.db'}"))
    plateaus.remember("a.example:443", 24)
    plateaus.remember("b.example:443", 48)
    plateaus.forget("a.example:443")
    assert (plateaus.get("a.example:443"), plateaus.get("b.example:443")) == (None, 48)
    plateaus.forget()
    assert plateaus.get("b.example:443") is None
