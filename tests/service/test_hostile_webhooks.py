"""Issue 19, point 5: one tenant's webhook receivers cannot delay or stop everyone's.

Receivers here are raw sockets on loopback that answer the way an attacker would: trickling,
never ending, or an address the sender can never reach. Deliveries have a total deadline (set
to 1 s in these tests), read a few KiB of the answer at most, are counted whatever goes wrong,
and run one per tenant at a time, so tenant B's notification arrives while A's receiver stalls.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.service.conftest import WEBHOOK_SECRET, ServiceSetup
from tests.service.hostile_helpers import RawReceiver, endless, ok, trickle

DEADLINE = "1"


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[[socket.socket], None]], RawReceiver]]:
    made: list[RawReceiver] = []

    def make(answer: Callable[[socket.socket], None]) -> RawReceiver:
        made.append(RawReceiver(answer))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _key_id(service: ServiceSetup, tenant: str) -> int:
    from vidauth.service.models import ApiKey

    with service.ctx.db.session() as session:
        return int(session.scalars(select(ApiKey.id).where(ApiKey.tenant == tenant)).first())


def _add_rows(service: ServiceSetup, tenant: str, url: str, count: int = 1) -> list[int]:
    """Outbox rows for a job of ``tenant`` (as a finished upload would leave them)."""
    from vidauth.service.models import Job, Webhook

    key_id = _key_id(service, tenant)
    ids = []
    with service.ctx.db.session() as session:
        for _ in range(count):
            job = Job(
                id="up_" + uuid.uuid4().hex[:24],
                tenant=tenant,
                external_user_id="u1",
                file_path="/nowhere.mp4",
                folder="F",
                title="T",
                state="complete",
                api_key_id=key_id,
                callback_url=url,
            )
            session.add(job)
            row = Webhook(
                job_id=job.id,
                api_key_id=key_id,
                url=url,
                body='{"event":"upload.complete"}',
                next_attempt_at=0.0,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def _rows(service: ServiceSetup, ids: list[int]) -> list[Any]:
    from vidauth.service.models import Webhook

    with service.ctx.db.session() as session:
        rows = session.scalars(select(Webhook).where(Webhook.id.in_(ids))).all()
        session.expunge_all()
        return list(rows)


@pytest.fixture
def quiet_service(make_service: Callable[..., ServiceSetup]) -> ServiceSetup:
    service = make_service(
        run_worker=False, VIDAUTH_WEBHOOK_TIMEOUT=DEADLINE, VIDAUTH_WEBHOOK_ATTEMPTS="3"
    )
    service.new_key(tenant="B", webhook_secret=WEBHOOK_SECRET)
    return service


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fec0::1",  # site-local
        "::ffff:127.0.0.1",
    ],
)
def test_ipv6_forms_that_tunnel_to_private_addresses_are_refused(address: str) -> None:
    from vidauth.service.webhook_targets import address_allowed

    assert not address_allowed(ipaddress.ip_address(address), ())


def test_public_ipv6_and_6to4_of_public_addresses_pass() -> None:
    from vidauth.service.webhook_targets import address_allowed

    assert address_allowed(ipaddress.ip_address("2606:4700::1111"), ())
    assert address_allowed(ipaddress.ip_address("2002:808:808::1"), ())


def test_a_row_that_can_never_be_delivered_fails_at_once(quiet_service: ServiceSetup) -> None:
    from vidauth.service.webhooks import WebhookSender

    bad = _add_rows(quiet_service, "default", "http://127.0.0.1:9/hook\x01")
    bad += _add_rows(quiet_service, "default", "http://[::1/hook")
    sender = WebhookSender(quiet_service.ctx)
    try:
        for _ in range(4):
            sender.deliver_due()
    finally:
        sender.close()
    for row in _rows(quiet_service, bad):
        assert row.failed, (row.url, row.attempts, row.last_error)
        assert row.attempts == 1 and row.delivered_at is None


def test_a_trickling_receiver_is_cut_at_the_total_deadline(
    quiet_service: ServiceSetup, receiver: Callable[..., RawReceiver]
) -> None:
    from vidauth.service.webhooks import WebhookSender

    stop = threading.Event()
    slow = receiver(trickle(stop))  # 40 bytes at 0.2 s each: 8 s, every read within 10 s
    ids = _add_rows(quiet_service, "default", slow.url)
    sender = WebhookSender(quiet_service.ctx)
    started = time.monotonic()
    try:
        sender.deliver_due()
    finally:
        stop.set()
        sender.close()
    assert time.monotonic() - started < 4
    (row,) = _rows(quiet_service, ids)
    assert row.attempts == 1 and not row.delivered_at
    assert "no answer within" in (row.last_error or ""), row.last_error


def test_an_endless_answer_is_not_read(
    quiet_service: ServiceSetup, receiver: Callable[..., RawReceiver]
) -> None:
    from vidauth.service.webhooks import WebhookSender

    huge = receiver(endless)
    ids = _add_rows(quiet_service, "default", huge.url)
    sender = WebhookSender(quiet_service.ctx)
    started = time.monotonic()
    try:
        delivered = sender.deliver_due()
    finally:
        sender.close()
    assert time.monotonic() - started < 4
    assert delivered == 1
    (row,) = _rows(quiet_service, ids)
    assert row.delivered_at, row.last_error


def test_tenant_b_is_notified_while_tenant_a_stalls(
    quiet_service: ServiceSetup, receiver: Callable[..., RawReceiver]
) -> None:
    from vidauth.service.webhooks import WebhookSender

    stop = threading.Event()
    slow = receiver(trickle(stop))
    fast = receiver(ok)
    a_rows = _add_rows(quiet_service, "default", slow.url, count=6)
    b_rows = _add_rows(quiet_service, "B", fast.url, count=2)
    sender = WebhookSender(quiet_service.ctx)
    started = time.monotonic()
    try:
        deadline = started + 10
        while time.monotonic() < deadline:
            sender.deliver_due(wait=False)
            if all(r.delivered_at for r in _rows(quiet_service, b_rows)):
                break
            time.sleep(0.05)
        b_done = time.monotonic() - started
        # One of A's deliveries at a time: the rest wait, and never hold B's up.
        assert slow.requests <= 2, slow.requests
    finally:
        stop.set()
        sender.close()
    assert all(r.delivered_at for r in _rows(quiet_service, b_rows))
    assert b_done < 3, b_done
    assert not any(r.delivered_at for r in _rows(quiet_service, a_rows))
