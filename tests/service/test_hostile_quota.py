"""Issue 19, point 3: one tenant's uploads waiting for consent cannot fill the spool for all.

Tenant A's uploads stay spooled (no worker runs here: as when its users never consent); its
share of the spool (bytes and uploads not finished) runs out and its next upload is refused
with its own error code, while tenant B's uploads are still taken.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.service.conftest import WEBHOOK_SECRET, ServiceSetup, video_bytes

FOLDER = "SIT101 Lectures"


def test_a_tenants_share_of_the_spool_runs_out_before_the_disk(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(
        run_worker=False, VIDAUTH_TENANT_SPOOL_BYTES="300000", VIDAUTH_TENANT_WAITING_UPLOADS="50"
    )
    a = service.api
    b = service.client(service.new_key(tenant="B", webhook_secret=WEBHOOK_SECRET))
    service.connect("u1")
    service.connect("u1", api=b, username="bob", password="bob-sandbox-password")
    accepted = 0
    refused = None
    for i in range(6):
        r = a.upload("u1", content=video_bytes(100_000, seed=i), folder=FOLDER)
        if r.status_code == 202:
            accepted += 1
            continue
        refused = r
        break
    assert accepted == 3, accepted
    assert refused is not None and refused.status_code == 507, refused.text
    assert refused.json()["error"] == "spool_quota_exceeded"
    assert "VIDAUTH_TENANT_SPOOL_BYTES" in refused.json()["detail"]
    # A file that would cross the share mid-stream is refused too, and nothing of it is kept.
    spool = service.ctx.service.upload_dir
    before = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
    r = b.upload("u1", content=video_bytes(400_000, seed=9), folder=FOLDER)
    assert r.status_code == 507 and r.json()["error"] == "spool_quota_exceeded", r.text
    assert sum(p.stat().st_size for p in spool.rglob("*") if p.is_file()) == before
    # Tenant B still has its own share.
    r = b.upload("u1", content=video_bytes(100_000, seed=10), folder=FOLDER)
    assert r.status_code == 202, r.text
    # Cancelling one of A's frees its share again.
    first = a.get("/v1/uploads").json()["uploads"][-1]["upload_id"]
    assert a.delete(f"/v1/uploads/{first}").status_code == 200
    r = a.upload("u1", content=video_bytes(100_000, seed=11), folder=FOLDER)
    assert r.status_code == 202, r.text


def test_a_tenants_unfinished_uploads_are_bounded(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(run_worker=False, VIDAUTH_TENANT_WAITING_UPLOADS="2")
    service.connect("u1")
    for i in range(2):
        r = service.api.upload("u1", content=video_bytes(10_000, seed=i), folder=FOLDER)
        assert r.status_code == 202, r.text
    r = service.api.upload("u1", content=video_bytes(10_000, seed=5), folder=FOLDER)
    assert r.status_code == 507, r.text
    assert r.json()["error"] == "spool_quota_exceeded"
    assert "VIDAUTH_TENANT_WAITING_UPLOADS" in r.json()["detail"]
