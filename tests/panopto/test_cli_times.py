"""The command line's JSON gives moments as RFC 3339 with an offset (the store's SQLite columns
come back without their zone)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.panopto.conftest import MiB, write_random

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def test_cli_json_moments_carry_the_offset(run_cli, panopto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = write_random(tmp_path / "short.mp4", 1 * MiB, seed=41)
    args = ("upload", str(source), "--folder", "SIT102 Labs", "--json")
    code, _, err = run_cli(*args)
    assert code == 0, err
    code, out, _ = run_cli("uploads", "--json")
    [row] = json.loads(out)["uploads"]
    assert RFC3339.fullmatch(row["created_at"]) and RFC3339.fullmatch(row["updated_at"]), row
    code, out, _ = run_cli("status", "--json")
    [account] = json.loads(out)["accounts"]
    assert RFC3339.fullmatch(account["expires_at"]), account
    code, out, _ = run_cli(*args)  # already uploaded: not sent again
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [earlier] = [e for e in events if e.get("event") == "already_uploaded"]
    assert RFC3339.fullmatch(earlier["completed_at"]), earlier
