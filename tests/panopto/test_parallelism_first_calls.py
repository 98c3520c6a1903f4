"""Files that start together: once the upload host's signature is settled, their first S3 calls
(CreateMultipartUpload) go at once, not one at a time behind the negotiation's lock."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from pathlib import Path

from tests.panopto.test_signature import HOST, Target
from vidauth.panopto.signature import SignatureNegotiator
from vidauth.store.db import Database
from vidauth.store.signatures import SignatureHostStore


class SlowTarget(Target):
    """A target whose every call takes a while; counts the calls in progress together."""

    def __init__(self, accepts: str, seconds: float) -> None:
        super().__init__(accepts)
        self.seconds = seconds
        self.now = 0
        self.peak = 0
        self.first_done = threading.Event()

    def __call__(self, scheme: str) -> str:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.first_done.is_set():  # the queued calls wait to meet each other
                threading.Event().wait(self.seconds)
            return super().__call__(scheme)
        finally:
            with self.lock:
                self.now -= 1
            self.first_done.set()


def test_calls_queued_behind_the_negotiation_then_go_together(tmp_path: Path) -> None:
    store = SignatureHostStore(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    target = SlowTarget("s3", seconds=0.3)
    negotiator = SignatureNegotiator("auto", store)
    files = 6
    barrier = threading.Barrier(files)

    def first_call(_file: int) -> str:
        barrier.wait()  # the files start together, before the host is settled
        return negotiator.first_call(HOST, target)[1]

    with cf.ThreadPoolExecutor(files) as pool:
        assert list(pool.map(first_call, range(files))) == ["s3"] * files
    assert target.refused() == []
    assert target.peak >= 3  # one at a time under the lock would be 1
