"""A cancel keeps its word: success only for an upload that will not be published.

The sandbox holds the request at a chosen step boundary (``sandbox.panopto.hold``), so the cancel
arrives exactly there: no sleeps, no luck.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.service.conftest import ServiceSetup, video_bytes
from vidauth.store.uploads import UploadStore

FOLDER = "SIT101 Lectures"


def _start(service: ServiceSetup) -> str:
    service.connect("u1")
    r = service.api.upload("u1", content=video_bytes(6 * 1024 * 1024), folder=FOLDER)
    assert r.status_code in (200, 201, 202), r.text
    return str(r.json()["upload_id"])


def test_a_cancel_before_complete_is_kept(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_PART_SIZE_MIB="5")
    panopto = service.sandbox.panopto
    held = panopto.hold("CompleteMultipartUpload")
    upload_id = _start(service)
    assert held.wait_arrived(30)  # every part is sent; Complete is at the target's door
    r = service.api.delete(f"/v1/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    held.release()
    done = service.api.wait_upload(upload_id, timeout=30)
    assert done["state"] == "cancelled", done
    assert done["session_id"] is None
    # Nothing was published: the sessionUpload was cancelled (State 2), never given State 1.
    job = service.ctx.va  # the worker's store holds the sessionUpload's ID
    [record] = UploadStore(job.store.db).list_uploads()
    assert record.session_upload_id is not None
    assert panopto.session_upload_state(record.session_upload_id)["State"] == 2


def test_a_cancel_while_state1_is_sent_is_refused_and_the_upload_completes(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(VIDAUTH_PART_SIZE_MIB="5")
    panopto = service.sandbox.panopto
    held = panopto.hold("State1")
    upload_id = _start(service)
    assert held.wait_arrived(30)  # past the point of no return
    r = service.api.delete(f"/v1/uploads/{upload_id}")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "too_late_to_cancel" and body["state"] in ("uploading", "processing")
    held.release()
    done = service.api.wait_upload(upload_id, timeout=30)
    assert done["state"] == "complete" and done["session_id"], done
    # a later cancel says it has finished
    assert service.api.delete(f"/v1/uploads/{upload_id}").status_code == 409
