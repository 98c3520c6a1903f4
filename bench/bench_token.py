"""Benchmarks of the sign-in issue, in one run, reported as medians and ratios.

1. ``vidauth token`` with a valid cached token (whole process) against the baseline
   ``python -c "import vidauth"``, interleaved, median of N runs each; also the full (Typer +
   SQLAlchemy) path for comparison. Goal: ratio ≤ 1.5.
2. In-process token lookup from the SQLite store (TokenManager.access_token): p50 and p99.
   Goal: p50 < 1 ms.
3. Token-endpoint calls per expiry with 8 threads + 4 processes refreshing at once against the
   sandbox (SQLite store). Goal: exactly 1.

Usage: .venv/bin/python bench/bench_token.py [--runs 15] [--lookups 3000] [--races 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _seed_store(home: Path) -> dict[str, str]:
    """A store holding a valid token for an https profile, as after a real sign-in."""
    from vidauth.store import Database, TokenSet, TokenStore

    store = TokenStore.open(Database(f"sqlite:///{home / 'vidauth.db'}"), home, ())
    store.save_grant(
        profile_key="panopto|https://panopto.example.com|bench-client",
        subject="bench",
        username="bench",
        server="https://panopto.example.com",
        client_id="bench-client",
        tokens=TokenSet(
            access_token="bench-token-" + "x" * 900,
            refresh_token="r" * 40,
            expires_at=time.time() + 3600,
        ),
    )
    store.db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(
        PANOPTO_SERVER="panopto.example.com",
        PANOPTO_CLIENT_ID="bench-client",
        PANOPTO_CLIENT_SECRET="bench-secret",
        VIDAUTH_HOME=str(home),
    )
    return env


def _time(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed: {done.stderr}")
    return elapsed


def bench_process(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = _seed_store(home)
        variants = {
            "baseline: python -c 'import vidauth'": [sys.executable, "-c", "import vidauth"],
            "floor: python -c 'import sqlite3, cryptography.fernet'": [
                sys.executable,
                "-c",
                "import vidauth, sqlite3, cryptography.fernet",
            ],
            "vidauth token (cached)": [str(BIN / "vidauth"), "token"],
            "vidauth token --min-validity 60 (full CLI path)": [
                str(BIN / "vidauth"),
                "token",
                "--min-validity",
                "60",
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for cmd in variants.values():  # warm the page cache once
            _time(cmd, env, home)
        for _ in range(runs):
            for name, cmd in variants.items():
                times[name].append(_time(cmd, env, home))
        base = statistics.median(times["baseline: python -c 'import vidauth'"])
        print(f"\n1. whole-process `vidauth token`, median of {runs} interleaved runs")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"   {name:<50} {med * 1000:7.1f} ms   ratio {med / base:4.2f}x")


def bench_lookup(lookups: int) -> None:
    from vidauth.client import Vidauth
    from vidauth.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _seed_store(home)
        settings = load_settings(
            env_file=False,
            panopto_server="panopto.example.com",
            panopto_client_id="bench-client",
            panopto_client_secret="bench-secret",
            vidauth_home=str(home),
        )
        with Vidauth(settings) as va:
            manager = va.token_manager()
            for _ in range(200):
                manager.access_token()
            samples = []
            for _ in range(lookups):
                start = time.perf_counter()
                manager.access_token()
                samples.append(time.perf_counter() - start)
        samples.sort()
        p50 = samples[len(samples) // 2] * 1000
        p99 = samples[int(len(samples) * 0.99)] * 1000
        print(f"\n2. in-process token lookup (SQLite store, {lookups} lookups)")
        print(f"   p50 {p50:.3f} ms   p99 {p99:.3f} ms   goal p50 < 1 ms")


def _one_race(setup: object) -> int:
    """Expire the stored token, let 8 threads + 4 processes ask at once; return refreshes."""
    from sqlalchemy import update

    from vidauth.store.models import Token

    with setup.vidauth() as va:  # type: ignore[attr-defined]
        account = setup.login(va)  # type: ignore[attr-defined]
        with va.store.db.write_session() as session:
            session.execute(
                update(Token).where(Token.account_id == account.id).values(expires_at=0)
            )
        before = setup.server.state.stats_snapshot()  # type: ignore[attr-defined]
        start_at = time.time() + 3.0
        env = setup.env(PYTHONPATH=str(ROOT))  # type: ignore[attr-defined]
        helper = ROOT / "tests" / "helpers" / "refresh_worker.py"
        procs = [
            subprocess.Popen(
                [sys.executable, str(helper), str(start_at)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        tokens: list[str] = []

        def call() -> None:
            manager = va.token_manager()
            time.sleep(max(0.0, start_at - time.time()))
            tokens.append(manager.access_token(60))

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tokens += [p.communicate()[0].strip() for p in procs]
        after = setup.server.state.stats_snapshot()  # type: ignore[attr-defined]
    if len(tokens) != 12 or len(set(tokens)) != 1:
        raise SystemExit("the callers did not all receive the same token")
    return _refreshes(after) - _refreshes(before)


def bench_race(races: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_sandbox

    counts = []
    for _ in range(races):
        with tempfile.TemporaryDirectory() as tmp:
            setup = start_sandbox(Path(tmp))
            try:
                counts.append(_one_race(setup))
            finally:
                setup.server.stop()
    print("\n3. token-endpoint refresh calls per expiry, 8 threads + 4 processes, SQLite store")
    print(f"   per race: {counts}   goal: exactly 1 each")


def _refreshes(stats: dict[str, object]) -> int:
    from tests.oauth.test_signin_e2e import _count

    return _count(stats, "refresh_token")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--races", type=int, default=3)
    args = parser.parse_args()
    bench_process(args.runs)
    bench_lookup(args.lookups)
    bench_race(args.races)


if __name__ == "__main__":
    main()
