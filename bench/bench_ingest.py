"""How fast ``vidauth serve`` takes uploads in, against the disk it writes them to.

In one run, interleaved rounds of:

  (a1) baseline: 20 threads each writing a 100 MB file to the spool directory in 1 MiB blocks,
       then fsync (what the service must do at least: it streams each body to disk and fsyncs
       it before answering 202);
  (a2) baseline: one thread writing the same 2 GB as one file, 1 MiB blocks, then fsync (``dd
       bs=1M conv=fsync``: the disk's single-stream sequential write speed);
  (b1) ``vidauth serve --no-worker`` (one process) receiving 20 concurrent 100 MB
       ``POST /v1/uploads`` (multipart, sent by 20 curl processes), timed from the first request
       to the last 202;
  (b2) the same with ``serve --processes N`` (default: the number of cores);
  (c)  the ceiling of the server under it: a bare ASGI app on uvicorn (httptools, uvloop, one
       process) that reads the same 20 requests and throws the bodies away;
  (d)  the same bare app on Granian (one worker), when Granian is installed (``pip install
       granian``; it is not a dependency of vidauth): the ceiling the other server would give.

Reports the medians, the ratios of throughputs (goal >= 0.70) and the peak RSS of each serve
(VmHWM, summed over its processes). Uploads are cancelled between rounds, which deletes their
spooled files.

Usage: .venv/bin/python bench/bench_ingest.py [--rounds 3] [--uploads 20] [--size-mb 100]
       [--processes N] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

MB = 1000 * 1000
BLOCK = 1024 * 1024
VIDEO_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def make_source(path: Path, size: int) -> Path:
    """One video-looking file the client streams for every upload (read from the page cache)."""
    with path.open("wb") as fh:
        fh.write(VIDEO_HEADER)
        left = size - len(VIDEO_HEADER)
        block = os.urandom(BLOCK)
        while left > 0:
            n = min(BLOCK, left)
            fh.write(block[:n])
            left -= n
    return path


def disk_round(directory: Path, count: int, size: int) -> float:
    """Seconds for ``count`` threads to write and fsync ``size`` bytes each."""
    directory.mkdir(parents=True, exist_ok=True)
    block = os.urandom(BLOCK)

    def write(index: int) -> None:
        fd = os.open(directory / f"disk-{index}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = size
            while left > 0:
                left -= os.write(fd, block[: min(BLOCK, left)])
            os.fsync(fd)
        finally:
            os.close(fd)

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(write, range(count)))
    elapsed = time.perf_counter() - started
    shutil.rmtree(directory)
    return elapsed


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_children(int(child))]
    return found


def curl_upload(url: str, key: str, source: Path, index: int) -> str:
    """POST one multipart upload of ``source`` with curl (a C client, so that the client is not
    what limits the rate); the upload id."""
    done = subprocess.run(
        [
            "curl", "-sS", "--fail-with-body", "-H", f"Authorization: Bearer {key}",
            "-F", "external_user_id=bench", "-F", "folder=SIT102 Labs",
            "-F", f"title=bench {index}", "-F", f"file=@{source};type=video/mp4",
            f"{url}/v1/uploads",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"upload {index}: curl exit {done.returncode}: {done.stdout[:200]}")
    return str(json.loads(done.stdout)["upload_id"])


class Service:
    """``vidauth sandbox`` and ``vidauth serve --no-worker`` (child processes), a user connected."""

    def __init__(self, work: Path, processes: int = 1) -> None:
        from vidauth_sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

        self.work = work
        sandbox_port, serve_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{serve_port}"
        callback = f"{self.url}/oauth/callback"
        self.spool = work / "spool"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDAUTH_", "PANOPTO_"))}
        env.update(
            PANOPTO_SERVER=f"http://127.0.0.1:{sandbox_port}",
            PANOPTO_CLIENT_ID=DEFAULT_CLIENT_ID,
            PANOPTO_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
            PANOPTO_REDIRECT_URI=callback,
            VIDAUTH_HOME=str(work / "home"),
            VIDAUTH_PUBLIC_URL=self.url,
            VIDAUTH_UPLOAD_DIR=str(self.spool),
        )
        vidauth = [sys.executable, "-m", "vidauth"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": work}
        self.sandbox = subprocess.Popen(
            [*vidauth, "sandbox", "--port", str(sandbox_port), "--redirect-uri", callback,
             "--storage", str(work / "objects")],
            env=env, **quiet,
        )  # fmt: skip
        wait_for(f"http://127.0.0.1:{sandbox_port}/Panopto/oauth2/.well-known/openid-configuration")
        created = subprocess.run(
            [*vidauth, "apikey", "create", "bench"],
            env=env, cwd=work, capture_output=True, text=True, check=True,
        )  # fmt: skip
        self.key = created.stdout.strip()
        self.serve = subprocess.Popen(
            [*vidauth, "serve", "--no-worker", "--port", str(serve_port), "--log-level", "warning",
             "--processes", str(processes)],
            env=env, **quiet,
        )  # fmt: skip
        wait_for(self.url + "/healthz")
        self.headers = {"Authorization": f"Bearer {self.key}"}
        self._connect()

    def _connect(self) -> None:
        from vidauth_sandbox.browser import complete_browser_login

        link = httpx.post(f"{self.url}/v1/accounts/bench/connect", headers=self.headers)
        link.raise_for_status()
        with httpx.Client(timeout=30) as browser:  # keeps the start page's cookie
            # The start page's "Continue to Panopto" form: a 303 to the sandbox's login.
            url = httpx.URL(link.json()["connect_url"])
            start = browser.post(url.copy_with(query=None), data={"s": url.params["s"]})
            authorize = start.headers["location"]
            complete_browser_login(authorize, client=browser).raise_for_status()

    def upload(self, source: Path, index: int) -> str:
        """POST one upload of ``source``; the upload id."""
        return curl_upload(self.url, self.key, source, index)

    def cancel(self, ids: list[str]) -> None:
        for upload_id in ids:
            httpx.delete(f"{self.url}/v1/uploads/{upload_id}", headers=self.headers, timeout=60)

    def peak_rss_mb(self) -> float:
        """Peak RSS (VmHWM) of ``serve``, summed over its HTTP processes when it has several."""
        total = 0
        for pid in [self.serve.pid, *_children(self.serve.pid)]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        return total / 1e6

    def stop(self) -> None:
        for proc in (self.serve, self.sandbox):
            proc.terminate()
            proc.wait(15)


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """(c): read the request body and discard it; answer 202 like the service."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    body = b'{"upload_id": "bare"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BareServer:
    """uvicorn (or Granian) serving :func:`bare_app` (a child process), driven like
    :class:`Service`."""

    def __init__(self, server: str = "uvicorn") -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        here = str(Path(__file__).parent)
        if server == "granian":
            command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host",
                       "127.0.0.1", "--port", str(port), "--http", "1", "--workers", "1",
                       "--working-dir", here, "--log-level", "warning", "--no-access-log",
                       "bench_ingest:bare_app"]  # fmt: skip
        else:
            command = [sys.executable, "-m", "uvicorn", "bench_ingest:bare_app", "--app-dir",
                       here, "--port", str(port), "--http", "httptools", "--loop", "uvloop",
                       "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.serve = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url + "/")

    def upload(self, source: Path, index: int) -> str:
        """POST the same multipart upload as :meth:`Service.upload`."""
        return curl_upload(self.url, "-", source, index)

    def cancel(self, ids: list[str]) -> None:
        """Nothing was kept."""

    def stop(self) -> None:
        self.serve.terminate()
        self.serve.wait(15)


def service_round(service: Service | BareServer, source: Path, count: int) -> float:
    """Seconds from the first POST to the last 202 for ``count`` concurrent uploads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        ids = list(pool.map(lambda i: service.upload(source, i), range(count)))
    elapsed = time.perf_counter() - started
    service.cancel(ids)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quick", action="store_true", help="1 round of 4 x 20 MB")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.uploads, args.size_mb = 1, 4, 20
    size = args.size_mb * MB
    total = size * args.uploads
    work = Path(tempfile.mkdtemp(prefix="vidauth-bench-ingest-"))
    free = shutil.disk_usage(work).free
    if free < 3 * total:
        raise SystemExit(f"need {3 * total / 1e9:.1f} GB free in {work}, have {free / 1e9:.1f}")
    services: list[Any] = []
    try:
        source = make_source(work / "source.mp4", size)
        for processes in (1, args.processes):
            (work / f"p{processes}").mkdir()
            services.append(Service(work / f"p{processes}", processes))
        services.append(BareServer())
        one, many, bare = services
        labels: tuple[str, ...] = (
            "disk_parallel", "disk_single", "serve_1", f"serve_{args.processes}", "bare_uvicorn",
        )  # fmt: skip
        granian = None
        if importlib.util.find_spec("granian") is not None:
            granian = BareServer("granian")
            services.append(granian)
            labels = (*labels, "bare_granian")
        times: dict[str, list[float]] = {label: [] for label in labels}
        for r in range(args.rounds):
            spool = one.spool / "baseline"
            times["disk_parallel"].append(disk_round(spool, args.uploads, size))
            times["disk_single"].append(disk_round(spool, 1, total))
            times["serve_1"].append(service_round(one, source, args.uploads))
            times[labels[3]].append(service_round(many, source, args.uploads))
            times["bare_uvicorn"].append(service_round(bare, source, args.uploads))
            if granian is not None:
                times["bare_granian"].append(service_round(granian, source, args.uploads))
            print(
                f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                flush=True,
            )
        rate = {k: total / statistics.median(v) / MB for k, v in times.items()}
        print(f"\n{args.uploads} concurrent uploads of {args.size_mb} MB, {args.rounds} rounds:")
        names = (
            f"(a1) disk, {args.uploads} writers + fsync",
            "(a2) disk, one stream + fsync",
            "(b1) vidauth serve",
            f"(b2) vidauth serve --processes {args.processes}",
            "(c)  bare uvicorn, bodies discarded",
            "(d)  bare Granian, bodies discarded",
        )
        for name, label in zip(names, labels, strict=False):
            print(f"  {name:<36} median {rate[label]:8.1f} MB/s")
        for b, serve in (("b1", labels[2]), ("b2", labels[3])):
            print(
                f"  ratio ({b})/(a1): {rate[serve] / rate[labels[0]]:.2f}   "
                f"({b})/(a2): {rate[serve] / rate[labels[1]]:.2f}   (goal >= 0.70)   "
                f"({b})/(c): {rate[serve] / rate[labels[4]]:.2f}"
            )
        if granian is not None:
            print(f"  ratio (d)/(c): {rate['bare_granian'] / rate['bare_uvicorn']:.2f}")
        print(
            f"  serve peak RSS: {one.peak_rss_mb():.0f} MB (1 process), "
            f"{many.peak_rss_mb():.0f} MB ({args.processes} HTTP processes + supervisor)"
        )
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
