"""Upload throughput and memory, in one run, reported as medians and ratios with goals checked.

Two link profiles, each a sandbox (``vidauth sandbox``, its own process) whose S3 target adds a
fixed latency to every request and caps the bandwidth of all request bodies together:

  slow:  200 ms per request, 20e6 B/s  (160 Mbit/s), a 256 MiB random file
  fast:   50 ms per request, 80e6 B/s  (640 Mbit/s), a 256 MiB random file

256 MiB is ~13.4 s of link time on the slow profile and ~3.4 s on the fast one; the fast
profile's requests are short enough that 3.4 s still spans 30+ parts per variant, so the ratios
stay meaningful while a whole run takes about six minutes (``--size-mib`` and
``--fast-size-mib`` change them).

The sandboxes answer CompleteMultipartUpload without joining the parts first
(``--s3-lazy-complete``), as S3 does; a copy of 256 MiB inside Complete would otherwise be
timed in every variant.

A third profile has no goals of the issue and is reported for information: the fast link where
each connection gets at most 4 MB/s (``--s3-request-bandwidth``: a TCP window over a long round
trip), where the number of parts in flight, not the link, limits a client. The sample method
(one part at a time) is left out there: it would take over a minute per round.

On the first two links both vidauth and the TransferManager come within a few per cent of the
floor no client can beat: the link time of the file plus the round trips that must follow each
other (CreateMultipartUpload, the first part's latency, Complete). The table prints that floor
and the largest ratio to the TransferManager it leaves to any client: when the TransferManager
is within 5 % of the floor, the goal of 1.05 times it cannot be met by anyone on that link.

Each round runs every variant on every profile, interleaved (so a burst of load on the shared
machine hits every variant alike); the whole upload is timed, sessionUpload creation included:

  (a) vidauth's upload engine with its defaults (adaptive parts in flight): sessionUpload, parts,
      manifest, CompleteMultipartUpload, State 1; no wait for processing,
  (b) the method of Panopto's upload sample: sequential 5 MiB ``upload_part`` calls,
  (c) boto3's TransferManager (``upload_file``) with the default ``TransferConfig``.

Goals per profile: (a) ≥ 90 % of the cap, ≥ 1.05 times (c), ≥ 1.5 times (b). Then the peak RSS of
``vidauth upload`` (a child process, measured with ``wait4``) sending a 2 GiB file to an
uncapped sandbox. Goal: < 200 MB. The load average is printed before and after: the machine's
other work slows every variant, but not alike, so read the table with it.

Usage: .venv/bin/python bench/bench_upload.py [--rounds 3] [--size-mib 256] [--quick] [--check]
(``--check`` exits 1 when a goal is missed.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
SAMPLE_PART = 5 * MiB

GOAL_OF_CAP = 0.90
GOAL_VS_TRANSFER_MANAGER = 1.05
GOAL_VS_SAMPLE = 1.5
GOAL_RSS_MB = 200


@dataclass
class Profile:
    """A link: latency per request, shared bandwidth cap, and the file sent over it."""

    name: str
    latency: float
    bandwidth: float  # bytes per second
    size_mib: int
    request_bandwidth: float = 0.0  # bytes per second per request body (0: none)
    variants: tuple[str, ...] = ("a", "b", "c")
    goals: bool = True
    sandbox: Sandbox | None = None
    path: Path | None = None
    times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        per = f", {self.request_bandwidth / 1e6:.0f}/conn" if self.request_bandwidth else ""
        return f"{self.latency * 1000:.0f} ms / {self.bandwidth / 1e6:.0f} MB/s{per}"


def free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range (as the tests pick them)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port")


class Sandbox:
    """``vidauth sandbox`` in a child process, and a vidauth signed in to it."""

    def __init__(
        self,
        work: Path,
        *,
        latency: float = 0.0,
        bandwidth: float = 0.0,
        request_bandwidth: float = 0.0,
    ) -> None:
        self.port = free_port()
        self.redirect = f"http://127.0.0.1:{free_port()}/redirect"
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = work / f"home-{self.port}"
        self.storage = work / f"objects-{self.port}"
        command = [
            sys.executable, "-m", "vidauth", "sandbox", "--port", str(self.port),
            "--redirect-uri", self.redirect, "--storage", str(self.storage),
            "--s3-latency", str(latency), "--s3-bandwidth", str(bandwidth / 1e6),
            "--s3-request-bandwidth", str(request_bandwidth / 1e6), "--s3-lazy-complete",
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
        """A new sessionUpload: (its parsed UploadTarget, its ID)."""
        from vidauth.panopto.rest import PanoptoRest
        from vidauth.panopto.target import parse_upload_target

        with self.va.api_client() as api:
            created = PanoptoRest(api).create_session_upload(self.folder())
        return parse_upload_target(created["UploadTarget"]), str(created["ID"])

    def discard(self, upload_id: str) -> None:
        """Delete what an upload stored (the runs would otherwise fill the disk): its objects,
        and the parts of completed uploads (nothing else is in flight between runs)."""
        shutil.rmtree(self.storage / upload_id, ignore_errors=True)
        for parts in (self.storage / ".multipart").glob("*"):
            shutil.rmtree(parts, ignore_errors=True)

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


def run_vidauth(sandbox: Sandbox, path: Path) -> str:
    """vidauth's engine with its default options; answers the sessionUpload ID."""
    from vidauth.panopto.api import build_engine
    from vidauth.panopto.engine import UploadJob, UploadOptions

    with build_engine(sandbox.va, UploadOptions(wait=False)) as engine:
        result = engine.upload(UploadJob(path, sandbox.folder()))
    return str(result.upload_id)


def run_sample(sandbox: Sandbox, path: Path) -> str:
    """Panopto's sample: one 5 MiB part after another."""
    from vidauth.panopto.target import s3_client

    target, upload_id = sandbox.session_upload()
    s3 = s3_client(target.endpoint)
    key = target.key(path.name)
    multipart = s3.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    parts = []
    with path.open("rb") as fh:
        number = 1
        while chunk := fh.read(SAMPLE_PART):
            answer = s3.upload_part(
                Bucket=target.bucket, Key=key, UploadId=multipart, PartNumber=number, Body=chunk
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            number += 1
    s3.complete_multipart_upload(
        Bucket=target.bucket, Key=key, UploadId=multipart, MultipartUpload={"Parts": parts}
    )
    s3.close()
    return upload_id


def run_transfer_manager(sandbox: Sandbox, path: Path) -> str:
    """boto3 ``upload_file`` with the default TransferConfig (10 threads, 8 MiB chunks)."""
    from boto3.s3.transfer import TransferConfig

    from vidauth.panopto.target import s3_client

    target, upload_id = sandbox.session_upload()
    s3 = s3_client(target.endpoint)
    s3.upload_file(str(path), target.bucket, target.key(path.name), Config=TransferConfig())
    s3.close()
    return upload_id


VARIANTS: dict[str, Callable[[Sandbox, Path], str]] = {
    "a vidauth": run_vidauth,
    "b sample (sequential 5 MiB)": run_sample,
    "c boto3 TransferManager": run_transfer_manager,
}


def one_run(profile: Profile, name: str, run: Callable[[Sandbox, Path], str], tag: str) -> float:
    assert profile.sandbox is not None and profile.path is not None
    # A new name per run (a hard link: no copy): uploading the same file to the same folder
    # again would be recognised as the same upload instead of being sent again.
    linked = profile.path.with_name(f"{profile.path.stem}-{tag}{profile.path.suffix}")
    os.link(profile.path, linked)
    try:
        started = time.perf_counter()
        upload_id = run(profile.sandbox, linked)
        elapsed = time.perf_counter() - started
    finally:
        linked.unlink()
    profile.sandbox.discard(upload_id)
    profile.times.setdefault(name, []).append(elapsed)
    return elapsed


def floor_seconds(profile: Profile) -> float:
    """The least time any client needs on ``profile``'s link: the file's bytes at the whole
    cap, plus the S3 round trips that must follow each other — CreateMultipartUpload, the
    first part's request latency, CompleteMultipartUpload — (the sandbox's REST calls have no
    added latency). With a cap per request the link may not be reachable at all, so this is a
    bound, not a prediction."""
    return profile.size_mib * MiB / profile.bandwidth + 3 * profile.latency


def throughput(profiles: list[Profile], rounds: int) -> list[str]:
    """Interleaved rounds; answers the missed goals."""
    for r in range(rounds):
        for profile in profiles:
            for name, run in VARIANTS.items():
                if name[0] not in profile.variants:
                    continue
                elapsed = one_run(profile, name, run, f"{r}-{profile.name}-{name[0]}")
                size = profile.size_mib * MiB
                print(
                    f"  round {r + 1} {profile.title:27s} {name:29s} {elapsed:6.2f} s "
                    f"{size / elapsed / 1e6:6.1f} MB/s",
                    flush=True,
                )
    missed: list[str] = []
    for profile in profiles:
        size = profile.size_mib * MiB
        medians = {name: statistics.median(values) for name, values in profile.times.items()}
        print(
            f"\n{profile.title}, {profile.size_mib} MiB file, median of {rounds} round(s) "
            "(whole upload, create → Complete):"
        )
        print(f"  {'variant':29s} {'median':>8s} {'MB/s':>7s} {'% of cap':>9s}")
        for name, median in medians.items():
            rate = size / median
            share = 100 * rate / profile.bandwidth
            print(f"  {name:29s} {median:7.2f}s {rate / 1e6:7.1f} {share:8.1f}%")
        floor = floor_seconds(profile)
        print(
            f"  {'floor (computed, see below)':29s} {floor:7.2f}s {size / floor / 1e6:7.1f} "
            f"{100 * size / floor / profile.bandwidth:8.1f}%"
        )
        if "c boto3 TransferManager" in medians:
            best = medians["c boto3 TransferManager"] / floor
            print(f"  the floor allows at most {best:.2f}x TransferManager, for any client")
        if not profile.goals:
            a, c = medians["a vidauth"], medians["c boto3 TransferManager"]
            print(f"  vidauth / TransferManager {c / a:.2f}x (no goal: for information)")
            continue
        a, b, c = (medians[name] for name in VARIANTS)
        of_cap = size / a / profile.bandwidth
        checks = [
            (f"vidauth {100 * of_cap:.1f} % of the cap", of_cap, GOAL_OF_CAP, "%"),
            (f"vidauth / TransferManager {c / a:.2f}x", c / a, GOAL_VS_TRANSFER_MANAGER, "x"),
            (f"vidauth / sample {b / a:.2f}x", b / a, GOAL_VS_SAMPLE, "x"),
        ]
        for text, value, goal, unit in checks:
            met = value >= goal
            shown = f"{100 * goal:.0f} %" if unit == "%" else f"{goal:.2f}x"
            print(f"  {text:38s} goal >= {shown:7s} {'met' if met else 'MISSED'}")
            if not met:
                missed.append(f"{profile.title}: {text} (goal >= {shown})")
    return missed


def peak_rss(work: Path, size: int) -> list[str]:
    """``vidauth upload`` of a ``size``-byte file in a child process; answers missed goals."""
    sandbox = Sandbox(work)
    try:
        path = work / "big.mp4"
        with path.open("wb") as fh:  # sparse: reading it costs no disk
            fh.truncate(size)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
        env.update({k.upper(): v for k, v in sandbox.settings().items()})
        with tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "vidauth", "upload", str(path), "--folder",
                 sandbox.folder(), "--no-wait", "--json"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            elapsed = time.perf_counter() - started
            if child.returncode:
                err.seek(0)
                raise SystemExit(f"vidauth upload failed: {err.read().strip()}")
        rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
        met = rss_mb < GOAL_RSS_MB
        print(
            f"\nPeak RSS of `vidauth upload` of {size / MiB:.0f} MiB (uncapped): {rss_mb:.0f} MB "
            f"(goal < {GOAL_RSS_MB}: {'met' if met else 'MISSED'}), {elapsed:.1f} s, "
            f"{size / elapsed / 1e6:.0f} MB/s",
            flush=True,
        )
        return [] if met else [f"peak RSS {rss_mb:.0f} MB (goal < {GOAL_RSS_MB})"]
    finally:
        shutil.rmtree(sandbox.storage, ignore_errors=True)
        sandbox.stop()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256, help="file of the slow profile")
    parser.add_argument("--fast-size-mib", type=int, default=256, help="file of the fast profile")
    parser.add_argument("--rss-mib", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="32 MiB, 1 round, 256 MiB RSS run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.size_mib, args.fast_size_mib, args.rss_mib = 1, 32, 32, 256
    profiles = [
        Profile("slow", 0.2, 20e6, args.size_mib),
        Profile("fast", 0.05, 80e6, args.fast_size_mib),
        Profile(
            "window",
            0.05,
            80e6,
            args.fast_size_mib,
            request_bandwidth=4e6,
            variants=("a", "c"),
            goals=False,
        ),
    ]
    print(f"Before: {load()}", flush=True)
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vidauth-bench-") as tmp:
        work = Path(tmp)
        missed += peak_rss(work, args.rss_mib * MiB)
        try:
            for profile in profiles:
                profile.sandbox = Sandbox(
                    work,
                    latency=profile.latency,
                    bandwidth=profile.bandwidth,
                    request_bandwidth=profile.request_bandwidth,
                )
                profile.path = make_file(work / f"{profile.name}.mp4", profile.size_mib * MiB)
            missed += throughput(profiles, args.rounds)
        finally:
            for profile in profiles:
                if profile.sandbox is not None:
                    profile.sandbox.stop()
    print(f"\nAfter: {load()}")
    print("All goals met." if not missed else "Goals missed:\n  " + "\n  ".join(missed))
    if args.check and missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
