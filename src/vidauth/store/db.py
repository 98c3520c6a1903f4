"""Engines and transactions for SQLite (default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with a long busy timeout; ``write_session`` begins with
``BEGIN IMMEDIATE`` so the write lock is taken up front; it is held only for short transactions
(a refresh is claimed, not locked, across its HTTP call). On PostgreSQL the same role is played
by ``SELECT … FOR UPDATE`` on the row.

The SQLite file holds upload targets, paths and callback URLs besides the encrypted tokens: it is
created mode 0600 (SQLite gives its -wal and -shm files the database's mode), its directory 0700,
and files found more open are tightened when connecting.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from vidauth.errors import ConfigError, ErrorCode, StoreError

if TYPE_CHECKING:
    from vidauth.store.migrate import MigrationTree

SQLITE_BUSY_TIMEOUT_S = 120.0
PRIVATE_FILE_MODE = 0o600
log = logging.getLogger("vidauth.store")


def normalize_database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def sqlite_path_of(url: str) -> Path | None:
    """The SQLite file a database URL names, or None (PostgreSQL, in-memory)."""
    return _sqlite_path(normalize_database_url(url))


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


class Database:
    """One engine and session factory per URL; ``migrate()`` before first use."""

    def __init__(self, url: str) -> None:
        self.url = normalize_database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.sqlite_path = _sqlite_path(self.url)
        self.engine = self._create_engine()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated: set[str] = set()
        self._migrate_lock = threading.Lock()

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            if self.sqlite_path is not None:
                try:
                    self.sqlite_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    _create_private(self.sqlite_path)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot create {self.sqlite_path.parent} for the store "
                        f"({exc.strerror or exc}): set VIDAUTH_HOME to a writable directory",
                        code=ErrorCode.HOME_UNWRITABLE,
                        directory=str(self.sqlite_path.parent),
                    ) from None
            engine = create_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            )
            event.listen(engine, "connect", _sqlite_on_connect)
            if self.sqlite_path is not None:
                path = self.sqlite_path
                event.listen(engine, "connect", lambda *_: tighten_sqlite_files(path))
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    def migrate(self, *trees: MigrationTree) -> None:
        """Bring the store's tables, then those of each of ``trees`` (a layer above hands its
        own), to their newest revisions (once per process; safe across processes)."""
        from vidauth.store.migrate import STORE, upgrade_to_head

        with self._migrate_lock:
            todo = [tree for tree in (STORE, *trees) if tree.name not in self._migrated]
            if not todo:
                return
            try:
                with self._cross_process_migration_lock():
                    for tree in todo:
                        upgrade_to_head(self.engine, tree)
                        self._migrated.add(tree.name)
            except OperationalError as exc:
                raise StoreError(
                    f"cannot open the database {self.safe_url}: {_short(exc)}"
                ) from None

    @contextmanager
    def _cross_process_migration_lock(self) -> Iterator[None]:
        if self.sqlite_path is not None:
            lock_path = self.sqlite_path.with_name(self.sqlite_path.name + ".migrate.lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "r+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        elif not self.is_sqlite:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(727274)"))
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(727274)"))
                    conn.commit()
        else:
            yield

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a (deferred) transaction, committed on success.

        For reads, and for writes whose first statement writes. A block that reads and then
        writes takes :meth:`write_session`: on SQLite a deferred transaction cannot wait for the
        write lock once another writer has committed since its read (SQLITE_BUSY_SNAPSHOT).
        """
        with self.sessions() as session, _committing(session):
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session holding the database's write lock on SQLite from its first statement.

        On PostgreSQL this is an ordinary transaction; lock rows with ``with_for_update()``.
        """
        conn: Connection = self.engine.connect()
        if self.is_sqlite:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            with Session(bind=conn, expire_on_commit=False) as session, _committing(session):
                yield session
        finally:
            conn.close()

    def dispose(self) -> None:
        """Close pooled connections (tests, shutdown, after fork)."""
        self.engine.dispose()


@contextmanager
def _committing(session: Session) -> Iterator[None]:
    """Commit when the block succeeds, roll back when it raises."""
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _create_private(path: Path) -> None:
    """Create the database file mode 0600 before SQLite does (it would use the umask)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def sqlite_files(path: Path) -> list[Path]:
    """The database and its WAL and shared-memory files (those that exist)."""
    candidates = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return [p for p in candidates if p.exists()]


def tighten_sqlite_files(path: Path) -> None:
    """Make the database and its -wal/-shm 0600 when they are more open (and ours)."""
    for file in sqlite_files(path):
        try:
            st = file.stat()
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(file, PRIVATE_FILE_MODE)
                log.info("tightened %s from %o to 600", file, st.st_mode & 0o777)
        except OSError:
            continue


def file_mode_problems(home: Path, sqlite_path: Path | None) -> list[str]:
    """What is more open than it should be: ``home`` beyond 0700, the database files beyond
    0600 (e.g. ``"/x/vidauth.db is 644"``); empty when all is private or absent."""
    problems: list[str] = []
    wanted = [(home, 0o700)] + [(f, PRIVATE_FILE_MODE) for f in sqlite_files(sqlite_path or home)]
    if sqlite_path is None:
        wanted = wanted[:1]
    for path, mode in wanted:
        try:
            actual = path.stat().st_mode & 0o777
        except OSError:
            continue
        if actual & ~mode & 0o777:
            problems.append(f"{path} is {actual:o} (want {mode:o})")
    return problems


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, so IMMEDIATE can be chosen.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _short(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]
