"""vidauth as people install it: a wheel built from a clean copy of the source, installed (not
editable) into a fresh virtual environment, run from a directory outside the repository.

Honest about where vidauth comes from: the new environment has no system site-packages and no
access to the repository; its third-party dependencies are the ones this test run already has
(linked in one by one, vidauth's own editable install left out), so no index is needed, and
``pip check`` proves the wheel's declared requirements are met by them. Everything is then run
from the installed package: ``vidauth demo`` (sign-in pages, migrations, the upload), ``vidauth
sandbox`` (its login page template) and ``vidauth serve`` (its page templates, the API docs and
their packaged assets).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SETTING_NAMES
from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
#: Not part of a clean clone (or not needed to build one).
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "node_modules",
    ".env",
)


def _is_vidauth_itself(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(("vidauth", "__editable__", "_vidauth")) or lowered.endswith(".pth")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh venv with the built wheel installed; its paths and the build's timings."""
    base = tmp_path_factory.mktemp("wheel")
    timings: dict[str, float] = {}
    started = time.monotonic()
    source = base / "clone"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CLONE, symlinks=True)
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("vidauth-*.whl")
    timings["build"] = time.monotonic() - started

    started = time.monotonic()
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    # the dependencies, without vidauth: each entry of this run's site-packages but vidauth's
    deps = base / "deps"
    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        if not _is_vidauth_itself(entry.name):
            (deps / entry.name).symlink_to(entry)
    (site / "_dependencies.pth").write_text(f"{deps}\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=120)
    mine = [line for line in check.stdout.splitlines() if line.lower().startswith("vidauth")]
    assert not mine, "the wheel's requirements are not met:\n" + "\n".join(mine)
    timings["install"] = time.monotonic() - started

    work = base / "work"  # outside the repository, with nothing in it
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SETTING_NAMES and not k.startswith(("PYTHON", "VIDAUTH_", "PANOPTO_"))
    }
    env.update(VIDAUTH_HOME=str(base / "home"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    yield {
        "venv": venv,
        "site": site,
        "vidauth": venv / "bin" / "vidauth",
        "python": python,
        "work": work,
        "env": env,
        "timings": timings,
        "wheel": wheel,
    }


def _run(installed: dict[str, Any], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed["vidauth"]), *args],
        cwd=installed["work"],
        env=dict(installed["env"], **extra),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_the_wheel_holds_what_vidauth_reads_at_run_time(installed: dict[str, Any]) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in (
        "vidauth/py.typed",
        "vidauth/store/migrations/env.py",
        "vidauth/store/migrations/script.py.mako",
        "vidauth_sandbox/templates/login.html",
        "vidauth_sandbox/templates/consent.html",
        "vidauth/service/templates/uploads.html",
        "vidauth/service/templates/connect_result.html",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
    assert any(n.startswith("vidauth/store/migrations/versions/") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_vidauth_runs_from_the_installed_package(installed: dict[str, Any]) -> None:
    where = subprocess.run(
        [str(installed["python"]), "-c", "import sys, vidauth; print(vidauth.__file__, sys.path)"],
        cwd=installed["work"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = where.split()[0]
    assert module.startswith(str(installed["site"])), module
    assert str(ROOT) not in where, "the repository is on the installed vidauth's path"


def test_demo_from_the_wheel(installed: dict[str, Any]) -> None:
    started = time.monotonic()
    done = _run(installed, "demo")
    installed["timings"]["demo"] = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout + done.stderr
    assert "signed in as alice" in text and "complete: session " in text
    assert "Demo finished" in text and "Traceback" not in text


def _wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 40) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def test_sandbox_and_service_pages_from_the_wheel(installed: dict[str, Any]) -> None:
    sandbox_port, service_port = free_port(), free_port()
    site = f"http://127.0.0.1:{sandbox_port}"
    service = f"http://127.0.0.1:{service_port}"
    sandbox = subprocess.Popen(
        [str(installed["vidauth"]), "sandbox", "--port", str(sandbox_port),
         "--redirect-uri", f"{service}/oauth/callback"],
        cwd=installed["work"], env=installed["env"], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    serve = None
    try:
        discovery = _wait_for(f"{site}/Panopto/oauth2/.well-known/openid-configuration", sandbox)
        assert discovery.json()["issuer"] == f"{site}/Panopto/oauth2"
        login = httpx.get(
            discovery.json()["authorization_endpoint"],
            params={
                "client_id": "vidauth-sandbox",
                "redirect_uri": f"{service}/oauth/callback",
                "response_type": "code",
                "scope": "openid api offline_access",
                "state": "s" * 20,
            },
            follow_redirects=True,
        )
        assert login.status_code == 200 and 'name="password"' in login.text  # its template
        env = dict(
            installed["env"],
            PANOPTO_SERVER=site,
            PANOPTO_CLIENT_ID="vidauth-sandbox",
            PANOPTO_CLIENT_SECRET="vidauth-sandbox-secret",
            VIDAUTH_PUBLIC_URL=service,
        )
        serve = subprocess.Popen(
            [str(installed["vidauth"]), "serve", "--port", str(service_port), "--no-worker"],
            cwd=installed["work"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert _wait_for(f"{service}/readyz", serve).status_code == 200  # migrated
        docs = httpx.get(f"{service}/docs")
        assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
        bundle = httpx.get(f"{service}/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
        redoc = httpx.get(f"{service}/docs/assets/redoc.standalone.js")
        assert redoc.status_code == 200
        page = httpx.get(f"{service}/oauth/callback", params={"state": "x", "code": "y"})
        assert "<html" in page.text.lower() and page.headers["content-type"].startswith(
            "text/html"
        )  # the service's own page template, from the installed package
    finally:
        if serve is not None:
            _stop(serve)
        _stop(sandbox)
