"""Less before the first byte: one S3 client per upload host, built while the REST calls go, and
an upload that does not import what only sign-in needs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from vidauth.panopto.api import build_engine
from vidauth.panopto.engine import UploadJob, UploadOptions
from vidauth.panopto.target import s3_client


def test_one_s3_client_per_upload_host_prepared_before_it_is_needed(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    folder = panopto.panopto.folder_id("Sandbox Courses", "SIT102 Labs")
    videos = [write_random(tmp_path / f"clip{i}.mp4", 6 * MiB, seed=40 + i) for i in range(3)]
    expected = (panopto.server.url + "/Panopto", "s3")
    with build_engine(panopto.va, UploadOptions(part_size_mib=5, wait=False)) as engine:
        deadline = time.monotonic() + 20
        while expected not in engine.s3._clients:  # built before any upload asked for it
            assert time.monotonic() < deadline
            time.sleep(0.02)
        results = engine.upload_many([UploadJob(v, folder) for v in videos])
        assert all(r.ok for r in results), results
        # the client built on the side thread from the server's URL is the one every file used
        assert list(engine.s3._clients) == [expected]


def test_the_upload_command_does_not_import_sign_in_modules() -> None:
    code = (
        "import sys, vidauth.cli.app, vidauth.cli.upload, vidauth.panopto.api, vidauth.client;"
        "print(sorted(m for m in sys.modules if m.startswith(('joserfc', 'vidauth.oauth.identity',"
        " 'vidauth.oauth.oidc', 'vidauth.oauth.authorization_code'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow  # starts a process
def test_the_upload_path_loads_neither_boto3_nor_the_postgresql_dialect(tmp_path: Path) -> None:
    """botocore's client is all the parts need (boto3 adds s3transfer's import); an up-to-date
    SQLite store needs no PostgreSQL dialect, even to remember a plateau."""
    from vidauth.store.db import Database

    url = f"sqlite:///{tmp_path / 'store.db'}"
    Database(url).migrate()  # as a signed-in user's store is
    code = (
        "import sys, vidauth.cli.app, vidauth.cli.upload, vidauth.panopto.api, vidauth.client\n"
        "from vidauth.panopto.target import S3Clients\n"
        "from vidauth.store.db import Database\n"
        "from vidauth.store.plateaus import PlateauStore\n"
        "S3Clients(4).get('http://127.0.0.1:9/Panopto', 's3')\n"
        f"PlateauStore(Database({url!r})).remember('127.0.0.1:9', 8)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('boto3', 's3transfer', "
        "'sqlalchemy.dialects.postgresql'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_s3_client_still_loads_the_whole_s3_model() -> None:
    """botocore's loader is told that S3 is the only service (so it does not list some 460
    service folders first); what it loads for S3 is still the whole model."""
    client = s3_client("http://127.0.0.1:9/Panopto")
    try:
        operations = set(client.meta.service_model.operation_names)
    finally:
        client.close()
    used = {
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "PutObject",
    }
    assert used <= operations
    assert len(operations) > 50  # the whole model, not a trimmed one
