"""Uploads as a user feels them: whole processes, start to exit, against the floor of the link.

Every figure is a whole process, timed from its start to its exit, against a sandbox
(``vidauth sandbox``, its own process) whose S3 target adds a fixed latency to every request and
caps the bandwidth of all request bodies together (and, on link B, of each one):

  A: 200 ms a request, 20e6 B/s shared, one 256 MiB file
  B:  50 ms a request, 80e6 B/s shared, each connection at most 4e6 B/s, one 256 MiB file
  C: link A, 12 clips of 16 MiB in one command

Three clients, each creating its sessionUpload(s), sending the bytes, the manifest, and
finishing (``State: 1``, no wait for processing), each run from a non-editable install of the
tree under test in a private venv, as a user's ``pip install`` makes one (the dev venv's test
tools would add their imports to every start; ``--in-tree`` runs the source tree instead):

  vidauth   ``vidauth upload FILES --folder F --no-wait --json`` (defaults: adaptive parts)
  tm        a script with boto3's TransferManager (``upload_file``, default TransferConfig),
            file after file
  sample    a script with the method of Panopto's upload sample: sequential 5 MiB parts
            (left out on B, where it needs a minute a round)

The two scripts are this file run with ``--client tm|sample``: they sign in the way vidauth
does (the same store), so only the transfer differs. Rounds are interleaved (a burst of load on
the shared machine hits every client alike); the table shows medians. Every ``vidauth`` (and
``before``) run starts cold, as a first upload to the host: the plateau of parts in flight
remembered by the run before is forgotten. On B each is followed by a warm run (``vidauth
warm``), which starts from the plateau its cold run left.

The floor no client can beat: 0.3 s of Python start, the bytes at the shared cap, and the three
round trips that must follow each other (CreateMultipartUpload, the first part's latency,
Complete). On B it is a bound, not a prediction: reaching it needs 20 connections at once.

Then: the time from the process's start to the first part's arrival at the target (the
sandbox's ``first_part_arrivals``; the floor is 0.5 s, the start and CreateMultipartUpload's
round trip), and to its first byte read for sending (the first ``progress`` event: the body
waits for ``100 Continue``, one latency more) on A with a 16 MiB file, the peak
RSS of ``vidauth upload`` of a 2 GiB file (uncapped sandbox; again after a plateau of the most
parts in flight was remembered), and ``--bwlimit 5M`` on an uncapped link with 64 MiB (the rate from
the first byte read to the ``uploaded`` event).

Goals (issue 18): A within 5 % of the floor and >= 1.0x TransferManager; B within 15 % of the
floor; C within 5 % of the floor; first part <= 0.7 s; RSS < 200 MB; bwlimit within 5 %.
The load average is printed before and after: other work on the machine slows every client.

Before and after a change, on the same machine state: ``--baseline DIR`` adds a client
``before``, ``vidauth upload`` run from an install of the source tree DIR (e.g. ``git worktree
add DIR <commit>``), interleaved with ``vidauth`` in every round and in the first-part runs.
Installs are kept in the temporary directory by the digest of each tree's sources.

Usage: .venv/bin/python bench/bench_upload.py [--rounds 3] [--links ABC] [--only
links,first,rss,bwlimit] [--baseline DIR] [--in-tree] [--quick] [--check]
(``--check`` exits 1 when a goal is missed.)
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
SAMPLE_PART = 5 * MiB
PYTHON_START = 0.3
#: The suffix of a client run again with the plateau of parts in flight its cold run left.
WARM = " warm"

#: The tree this file belongs to: the one under test.
REPO = Path(__file__).resolve().parent.parent

GOAL_RSS_MB = 200
GOAL_FIRST_PART = 0.7


@dataclass
class Link:
    """A link: latency per request, shared cap, cap per connection, and what is sent."""

    name: str
    latency: float
    bandwidth: float  # bytes per second, shared
    files: int
    file_mib: int
    request_bandwidth: float = 0.0  # bytes per second per request body (0: none)
    clients: tuple[str, ...] = ("vidauth", "tm", "sample")
    within: float = 0.05  # goal: vidauth within this of the floor
    versus_tm: float | None = None  # goal: vidauth at least this many times TransferManager
    warm: bool = False  # each vidauth run also again warm (the plateau it left remembered)
    sandbox: Sandbox | None = None
    paths: list[Path] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.files * self.file_mib * MiB

    @property
    def title(self) -> str:
        per = (
            f", {self.request_bandwidth / 1e6:.0f} MB/s a connection"
            if self.request_bandwidth
            else ""
        )
        what = f"{self.files} x {self.file_mib} MiB" if self.files > 1 else f"{self.file_mib} MiB"
        return (
            f"{self.name}: {self.latency * 1000:.0f} ms, {self.bandwidth / 1e6:.0f} MB/s shared"
            f"{per}, {what}"
        )

    def floor(self) -> float:
        """0.3 s of start, the bytes at the shared cap, three round trips in a row."""
        return PYTHON_START + self.size / self.bandwidth + 3 * self.latency


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
        from vidauth_sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

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
        from vidauth_sandbox.browser import complete_browser_login

        va = Vidauth(load_settings(env_file=False, **self.settings()))

        def browser(url: str) -> None:
            threading.Thread(target=complete_browser_login, args=(url,), daemon=True).start()

        va.login(open_browser=browser, announce=lambda _s: None, timeout=30)
        return va

    def folder(self) -> str:
        from vidauth_sandbox.panopto_api import PanoptoSandbox

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

    def forget_plateaus(self) -> None:
        """The next upload starts cold: no plateau of parts in flight remembered."""
        from vidauth.store.plateaus import PlateauStore

        PlateauStore(self.va.store.db).forget()

    def stop(self) -> None:
        self.va.close()
        self.proc.terminate()
        self.proc.wait(10)

    def env(self, install: Install) -> dict[str, str]:
        """The environment of a client process of ``install`` talking to this sandbox."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PANOPTO_", "VIDAUTH_")) and k != "PYTHONPATH"
        }
        env.update({k.upper(): v for k, v in self.settings().items()})
        if install.pythonpath is not None:
            env["PYTHONPATH"] = install.pythonpath
        return env


@dataclass(frozen=True)
class Install:
    """The vidauth a client process runs: a Python, and a source tree put first on its path
    (``--in-tree`` runs only)."""

    python: str
    pythonpath: str | None = None


#: The tree under test (``vidauth``, ``tm``, ``sample``) and the ``--baseline`` tree (``before``).
NOW = Install(sys.executable)
BEFORE: Install | None = None


def user_install(tree: Path, cache: Path) -> Install:
    """A private venv holding a non-editable install of ``tree`` (pip builds its wheel), as a
    user's ``pip install`` makes one: no test tools beside it, no source-tree import hooks.
    Kept in ``cache`` by the digest of the tree's pyproject.toml and src/, so only a changed
    tree is installed again (about 20 s)."""
    digest = hashlib.sha256()
    for path in sorted([tree / "pyproject.toml", *(tree / "src").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    venv = cache / digest.hexdigest()[:16]
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"Installing {tree} into {venv} (a wheel, as users install it) ...", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check",
             str(tree)],
            check=True,
        )  # fmt: skip
        (venv / ".installed").touch()
    return Install(str(python))


def make_file(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(4 * MiB, left)
            fh.write(os.urandom(n))
            left -= n
    return path


# -- the clients, as processes ------------------------------------------------------------------


@dataclass
class Run:
    """One whole process: its wall time, the upload ids it created, and its stdout events with
    the time each was read (seconds since the process started)."""

    seconds: float
    upload_ids: list[str]
    events: list[tuple[float, dict[str, Any]]]
    peak_rss_mb: float
    started_at: float  # when the process was started, in seconds since the epoch

    def first(self, event: str) -> float:
        """When the first ``event`` (``progress``, ``started``, …) was read."""
        return next(t for t, e in self.events if e.get("event") == event)


def run_process(command: list[str], env: dict[str, str]) -> Run:
    """Run ``command``; read its JSON lines as they come; wait4 for its peak RSS."""
    with tempfile.TemporaryFile("w+") as err:
        started_at, started = time.time(), time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        events: list[tuple[float, dict[str, Any]]] = []
        assert child.stdout is not None
        for line in child.stdout:
            try:
                events.append((time.perf_counter() - started, json.loads(line)))
            except ValueError:
                continue
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(command[:4])} failed: {err.read().strip()[-2000:]}")
    ids = [
        str(data["result"]["upload_id"])
        for _, data in events
        if "result" in data and data["result"].get("upload_id")
    ]
    return Run(seconds, ids, events, usage.ru_maxrss / 1024, started_at)


def vidauth_command(install: Install, paths: list[Path], folder: str, *extra: str) -> list[str]:
    return [
        install.python, "-m", "vidauth", "upload", *map(str, paths), "--folder", folder,
        "--no-wait", "--json", *extra,
    ]  # fmt: skip


def script_command(install: Install, client: str, paths: list[Path], folder: str) -> list[str]:
    return [install.python, __file__, "--client", client, "--folder", folder, *map(str, paths)]


def client_main(client: str, folder: str, paths: list[str]) -> None:
    """A TransferManager or sample-method upload of ``paths``, file after file, each with its
    sessionUpload, manifest and ``State: 1``; prints one JSON result line per file."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    from vidauth.client import Vidauth
    from vidauth.config import load_settings
    from vidauth.panopto.manifest import MANIFEST_NAME, build_manifest
    from vidauth.panopto.rest import PanoptoRest
    from vidauth.panopto.target import client_options, parse_upload_target

    va = Vidauth(load_settings())
    with va.api_client() as api:
        rest = PanoptoRest(api)
        for name in paths:
            path = Path(name)
            created = rest.create_session_upload(folder)
            target = parse_upload_target(created["UploadTarget"])
            # boto3's client: TransferManager (upload_file) is boto3's
            s3 = boto3.session.Session().client("s3", **client_options(target.endpoint))
            key = target.key(path.name)
            if client == "tm":
                s3.upload_file(str(path), target.bucket, key, Config=TransferConfig())
            else:
                multipart = s3.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
                parts = []
                with path.open("rb") as fh:
                    number = 1
                    while chunk := fh.read(SAMPLE_PART):
                        answer = s3.upload_part(
                            Bucket=target.bucket,
                            Key=key,
                            UploadId=multipart,
                            PartNumber=number,
                            Body=chunk,
                        )
                        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                        number += 1
                s3.complete_multipart_upload(
                    Bucket=target.bucket,
                    Key=key,
                    UploadId=multipart,
                    MultipartUpload={"Parts": parts},
                )
            # The manifest as a one-part multipart upload, as every public client of Panopto
            # sends it (the narrowest target answers no PutObject): the university's boto3
            # client sets multipart_threshold=1 for just this.
            s3.upload_fileobj(
                io.BytesIO(build_manifest(path.stem, path.name)),
                target.bucket,
                target.key(MANIFEST_NAME),
                ExtraArgs={"ContentType": "application/xml"},
                Config=TransferConfig(multipart_threshold=1),
            )
            rest.finish_session_upload(rest.get_session_upload(str(created["ID"])))
            s3.close()
            print(json.dumps({"result": {"upload_id": created["ID"], "path": name}}), flush=True)
    va.close()


def one_run(link: Link, client: str, tag: str) -> float:
    """One whole process of ``client`` on ``link``; answers its seconds."""
    sandbox = link.sandbox
    assert sandbox is not None
    # New names per run (hard links: no copy): the same file to the same folder again would
    # be recognised as already uploaded instead of being sent again.
    linked = [p.with_name(f"{p.stem}-{tag}{p.suffix}") for p in link.paths]
    for source, target in zip(link.paths, linked, strict=True):
        os.link(source, target)
    try:
        install = BEFORE if client.startswith("before") and BEFORE else NOW
        if client.startswith(("vidauth", "before")):
            if not client.endswith(WARM):
                sandbox.forget_plateaus()  # cold: as a first upload to this host
            command = vidauth_command(install, linked, sandbox.folder())
        else:
            command = script_command(install, client, linked, sandbox.folder())
        run = run_process(command, sandbox.env(install))
    finally:
        for path in linked:
            path.unlink()
    for upload_id in run.upload_ids:
        sandbox.discard(upload_id)
    link.times.setdefault(client, []).append(run.seconds)
    return run.seconds


def run_order(link: Link) -> list[str]:
    """The clients of one round: each vidauth run cold (no plateau remembered); on a link
    with ``warm``, each is followed by a warm run that starts from the plateau it left."""
    order: list[str] = []
    for client in (*link.clients, *(("before",) if BEFORE else ())):
        order.append(client)
        if link.warm and client in ("vidauth", "before"):
            order.append(client + WARM)
    return order


def throughput(links: list[Link], rounds: int) -> list[str]:
    """Interleaved rounds, then a table per link; answers the missed goals."""
    for r in range(rounds):
        for link in links:
            for client in run_order(link):
                seconds = one_run(link, client, f"{r}-{link.name}-{client}")
                print(
                    f"  round {r + 1} link {link.name} {client:8s} {seconds:6.2f} s "
                    f"{link.size / seconds / 1e6:6.1f} MB/s",
                    flush=True,
                )
    missed: list[str] = []
    for link in links:
        medians = {client: statistics.median(values) for client, values in link.times.items()}
        floor = link.floor()
        print(f"\n{link.title}; median of {rounds} round(s), whole processes:")
        print(f"  {'client':10s} {'median':>8s} {'MB/s':>7s} {'/ floor':>8s}")
        for client, median in medians.items():
            print(
                f"  {client:10s} {median:7.2f}s {link.size / median / 1e6:7.1f} "
                f"{median / floor:7.2f}x"
            )
        print(f"  {'floor':10s} {floor:7.2f}s {link.size / floor / 1e6:7.1f}")
        a = medians["vidauth"]
        if "vidauth" + WARM in medians:
            print(f"  vidauth{WARM} is {medians['vidauth' + WARM] / floor:.2f}x the floor")
        for other in ("before", "tm", "sample"):
            if other in medians:
                print(f"  vidauth is {medians[other] / a:.2f}x as fast as {other}")
        if "tm" in medians:
            print(f"  the floor allows at most {medians['tm'] / floor:.2f}x tm, for any client")
        checks = [(f"vidauth {a / floor:.3f}x the floor", a / floor <= 1 + link.within,
                   f"<= {1 + link.within:.2f}x")]  # fmt: skip
        if link.versus_tm is not None and "tm" in medians:
            ratio = medians["tm"] / a
            checks.append(
                (f"vidauth {ratio:.3f}x tm", ratio >= link.versus_tm, f">= {link.versus_tm:.2f}x")
            )
        for text, met, goal in checks:
            print(f"  {text:34s} goal {goal:9s} {'met' if met else 'MISSED'}")
            if not met:
                missed.append(f"link {link.name}: {text} (goal {goal})")
    return missed


# -- the other measurements -----------------------------------------------------------------------


def first_part(work: Path, rounds: int) -> list[str]:
    """How soon the first part goes, 16 MiB on link A, the median of ``rounds``: seconds from
    the process's start to the first UploadPart's arrival at the target (the sandbox's stats:
    the goal's measure, as the issue read the target's log), to the first byte of that part read
    for sending (the first ``progress`` event: after the part's own latency, since the body
    waits for ``100 Continue``), and to the ``started`` event."""
    link = Link("A", 0.2, 20e6, files=1, file_mib=16)
    sandbox = Sandbox(work, latency=link.latency, bandwidth=link.bandwidth)
    measures = ("arrival", "first byte", "started")
    try:
        path = make_file(work / "first.mp4", link.size)
        now: dict[str, list[float]] = {m: [] for m in measures}
        before: dict[str, list[float]] = {m: [] for m in measures}
        totals = []
        for r in range(rounds):
            for install in (NOW, BEFORE) if BEFORE else (NOW,):
                source = install is BEFORE
                linked = path.with_name(f"first-{r}-{'before' if source else 'now'}.mp4")
                os.link(path, linked)
                run = run_process(
                    vidauth_command(install, [linked], sandbox.folder()), sandbox.env(install)
                )
                linked.unlink()
                stats = httpx.get(f"{sandbox.url}/sandbox/s3/stats", timeout=10).json()
                for upload_id in run.upload_ids:
                    sandbox.discard(upload_id)
                times = before if source else now
                times["arrival"].append(
                    stats["first_part_arrivals"][run.upload_ids[0]] - run.started_at
                )
                times["first byte"].append(run.first("progress"))
                times["started"].append(run.first("started"))
                if not source:
                    totals.append(run.seconds)

        def medians(times: dict[str, list[float]]) -> str:
            return ", ".join(f"{m} {statistics.median(times[m]):.2f} s" for m in measures)

        if BEFORE:
            print(
                f"\nFirst part before (--baseline): {medians(before)} (arrivals "
                f"{', '.join(f'{t:.2f}' for t in before['arrival'])}); now: arrivals "
                f"{', '.join(f'{t:.2f}' for t in now['arrival'])}",
                flush=True,
            )
        print(
            f"\n16 MiB on link A, whole process: {statistics.median(totals):.2f} s "
            f"(floor {link.floor():.2f} s)",
            flush=True,
        )
        first = statistics.median(now["arrival"])
        floor = PYTHON_START + link.latency  # the start and CreateMultipartUpload's round trip
        met = first <= GOAL_FIRST_PART
        print(
            f"\nFirst part on link A (16 MiB, median of {rounds}), seconds after the process "
            f"started: {medians(now)}. It reached the target at {first:.2f} s (floor "
            f"{floor:.1f} s: the start and CreateMultipartUpload's round trip); goal "
            f"<= {GOAL_FIRST_PART} s: {'met' if met else 'MISSED'}",
            flush=True,
        )
        return [] if met else [f"first part at {first:.2f} s (goal <= {GOAL_FIRST_PART} s)"]
    finally:
        shutil.rmtree(sandbox.storage, ignore_errors=True)
        sandbox.stop()


def peak_rss(work: Path, size: int) -> list[str]:
    """``vidauth upload`` of a ``size``-byte file, cold and after a plateau of the most parts
    in flight was remembered for the host; answers missed goals."""
    from vidauth.panopto.parallelism import MAX_PARTS_IN_FLIGHT
    from vidauth.panopto.signature import upload_host
    from vidauth.store.plateaus import PlateauStore

    sandbox = Sandbox(work)
    missed: list[str] = []
    try:
        path = work / "big.mp4"
        with path.open("wb") as fh:  # sparse: reading it costs no disk
            fh.truncate(size)
        most = MAX_PARTS_IN_FLIGHT
        for when in ("cold", f"after a plateau of {most} was remembered"):
            if when != "cold":
                PlateauStore(sandbox.va.store.db).remember(
                    upload_host(sandbox.url + "/Panopto"), most
                )
            linked = path.with_name(f"big-{len(missed)}-{when[:4]}.mp4")
            os.link(path, linked)
            run = run_process(vidauth_command(NOW, [linked], sandbox.folder()), sandbox.env(NOW))
            linked.unlink()
            for upload_id in run.upload_ids:
                sandbox.discard(upload_id)
            met = run.peak_rss_mb < GOAL_RSS_MB
            print(
                f"\nPeak RSS of `vidauth upload` of {size / MiB:.0f} MiB (uncapped, {when}): "
                f"{run.peak_rss_mb:.0f} MB (goal < {GOAL_RSS_MB}: {'met' if met else 'MISSED'}), "
                f"{run.seconds:.1f} s, {size / run.seconds / 1e6:.0f} MB/s",
                flush=True,
            )
            if not met:
                missed.append(f"peak RSS {run.peak_rss_mb:.0f} MB {when} (goal < {GOAL_RSS_MB})")
        return missed
    finally:
        shutil.rmtree(sandbox.storage, ignore_errors=True)
        sandbox.stop()


def bwlimit(work: Path, size: int, limit: str = "5M", rate: float = 5 * MiB) -> list[str]:
    """``--bwlimit 5M`` on an uncapped link: the rate from the first byte read for sending to
    the ``uploaded`` event."""
    sandbox = Sandbox(work)
    try:
        path = make_file(work / "limited.mp4", size)
        run = run_process(
            vidauth_command(NOW, [path], sandbox.folder(), "--bwlimit", limit), sandbox.env(NOW)
        )
        for upload_id in run.upload_ids:
            sandbox.discard(upload_id)
        first, uploaded = run.first("progress"), run.first("uploaded")
        measured = size / (uploaded - first)
        off = measured / rate - 1
        met = abs(off) <= 0.05
        print(
            f"\n--bwlimit {limit} on an uncapped link, {size / MiB:.0f} MiB: "
            f"{measured / MiB:.2f} MiB/s over the transfer ({100 * off:+.1f} %; goal within 5 %: "
            f"{'met' if met else 'MISSED'}), whole process {run.seconds:.1f} s",
            flush=True,
        )
        return [] if met else [f"--bwlimit {limit}: {100 * off:+.1f} % (goal within 5 %)"]
    finally:
        shutil.rmtree(sandbox.storage, ignore_errors=True)
        sandbox.stop()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256, help="the file of links A and B")
    parser.add_argument("--rss-mib", type=int, default=2048)
    parser.add_argument("--links", default="ABC", help="which links to run (default ABC)")
    parser.add_argument("--quick", action="store_true", help="32 MiB, 1 round, 256 MiB RSS run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument(
        "--only",
        default="links,first,rss,bwlimit",
        help="which measurements to run (comma-separated; default all)",
    )
    parser.add_argument(
        "--clients",
        default="vidauth,tm,sample",
        help="which clients to run on the links (default all; the sample is never run on B)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a source tree to run as client `before`, interleaved with vidauth",
    )
    parser.add_argument(
        "--in-tree",
        action="store_true",
        help="run the clients from the source trees with this Python (quicker to start, "
        "but it imports what the dev venv holds) instead of from an install of each tree",
    )
    parser.add_argument("--client", choices=("tm", "sample"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        # as `python -m vidauth` does (vidauth.__main__), so that only the transfer differs: no
        # collection while importing, none of the imports' objects walked at exit
        gc.disable()
        client_main(args.client, args.folder, args.files)
        gc.freeze()
        return
    if args.quick:
        args.rounds, args.size_mib, args.rss_mib = 1, 32, 256
    clip_mib = max(1, args.size_mib // 16)
    links = [
        Link("A", 0.2, 20e6, 1, args.size_mib, versus_tm=1.0),
        Link("B", 0.05, 80e6, 1, args.size_mib, request_bandwidth=4e6,
             clients=("vidauth", "tm"), within=0.15, warm=True),
        Link("C", 0.2, 20e6, 12, clip_mib),
    ]  # fmt: skip
    only = {part.strip() for part in args.only.split(",")}
    if "links" not in only:
        links = []
    links = [link for link in links if link.name in args.links.upper()]
    wanted = {client.strip() for client in args.clients.split(",")} | {"vidauth"}
    for link in links:
        link.clients = tuple(client for client in link.clients if client in wanted)
    global NOW, BEFORE
    if args.in_tree:
        NOW = Install(sys.executable, str(REPO / "src"))
        if args.baseline:
            BEFORE = Install(sys.executable, str(args.baseline.resolve() / "src"))
    else:
        cache = Path(tempfile.gettempdir()) / "vidauth-bench-installs"
        NOW = user_install(REPO, cache)
        BEFORE = user_install(args.baseline.resolve(), cache) if args.baseline else None
    print(f"Before: {load()}", flush=True)
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vidauth-bench-") as tmp:
        work = Path(tmp)
        try:
            for link in links:
                link.sandbox = Sandbox(
                    work,
                    latency=link.latency,
                    bandwidth=link.bandwidth,
                    request_bandwidth=link.request_bandwidth,
                )
                link.paths = [
                    make_file(work / f"{link.name}-{i}.mp4", link.file_mib * MiB)
                    for i in range(link.files)
                ]
            missed += throughput(links, args.rounds)
        finally:
            for link in links:
                if link.sandbox is not None:
                    link.sandbox.stop()
        if "first" in only:
            missed += first_part(work, args.rounds)
        if "rss" in only:
            missed += peak_rss(work, args.rss_mib * MiB)
        if "bwlimit" in only:
            missed += bwlimit(work, (64 if not args.quick else 16) * MiB)
    print(f"\nAfter: {load()}")
    print("All goals met." if not missed else "Goals missed:\n  " + "\n  ".join(missed))
    if args.check and missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
