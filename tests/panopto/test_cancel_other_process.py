"""`vidauth uploads cancel` of an upload that another process is running keeps its word."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from vidauth.store.uploads import UploadStore


def _running(setup: PanoptoSetup, tmp_path: Path, point: str, key: str | None) -> tuple:  # type: ignore[type-arg]
    setup.va  # noqa: B018 - sign in before the upload process starts
    source = write_random(tmp_path / "other.mp4", 6 * MiB, seed=61)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5")
    held = setup.panopto.hold(point, key)
    proc = setup.spawn(*args, "--title", f"other {point}")
    assert held.wait_arrived(60), proc.stderr.read() if proc.stderr else ""
    [record] = UploadStore(setup.va.store.db).list_uploads()
    return held, proc, record


def test_a_cancel_before_state1_is_kept(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path
) -> None:
    setup = make_panopto()
    held, proc, record = _running(setup, tmp_path, "CompleteMultipartUpload", ".mp4")
    try:
        done = setup.cli("uploads", "cancel", str(record.id))
        assert done.returncode == 0, done.stderr
    finally:
        held.release()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err  # the running process stops: it did not publish
    assert "Traceback" not in err and "unexpected" not in err, err
    assert setup.panopto.session_upload_state(record.session_upload_id)["State"] == 2
    assert not [s for s in setup.panopto._sessions.values() if s.name.startswith("other")]


def test_a_cancel_once_state1_is_sent_is_refused(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path
) -> None:
    setup = make_panopto()
    held, proc, record = _running(setup, tmp_path, "State1", None)
    try:
        done = setup.cli("uploads", "cancel", str(record.id))
        assert done.returncode == 2, done.stderr
        assert "point of no return" in done.stderr
    finally:
        held.release()
    proc.wait(60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    deadline = time.monotonic() + 10
    while not [s for s in setup.panopto._sessions.values() if s.name.startswith("other")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
