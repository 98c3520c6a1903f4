"""Notifications follow Standard Webhooks: a stock verifier (the ``standardwebhooks`` package)
accepts them with the key's secret as ``whsec_`` + base64, and a redelivery carries the same
``webhook-id``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.service.conftest import WEBHOOK_SECRET, ServiceSetup, video_bytes
from tests.service.test_api import FOLDER, _check_signed
from vidauth.service.webhooks import standard_secret


class FlakyReceiver:
    """Answers 503 (Retry-After: 0) to the first ``failures`` deliveries, then 204."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        received, left = self.received, [failures]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                status = 503 if left[0] > 0 else 204
                left[0] -= 1
                received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_delivered(self, timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not any(status == 204 for *_, status in self.received):
            assert time.monotonic() < deadline, f"{len(self.received)} attempts, none delivered"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky() -> Any:
    receivers: list[FlakyReceiver] = []

    def make(failures: int = 0) -> FlakyReceiver:
        receivers.append(FlakyReceiver(failures))
        return receivers[-1]

    yield make
    for r in receivers:
        r.close()


def _upload(service: ServiceSetup, url: str, api: Any = None) -> str:
    api = api or service.api
    r = api.upload("u1", content=video_bytes(), folder=FOLDER, callback_url=url)
    assert r.status_code == 202, r.text
    upload_id = str(r.json()["upload_id"])
    service.api.wait_upload(upload_id)
    return upload_id


def test_a_stock_verifier_accepts_every_delivery_and_a_redelivery_keeps_its_id(
    service: ServiceSetup, flaky: Callable[..., FlakyReceiver]
) -> None:
    receiver = flaky(failures=2)
    service.connect("u1")
    upload_id = _upload(service, receiver.url)
    receiver.wait_delivered()
    verifier = Webhook(standard_secret(WEBHOOK_SECRET))
    attempts = [(h, b) for h, b, _ in receiver.received]
    assert len(attempts) >= 3
    first_event = [(h, b) for h, b in attempts if b == attempts[0][1]]
    assert len(first_event) >= 3  # two refused, then delivered: the same notification
    assert len({h["webhook-id"] for h, _ in first_event}) == 1
    assert first_event[0][0]["webhook-id"].startswith("msg_")
    for headers, body in attempts:
        payload = verifier.verify(body, headers)
        assert payload["upload_id"] == upload_id
        _check_signed(headers, body)  # the deprecated X-Vidauth-* pair still holds
    # another notification has another id
    other = [h["webhook-id"] for h, b in attempts if b != attempts[0][1]]
    assert first_event[0][0]["webhook-id"] not in other
    # a wrong secret, a changed body or a changed id fail
    headers, body = attempts[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret(WEBHOOK_SECRET + "x")).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body, {**headers, "webhook-id": "msg_other"})


def test_the_vidauth_webhook_secret_fallback_verifies_the_same_way(
    make_service: Callable[..., ServiceSetup], flaky: Callable[..., FlakyReceiver]
) -> None:
    fallback = "fallback-webhook-secret-0123456789"
    service = make_service(VIDAUTH_WEBHOOK_SECRET=fallback)
    api = service.client(service.new_key(name="no-secret"))  # a key without its own secret
    receiver = flaky()
    service.connect("u1", api=api)
    _upload(service, receiver.url, api=api)
    receiver.wait_delivered()
    headers, body, _ = receiver.received[-1]
    assert Webhook(standard_secret(fallback)).verify(body, headers)["state"] == "complete"
