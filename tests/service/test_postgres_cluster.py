"""Several ``vidauth serve`` and ``vidauth worker`` processes sharing one PostgreSQL database.

Real processes, the machine's real PostgreSQL (a private schema of VIDAUTH_TEST_DATABASE_URL), the
sandbox in this process so that it can count what reaches Panopto: sessionUploads, sessions,
committed S3 parts and the access tokens issued per grant. The restart test restarts a private
server of its own (``initdb`` in a temporary directory, on a free port), never the machine's.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import SETTING_NAMES, free_port
from tests.service.conftest import open_connect_link, video_bytes

pytestmark = pytest.mark.postgres

MiB = 1024 * 1024
FOLDER = "SIT101 Lectures"
PASSWORD = "load-test-password"


@dataclass
class Cluster:
    """The sandbox, the shared settings, and the serve/worker processes started so far."""

    sandbox: Any
    env: dict[str, str]
    database_url: str
    work: Path
    lifetime: int
    serves: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    committed: list[tuple[str, int]] = field(default_factory=list)
    key: str = ""

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidauth", *args],
            env=self.env,
            cwd=self.work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = proc
        return proc

    def start_serve(self, name: str, port: int) -> str:
        self.start(name, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        _wait(f"{name} to answer", lambda: _ok(url + "/healthz"), 40)
        self.serves.append(url)
        return url

    def api(self, index: int) -> httpx.Client:
        return httpx.Client(
            base_url=self.serves[index % len(self.serves)],
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )

    def connect(self, user: str, via: int) -> None:
        with self.api(via) as api:
            link = api.post(f"/v1/accounts/{user}/connect")
            assert link.status_code == 200, link.text
        page = open_connect_link(link.json()["connect_url"], username=user, password=PASSWORD)
        assert page.status_code == 200 and "connected" in page.text, page.text

    def upload(self, user: str, content: bytes, title: str, via: int) -> str:
        with self.api(via) as api:
            r = api.post(
                "/v1/uploads",
                data={"external_user_id": user, "folder": FOLDER, "title": title},
                files={"file": (f"{title}.mp4", content, "video/mp4")},
            )
        assert r.status_code == 202, r.text
        return str(r.json()["upload_id"])

    def wait_all(self, ids: list[str], timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.api(0) as api:
            pending = set(ids)
            done: dict[str, dict[str, Any]] = {}
            while pending and time.monotonic() < deadline:
                for upload_id in list(pending):
                    try:
                        body = api.get(f"/v1/uploads/{upload_id}").json()
                    except (httpx.HTTPError, ValueError):
                        continue  # e.g. while PostgreSQL restarts
                    if body.get("state") in ("complete", "failed", "cancelled"):
                        done[upload_id] = body
                        pending.discard(upload_id)
                time.sleep(0.2)
        assert not pending, f"{len(pending)} uploads unfinished: {self.logs()}"
        return [done[i] for i in ids]

    def db(self) -> sa.Engine:
        return sa.create_engine(self.database_url, pool_pre_ping=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.work / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in self.processes
        )

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.sandbox.stop()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def make_cluster(tmp_path: Path, postgres_url: str) -> Iterator[Callable[..., Cluster]]:
    """Factory: a sandbox + shared settings on a private PostgreSQL schema; processes come later."""
    from cryptography.fernet import Fernet

    from vidauth_sandbox import SandboxClient, SandboxConfig
    from vidauth_sandbox.full import start_full_sandbox

    made: list[Cluster] = []

    def make(
        *,
        lifetime: int = 3600,
        users: int = 10,
        s3_bandwidth: float | None = None,
        database_url: str | None = None,
        **env: str,
    ) -> Cluster:
        database = database_url or postgres_url
        public = f"http://127.0.0.1:{free_port()}"
        client = SandboxClient(
            client_id=f"cluster-{uuid.uuid4().hex[:8]}",
            client_secret="cluster-secret-" + uuid.uuid4().hex,
            redirect_uris=[f"{public}/oauth/callback"],
            grant_types=["authorization_code", "refresh_token"],
        )
        config = SandboxConfig(
            clients=[client],
            access_token_lifetime=lifetime,
            users={f"user{i}": PASSWORD for i in range(users)},
        )
        sandbox = start_full_sandbox(
            config,
            storage_dir=tmp_path / "objects",
            processing_delay=0.3,
            s3_bandwidth=s3_bandwidth,
        )
        variables = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        variables = {k: v for k, v in variables.items() if not k.startswith("VIDAUTH_")}
        variables.update(
            {
                "PANOPTO_SERVER": sandbox.url,
                "PANOPTO_CLIENT_ID": client.client_id,
                "PANOPTO_CLIENT_SECRET": client.client_secret,
                "PANOPTO_REDIRECT_URI": f"{public}/oauth/callback",
                "VIDAUTH_HOME": str(tmp_path / "home"),
                "VIDAUTH_DATABASE_URL": database,
                "VIDAUTH_SECRET_KEY": Fernet.generate_key().decode(),
                "VIDAUTH_PUBLIC_URL": public,
                "VIDAUTH_UPLOAD_DIR": str(tmp_path / "spool"),
                "VIDAUTH_POLL_SECONDS": "0.2",
                "VIDAUTH_HEARTBEAT_SECONDS": "1",
                "VIDAUTH_LEASE_SECONDS": "3",
                "VIDAUTH_PROCESSING_POLL_MAX": "0.3",
                "VIDAUTH_PART_SIZE_MIB": "5",
                "VIDAUTH_RETRY_MAX_SECONDS": "60",
                **env,
            }
        )
        cluster = Cluster(sandbox, variables, database, tmp_path, lifetime)
        made.append(cluster)
        storage = sandbox.panopto.storage
        real_commit = storage.commit_part
        lock = threading.Lock()

        def commit_part(upload: Any, number: int, *args: Any) -> None:
            real_commit(upload, number, *args)
            if upload.key.endswith(".xml"):  # a manifest's one part: not the media's
                return
            with lock:
                cluster.committed.append((str(upload.upload_id), number))

        storage.commit_part = commit_part
        created = subprocess.run(
            [sys.executable, "-m", "vidauth", "apikey", "create", "cluster"],
            env=variables,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        cluster.key = created.stdout.strip()
        # the public URL (where the callback lands) is the first serve process
        cluster.start_serve("serve-a", int(public.rsplit(":", 1)[1]))
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


@dataclass
class PrivateServer:
    """A PostgreSQL server of this test's own, run by the ``postgres`` user from a temporary
    data directory."""

    bin: Path
    data: Path
    port: int

    @property
    def log(self) -> str:
        return str(self.data.parent / "server.log")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args)


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as the ``postgres`` user (initdb refuses root; CI runs as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def private_postgres() -> Iterator[PrivateServer]:
    """A fresh PostgreSQL server on a free loopback port (trusting loopback), stopped and
    removed at teardown. Needs the server's binaries (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    initdb = found[-1] if found else shutil.which("initdb")
    assert initdb, "the PostgreSQL server's initdb is needed (apt-get install postgresql)"
    bin_dir = Path(initdb).parent
    base = Path(tempfile.mkdtemp(prefix="vidauth-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        data = base / "data"
        made = _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                            "-A", "trust", "--no-sync")  # fmt: skip
        assert made.returncode == 0, made.stderr
        server = PrivateServer(bin_dir, data, free_port())
        options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
        started = server.pg_ctl("-l", server.log, "-o", options, "start")
        assert started.returncode == 0, started.stderr + started.stdout
        try:
            yield server
        finally:
            server.pg_ctl("-m", "immediate", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _access_tokens_by_grant(sandbox: Any) -> dict[str, list[float]]:
    """When each grant's access tokens were issued (expires_at - lifetime), sorted."""
    state = sandbox.state
    lifetime = state.config.access_token_lifetime
    issued: dict[str, list[float]] = {}
    with state._lock:
        for token in state._tokens.values():
            if token.kind == "access_token" and token.expires_at is not None:
                issued.setdefault(token.grant_id, []).append(token.expires_at - lifetime)
    return {grant: sorted(times) for grant, times in issued.items()}


def test_two_serves_three_workers_fifty_uploads_ten_users(make_cluster: Any) -> None:
    # 5 s tokens under the default VIDAUTH_TOKEN_MIN_VALIDITY (300 s): the refresh margin is
    # capped at a fifth of the token's life, so a token is refreshed once, in its last second
    lifetime = 5
    cluster = make_cluster(
        lifetime=lifetime,
        VIDAUTH_WORKER_JOBS="3",
        VIDAUTH_UPLOAD_PARALLEL="2",
    )
    cluster.start_serve("serve-b", free_port())
    for n in range(3):
        cluster.start(f"worker-{n}", "worker")
    users = [f"user{i}" for i in range(10)]
    for i, user in enumerate(users):
        cluster.connect(user, via=i)  # links from both serve processes
    started = time.monotonic()
    # 50 uploads of two parts each, sent to both serve processes at once
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: cluster.upload(
                    users[i % 10], video_bytes(6 * MiB, i), f"load-{i:02d}", via=i
                ),
                range(50),
            )
        )
    results = cluster.wait_all(ids, timeout=240)
    elapsed = time.monotonic() - started
    assert [r["state"] for r in results] == ["complete"] * 50, [
        (r["state"], r.get("error")) for r in results if r["state"] != "complete"
    ]
    assert all(r["bytes_sent"] == r["bytes_total"] == 6 * MiB for r in results)

    # Exactly once at Panopto: 50 sessionUploads, one session per title, each part stored once.
    panopto = cluster.sandbox.panopto
    with panopto._lock:
        titles = Counter(s.name for s in panopto._sessions.values() if s.name.startswith("load-"))
        session_uploads = len(panopto._uploads)
    assert session_uploads == 50
    assert titles == Counter({f"load-{i:02d}": 1 for i in range(50)})
    per_part = Counter(cluster.committed)
    assert len(per_part) == 100 and set(per_part.values()) == {1}

    # One refresh per expiry per account: a grant's next access token is issued only once the
    # previous one is within min_validity of expiring, never twice in one token's life.
    issued = _access_tokens_by_grant(cluster.sandbox)
    assert len(issued) == 10
    refreshes = sum(len(times) - 1 for times in issued.values())
    assert refreshes >= 10, f"the run ({elapsed:.0f} s) should outlive the {lifetime} s tokens"
    for times in issued.values():
        gaps = [b - a for a, b in pairwise(times)]
        assert all(gap >= lifetime * 0.6 for gap in gaps), gaps
    for name, proc in cluster.processes.items():
        assert proc.poll() is None, f"{name} died: {cluster.logs()}"


def test_kill_9_worker_mid_upload_another_finishes_sending_only_missing_parts(
    make_cluster: Any,
) -> None:
    cluster = make_cluster(users=1, s3_bandwidth=3e6, VIDAUTH_UPLOAD_PARALLEL="1")
    victim = cluster.start("worker-0", "worker")
    cluster.connect("user0", via=0)
    content = video_bytes(30 * MiB, 99)  # six 5 MiB parts, about 10 s at 3 MB/s
    upload_id = cluster.upload("user0", content, "kill-9", via=0)
    _wait("two parts stored", lambda: len(cluster.committed) >= 2, 60)
    engine = cluster.db()
    with engine.connect() as conn:
        owner = conn.execute(
            sa.text("SELECT lease_owner FROM service_jobs WHERE id = :id"), {"id": upload_id}
        ).scalar_one()
    engine.dispose()
    assert owner and int(owner.split(":")[1]) == victim.pid
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    stored_before = len(cluster.committed)
    assert stored_before < 6, "the upload should not have finished before the kill"
    cluster.start("worker-1", "worker")  # takes the job over once the 3 s lease lapses
    (result,) = cluster.wait_all([upload_id], timeout=120)
    assert result["state"] == "complete", result
    # The new worker sent only the parts the store had not recorded: every part once, but for
    # the one in flight at the kill (parallel 1), which the target may have received without
    # the victim hearing it — the strict target answers no ListParts to find that out.
    numbers = sorted(number for _upload, number in cluster.committed)
    assert sorted(set(numbers)) == [1, 2, 3, 4, 5, 6], numbers
    assert len(numbers) <= 6 + 1, numbers
    stored = [p for p in (cluster.work / "objects").rglob("*") if p.is_file()]
    assert any(p.stat().st_size == len(content) and p.read_bytes() == content for p in stored)


def test_postgresql_restart_mid_run_loses_nothing(
    private_postgres: PrivateServer, make_cluster: Any
) -> None:
    cluster = make_cluster(
        users=2,
        s3_bandwidth=6e6,
        database_url=private_postgres.url,
        VIDAUTH_WORKER_JOBS="2",
    )
    cluster.start("worker-0", "worker")
    cluster.start("worker-1", "worker")
    cluster.connect("user0", via=0)
    cluster.connect("user1", via=0)
    ids = [
        cluster.upload(f"user{i % 2}", video_bytes(8 * MiB, 200 + i), f"pg-{i}", via=0)
        for i in range(6)
    ]
    _wait("an upload under way", lambda: len(cluster.committed) >= 1, 60)
    restart = private_postgres.pg_ctl(
        "-l", private_postgres.log, "-m", "fast", "restart"
    )  # the options it started with
    assert restart.returncode == 0, restart.stderr + restart.stdout
    serve = cluster.serves[0]
    _wait("/readyz back to 200", lambda: _ok(serve + "/readyz"), 60)
    # a new upload after the restart is accepted too
    ids.append(cluster.upload("user0", video_bytes(6 * MiB, 299), "pg-after", via=0))
    results = cluster.wait_all(ids, timeout=240)
    assert [r["state"] for r in results] == ["complete"] * len(ids), [
        (r["state"], r.get("error")) for r in results
    ]
    panopto = cluster.sandbox.panopto
    with panopto._lock:
        titles = Counter(s.name for s in panopto._sessions.values() if s.name.startswith("pg-"))
    assert titles == Counter({**{f"pg-{i}": 1 for i in range(6)}, "pg-after": 1})
    for name, proc in cluster.processes.items():
        assert proc.poll() is None, f"{name} died: {cluster.logs()}"


WORKER_STEPS = [
    ("CreateMultipartUpload", ".mp4"),
    ("CompleteMultipartUpload", ".mp4"),  # Complete sent, its answer lost
    ("CompleteMultipartUpload", ".xml"),  # the manifest's
    ("State1", None),  # State 1 sent, its answer lost
]


@pytest.mark.parametrize(
    ("point", "key"), WORKER_STEPS, ids=[f"{p}{k or ''}" for p, k in WORKER_STEPS]
)
def test_kill_9_worker_at_a_step_another_takes_over(
    make_cluster: Any, point: str, key: str | None
) -> None:
    """The sandbox holds the step's request until the worker is killed, then lets it through;
    another worker takes the job over: one session, the right bytes."""
    cluster = make_cluster(users=1)
    held = cluster.sandbox.panopto.hold(point, key)
    victim = cluster.start("worker-0", "worker")
    cluster.connect("user0", via=0)
    content = video_bytes(11 * MiB, 77)
    title = f"step-{point}{key or ''}"
    upload_id = cluster.upload("user0", content, title, via=0)
    try:
        assert held.wait_arrived(60), cluster.logs()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        held.release()
    cluster.start("worker-1", "worker")  # takes the job over once the 3 s lease lapses
    (result,) = cluster.wait_all([upload_id], timeout=120)
    assert result["state"] == "complete", result
    stored = [p for p in (cluster.work / "objects").rglob("*") if p.is_file()]
    assert any(p.stat().st_size == len(content) and p.read_bytes() == content for p in stored)
    sessions = [s for s in cluster.sandbox.panopto._sessions.values() if s.name == title]
    assert len(sessions) == 1 and sessions[0].id == result["session_id"]
