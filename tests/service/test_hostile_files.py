"""Issue 19, point 4: a path upload is known only by the descriptor that was checked.

A file swapped (for a link, a FIFO, another file) between the worker's check and its use, or a
hard link to a file the service can read, is never opened by path, read, fingerprinted or
recorded; a FIFO never blocks a thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.service.conftest import ServiceSetup, video_bytes

FOLDER = "SIT101 Lectures"
NOT_FOUND = "path: no such file in your shared directory"


def _recorded_paths(service: ServiceSetup) -> list[str]:
    with service.ctx.db.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(text("SELECT file_path FROM uploads")).all()]


def test_a_hard_link_to_a_file_the_service_reads_is_refused(
    make_service: Callable[..., ServiceSetup], tmp_path: Path
) -> None:
    service = make_service(run_worker=False)
    service.connect("u1")
    secret = tmp_path / "secret.mp4"  # stands for the service's own secret.key
    secret.write_bytes(video_bytes(20_000, seed=3))
    os.link(secret, service.tenant_dir / "linked.mp4")
    r = service.api.upload("u1", path="linked.mp4", folder=FOLDER)
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == NOT_FOUND
    # A file that gains a second link after the 202 is refused by the worker too.
    (service.tenant_dir / "mine.mp4").write_bytes(video_bytes(20_000, seed=4))
    r = service.api.upload("u1", path="mine.mp4", folder=FOLDER)
    assert r.status_code == 202, r.text
    os.link(service.tenant_dir / "mine.mp4", tmp_path / "second-name.mp4")
    done = _run_worker(service, r.json()["upload_id"])
    assert done["state"] == "failed", done


def test_a_fifo_is_refused_at_once(service: ServiceSetup) -> None:
    service.connect("u1")
    os.mkfifo(service.tenant_dir / "pipe.mp4")
    started = time.monotonic()
    r = service.api.upload("u1", path="pipe.mp4", folder=FOLDER)
    assert r.status_code == 400, r.text
    assert time.monotonic() - started < 5


def _run_worker(service: ServiceSetup, upload_id: str, timeout: float = 20) -> dict[str, Any]:
    from vidauth.service.worker import Worker

    worker = Worker(service.ctx).start()
    try:
        return service.api.wait_upload(upload_id, timeout=timeout)
    finally:
        worker.stop()


@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_a_swap_after_the_workers_check_is_never_opened_by_path(
    make_service: Callable[..., ServiceSetup],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    swap: str,
) -> None:
    """The attacker wins the race: the file is swapped right after the worker checked it,
    before the engine plans the upload (the RENAME_EXCHANGE loop of the issue, made certain)."""
    from vidauth.service import worker as worker_module

    service = make_service(run_worker=False)
    service.connect("u1")
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 100)
    race = service.tenant_dir / "race.mp4"
    race.write_bytes(video_bytes(50_000, seed=7))
    r = service.api.upload("u1", path="race.mp4", folder=FOLDER)
    assert r.status_code == 202, r.text
    real = worker_module.opener_for

    def check_then_swap(*args: Any) -> Any:
        open_file = real(*args)
        race.unlink()
        if swap == "symlink":
            race.symlink_to(secret)
        else:
            os.mkfifo(race)
        return open_file

    monkeypatch.setattr(worker_module, "opener_for", check_then_swap)
    started = time.monotonic()
    done = _run_worker(service, r.json()["upload_id"])
    assert done["state"] == "failed", done
    assert time.monotonic() - started < 15
    assert str(secret) not in _recorded_paths(service)
    assert not [p for p in _recorded_paths(service) if not p.startswith(str(service.tenant_dir))]
