"""The ``vidauth`` command as a person runs it, a robot browser via BROWSER: the full run and
``python -m``/console-script agreement as real processes; the exit-code cases through the
in-process CLI (``run_vidauth_in_process``, the same ``run`` that ``python -m vidauth`` exits
with)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SandboxSetup
from tests.helpers.processes import run_vidauth
from tests.helpers.processes import run_vidauth_in_process as vidauth

ROOT = Path(__file__).resolve().parents[1]
ROBOT = ROOT / "tests" / "helpers" / "robot_browser.py"


def robot_env(sandbox: SandboxSetup, tmp_path: Path, **extra: str) -> dict[str, str]:
    launcher = tmp_path / "robot-browser"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROBOT}" "$1"\n')
    launcher.chmod(0o755)
    env = sandbox.env(BROWSER=str(launcher), PYTHONPATH=str(ROOT), **extra)
    env.pop("VIDAUTH_DEBUG", None)
    return env


def test_full_run_leaks_no_token_code_or_secret(sandbox: SandboxSetup, tmp_path: Path) -> None:
    record = tmp_path / "redirects.txt"
    env = robot_env(sandbox, tmp_path, ROBOT_RECORD=str(record))
    transcript = []
    login = run_vidauth("-v", "login", "--timeout", "30", env=env)
    transcript.append(login.stdout + login.stderr)
    assert login.returncode == 0, login.stderr
    assert "Signed in as alice" in login.stderr
    for args in (["status"], ["status", "--json"], ["-v", "status"]):
        r = run_vidauth(*args, env=env)
        assert r.returncode == 0, r.stderr
        transcript.append(r.stdout + r.stderr)
    status = json.loads(run_vidauth("status", "--json", env=env).stdout)
    assert status["accounts"][0]["account"] == "alice"
    token = run_vidauth("token", env=env)
    assert token.returncode == 0 and token.stderr == ""
    access_token = token.stdout.strip()
    assert access_token and "\n" not in access_token
    logout = run_vidauth("-v", "logout", "--revoke", env=env)
    transcript.append(logout.stdout + logout.stderr)
    assert logout.returncode == 0, logout.stderr
    code = record.read_text().split("code=")[1].split("&")[0]
    everything = "\n".join(transcript)
    for secret in (access_token, code, sandbox.client_secret):
        assert secret not in everything
    # and the database never held them in clear
    for path in (sandbox.home).glob("vidauth.db*"):
        raw = path.read_bytes()
        assert access_token.encode() not in raw
        assert sandbox.client_secret.encode() not in raw


def test_database_holds_no_token_in_clear(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = sandbox.login(va)
        tokens = va.store.load_tokens(account.id)
        raw = b"".join(p.read_bytes() for p in sandbox.home.glob("vidauth.db*"))
    assert tokens is not None and tokens.refresh_token and tokens.id_token
    for value in (tokens.access_token, tokens.refresh_token, tokens.id_token):
        assert value.encode() not in raw
        assert value[:16].encode() not in raw


def test_access_denied_exit_3(sandbox: SandboxSetup, tmp_path: Path) -> None:
    r = vidauth("login", "--timeout", "30", env=robot_env(sandbox, tmp_path, ROBOT_CONSENT="deny"))
    assert r.returncode == 3
    assert "access_denied" in r.stderr and "Traceback" not in r.stderr


def test_timeout_exit_3(sandbox: SandboxSetup, tmp_path: Path) -> None:
    r = vidauth("login", "--no-browser", "--timeout", "1", env=sandbox.env())
    assert r.returncode == 3 and "no sign-in arrived" in r.stderr
    assert "Open this link" in r.stderr  # the link is shown


def test_port_in_use_exit_2(sandbox: SandboxSetup) -> None:
    port = int(sandbox.redirect_uri.split(":")[2].split("/")[0])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        r = vidauth("login", "--no-browser", "--timeout", "5", env=sandbox.env())
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0]


def test_cancel_unknown_upload_is_a_usage_error_even_signed_out(sandbox: SandboxSetup) -> None:
    r = vidauth("uploads", "cancel", "42", env=sandbox.env())
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "vidauth: no upload 42: list uploads with `vidauth uploads`"


def test_token_when_not_signed_in_exit_3(sandbox: SandboxSetup) -> None:
    r = vidauth("token", env=sandbox.env())
    assert r.returncode == 3 and r.stdout == "" and "vidauth login" in r.stderr


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("PANOPTO_SERVER", "http://panopto.example.com", "PANOPTO_SERVER"),
        ("PANOPTO_SERVER", "", "PANOPTO_SERVER"),
        ("PANOPTO_CLIENT_ID", "", "PANOPTO_CLIENT_ID"),
        ("PANOPTO_REDIRECT_URI", "http://example.com/redirect", "PANOPTO_REDIRECT_URI"),
        ("VIDAUTH_DATABASE_URL", "oracle://x", "VIDAUTH_DATABASE_URL"),
        ("VIDAUTH_SECRET_KEY", "not-a-fernet-key", "VIDAUTH_SECRET_KEY"),
    ],
)
def test_bad_configuration_exit_2(
    sandbox: SandboxSetup, variable: str, value: str, needle: str
) -> None:
    env = sandbox.env(**{variable: value})
    r = vidauth("status", env=env)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
    assert sandbox.client_secret not in r.stderr


@pytest.mark.parametrize("where", ["home", "database", "key"])
def test_unusable_home_exit_2(sandbox: SandboxSetup, tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = sandbox.env(VIDAUTH_HOME=str(blocker / "home"))  # under a file: never creatable
    if where == "database":  # the key's directory fine, the database's not
        env.update(VIDAUTH_HOME=str(tmp_path / "home"))
        env["VIDAUTH_DATABASE_URL"] = f"sqlite:///{blocker / 'db' / 'vidauth.db'}"
    if where == "key":  # the key path is a directory
        (tmp_path / "home2" / "secret.key").mkdir(parents=True)
        env.update(VIDAUTH_HOME=str(tmp_path / "home2"))
    r = vidauth("status", env=env)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert ("writable directory" in lines[0]) or ("cannot read the key" in lines[0])


def test_wrong_key_with_tokens_present_exit_2(sandbox: SandboxSetup, tmp_path: Path) -> None:
    env = robot_env(sandbox, tmp_path)
    assert vidauth("login", "--timeout", "30", env=env).returncode == 0
    from cryptography.fernet import Fernet

    wrong = dict(env, VIDAUTH_SECRET_KEY=Fernet.generate_key().decode())
    r = vidauth("token", env=wrong)
    assert r.returncode == 2 and "cannot be decrypted" in r.stderr
    key_file = sandbox.home / "secret.key"
    key_file.rename(tmp_path / "moved.key")
    r = vidauth("status", env=env)
    assert r.returncode == 2 and "no key" in r.stderr
    assert not key_file.exists(), "a new key must not be generated over existing tokens"
    r = vidauth("logout", "--all", env=env)
    assert r.returncode == 0 and "Deleted 1 account" in r.stderr
    r = vidauth("status", env=env)  # a fresh start: a new key, nobody signed in
    assert r.returncode == 3 and "Not signed in" in r.stderr


def test_key_file_is_private(sandbox: SandboxSetup, tmp_path: Path) -> None:
    assert vidauth("status", env=sandbox.env()).returncode == 3
    assert (sandbox.home / "secret.key").stat().st_mode & 0o777 == 0o600


def test_env_file_and_dotenv(sandbox: SandboxSetup, tmp_path: Path) -> None:
    env = {k: v for k, v in sandbox.env().items() if not k.startswith("PANOPTO_")}
    dotenv = "\n".join(f"{k}={v}" for k, v in sandbox.env().items() if k.startswith("PANOPTO_"))
    (tmp_path / "custom.env").write_text(dotenv)
    r = vidauth("--env-file", str(tmp_path / "custom.env"), "status", env=env, cwd=tmp_path)
    assert r.returncode == 3 and "Not signed in" in r.stderr
    (tmp_path / ".env").write_text(dotenv)
    r = vidauth("status", env=env, cwd=tmp_path)
    assert r.returncode == 3 and "Not signed in" in r.stderr
    r = vidauth("--env-file", str(tmp_path / "nope.env"), "status", env=env, cwd=tmp_path)
    assert r.returncode == 2


def test_unknown_command_is_usage_error(sandbox: SandboxSetup) -> None:
    r = vidauth("logn", env=sandbox.env())
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_python_dash_m_and_console_script_agree() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "vidauth", "--help"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert r.returncode == 0 and "login" in r.stdout


# -- "nothing there": one rule for every command (the README's exit-code table) -------------
# 3 when the answer is "not signed in" (whatever the command, with or without --json); 0 when
# an empty list is the answer; 2 when nothing is configured.


@pytest.mark.parametrize(
    ("args", "code", "stdout_json", "says"),
    [
        (["status"], 3, None, "Not signed in"),
        (["status", "--json"], 3, {"accounts": []}, ""),
        (["logout"], 3, None, "nothing to sign out"),
        (["logout", "--revoke"], 3, None, "nothing to sign out"),
        (["token"], 3, None, "vidauth login"),
        (["folders"], 3, None, "vidauth login"),
        (["folders", "--json"], 3, None, "vidauth login"),
        (["sessions", "--folder", "x"], 3, None, "vidauth login"),
        (["uploads"], 0, None, "No uploads recorded."),
        (["uploads", "--json"], 0, {"uploads": []}, ""),
    ],
)
def test_nothing_there_exit_codes(
    sandbox: SandboxSetup,
    args: list[str],
    code: int,
    stdout_json: dict[str, list[str]] | None,
    says: str,
) -> None:
    r = vidauth(*args, env=sandbox.env())
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    if stdout_json is not None:
        data = json.loads(r.stdout)
        for key, value in stdout_json.items():
            assert data[key] == value
        assert r.stderr == ""  # --json: the answer is the document, and the exit code
    else:
        assert r.stdout == ""
        assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_no_profile_at_all_exit_2(tmp_path: Path, as_json: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(VIDAUTH_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    r = vidauth("profiles", *(["--json"] if as_json else []), env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    if as_json:
        assert json.loads(r.stdout)["profiles"] == []
    else:
        assert "[profiles.NAME]" in r.stderr  # the hint's table name, not eaten as markup


def test_status_json_after_sign_in_exits_0(sandbox: SandboxSetup, tmp_path: Path) -> None:
    env = robot_env(sandbox, tmp_path)
    assert vidauth("login", "--timeout", "30", env=env).returncode == 0
    r = vidauth("status", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["accounts"][0]["account"] == "alice"
    assert vidauth("logout", env=env).returncode == 0
    r = vidauth("logout", env=env)  # the second time there is nothing to sign out
    assert r.returncode == 3 and "nothing to sign out" in r.stderr
