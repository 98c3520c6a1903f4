"""Workers take jobs fairly between tenants: the tenant with the fewest jobs running goes first.

One tenant's queue of many uploads must not hold back another tenant's single upload until
all of them are done (issue 19: one tenant cannot slow the service for everyone else)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.service.conftest import ServiceSetup
from vidauth.service.jobs import JobQueue
from vidauth.service.models import JobState

pytestmark = pytest.mark.slow


def _submit(queue: JobQueue, tenant: str) -> str:
    job_id = f"up_{uuid.uuid4().hex[:24]}"
    queue.submit(
        id=job_id,
        tenant=tenant,
        external_user_id="u1",
        file_path="/nonexistent",
        folder="SIT102 Labs",
        title="t",
        state=JobState.QUEUED,
    )
    return job_id


def test_a_tenant_with_nothing_running_goes_before_a_busy_tenants_backlog(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(run_worker=False)
    queue = JobQueue(service.ctx)
    busy = [_submit(queue, "tenant-a") for _ in range(4)]
    other = _submit(queue, "tenant-b")  # queued after all of tenant A's

    order = []
    for n in range(5):
        job = queue.claim(f"worker-{n}")
        assert job is not None
        order.append(job.id)
    # A's oldest first (nothing runs yet), then B's (A has one running), then A's others.
    assert order == [busy[0], other, *busy[1:]]
    assert queue.claim("worker-x") is None
