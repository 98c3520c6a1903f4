"""``vidauth upload / uploads / folders / sessions`` end to end against the sandbox."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, manifest_bytes, sha256, write_random
from vidauth.store.uploads import UploadStore

SIT102 = ("Sandbox Courses", "SIT102 Labs")


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("vidauth:")]
    assert len(lines) == 1, err
    return lines[0]


def test_upload_by_folder_name_prints_ids_and_viewer_url(
    run_cli, panopto: PanoptoSetup, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = write_random(tmp_path / "one.mp4", 6 * MiB, seed=10)
    b = write_random(tmp_path / "two.mov", 3 * MiB, seed=11)
    code, out, err = run_cli(
        "upload", str(a), str(b), "--folder", "SIT102 Labs", "--part-size", "5"
    )
    assert code == 0, err
    assert "upload " in err and "started" in err  # upload id printed as it starts
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(
        "complete; session" in line and "Viewer.aspx" in line for line in lines
    )
    code, out, _ = run_cli("sessions", "--folder", panopto.panopto.folder_id(*SIT102), "--json")
    names = [s["name"] for s in json.loads(out)["sessions"]]
    assert {"one", "two", "Lab 1 Setting Up"} <= set(names)


def test_upload_json_lines(run_cli, panopto: PanoptoSetup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = write_random(tmp_path / "j.mp4", MiB, seed=12)
    folder = panopto.panopto.folder_id(*SIT102)
    code, out, _ = run_cli(
        "upload", str(a), "--folder", folder, "--json", "--no-wait", "--title", "T & <x>"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert rows[0]["event"] == "started" and rows[0]["upload_id"]
    result = rows[-1]["result"]
    assert (
        result["ok"]
        and result["state"] == "processing"
        and result["upload_id"] == rows[0]["upload_id"]
    )


@pytest.mark.parametrize(
    ("make", "extra", "code", "needle"),
    [
        (lambda d: d / "missing.mp4", [], 2, "no such file"),
        (lambda d: d, [], 2, "is a directory"),
        (lambda d: (d / "empty.mp4").touch() or d / "empty.mp4", [], 2, "empty (0 bytes)"),
        (lambda d: (d / "notes.txt").write_bytes(b"x") and d / "notes.txt", [], 2, "--force"),
        (
            lambda d: (d / "x.mp4").write_bytes(b"x") and d / "x.mp4",
            ["--part-size", "30"],
            2,
            "5 to 23 MiB",
        ),
        (
            lambda d: (d / "x.mp4").write_bytes(b"x") and d / "x.mp4",
            ["--signature", "v9"],
            2,
            "--signature",
        ),
        (
            lambda d: (d / "x.mp4").write_bytes(b"x") and d / "x.mp4",
            ["--folder", " "],  # the last --folder wins
            2,
            "--folder is empty",
        ),
    ],
)
def test_bad_files_and_options_fail_before_anything_is_created(  # type: ignore[no-untyped-def]
    run_cli, panopto: PanoptoSetup, tmp_path: Path, make, extra, code, needle
) -> None:
    path = make(tmp_path)
    good = write_random(tmp_path / "good.mp4", MiB)
    got, _out, err = run_cli("upload", str(good), str(path), "--folder", "SIT102 Labs", *extra)
    assert got == code
    assert needle in _error_line(err)
    assert UploadStore(panopto.va.store.db).list_uploads() == []  # nothing was created


def test_unreadable_file(panopto: PanoptoSetup, tmp_path: Path) -> None:
    path = tmp_path / "secret.mp4"
    path.write_bytes(b"x")
    path.chmod(0)
    command = [sys.executable, "-m", "vidauth", "upload", str(path), "--folder", "SIT102 Labs"]
    if os.geteuid() == 0:
        # root reads any file: run without the capabilities that let it (CI runs as root)
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test this as root"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    done = subprocess.run(
        command, env=panopto.env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "permission denied" in _error_line(done.stderr)
    assert "Traceback" not in done.stderr


def test_unknown_ambiguous_and_denied_folders(
    run_cli, panopto: PanoptoSetup, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    good = write_random(tmp_path / "good.mp4", MiB)
    code, _, err = run_cli("upload", str(good), "--folder", "No Such Folder")
    assert code == 2 and "no folder named" in _error_line(err)
    code, _, err = run_cli("upload", str(good), "--folder", "Duplicate Name")
    line = _error_line(err)
    assert code == 2 and "matches 2 folders" in line and "give the folder id" in line
    code, _, err = run_cli("upload", str(good), "--folder", "SIT10")
    line = _error_line(err)
    assert code == 2 and "similar: SIT101 Lectures" in line
    assert line.endswith("; give the exact name or the folder id"), line
    code, _, err = run_cli("upload", str(good), "--folder", "00000000-0000-0000-0000-00000000abcd")
    assert code == 2 and "was not found" in _error_line(err)
    folder = panopto.panopto.folder_id(*SIT102)
    panopto.panopto.deny_folder(folder)
    code, _, err = run_cli("upload", str(good), "--folder", folder)
    assert code == 3 and "HTTP 403" in _error_line(err)
    assert UploadStore(panopto.va.store.db).list_uploads() == []


def test_target_rejecting_parts_leaves_a_resumable_upload(
    run_cli, panopto: PanoptoSetup, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    good = write_random(tmp_path / "rejected.mp4", 6 * MiB, seed=13)
    panopto.panopto.fail_parts(100, status=403)
    code, _, err = run_cli("upload", str(good), "--folder", "SIT102 Labs", "--part-size", "5")
    assert code == 4 and "AccessDenied (HTTP 403)" in _error_line(err)
    panopto.panopto.s3._faults.clear()
    code, _out, err = run_cli("upload", str(good), "--folder", "SIT102 Labs", "--part-size", "5")
    assert code == 0, err
    assert "resuming upload" in err
    [record] = UploadStore(panopto.va.store.db).list_uploads()
    assert record.state == "complete"


def test_folders_pages_and_uploads_listing_and_cancel(
    run_cli, panopto: PanoptoSetup, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("folders", "--json")
    names = [f["name"] for f in json.loads(out)["folders"]]
    assert code == 0 and len(names) >= 27 and "Archive 25" in names  # > 2 pages of 10
    code, out, _ = run_cli("folders", "--search", "Archive", "--json")
    assert len(json.loads(out)["folders"]) == 25
    code, out, _ = run_cli("folders", "--parent", panopto.panopto.folder_id("Sandbox Courses"))
    assert code == 0 and "SIT101 Lectures" in out
    # an interrupted upload, listed and cancelled
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.engine import UploadJob, UploadOptions

    source = write_random(tmp_path / "half.mp4", 11 * MiB, seed=14)
    with build_engine(panopto.va, UploadOptions(part_size_mib=5, parallel=1)) as eng:
        eng.cancel_event.set()
        result = eng.upload_many([UploadJob(source, panopto.panopto.folder_id(*SIT102))])[0]
    assert result.exit_code == 130
    code, out, _ = run_cli("uploads", "--json")
    [row] = json.loads(out)["uploads"]
    assert row["state"] == "paused" and row["upload_id"] == result.upload_id
    code, _, err = run_cli("uploads", "cancel", str(row["id"]))
    assert code == 0 and "Cancelled upload" in err
    assert panopto.panopto.session_upload_state(result.upload_id)["State"] == 2
    code, out, _ = run_cli("uploads")
    assert code == 0 and "cancelled" in out
    code, _, err = run_cli("uploads", "cancel", "999")
    assert code == 2 and "no upload 999" in _error_line(err)


def test_kill_and_resume_sends_only_the_missing_parts(make_panopto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup = make_panopto(s3_bandwidth=15e6)
    va = setup.va
    size = 60 * MiB + 777
    source = write_random(tmp_path / "big.mp4", size, seed=15)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5", "--parallel", "2")
    proc = setup.spawn(*args)
    store = UploadStore(va.store.db)
    deadline = time.monotonic() + 30
    acked = 0
    while time.monotonic() < deadline:
        records = store.list_uploads()
        acked = len(store.parts(records[0].id)) if records else 0
        if acked >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert acked >= 4, proc.stderr.read() if proc.stderr else ""
    [record] = store.list_uploads()
    assert record.state == "uploading"
    recorded = store.parts(record.id)
    # a part whose whole body was in the socket when the process died still reaches the target
    # after the kill; count from the moment the target has taken in all of it
    before = _settled_bytes_received(setup)
    done = subprocess_run(setup, *args)
    assert done.returncode == 0, done.stderr
    assert "resuming upload" in done.stderr
    sent_again = setup.panopto.bytes_received - before
    sent_again -= manifest_bytes(setup, record.session_upload_id)
    missing = size - sum(part_size for _, part_size in recorded.values())
    assert sent_again <= missing  # only the parts not recorded (the store's record is enough)
    assert sent_again >= missing - 2 * 5 * MiB  # at most the parts in flight at the kill
    assert sha256(setup.panopto.object_path(record.session_upload_id, "big.mp4")) == sha256(source)


def _settled_bytes_received(setup: PanoptoSetup, quiet: float = 1.0) -> int:
    """The target's byte count once it has not changed for ``quiet`` seconds (at most 15 s)."""
    deadline = time.monotonic() + 15
    last, since = setup.panopto.bytes_received, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = setup.panopto.bytes_received
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def subprocess_run(setup: PanoptoSetup, *args: str):  # type: ignore[no-untyped-def]
    return setup.cli(*args, timeout=60)


def test_progress_is_plain_lines_when_not_a_terminal(panopto: PanoptoSetup, tmp_path: Path) -> None:
    source = write_random(tmp_path / "plain.mp4", 12 * MiB, seed=21)
    done = panopto.cli("upload", str(source), "--folder", "SIT102 Labs", "--part-size", "5")
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr and "\r" not in done.stderr  # no bars, no colours
    progress = [
        int(m.group(1))
        for m in re.finditer(
            r"^plain\.mp4: (\d+)% \(\d+/\d+ bytes, (?:\?|[\d.]+ [kMG]?B/s)\)$", done.stderr, re.M
        )
    ]
    assert len(progress) >= 2 and progress == sorted(progress) and progress[-1] == 100


def test_progress_is_a_rich_bar_on_a_terminal(panopto: PanoptoSetup, tmp_path: Path) -> None:
    import pty
    import select

    source = write_random(tmp_path / "tty.mp4", 12 * MiB, seed=22)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "vidauth", "upload", str(source), "--folder", "SIT102 Labs"]
    env = panopto.env(TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the other side closed (Linux: EIO)
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(30) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    # A live bar redrawn in place (cursor control), with the file, bytes, rate and time left.
    assert "\x1b[" in screen and "tty.mp4" in screen, screen[-2000:]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "━" in text
    finished_bar = r"tty\.mp4 ━+ 12\.0/12\.0 MiB \d+(\.\d+)? [kMG]B/s \d:\d\d:\d\d"
    assert re.search(finished_bar, text), text[-2000:]
    assert "Viewer.aspx?id=" in text


def test_upload_json_imports_no_terminal_rendering(panopto: PanoptoSetup, tmp_path: Path) -> None:
    """``upload --json`` writes JSON lines itself: Rich (20 to 30 ms of the start) is never
    imported, nor httpx's own command line; the S3 client and the store are."""
    from tests.helpers.processes import run_vidauth

    media = write_random(tmp_path / "quiet.mp4", MiB, seed=14)
    folder = panopto.panopto.folder_id(*SIT102)
    done = run_vidauth(
        "upload", str(media), "--folder", folder, "--json", "--no-wait",
        env=panopto.env(PYTHONPROFILEIMPORTTIME="1"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[-1]["result"]["ok"], rows[-1]
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert {"botocore", "sqlalchemy", "vidauth.panopto.engine"} <= imported
    assert not {m for m in imported if m == "rich" or m.startswith("rich.")}
    assert "click" not in imported and "pygments" not in imported
