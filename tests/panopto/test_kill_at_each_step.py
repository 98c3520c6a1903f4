"""`kill -9` at every step boundary of `vidauth upload`, then the same command again.

The sandbox holds the request of the chosen step (``panopto.hold``) until the process is dead,
then lets it through — the step's answer is lost, as in a real crash. The rerun must give one
session, the right bytes, and exit 0, against the narrowest target (no ListParts, no HEAD).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, sha256, write_random
from vidauth.store.uploads import UploadStore

STEPS = [
    # (hold point, key suffix): what the killed process was doing
    ("CreateMultipartUpload", ".mp4"),  # sessionUpload created, no multipart upload yet
    ("UploadPart", ".mp4"),  # parts going
    ("CompleteMultipartUpload", ".mp4"),  # Complete sent, its answer lost
    ("CreateMultipartUpload", ".xml"),  # the manifest
    ("CompleteMultipartUpload", ".xml"),  # the manifest's Complete, answer lost
    ("State1", None),  # State 1 sent, its answer lost
]


@pytest.mark.parametrize(("point", "key"), STEPS, ids=[f"{p}{k or ''}" for p, k in STEPS])
def test_kill_at_a_step_then_rerun(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path, point: str, key: str | None
) -> None:
    setup = make_panopto()
    setup.va  # noqa: B018 - sign in before the upload process starts
    title = f"killed at {point}{key or ''}"
    source = write_random(tmp_path / "crash.mp4", 11 * MiB + 5, seed=51)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5", "--title", title)
    held = setup.panopto.hold(point, key)
    proc = setup.spawn(*args)
    try:
        assert held.wait_arrived(60), proc.stderr.read() if proc.stderr else ""
        proc.kill()
        proc.wait(10)
    finally:
        held.release()  # the request goes on without anyone to hear its answer
    done = setup.cli(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    records = UploadStore(setup.va.store.db).list_uploads()
    finished = [r for r in records if r.state == "complete"]
    assert len(finished) == 1, records
    [record] = finished
    assert record.session_upload_id is not None
    stored = setup.panopto.object_path(record.session_upload_id, source.name)
    assert sha256(stored) == sha256(source)
    sessions = [s for s in setup.panopto._sessions.values() if s.name == title]
    assert len(sessions) == 1 and sessions[0].id == record.session_id


def test_a_lost_complete_that_never_assembled_sends_the_file_again(
    make_panopto: Callable[..., PanoptoSetup], tmp_path: Path
) -> None:
    """The killed process's Complete never assembled the media (the target lost the multipart
    upload), so the resent Complete answers NoSuchUpload, the upload goes on, and processing
    ends in State 5 naming the missing media: the file goes again in a new sessionUpload."""
    import boto3
    from botocore.config import Config

    setup = make_panopto()
    setup.va  # noqa: B018 - sign in before the upload process starts
    title = "lost complete"
    source = write_random(tmp_path / "lost.mp4", 11 * MiB + 5, seed=52)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5", "--title", title)
    held = setup.panopto.hold("CompleteMultipartUpload", ".mp4")
    proc = setup.spawn(*args)
    try:
        assert held.wait_arrived(60), proc.stderr.read() if proc.stderr else ""
        proc.kill()
        proc.wait(10)
        [first] = UploadStore(setup.va.store.db).list_uploads()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"{setup.server.url}/Panopto",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )
        s3.abort_multipart_upload(
            Bucket="Upload",
            Key=f"{first.session_upload_id}/{source.name}",
            UploadId=first.s3_upload_id,
        )
    finally:
        held.release()  # answered NoSuchUpload, to nobody
    done = setup.cli(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sending the file again" in done.stderr
    records = UploadStore(setup.va.store.db).list_uploads()
    assert [r.state for r in records] == ["complete", "failed"]  # newest first
    stored = setup.panopto.object_path(records[0].session_upload_id, source.name)
    assert sha256(stored) == sha256(source)
    assert len([s for s in setup.panopto._sessions.values() if s.name == title]) == 1
