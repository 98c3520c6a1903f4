"""The README's webhook verifiers, run as written: the Python one (``standardwebhooks``) and the
Ruby one (plain ``OpenSSL::HMAC``, with Debian's ``ruby``) accept a real notification and refuse
a tampered one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import WEBHOOK_SECRET, ServiceSetup, video_bytes
from tests.service.test_api import FOLDER, WebhookReceiver

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(language: str, containing: str) -> str:
    """The README's fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)
    [block] = [b for b in blocks if containing in b]
    return block


@pytest.fixture
def delivery(service: ServiceSetup) -> Iterator[tuple[dict[str, str], bytes]]:
    """One real notification: its headers and raw body."""
    receiver = WebhookReceiver()
    try:
        service.connect("u1")
        r = service.api.upload(
            "u1", content=video_bytes(), folder=FOLDER, callback_url=receiver.url
        )
        assert r.status_code == 202, r.text
        yield receiver.wait(1)[0]
    finally:
        receiver.close()


def test_the_readme_python_verifier(delivery: tuple[dict[str, str], bytes]) -> None:
    headers, body = delivery
    scope: dict[str, Any] = {}
    exec(readme_block("python", "def vidauth_notification"), scope)  # noqa: S102 - the README's own code
    verify = scope["vidauth_notification"]
    payload = verify(WEBHOOK_SECRET, headers, body)
    assert payload is not None and payload["tenant"] == "default"
    assert verify(WEBHOOK_SECRET, headers, body.replace(b"default", b"defaulx")) is None
    assert verify("another-secret-0123456789", headers, body) is None


def test_the_readme_ruby_verifier(delivery: tuple[dict[str, str], bytes], tmp_path: Path) -> None:
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.fail(
            "ruby is not installed: ./run test installs Debian's ruby (apt-get install ruby)"
        )
    headers, body = delivery
    script = tmp_path / "verify.rb"
    script.write_text(
        readme_block("ruby", "def vidauth_notification")
        + """
headers = JSON.parse(File.read(ARGV[0]))
body = File.binread(ARGV[1])
result = vidauth_notification(ENV.fetch("SECRET"), headers, body)
puts(result.nil? ? "refused" : JSON.generate(result))
"""
    )
    (tmp_path / "headers.json").write_text(json.dumps(headers))

    def run(secret: str, payload: bytes) -> str:
        (tmp_path / "body").write_bytes(payload)
        done = subprocess.run(
            [ruby, str(script), str(tmp_path / "headers.json"), str(tmp_path / "body")],
            capture_output=True,
            text=True,
            timeout=60,
            env={"SECRET": secret, "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert json.loads(run(WEBHOOK_SECRET, body)) == json.loads(body)
    assert run(WEBHOOK_SECRET, body + b" ") == "refused"
    assert run("another-secret-0123456789", body) == "refused"
