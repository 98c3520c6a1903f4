"""``vidauth status`` after the server refused the grant: not "refreshable", and what to do."""

from __future__ import annotations

import json
import re


def test_status_after_a_refused_grant_is_not_refreshable(run_cli, panopto) -> None:  # type: ignore[no-untyped-def]
    va = panopto.va
    account = va.account()
    va.store.set_status(account.id, "needs_signin", "refresh_failed", "invalid_grant")
    code, out, err = run_cli("status", "--json")
    assert code == 0
    [row] = json.loads(out)["accounts"]
    assert row["status"] == "needs_signin" and row["refreshable"] is False
    code, out, err = run_cli("status")
    assert "needs_signin" in out and not re.search(r"needs_signin.*\byes\b", out)
    assert "no longer valid: run `vidauth login`" in " ".join(err.split())


def test_status_after_a_lost_refresh_answer_says_so(run_cli, panopto) -> None:  # type: ignore[no-untyped-def]
    from vidauth.store.tokens import REFRESH_OUTCOME_UNKNOWN

    va = panopto.va
    account = va.account()
    va.store.audit(account.id, REFRESH_OUTCOME_UNKNOWN)  # what the token manager records
    code, out, err = run_cli("status", "--json")
    assert code == 0
    [row] = json.loads(out)["accounts"]
    assert row["refresh_outcome_unknown"] is True and row["refreshable"] is False
    code, out, err = run_cli("status")
    assert code == 0
    assert "no: last answer lost" in out
    said = " ".join(err.split())
    assert "answer was lost" in said and "run `vidauth login`" in said
