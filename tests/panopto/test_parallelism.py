"""The parts-in-flight controller and its gate, driven by a fake clock and a modelled link."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from vidauth.panopto.parallelism import (
    INITIAL_PARTS_IN_FLIGHT,
    MAX_PARTS_IN_FLIGHT,
    MAX_START_SPACING,
    MEMORY_BOUND,
    PROBE_EVERY,
    InFlightController,
    MiB,
    PartSlots,
    controller_for,
    throttling,
)

PART = 8 * MiB


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_link(
    controller: InFlightController,
    clock: Clock,
    rate: Callable[[int], float],
    parts: int,
) -> list[int]:
    """Acknowledge ``parts`` parts at the rate the link gives ``limit`` parts in flight;
    answer the limit seen before each part."""
    seen = []
    controller.part_started()
    for _ in range(parts):
        seen.append(controller.limit)
        clock.now += PART / rate(controller.limit)
        controller.part_done(PART)
    return seen


def capped(per_part: float, cap: float) -> Callable[[int], float]:
    """A link where each part in flight gets ``per_part`` B/s until the ``cap`` is reached."""
    return lambda n: min(n * per_part, cap)


def test_grows_while_throughput_grows_and_holds_at_the_plateau() -> None:
    clock = Clock()
    controller = InFlightController(32, initial=2, clock=clock)
    assert controller.limit == 2
    run_link(controller, clock, capped(5e6, 60e6), parts=200)
    steps = [(c.old, c.new) for c in controller.changes]
    # slow start: doubles while throughput grows (10, 20, 40, 60 MB/s); 16 → 32 brought
    # nothing: back to 16, and held there
    assert steps[:5] == [(2, 4), (4, 8), (8, 16), (16, 32), (32, 16)]
    assert controller.limit in (16, 24) and controller.plateau() == 16  # 24: a probe
    # while holding, it probes upwards by half now and then, and comes back
    assert all(new in (16, 24) for _, new in steps[5:]) and len(steps) > 5


def test_starts_at_a_higher_guess_and_near_a_remembered_plateau() -> None:
    clock = Clock()
    first = INITIAL_PARTS_IN_FLIGHT
    controller = InFlightController(2 * first, clock=clock)
    assert controller.limit == first and controller.plateau() is None  # nothing measured yet
    controller.start_near(first + first // 2)
    assert controller.limit == first + first // 2
    controller.start_near(
        first // 4
    )  # never lower than the first guess: a slower host finds its own
    assert controller.limit == first + first // 2
    run_link(controller, clock, capped(5e6, 1e12), parts=400)
    assert controller.limit == 2 * first and controller.plateau() == 2 * first
    controller.start_near(2)  # once measured, the remembered number no longer applies
    assert controller.limit == 2 * first
    pinned = InFlightController(4, pinned=True, clock=clock)
    pinned.start_near(30)
    assert pinned.limit == 4 and pinned.plateau() is None


def test_the_first_guess_fills_a_link_that_caps_each_connection() -> None:
    # link B of the benchmark: 80 MB/s shared, 4 MB/s a connection: 20 parts fill it, and all
    # 32 parts of a 256 MiB file go at once (one wave)
    assert INITIAL_PARTS_IN_FLIGHT * 4e6 >= 80e6
    assert 256 * MiB // PART <= INITIAL_PARTS_IN_FLIGHT
    assert InFlightController(MAX_PARTS_IN_FLIGHT).limit == INITIAL_PARTS_IN_FLIGHT


def test_probes_again_when_the_link_gets_faster() -> None:
    clock = Clock()
    first = INITIAL_PARTS_IN_FLIGHT
    controller = InFlightController(2 * first, clock=clock)
    # the first guess already fills the link: the step up brings nothing, and is taken back
    run_link(controller, clock, capped(5e6, first * 4e6), parts=4 * first)
    assert controller.limit == first
    run_link(controller, clock, capped(5e6, 1e12), parts=first * PROBE_EVERY * 4)
    assert controller.limit == 2 * first  # grew to the bound, never beyond it
    assert max(c.new for c in controller.changes) == 2 * first


def test_never_beyond_the_maximum() -> None:
    clock = Clock()
    controller = InFlightController(10, clock=clock)
    seen = run_link(controller, clock, capped(5e6, 1e12), parts=500)
    assert max(seen) == 10 and controller.limit == 10


def test_a_measurement_needs_a_second_and_a_pipeline_of_parts() -> None:
    clock = Clock()
    controller = InFlightController(32, clock=clock)
    controller.part_started()
    for _ in range(7):  # fewer parts than in flight: no decision, however long it takes
        clock.now += 5
        controller.part_done(PART)
    assert controller.changes == []
    clock2 = Clock()
    quick = InFlightController(32, clock=clock2)
    quick.part_started()
    for _ in range(20):  # many parts within less than a second: no decision either
        clock2.now += 0.04
        quick.part_done(PART)
    assert quick.changes == []


def test_throttling_halves_once_per_burst_and_caps_the_growth() -> None:
    clock = Clock()
    controller = InFlightController(32, initial=16, clock=clock)
    for _ in range(6):  # the parts in flight are refused together: one back-off
        controller.throttled()
    assert controller.limit == 8
    clock.now += 1.5
    controller.throttled()
    assert controller.limit == 4
    assert [(c.old, c.new) for c in controller.changes] == [(16, 8), (8, 4)]
    # a link that would take any number: growth resumes only after holding, up to just below
    # the number that was throttled (8); beyond that only one part per probe
    seen = run_link(controller, clock, capped(5e6, 1e12), parts=300)
    assert seen[: PROBE_EVERY * 4] == [4] * (PROBE_EVERY * 4)
    ups = [(c.old, c.new) for c in controller.changes[2:] if c.new > c.old]
    assert ups and all(new <= 8 or new - old == 1 for old, new in ups), ups
    assert max(seen) < 16  # nowhere near the number that was refused
    for _ in range(10):
        clock.now += 2
        controller.throttled()
    assert controller.limit == 1  # never below one


def test_pinned_never_changes() -> None:
    clock = Clock()
    controller = InFlightController(6, pinned=True, clock=clock)
    run_link(controller, clock, capped(5e6, 1e12), parts=200)
    controller.throttled()
    clock.now += 5
    controller.throttled()
    assert controller.limit == 6 and controller.changes == []


def test_slots_hold_the_limit_the_memory_bound_and_space_starts() -> None:
    clock = Clock()
    controller = InFlightController(4, pinned=True, clock=clock)
    slots = PartSlots(controller, memory_bound=3 * PART, clock=clock)
    slots.observe_round_trip(0.2)  # 0.2 s / 4 parts: 50 ms apart (the most it spaces)
    assert slots.spacing == pytest.approx(MAX_START_SPACING)
    assert slots.try_acquire(PART) == 0.0
    assert slots.try_acquire(PART) == pytest.approx(MAX_START_SPACING)  # too soon
    clock.now += MAX_START_SPACING
    assert slots.try_acquire(PART) == 0.0
    clock.now += 1
    assert slots.try_acquire(PART) == 0.0
    clock.now += 1
    assert slots.try_acquire(PART) is None  # 3 parts are the memory bound, below the limit 4
    slots.release(PART)
    assert slots.try_acquire(PART) == 0.0
    assert (slots.in_flight, slots.bytes_in_flight, slots.peak) == (3, 3 * PART, 3)
    for _ in range(3):
        slots.release(PART)
    clock.now += 1
    huge = PartSlots(controller, memory_bound=PART, clock=clock)
    assert huge.try_acquire(2 * PART) == 0.0  # one part alone always goes, whatever its size
    assert huge.try_acquire(1) is None


def test_a_shrunk_limit_lets_no_new_part_start_until_enough_finish() -> None:
    clock = Clock()
    controller = InFlightController(32, initial=4, clock=clock)
    slots = PartSlots(controller, clock=clock)
    slots.spacing = 0.0
    for _ in range(4):
        assert slots.try_acquire(PART) == 0.0
    controller.throttled()
    assert controller.limit == 2
    slots.release(PART)
    assert slots.try_acquire(PART) is None  # 3 in flight, limit 2
    slots.release(PART)
    slots.release(PART)
    assert slots.try_acquire(PART) == 0.0


def test_a_waiting_part_can_be_stopped() -> None:
    controller = InFlightController(1, pinned=True)
    slots = PartSlots(controller)
    assert slots.try_acquire(PART) == 0.0

    class Stopped(Exception):
        pass

    class Stop:
        calls = 0

        def check(self) -> None:
            self.calls += 1
            if self.calls > 1:
                raise Stopped

    with pytest.raises(Stopped), slots.slot(PART, Stop()):
        pass  # pragma: no cover - never entered
    assert slots.in_flight == 1


def test_engine_controllers() -> None:
    pinned, pinned_slots = controller_for(3)
    assert (pinned.limit, pinned.pinned, pinned_slots.memory_bound) == (3, True, None)
    adaptive, adaptive_slots = controller_for(None)
    assert adaptive.maximum == MAX_PARTS_IN_FLIGHT and adaptive_slots.memory_bound == MEMORY_BOUND
    assert MEMORY_BOUND // (8 * MiB) == MAX_PARTS_IN_FLIGHT  # default parts fill both bounds


def _client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UploadPart",
    )


def test_what_counts_as_throttling() -> None:
    assert throttling(_client_error(503, "SlowDown"))
    assert throttling(_client_error(503, "ServiceUnavailable"))
    assert throttling(_client_error(429, "TooManyRequests"))
    assert throttling(_client_error(400, "RequestTimeout"))
    assert throttling(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert throttling(ConnectionClosedError(endpoint_url="http://127.0.0.1:1"))
    assert not throttling(_client_error(500, "InternalError"))
    assert not throttling(_client_error(403, "AccessDenied"))
    assert not throttling(ValueError("x"))
