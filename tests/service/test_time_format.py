"""One time format everywhere: RFC 3339 with an offset, in the service's answers, its webhook
bodies, its OpenAPI document, and the command line's JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.service.conftest import ServiceSetup, video_bytes
from tests.service.test_api import FOLDER, WebhookReceiver, _check_signed
from vidauth._times import rfc3339

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


def _moment(value: Any) -> datetime:
    assert isinstance(value, str) and RFC3339.fullmatch(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None
    return parsed


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


def test_every_moment_the_service_gives_is_rfc3339_with_an_offset(
    service: ServiceSetup, receiver: WebhookReceiver
) -> None:
    api = service.api
    link = api.post("/v1/accounts/u1/connect").json()
    _moment(link["expires_at"])
    service.connect("u1")
    account = api.get("/v1/accounts/u1").json()
    _moment(account["expires_at"])
    _moment(account["connected_at"])
    _moment(api.post("/v1/accounts/u1/uploads-page").json()["expires_at"])

    r = api.upload("u1", content=video_bytes(), folder=FOLDER, callback_url=receiver.url)
    assert r.status_code == 202, r.text
    done = api.wait_upload(r.json()["upload_id"])
    assert _moment(done["created_at"]) <= _moment(done["updated_at"])
    [listed] = api.get("/v1/uploads").json()["uploads"]
    _moment(listed["created_at"])
    headers, body = receiver.wait(1)[0]
    _moment(_check_signed(headers, body)["sent_at"])

    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for model, field in [
        ("ConnectLink", "expires_at"),
        ("PageLink", "expires_at"),
        ("Upload", "created_at"),
        ("Upload", "updated_at"),
        ("AccountStatus", "expires_at"),
        ("AccountStatus", "connected_at"),
    ]:
        prop = schemas[model]["properties"][field]
        formats = [prop.get("format")] + [o.get("format") for o in prop.get("anyOf", [])]
        assert "date-time" in formats, (model, field, prop)


def test_naive_store_values_are_read_as_utc_and_epochs_are_converted() -> None:
    assert rfc3339(datetime(2026, 12, 4, 2, 55, 40)) == "2026-12-04T02:55:40+00:00"
    assert rfc3339(1796353437.3773155) == "2026-12-04T03:03:57+00:00"
    assert rfc3339(None) is None
    assert json.dumps(rfc3339(0)) == '"1970-01-01T00:00:00+00:00"'
