"""Keeping the grant: lost refresh answers, saves that fail, hanging endpoints, hostile answers.

Each test attacks vidauth through real HTTP against the sandbox and, where the attack needs one,
a real ``vidauth`` process (signals, a file-size limit standing in for a full disk).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import SandboxSetup
from tests.helpers.processes import run_vidauth_in_process
from vidauth.client import Vidauth
from vidauth.errors import SignInRequired
from vidauth.oauth.token_endpoint import RefreshOutcomeUnknown
from vidauth.store.models import Token

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def with_reuse(sandbox: SandboxSetup, reuse: str, **flags: Any) -> Iterator[Vidauth]:
    """A vidauth client whose profile says how the server treats refresh-token reuse."""
    with sandbox.vidauth(**flags) as plain:
        profile = replace(plain.settings.profile(), refresh_token_reuse=reuse)
    with Vidauth(plain.settings, profile=profile) as va:
        yield va


def expire_now(va: Vidauth, account_id: int) -> None:
    """Make the stored access token look expired, as an hour passing would."""
    with va.store.db.write_session() as session:
        session.execute(update(Token).where(Token.account_id == account_id).values(expires_at=0))


def stats(sandbox: SandboxSetup) -> dict[str, Any]:
    return sandbox.server.state.stats_snapshot()


def refreshes(sandbox: SandboxSetup) -> int:
    return int(stats(sandbox)["token_requests"]["refresh_token"])


def signed_in_and_expired(sandbox: SandboxSetup, **flags: Any) -> tuple[int, str]:
    """Sign alice in through the browser flow, expire her token; (account id, refresh token)."""
    with sandbox.vidauth(**flags) as va:
        account = sandbox.login(va)
        expire_now(va, account.id)
        tokens = va.store.load_tokens(account.id)
        assert tokens is not None and tokens.refresh_token
        return account.id, tokens.refresh_token


def grant_still_works(sandbox: SandboxSetup, **flags: Any) -> None:
    """The stored grant is the server's current one: a forced refresh succeeds, no reuse."""
    with sandbox.vidauth(**flags) as va:
        fresh = va.token_manager("alice").tokens(min_validity=10**9)
    assert sandbox.server.state.access_token_info(fresh.access_token) is not None
    assert stats(sandbox)["refresh_reuse_detected"] == 0


def cli(sandbox: SandboxSetup, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidauth", *args],
        env=sandbox.env(PYTHONPATH=str(ROOT), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def cli_in_process(sandbox: SandboxSetup, *args: str, **env: str) -> CompletedProcess[str]:
    """``cli`` run to its end in this process, where the process itself is not under test."""
    return run_vidauth_in_process(*args, env=sandbox.env(**env))


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# -- 1. a refresh whose answer is lost -----------------------------------------------------


@pytest.mark.parametrize("lost", ["502", "timeout"])
def test_strict_rotation_does_not_replay_a_refresh_whose_answer_was_lost(
    sandbox: SandboxSetup, lost: str
) -> None:
    account_id, _ = signed_in_and_expired(sandbox)
    sandbox.server.state.lose_token_answers([lost])
    with sandbox.vidauth(vidauth_retry_max_seconds=2) as va:
        assert va.profile.refresh_token_reuse == "strict"  # Panopto's default
        with pytest.raises(RefreshOutcomeUnknown) as info:
            va.token_manager().tokens()
        assert info.value.exit_code == 4
        assert "answer was lost" in info.value.message and "sign in again" in info.value.message
        assert ("refresh_outcome_unknown", None) in va.store.audit_events(account_id)
    assert refreshes(sandbox) == 1  # sent once, never replayed with the rotated token
    assert stats(sandbox)["refresh_reuse_detected"] == 0


def test_cli_says_in_one_line_that_the_refresh_answer_was_lost(sandbox: SandboxSetup) -> None:
    signed_in_and_expired(sandbox)
    sandbox.server.state.lose_token_answers(["502"])
    proc = cli_in_process(sandbox, "token")
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 4, err
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "answer was lost (HTTP 502)" in err and "sign in again" in err
    assert refreshes(sandbox) == 1 and stats(sandbox)["refresh_reuse_detected"] == 0


@pytest.mark.parametrize("lost", ["502", "timeout"])
def test_grace_period_server_gets_the_refresh_again_and_the_grant_survives(
    make_sandbox: Any, lost: str
) -> None:
    sandbox = make_sandbox(refresh_reuse_grace=60)
    with with_reuse(sandbox, "grace", vidauth_retry_max_seconds=4) as va:
        account = sandbox.login(va)
        expire_now(va, account.id)
        sandbox.server.state.lose_token_answers([lost])
        fresh = va.token_manager().tokens()
    assert refreshes(sandbox) == 2  # replayed with the same refresh token…
    assert stats(sandbox)["refresh_reuse_in_grace"] == 1  # …which the server's grace accepts
    assert sandbox.server.state.access_token_info(fresh.access_token) is not None
    grant_still_works(sandbox)


def test_without_a_grace_period_a_replayed_refresh_revokes_the_grant(sandbox: SandboxSetup) -> None:
    """Why strict is the default: replaying against a one-time-rotation server loses it all."""
    with with_reuse(sandbox, "grace", vidauth_retry_max_seconds=4) as va:
        account = sandbox.login(va)
        expire_now(va, account.id)
        sandbox.server.state.lose_token_answers(["502"])
        with pytest.raises(SignInRequired):
            va.token_manager().tokens()
    assert stats(sandbox)["refresh_reuse_detected"] == 1


def test_refresh_token_reuse_is_a_profile_key(sandbox: SandboxSetup, clean_env: Path) -> None:
    from vidauth.config import load_settings
    from vidauth.errors import ConfigError

    table = (
        f'[profiles.okta]\nprovider = "oauth2"\ntoken_url = "{sandbox.server.url}/t"\n'
        'client_id = "c"\nrefresh_token_reuse = "{}"\n'
    )
    (clean_env / "vidauth.toml").write_text(table.replace("{}", "grace"))
    assert load_settings(vidauth_profile="okta").profile().refresh_token_reuse == "grace"
    (clean_env / "vidauth.toml").write_text(table.replace("{}", "sometimes"))
    with pytest.raises(ConfigError, match="refresh_token_reuse"):
        load_settings(vidauth_profile="okta").profile()


# -- 2. a refresh that succeeded but could not be saved -------------------------------------


def test_sigterm_during_a_slow_refresh_still_saves_the_new_grant(sandbox: SandboxSetup) -> None:
    signed_in_and_expired(sandbox)
    sandbox.server.state.token_delay = 2.0  # the server rotates, then answers slowly
    proc = cli(sandbox, "token")
    wait_for(lambda: refreshes(sandbox) == 1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err  # it still stops, once the grant is saved
    sandbox.server.state.token_delay = 0.0
    grant_still_works(sandbox)
    assert refreshes(sandbox) == 2


def _limit_file_size(pid: int, limit: int) -> None:
    # Only the soft limit, so that it can be lifted again without privileges.
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")
def test_full_disk_during_the_commit_is_retried_until_space_is_freed(
    sandbox: SandboxSetup,
) -> None:
    """A file-size limit set on the running process makes every write to the store fail
    (SQLite: disk full / I/O error), exactly as a full disk does; lifting it frees space."""
    signed_in_and_expired(sandbox)
    sandbox.server.state.token_delay = 1.0
    proc = cli(sandbox, "token")
    wait_for(lambda: refreshes(sandbox) == 1)
    _limit_file_size(proc.pid, 1)  # the disk fills while the server answers
    time.sleep(2.5)  # the answer arrives; commits fail and are retried
    _limit_file_size(proc.pid, resource.RLIM_INFINITY)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "could not save the refreshed grant" in err
    sandbox.server.state.token_delay = 0.0
    with sandbox.vidauth() as va:
        stored = va.store.load_tokens(va.account().id)
    assert stored is not None and stored.access_token == out.strip()
    grant_still_works(sandbox)


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")
def test_disk_that_stays_full_keeps_the_grant_in_a_recovery_file(sandbox: SandboxSetup) -> None:
    signed_in_and_expired(sandbox)
    sandbox.server.state.token_delay = 1.0
    proc = cli(sandbox, "token")
    wait_for(lambda: refreshes(sandbox) == 1)
    _limit_file_size(proc.pid, 8192)  # room for a small file, none for the database
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert "could not be saved to the store" in last and "restored at the next use" in last
    [kept] = sandbox.home.glob("recovered-grant-*.fernet")
    assert kept.stat().st_mode & 0o777 == 0o600
    sandbox.server.state.token_delay = 0.0
    # Space is back: the next run restores the rotated grant instead of replaying the old one.
    again = cli(sandbox, "token")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert refreshes(sandbox) == 1 and not kept.exists()
    assert sandbox.server.state.access_token_info(out.strip()) is not None
    grant_still_works(sandbox)


# -- 3. a hanging token endpoint must not stall the store ----------------------------------


def test_hanging_token_endpoint_does_not_block_other_writes(sandbox: SandboxSetup) -> None:
    from vidauth.store.tokens import TokenSet

    signed_in_and_expired(sandbox)
    sandbox.server.state.token_delay = 6.0
    proc = cli(sandbox, "token")
    wait_for(lambda: refreshes(sandbox) == 1)
    with sandbox.vidauth() as va:
        started = time.monotonic()
        va.store.save_grant(  # another account's sign-in, while alice's refresh hangs
            profile_key=va.profile.key,
            subject="someone-else",
            username="bob",
            server=va.profile.server,
            client_id=va.profile.client_id,
            tokens=TokenSet(access_token="unrelated-token", expires_at=time.time() + 3600),
        )
        took = time.monotonic() - started
    assert took < 2.0, f"an unrelated write waited {took:.1f}s for the refresh"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    sandbox.server.state.token_delay = 0.0
    grant_still_works(sandbox)


def test_token_call_time_is_bounded(sandbox: SandboxSetup) -> None:
    signed_in_and_expired(sandbox)
    sandbox.server.state.token_delay = 120.0
    started = time.monotonic()
    proc = cli_in_process(sandbox, "token", VIDAUTH_RETRY_MAX_SECONDS="2")
    _, err = proc.stdout, proc.stderr
    took = time.monotonic() - started
    assert proc.returncode == 4, err
    assert "ReadTimeout" in err and took < 15, took


# -- 4. hostile token responses -------------------------------------------------------------

HOSTILE = [
    ("expires_in", '{"access_token": "a1", "token_type": "Bearer", "expires_in": 1e400}'),
    ("expires_in", {"access_token": "a1", "token_type": "Bearer", "expires_in": "NaN"}),
    ("expires_in", {"access_token": "a1", "token_type": "Bearer", "expires_in": -5}),
    ("expires_in", {"access_token": "a1", "token_type": "Bearer", "expires_in": 10**30}),
    ("expires_in", {"access_token": "a1", "token_type": "Bearer", "expires_in": True}),
    ("refresh_token", {"access_token": "a1", "token_type": "Bearer", "refresh_token": 42}),
    ("scope", {"access_token": "a1", "token_type": "Bearer", "scope": {"api": True}}),
    ("access_token", {"access_token": ["a1"], "token_type": "Bearer"}),
    ("access_token", {"access_token": "a1\r\nX-Injected: 1", "token_type": "Bearer"}),
    ("access_token", {"token_type": "Bearer", "expires_in": 3600}),
    ("token_type", {"access_token": "a1", "expires_in": 3600}),
    ("token_type", {"access_token": "a1", "token_type": "mac", "expires_in": 3600}),
    ("(body)", '["access_token"]'),
]


@pytest.mark.parametrize(
    ("field", "body"), HOSTILE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(HOSTILE)]
)
def test_hostile_token_response_is_refused_naming_the_field(
    sandbox: SandboxSetup, field: str, body: Any
) -> None:
    account_id, refresh_token = signed_in_and_expired(sandbox)
    sandbox.server.state.hostile_token_answers([body])
    proc = cli_in_process(sandbox, "token")
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 4, err
    assert out == "" and len(err.strip().splitlines()) == 1
    assert f"invalid {field}" in err or (field == "(body)" and "instead of an object" in err)
    assert "a1" not in err  # never the value
    assert stats(sandbox)["hostile_answers"] == 1
    with sandbox.vidauth() as va:
        kept = va.store.load_tokens(account_id)
        assert kept is not None and kept.refresh_token == refresh_token  # nothing stored
        assert va.store.account_status(account_id) == "active"
    grant_still_works(sandbox)


def test_status_survives_an_infinite_expiry_stored_by_an_older_version(
    sandbox: SandboxSetup,
) -> None:
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        with va.store.db.write_session() as session:
            session.execute(
                update(Token).where(Token.account_id == account.id).values(expires_at=float("inf"))
            )
    proc = cli_in_process(sandbox, "status")
    _, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    with sandbox.vidauth() as va:
        assert va.token_manager().access_token(60)  # treated as expired: refreshed
    assert refreshes(sandbox) == 1


# -- 9. files at rest -------------------------------------------------------------------------


def test_cli_creates_private_files_and_doctor_reports_open_ones(sandbox: SandboxSetup) -> None:
    import json

    old = os.umask(0o022)
    try:
        with sandbox.vidauth() as va:
            sandbox.login(va)
    finally:
        os.umask(old)
    db = sandbox.home / "vidauth.db"
    assert sandbox.home.stat().st_mode & 0o777 == 0o700
    assert db.stat().st_mode & 0o777 == 0o600
    os.chmod(sandbox.home, 0o755)  # noqa: S103 - the mistake under test
    os.chmod(db, 0o644)
    proc = cli_in_process(sandbox, "doctor", "--json")
    out, err = proc.stdout, proc.stderr
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["file modes"]["status"] == "warn", err
    assert "is 755" in checks["file modes"]["detail"] and "is 644" in checks["file modes"]["detail"]
    # …and using the store tightened them.
    assert sandbox.home.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in sandbox.home.glob("vidauth.db*")} == {0o600}
