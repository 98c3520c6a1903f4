"""Issue 19, point 3: an upload waiting for consent does not hold its spooled file for ever.

After VIDAUTH_CONSENT_WAIT_SECONDS the upload fails with ``not_signed_in``, its spooled file is
deleted, and the tenant is told by a webhook; younger ones stay as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.service.conftest import ServiceSetup, video_bytes

FOLDER = "SIT101 Lectures"


def test_uploads_waiting_for_consent_too_long_fail_and_free_the_spool(
    make_service: Callable[..., ServiceSetup],
) -> None:
    from vidauth.service.expiry import expire_waiting
    from vidauth.service.models import Job, Webhook
    from vidauth.store.models import utcnow

    service = make_service(run_worker=False, VIDAUTH_CONSENT_WAIT_SECONDS="3600")
    service.connect("u1")
    service.revoke_grants()
    ids = []
    for i in range(2):
        r = service.api.upload(
            "u1",
            content=video_bytes(50_000, seed=i),
            folder=FOLDER,
            callback_url=f"{service.url}/hook",
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["upload_id"])
    old, young = ids
    with service.ctx.db.session() as session:
        session.execute(update(Job).where(Job.id.in_(ids)).values(state="waiting_for_consent"))
        session.execute(
            update(Job).where(Job.id == old).values(created_at=utcnow() - timedelta(hours=2))
        )
        paths = {j.id: Path(j.file_path) for j in session.scalars(select(Job))}
    assert paths[old].exists()

    assert expire_waiting(service.ctx) == 1
    gone = service.api.get(f"/v1/uploads/{old}").json()
    assert gone["state"] == "failed", gone
    assert gone["error_code"] == "not_signed_in"
    assert not paths[old].exists() and not paths[old].parent.exists()
    assert service.api.get(f"/v1/uploads/{young}").json()["state"] == "waiting_for_consent"
    assert paths[young].exists()
    with service.ctx.db.session() as session:
        bodies = [json.loads(w.body) for w in session.scalars(select(Webhook))]
    told = [b for b in bodies if b["upload_id"] == old and b["event"] == "upload.failed"]
    assert told and told[0]["error_code"] == "not_signed_in"
    assert expire_waiting(service.ctx) == 0  # once
