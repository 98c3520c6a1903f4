"""The service speaks in codes: job errors, API errors and webhook payloads carry a stable code
and one line, and never a ``vidauth`` command line (the backend's users have no such commands).

Failures are real: a folder that does not exist, a folder Panopto refuses, an upload target
that refuses every part, and a revoked grant, all through the running service and sandbox.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.service.conftest import ServiceSetup, video_bytes
from tests.service.test_api import FOLDER, WebhookReceiver, _check_signed
from vidauth.errors import ErrorCode

COMMAND_LINE = re.compile(
    r"`vidauth\b|\bvidauth (login|logout|uploads|folders|status|token|apikey|doctor)\b"
    r"|(?<![\w-])--[a-z]"  # a CLI flag
)
CODES = {code.value for code in ErrorCode}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback."""
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


def _no_command_line(value: Any) -> None:
    text = json.dumps(value)
    assert not COMMAND_LINE.search(text), text


def _failed_with(service: ServiceSetup, upload_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    done = service.api.wait_upload(upload_id, states=states)
    _no_command_line(done)
    assert done["error_code"] in CODES, done
    assert "\n" not in done["error"]
    return done


def test_job_errors_and_webhooks_carry_codes_not_commands(
    make_service: Callable[..., ServiceSetup], receiver: WebhookReceiver
) -> None:
    service = make_service(VIDAUTH_JOB_ATTEMPTS="1")
    api = service.api
    service.connect("u1")
    sandbox = service.sandbox.panopto

    missing = api.upload(
        "u1", content=video_bytes(), folder="No Such Folder", callback_url=receiver.url
    ).json()["upload_id"]
    done = _failed_with(service, missing, ("failed",))
    assert done["error_code"] == "folder_not_found" and "No Such Folder" in done["error"]

    denied_folder = sandbox.folder_id("Sandbox Courses", "SIT102 Labs")
    sandbox.deny_folder(denied_folder)
    denied = api.upload(
        "u1", content=video_bytes(seed=2), folder=denied_folder, callback_url=receiver.url
    ).json()["upload_id"]
    done = _failed_with(service, denied, ("failed",))
    assert done["error_code"] == "permission_denied" and "HTTP 403" in done["error"]

    sandbox.fail_parts(100, status=403)
    refused = api.upload(
        "u1", content=video_bytes(seed=3), folder=FOLDER, callback_url=receiver.url
    ).json()["upload_id"]
    done = _failed_with(service, refused, ("failed",))
    assert done["error_code"] == "upload_target_failed" and "AccessDenied" in done["error"]
    sandbox.s3._faults.clear()

    payloads = [_check_signed(*hit) for hit in receiver.wait(3)]
    assert {p["upload_id"]: p["error_code"] for p in payloads} == {
        missing: "folder_not_found",
        denied: "permission_denied",
        refused: "upload_target_failed",
    }
    for payload in payloads:
        _no_command_line(payload)

    service.revoke_grants()
    time.sleep(0.1)
    waiting = api.upload("u1", content=video_bytes(seed=4), folder=FOLDER).json()["upload_id"]
    done = _failed_with(service, waiting, ("waiting_for_consent", "failed", "complete"))
    assert done["state"] == "waiting_for_consent", done["error"]
    assert done["error_code"] in ("sign_in_expired", "not_signed_in")


def test_api_errors_are_codes_and_one_line(service: ServiceSetup) -> None:
    answers = [
        service.api.get("/v1/uploads/no-such-upload"),
        service.api.upload("nobody", content=video_bytes(), folder=FOLDER),
        service.api.post("/v1/uploads", data={"external_user_id": "u1"}),
        service.client(None).get("/v1/uploads"),
    ]
    for answer in answers:
        assert answer.status_code >= 400, answer.text
        body = answer.json()
        assert set(body) == {"error", "detail"}, body
        assert re.fullmatch(r"[a-z_]+", body["error"]) and "\n" not in body["detail"]
        _no_command_line(body)


def test_refusals_name_the_input_and_the_code_not_a_flag(service: ServiceSetup) -> None:
    """A file that is not a video, an ambiguous folder and a key without a webhook secret: the
    service answers by the error's code, naming what the client sent, never a CLI flag."""
    api = service.api
    service.connect("u1")

    r = api.upload("u1", content=b"not a video at all", filename="notes.txt", folder=FOLDER)
    assert r.status_code == 415, r.text  # decided by the code file_not_media
    body = r.json()
    _no_command_line(body)
    assert body["error"] == "invalid_file"
    assert body["detail"].startswith("notes.txt: .txt is not a video or audio file"), body

    ambiguous = api.upload("u1", content=video_bytes(seed=5), folder="Duplicate Name").json()
    done = _failed_with(service, ambiguous["upload_id"], ("failed",))
    assert done["error_code"] == "folder_ambiguous", done
    assert "folder 'Duplicate Name' matches 2 folders" in done["error"]

    bare = service.client(service.new_key(name="no-webhook-secret"))
    r = bare.upload(
        "u1", content=video_bytes(seed=6), folder=FOLDER, callback_url="https://example.com/h"
    )
    assert r.status_code == 400, r.text
    _no_command_line(r.json())
    assert "webhook secret" in r.json()["detail"]
