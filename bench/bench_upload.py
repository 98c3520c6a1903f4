"""Upload throughput and memory, in one run, reported as medians and ratios.

Against the sandbox's S3 target (its own process) with 0.2 s latency per request and a
20e6 B/s (160 Mbit/s) cap, a 256 MiB random file, interleaved rounds of:

  (a) vidauth's UploadEngine (whole upload: sessionUpload, parts, manifest, State 1; no wait),
  (b) the baseline of Panopto's sample: sequential 5 MiB ``upload_part`` calls in a loop,
  (c) boto3's ``upload_file`` with the default TransferConfig (what ``aws s3 cp`` does).

Goals: (a) ≥ 90 % of the cap, ≥ 1.5 times (b), not slower than (c).
Then the peak RSS of ``vidauth upload`` (a child process) sending a 2 GiB file to an uncapped
sandbox. Goal: < 200 MB.

Usage: .venv/bin/python bench/bench_upload.py [--rounds 3] [--size-mib 256] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
LATENCY = 0.2
BANDWIDTH = 20e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """``vidauth sandbox`` in a child process, and a vidauth signed in to it."""

    def __init__(self, work: Path, *, latency: float = 0.0, bandwidth_mb: float = 0.0) -> None:
        self.port = free_port()
        self.redirect = f"http://127.0.0.1:{free_port()}/redirect"
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = work / f"home-{self.port}"
        command = [
            sys.executable, "-m", "vidauth", "sandbox", "--port", str(self.port),
            "--redirect-uri", self.redirect, "--storage", str(work / f"objects-{self.port}"),
            "--s3-latency", str(latency), "--s3-bandwidth", str(bandwidth_mb),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/Panopto/oauth2/.well-known/openid-configuration", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the sandbox did not start")
        self.va = self._sign_in()

    def settings(self) -> dict[str, str]:
        from vidauth.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

        return {
            "panopto_server": self.url,
            "panopto_client_id": DEFAULT_CLIENT_ID,
            "panopto_client_secret": DEFAULT_CLIENT_SECRET,
            "panopto_redirect_uri": self.redirect,
            "vidauth_home": str(self.home),
        }

    def _sign_in(self) -> Any:
        from vidauth.client import Vidauth
        from vidauth.config import load_settings
        from vidauth.sandbox.browser import complete_browser_login

        va = Vidauth(load_settings(env_file=False, **self.settings()))

        def browser(url: str) -> None:
            threading.Thread(target=complete_browser_login, args=(url,), daemon=True).start()

        va.login(open_browser=browser, announce=lambda _s: None, timeout=30)
        return va

    def folder(self) -> str:
        from vidauth.sandbox.panopto_api import PanoptoSandbox

        return PanoptoSandbox.folder_id("Sandbox Courses", "SIT102 Labs")

    def session_upload(self) -> tuple[Any, str]:
        """A new sessionUpload: (its UploadTarget, bucket/prefix split)."""
        from vidauth.panopto.rest import PanoptoRest
        from vidauth.panopto.target import parse_upload_target

        with self.va.api_client() as api:
            created = PanoptoRest(api).create_session_upload(self.folder())
        return parse_upload_target(created["UploadTarget"]), created["ID"]

    def stop(self) -> None:
        self.va.close()
        self.proc.terminate()
        self.proc.wait(10)


def make_file(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(4 * MiB, left)
            fh.write(os.urandom(n))
            left -= n
    return path


def run_vidauth(sandbox: Sandbox, path: Path) -> None:
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.engine import UploadJob, UploadOptions

    with build_engine(sandbox.va, UploadOptions(wait=False)) as engine:
        engine.upload(UploadJob(path, sandbox.folder()))


def run_baseline(sandbox: Sandbox, path: Path) -> None:
    """Panopto's sample: one 5 MiB part after another."""
    from vidauth.panopto.target import s3_client

    target, _ = sandbox.session_upload()
    s3 = s3_client(target.endpoint)
    key = target.key(path.name)
    upload_id = s3.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    parts = []
    with path.open("rb") as fh:
        number = 1
        while chunk := fh.read(5 * MiB):
            answer = s3.upload_part(
                Bucket=target.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            number += 1
    s3.complete_multipart_upload(
        Bucket=target.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    s3.close()


def run_transfer_manager(sandbox: Sandbox, path: Path) -> None:
    """boto3 ``upload_file`` with the default TransferConfig."""
    from vidauth.panopto.target import s3_client

    target, _ = sandbox.session_upload()
    s3 = s3_client(target.endpoint)
    s3.upload_file(str(path), target.bucket, target.key(path.name))
    s3.close()


def throughput(sandbox: Sandbox, path: Path, rounds: int) -> None:
    size = path.stat().st_size
    variants: dict[str, Callable[[Sandbox, Path], None]] = {
        "a vidauth engine": run_vidauth,
        "b baseline (sequential 5 MiB)": run_baseline,
        "c boto3 upload_file": run_transfer_manager,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, run in variants.items():
            # A new name per run (a hard link: no copy): rerunning an upload of the same file to
            # the same folder would resume the recorded one instead of sending it again.
            linked = path.with_name(f"{path.stem}-{r}-{name[0]}{path.suffix}")
            os.link(path, linked)
            started = time.perf_counter()
            run(sandbox, linked)
            elapsed = time.perf_counter() - started
            linked.unlink()
            times[name].append(elapsed)
            print(f"  round {r + 1} {name}: {elapsed:.2f} s", flush=True)
    print(
        f"\nThroughput: {size / MiB:.0f} MiB, latency {LATENCY} s/request, cap {BANDWIDTH:.0f} B/s"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        rate = size / median
        print(
            f"  {name:32s} median {median:6.2f} s  {rate / 1e6:6.1f} MB/s  "
            f"{100 * rate / BANDWIDTH:5.1f} % of cap"
        )
    a, b, c = medians.values()
    print(f"  speed ratio vidauth/baseline: {b / a:.2f}x (goal >= 1.5)")
    print(f"  speed ratio vidauth/upload_file: {c / a:.2f}x (goal >= 1.0)")


def peak_rss(work: Path, size: int) -> None:
    sandbox = Sandbox(work)
    try:
        path = work / "big.mp4"
        with path.open("wb") as fh:  # sparse: reading it costs no disk
            fh.truncate(size)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
        env.update({k.upper(): v for k, v in sandbox.settings().items()})
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vidauth", "upload", str(path), "--folder", sandbox.folder(),
             "--no-wait", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"vidauth upload failed: {done.stderr.strip()}")
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"\nPeak RSS of `vidauth upload` of {size / MiB:.0f} MiB (uncapped): {rss_mb:.0f} MB "
            f"(goal < 200), {elapsed:.1f} s, {size / elapsed / 1e6:.0f} MB/s"
        )
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rss-mib", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="32 MiB, 1 round, 256 MiB RSS run")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.size_mib, args.rss_mib = 1, 32, 256
    with tempfile.TemporaryDirectory(prefix="vidauth-bench-") as tmp:
        work = Path(tmp)
        peak_rss(work, args.rss_mib * MiB)  # first: RUSAGE_CHILDREN is a max over children
        sandbox = Sandbox(work, latency=LATENCY, bandwidth_mb=BANDWIDTH / 1e6)
        try:
            path = make_file(work / "bench.mp4", args.size_mib * MiB)
            throughput(sandbox, path, args.rounds)
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
