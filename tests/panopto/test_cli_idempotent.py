"""Running ``vidauth upload`` again after it completed makes no second video (unless --again).

End to end through the CLI against the sandbox; what reached Panopto is counted in the
sandbox: the sessionUploads created, UploadPart requests, and the sessions per title.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from tests.panopto.conftest import MiB, PanoptoSetup, RunCli, write_random

SIT102 = ("Sandbox Courses", "SIT102 Labs")


def _session_uploads(panopto: PanoptoSetup) -> int:
    sandbox = panopto.panopto
    with sandbox._lock:
        return len(sandbox._uploads)


def _sessions_by_title(panopto: PanoptoSetup) -> Counter[str]:
    sandbox = panopto.panopto
    folder = sandbox.folder_id(*SIT102)
    with sandbox._lock:
        return Counter(s.name for s in sandbox._sessions.values() if s.folder_id == folder)


def _upload(run_cli: RunCli, *args: str) -> tuple[int, str, str]:
    return run_cli("upload", *args, "--folder", "SIT102 Labs", "--part-size", "5")


def test_second_run_prints_the_existing_session_and_sends_nothing(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", 6 * MiB, seed=1)
    code, first, err = _upload(run_cli, str(video), "--title", "Week 1")
    assert code == 0, err
    assert _session_uploads(panopto) == 1
    parts_before = panopto.panopto.upload_part_requests
    [line] = first.strip().splitlines()
    session_id = line.split("session ")[1].split()[0]
    viewer = line.split()[-1]
    assert "Viewer.aspx" in viewer

    code, again, err = _upload(run_cli, str(video), "--title", "Week 1")
    assert code == 0, err
    assert _session_uploads(panopto) == 1  # no sessionUpload created
    assert panopto.panopto.upload_part_requests == parts_before  # no byte sent
    assert _sessions_by_title(panopto)["Week 1"] == 1
    [line] = again.strip().splitlines()
    assert line.startswith("lecture1.mp4: already uploaded")
    assert session_id in line and line.endswith(viewer)
    assert "--again" in err  # how to upload it anyway


def test_second_run_json_event_and_result(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=2)
    code, out, err = _upload(run_cli, str(video), "--json")
    assert code == 0, err
    done = json.loads(out.strip().splitlines()[-1])["result"]

    code, out, err = _upload(run_cli, str(video), "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r.get("event") for r in rows[:-1]] == ["already_uploaded"]
    event, result = rows[0], rows[-1]["result"]
    assert event["session_id"] == done["session_id"] and event["viewer_url"] == done["viewer_url"]
    assert event["upload_id"] == done["upload_id"] and event["path"] == str(video.resolve())
    assert result["ok"] and result["already_uploaded"] and result["state"] == "complete"
    assert result["session_id"] == done["session_id"]
    assert _session_uploads(panopto) == 1


def test_again_uploads_anew(run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=3)
    assert _upload(run_cli, str(video), "--title", "Week 1")[0] == 0
    code, out, err = _upload(run_cli, str(video), "--title", "Week 1", "--again")
    assert code == 0, err
    assert "already uploaded" not in out and "complete; session" in out
    assert _session_uploads(panopto) == 2
    assert _sessions_by_title(panopto)["Week 1"] == 2
    # and a third plain run finds the newest of the two, sending nothing
    code, out, _ = _upload(run_cli, str(video), "--title", "Week 1")
    assert code == 0 and "already uploaded" in out and _session_uploads(panopto) == 2


def test_changed_file_is_uploaded_anew(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=4)
    assert _upload(run_cli, str(video), "--title", "Week 1")[0] == 0
    stat = video.stat()
    write_random(video, MiB, seed=5)  # same size, other bytes …
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # … and the same mtime
    code, out, err = _upload(run_cli, str(video), "--title", "Week 1")
    assert code == 0, err
    assert "already uploaded" not in out
    assert _session_uploads(panopto) == 2

    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: another mtime
    code, out, err = _upload(run_cli, str(video), "--title", "Week 1")
    assert code == 0, err
    assert "already uploaded" not in out
    assert _session_uploads(panopto) == 3


def test_other_title_or_folder_is_uploaded_anew(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=6)
    assert _upload(run_cli, str(video), "--title", "Week 1")[0] == 0
    code, out, err = _upload(run_cli, str(video), "--title", "Week 2")
    assert code == 0, err
    assert "already uploaded" not in out
    assert _sessions_by_title(panopto) >= Counter({"Week 1": 1, "Week 2": 1})
    other = panopto.panopto.folder_id("Sandbox Courses")
    code, out, err = run_cli("upload", str(video), "--folder", other, "--title", "Week 1")
    assert code == 0, err
    assert "already uploaded" not in out
    assert _session_uploads(panopto) == 3


def test_default_title_counts_as_the_same_title(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=7)
    assert _upload(run_cli, str(video))[0] == 0  # title: the file name, "lecture1"
    code, out, _ = _upload(run_cli, str(video), "--title", "lecture1")
    assert code == 0 and "already uploaded" in out
    assert _session_uploads(panopto) == 1


def test_several_files_each_decided_alone(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    old = write_random(tmp_path / "old.mp4", MiB, seed=8)
    new = write_random(tmp_path / "new.mp4", MiB, seed=9)
    assert _upload(run_cli, str(old))[0] == 0
    code, out, err = _upload(run_cli, str(new), str(old))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2  # in the order given
    assert lines[0].startswith("new.mp4: upload ") and "complete; session" in lines[0]
    assert lines[1].startswith("old.mp4: already uploaded")
    assert _session_uploads(panopto) == 2
    assert _sessions_by_title(panopto) >= Counter({"old": 1, "new": 1})

    # both done now: nothing at all is sent
    parts = panopto.panopto.upload_part_requests
    code, out, _ = _upload(run_cli, str(old), str(new))
    assert code == 0 and out.count("already uploaded") == 2
    assert _session_uploads(panopto) == 2 and panopto.panopto.upload_part_requests == parts


def test_not_waited_for_upload_is_finished_not_duplicated(
    run_cli: RunCli, panopto: PanoptoSetup, tmp_path: Path
) -> None:
    video = write_random(tmp_path / "lecture1.mp4", MiB, seed=10)
    code, out, err = _upload(run_cli, str(video), "--no-wait")
    assert code == 0 and "processing" in out, err
    # the rerun waits for the same upload (it was not complete yet) …
    code, out, err = _upload(run_cli, str(video))
    assert code == 0 and "complete; session" in out, err
    # … and the run after that finds it complete
    code, out, _ = _upload(run_cli, str(video))
    assert code == 0 and "already uploaded" in out
    assert _session_uploads(panopto) == 1


def test_help_names_the_flag(run_cli: RunCli) -> None:
    code, out, _ = run_cli("upload", "--help")
    assert code == 0
    assert "--again" in out


def test_library_upload_files_again_sends_nothing_unless_asked(
    panopto: PanoptoSetup, tmp_path: Path
) -> None:
    """The same rule for a program using the library: ``upload_files`` run twice makes one
    video; ``again=True`` makes a second on purpose."""
    from vidauth.panopto.api import upload_files
    from vidauth.panopto.engine import UploadOptions

    video = write_random(tmp_path / "lecture2.mp4", 6 * MiB, seed=2)

    def send(**kwargs: object) -> object:
        options = UploadOptions(part_size_mib=5, poll_initial=0.05, poll_max=0.2)
        (result,) = upload_files(
            panopto.va, [video], "SIT102 Labs", title="Week 2", options=options, **kwargs
        )
        return result

    first = send()
    assert first.ok and not first.already_uploaded and first.session_id
    parts_before = panopto.panopto.upload_part_requests

    second = send()
    assert second.ok and second.already_uploaded
    assert (second.session_id, second.viewer_url) == (first.session_id, first.viewer_url)
    assert second.bytes_sent == 0 and "nothing sent" in (second.message or "")
    assert panopto.panopto.upload_part_requests == parts_before
    assert _session_uploads(panopto) == 1

    third = send(again=True)
    assert third.ok and not third.already_uploaded and third.session_id != first.session_id
    assert _session_uploads(panopto) == 2
    assert _sessions_by_title(panopto)["Week 2"] == 2
