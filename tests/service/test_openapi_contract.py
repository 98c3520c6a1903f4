"""The HTTP API against its own OpenAPI document, with generated (often hostile) requests.

Schemathesis reads ``/openapi.json`` from the running service and generates requests that the
document allows, and requests it forbids, for every operation; they go over real loopback HTTP.
Each answer must be documented (status code, body schema, ``Allow`` on a 405) and never a
5xx, and a valid request must be accepted. Generation is derandomized, so a run is repeatable.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.service.conftest import ServiceSetup

EXAMPLES = 40


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    """Send generated requests to one operation and check every answer."""
    excluded = []
    if mode is GenerationMode.NEGATIVE:
        # Generated "invalid" requests include unknown query parameters, which an HTTP API
        # rightly ignores; what must hold for hostile input is no 5xx and documented answers.
        excluded.append(negative_data_rejection)
    if operation.method.upper() == "POST" and operation.path == "/v1/uploads":
        # The document cannot say "a video file": generated files are named .png, .txt, …
        # and refused with a documented 415, which this check would count as a rejection.
        excluded.append(positive_data_acceptance)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_documented(service: ServiceSetup, mode: GenerationMode) -> None:
    service.connect("u1")
    # The document the service serves, so the test follows the code, not a copy.
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    headers = {"Authorization": f"Bearer {service.key}"}
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        _fuzz(operation, mode, service.url, headers)
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) == 8, tested
