"""The service's uploads keep as many parts in flight as ``vidauth upload`` does: adapted to the
link by default, pinned by ``VIDAUTH_UPLOAD_PARALLEL`` — counted at the sandbox's S3 target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import ServiceSetup, video_bytes
from vidauth.errors import ConfigError
from vidauth.panopto.parallelism import INITIAL_PARTS_IN_FLIGHT

FOLDER = "SIT101 Lectures"
MiB = 1024 * 1024


def _peak_parts_in_flight(service: ServiceSetup, parts: int) -> int:
    service.connect("u1")
    content = video_bytes(parts * 5 * MiB, seed=3)
    upload_id = service.api.upload("u1", content=content, folder=FOLDER).json()["upload_id"]
    done = service.api.wait_upload(upload_id, timeout=90)
    assert done["state"] == "complete", done
    stats = service.sandbox.panopto.s3.stats()
    assert stats["upload_part_requests"] == parts + 1  # and the manifest's one part
    return int(stats["peak_parts_in_flight"])


def test_default_adapts_parts_in_flight_beyond_the_old_pin(
    make_service: Callable[..., ServiceSetup],
) -> None:
    # 200 ms per request: the parts of the first wave overlap at the target
    service = make_service(VIDAUTH_PART_SIZE_MIB="5", s3_latency=0.2)
    assert service.ctx.service.upload_parallel is None
    peak = _peak_parts_in_flight(service, parts=12)
    assert peak > 4, f"at most {peak} parts in flight: pinned as before, not adapted"
    assert peak <= INITIAL_PARTS_IN_FLIGHT * 2


def test_upload_parallel_pins_it(make_service: Callable[..., ServiceSetup]) -> None:
    service = make_service(VIDAUTH_PART_SIZE_MIB="5", VIDAUTH_UPLOAD_PARALLEL="2", s3_latency=0.2)
    assert _peak_parts_in_flight(service, parts=6) == 2


@pytest.mark.parametrize("value", ["0", "-3"])
def test_upload_parallel_must_be_positive(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidauth.config import load_settings
    from vidauth.service.settings import load_service_settings

    monkeypatch.setenv("VIDAUTH_UPLOAD_PARALLEL", value)
    monkeypatch.setenv("VIDAUTH_PUBLIC_URL", "http://127.0.0.1:8000")
    settings = load_settings(env_file=False, vidauth_home=str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="VIDAUTH_UPLOAD_PARALLEL must be positive"):
        load_service_settings(settings, env_file=tmp_path / "no.env")
