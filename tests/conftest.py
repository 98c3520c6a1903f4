"""Shared fixtures: free ports, a clean environment, the sandbox, PostgreSQL."""

from __future__ import annotations

import _posixsubprocess  # type: ignore[import-not-found]
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import free_port

CI = bool(os.environ.get("CI"))
DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/test"
SETTING_NAMES = (
    "PANOPTO_SERVER",
    "PANOPTO_CLIENT_ID",
    "PANOPTO_CLIENT_SECRET",
    "PANOPTO_REDIRECT_URI",
    "PANOPTO_APPLICATION_KEY",
    "VIDAUTH_HOME",
    "VIDAUTH_DATABASE_URL",
    "VIDAUTH_SECRET_KEY",
    "VIDAUTH_PROFILE",
    "VIDAUTH_RETRY_ATTEMPTS",
    "VIDAUTH_RETRY_MAX_SECONDS",
    "BROWSER",
)

# A shell without job control (a script, ``(cmd &)``) starts a background job with SIGINT
# ignored, and an ignored signal stays ignored across exec: every vidauth process a test
# starts would then shrug off the Ctrl-C that the Ctrl-C tests send it. A person's terminal
# does not ignore SIGINT, so the suite does not either: with a handler of its own here, the
# processes it starts begin with SIGINT at its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


#: Fixtures that start a server (sandbox, service, third-party provider) or need PostgreSQL:
#: a test using one is not in the quick tier.
SERVER_FIXTURES = frozenset(
    {
        "sandbox",
        "make_sandbox",
        "panopto",
        "make_panopto",
        "run_cli",
        "service",
        "make_service",
        "tenant_service",
        "postgres_url",
        "dot_server",
        "oidc_provider_server",
    }
)


#: Tests (module paths, or ``path::name``) that start servers or processes by themselves, or
#: listen on a port: not in the quick tier. (``@pytest.mark.slow`` on a test does the same.)
SLOW_TESTS = (
    "tests/oauth/test_discovery.py::test_hostile_bodies",
    "tests/oauth/test_discovery.py::test_jwks_without_keys_is_unusable",
    "tests/oauth/test_grants.py::test_cli_closed_port_exits_4",
    "tests/oauth/test_grants_flows.py::test_ingest_quirks",
    "tests/oauth/test_grants_flows.py::test_omniport_sends_state_and_exchanges_the_code_at_once",
    "tests/oauth/test_loopback.py",
    "tests/oauth/test_thirdparty_dot.py",
    "tests/oauth/test_thirdparty_oidc.py",
    "tests/sandbox/test_oauth_server.py",
    "tests/sandbox/test_panopto_api.py",
    "tests/sandbox/test_s3_target.py",
    "tests/sandbox/test_sandbox_command.py",
    "tests/store/test_migrations.py::test_alembic_env_sees_every_model",
    "tests/store/test_store.py::test_concurrent_key_creation_agrees",
    "tests/store/test_store.py::test_refresh_claim_of_a_dead_process_or_a_lapsed_lease_is_taken_over",
    "tests/test_cli_e2e.py",
    "tests/test_cli_help.py",
    "tests/test_config.py::test_each_configuration_module_imports_alone",
    "tests/test_demo.py",
    "tests/test_doctor.py",
    "tests/test_wheel_install.py",
    "tests/thirdparty/test_servers_smoke.py",
)


def _is_slow(item: pytest.Item) -> bool:
    if item.get_closest_marker("slow") or item.get_closest_marker("postgres"):
        return True
    if not SERVER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "postgres" in (str(v) for v in params.values()):  # a store test on PostgreSQL
        return True
    path, _, name = item.nodeid.partition("::")
    name = name.split("[", 1)[0]
    return any(entry in (path, f"{path}::{name}") for entry in SLOW_TESTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "quick: the quick tier (set by tests/conftest.py on every test that is not marked slow"
        " and uses no server fixture): no sockets, no subprocesses; `./run test -m quick`",
    )
    config.addinivalue_line(
        "markers", "slow: starts servers or processes by itself; not in the quick tier"
    )


def _shared_fixture_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that uses a fixture of the suite's own shared beyond the test
    (a session-scoped server: the fixture's name; a module-scoped one: the module), so that
    ``--dist loadgroup`` starts that fixture on one worker rather than on each."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    module = None
    for name in item.fixturenames:
        definitions = info.name2fixturedefs.get(name)
        if not definitions or not definitions[-1].baseid:  # pytest's own (tmp_path_factory…)
            continue
        if definitions[-1].scope == "session":
            return name
        if definitions[-1].scope == "module":
            module = item.nodeid.split("::", 1)[0]
    return module


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups from the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the quick tier: every test that is not ``slow``/``postgres``, not in
    :data:`SLOW_TESTS`, not on PostgreSQL, and whose fixtures start no server. Group the tests
    that share a module- or session-scoped fixture for pytest-xdist's ``--dist loadgroup``."""
    for item in items:
        if not _is_slow(item):
            item.add_marker(pytest.mark.quick)
        group = _shared_fixture_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


class QuickTierViolation(AssertionError):
    """A test of the quick tier opened a network socket or started a process."""


@pytest.fixture(autouse=True)
def quick_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the quick tier is selected (``-m quick``), its tests may open no network socket
    and start no process: either fails the test, which then belongs in the slow tier
    (``@pytest.mark.slow`` or :data:`SLOW_TESTS`). In-process ASGI clients and the event
    loop's own Unix socket pair are allowed. (The full suite runs without this guard.)"""
    if "quick" not in (request.config.option.markexpr or ""):
        return
    if request.node.get_closest_marker("quick") is None:
        return
    name = request.node.nodeid

    def refuse(what: str) -> QuickTierViolation:
        return QuickTierViolation(f"{name} is in the quick tier but {what}; mark it slow")

    real_connect, real_bind = socket.socket.connect, socket.socket.bind

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise refuse(f"connects to {address}")
        real_connect(self, address)

    def bind(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise refuse(f"listens on {address}")
        real_bind(self, address)

    def spawn(*args: Any, **_k: Any) -> None:
        raise refuse(f"starts a process {str(args)[:200]}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(_posixsubprocess, "fork_exec", spawn)  # subprocess, multiprocessing
    monkeypatch.setattr(os, "fork", spawn)
    monkeypatch.setattr(os, "posix_spawn", spawn)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting leaks in from the developer's environment; cwd is a fresh directory."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    # the platform's default state directory (platformdirs reads XDG_DATA_HOME) lies in this
    # test's own directory: no test reads or writes the developer's ~/.local/share/vidauth
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@dataclass
class SandboxSetup:
    """A running sandbox plus settings flags for a vidauth client talking to it."""

    server: Any
    redirect_uri: str
    client_id: str
    client_secret: str
    home: Path

    def flags(self, **extra: Any) -> dict[str, Any]:
        flags = {
            "panopto_server": self.server.url,
            "panopto_client_id": self.client_id,
            "panopto_client_secret": self.client_secret,
            "panopto_redirect_uri": self.redirect_uri,
            "vidauth_home": str(self.home),
        }
        flags.update(extra)
        return flags

    def env(self, **extra: str) -> dict[str, str]:
        """Environment variables for a vidauth subprocess."""
        env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        env.update({k.upper(): str(v) for k, v in self.flags().items()})
        env.update(extra)
        return env

    def vidauth(self, **extra: Any) -> Any:
        from vidauth.client import Vidauth
        from vidauth.config import load_settings

        return Vidauth(load_settings(**self.flags(**extra)))

    def login(self, va: Any, **browser: Any) -> Any:
        """The real sign-in, with the sandbox's scripted browser clicking through."""
        from vidauth_sandbox.browser import complete_browser_login

        def open_browser(url: str) -> None:
            threading.Thread(
                target=complete_browser_login, args=(url,), kwargs=browser, daemon=True
            ).start()

        return va.login(open_browser=open_browser, announce=lambda _s: None, timeout=30)


def start_sandbox(tmp_path: Path, **config: Any) -> SandboxSetup:
    from vidauth_sandbox import SandboxClient, SandboxConfig, SandboxServer

    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    client = SandboxClient(
        client_id=f"test-{uuid.uuid4().hex[:8]}",
        client_secret="test-client-secret-" + uuid.uuid4().hex,
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token", "password", "client_credentials"],
    )
    server = SandboxServer(SandboxConfig(clients=[client], **config)).start()
    home = tmp_path / "home"
    return SandboxSetup(server, redirect_uri, client.client_id, client.client_secret or "", home)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxSetup]:
    """A fresh sandbox (1-hour tokens) with one confidential client."""
    setup = start_sandbox(tmp_path)
    try:
        yield setup
    finally:
        setup.server.stop()


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[Any]:
    """A factory for sandboxes with custom configuration (token lifetime…)."""
    started: list[SandboxSetup] = []

    def make(**config: Any) -> SandboxSetup:
        setup = start_sandbox(tmp_path, **config)
        started.append(setup)
        return setup

    yield make
    for setup in started:
        setup.server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL with a private schema; fails (never skips) in CI when unreachable."""
    import sqlalchemy as sa

    base = os.environ.get("VIDAUTH_TEST_DATABASE_URL") or DEFAULT_TEST_PG
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"vidauth_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(base, pool_pre_ping=True)  # survives a server restart
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        message = f"PostgreSQL at {base} is unreachable: {type(exc).__name__}: {exc}"
        if CI or os.environ.get("VIDAUTH_TEST_DATABASE_URL"):
            pytest.fail(message)
        pytest.skip(message)
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database for one test: ``"postgres"`` (a private schema, dropped after) or
    ``"sqlite"`` (a file in ``tmp_path``)."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'fresh.db'}"


# -- SQLite: no deferred transaction reads and then writes ----------------------------------
#
# On SQLite a deferred transaction that has read cannot wait for the write lock once another
# writer commits after its read: the write fails at once with "database is locked"
# (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout. Such blocks must use
# ``Database.write_session`` (BEGIN IMMEDIATE). This tripwire fails any test during which a
# deferred transaction of vidauth's wrote after reading, even when no other writer interfered.

_deferred_read_then_write: list[str] = []


def _sqlite_statement_kind(statement: str) -> str | None:
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if head in {"SELECT", "WITH"}:
        return "read"
    if head in {"INSERT", "UPDATE", "DELETE", "REPLACE"}:
        return "write"
    return None


def _install_sqlite_tripwire() -> None:
    import traceback

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "begin")
    def _begin(conn: Any) -> None:
        conn.info.pop("vidauth_test_read", None)

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn.dialect.name != "sqlite" or not conn.in_transaction():
            return
        if conn.get_execution_options().get("sqlite_begin", "DEFERRED") != "DEFERRED":
            return
        if "alembic_version" in statement:  # migrations run under their own file lock
            conn.info["vidauth_test_migrating"] = True
        if conn.info.get("vidauth_test_migrating"):
            return
        kind = _sqlite_statement_kind(statement)
        if kind == "read":
            conn.info["vidauth_test_read"] = True
        elif kind == "write" and conn.info.get("vidauth_test_read"):
            frames = [
                f"{f.filename.rsplit('/src/', 1)[-1]}:{f.lineno} {f.name}"
                for f in traceback.extract_stack()
                if "/src/vidauth/" in f.filename
            ]
            _deferred_read_then_write.append(
                f"{statement.split(None, 3)[:3]} after a read, from " + " <- ".join(frames[::-1])
            )

    @event.listens_for(Engine, "commit")
    def _end(conn: Any) -> None:
        conn.info.pop("vidauth_test_read", None)
        conn.info.pop("vidauth_test_migrating", None)

    @event.listens_for(Engine, "rollback")
    def _end_rollback(conn: Any) -> None:
        _end(conn)


_install_sqlite_tripwire()


@pytest.fixture(autouse=True)
def sqlite_read_then_write_tripwire() -> Iterator[None]:
    """Fail a test during which a deferred SQLite transaction wrote after reading."""
    _deferred_read_then_write.clear()
    yield
    found = list(dict.fromkeys(_deferred_read_then_write))
    _deferred_read_then_write.clear()
    assert not found, "a deferred SQLite transaction read, then wrote: " + "; ".join(found)
