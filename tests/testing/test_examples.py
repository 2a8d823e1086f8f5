"""The testing guide's examples (docs/examples/testing_*.py) run here, so CI runs them."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest
from hypothesis import find, settings
from hypothesis.errors import NoSuchExample

import trioforge as tf
from trioforge.testing import FaultPlan, faults, run_virtual

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))
trip = importlib.import_module("testing_trip")
sync_property = importlib.import_module("testing_sync_property")
async_property = importlib.import_module("testing_async_property")
find_leak = importlib.import_module("testing_find_leak")
deadlock = importlib.import_module("testing_deadlock")
saga = importlib.import_module("testing_saga")

# The guide's own tests, collected as tests of this module.
test_completed_bookings_are_released = sync_property.test_completed_bookings_are_released
test_completed_bookings_are_released_async = (
    async_property.test_completed_bookings_are_released_async
)
test_failed_payment_releases_everything = async_property.test_failed_payment_releases_everything
test_nothing_is_left_booked = saga.test_nothing_is_left_booked
test_nothing_is_left_booked_async = saga.test_nothing_is_left_booked_async


def saga_leaks(plan: FaultPlan) -> bool:
    """Whether the saga trip, run with ``plan``, fails and still holds a booking."""
    bookings = trip.Bookings()
    run = run_virtual(saga.saga_trip_workflow(bookings), faults=plan)
    return run.error is not None and bool(bookings.held)


def test_with_add_compensation_hypothesis_finds_no_leak() -> None:
    """The saga version of the trip: no fault plan leaves a booking behind."""
    with pytest.raises(NoSuchExample):
        find(
            faults(saga.saga_trip_workflow(trip.Bookings())),
            saga_leaks,
            settings=settings(max_examples=300, database=None),
        )


def test_a_flight_that_fails_after_booking_is_undone_by_its_step() -> None:
    """The flight fails after booking: its own step and the cancelled hotel's step undo both."""
    bookings = trip.Bookings()
    run = run_virtual(saga.saga_trip_workflow(bookings), faults=FaultPlan(fail_after={"flight"}))
    assert isinstance(run.error, tf.TaskFailedError)
    assert run.completed == []  # the flight failed at 2 s, fail-fast stopped the hotel
    assert sorted(run.compensated) == ["flight", "hotel"]
    assert bookings.held == set()


def test_the_trip_books_everything_without_faults() -> None:
    """Without faults the trip ends holding its four bookings, in 4.5 virtual seconds."""
    bookings = trip.Bookings()
    from trioforge.testing import run_virtual

    run = run_virtual(trip.trip_workflow(bookings))
    assert run.error is None
    assert set(trip.ITEMS) == bookings.held
    assert run.duration == 4.5


def test_hypothesis_finds_the_smallest_leak() -> None:
    """The guide's claim: the smallest leaking plan is a flight that fails after it booked."""
    assert FaultPlan(fail_after={"flight"}) == find_leak.smallest_leak()


def test_the_missing_timeout_is_reported_at_once() -> None:
    """The guide's deadlock example names the task without a timeout, within a second."""
    started = time.perf_counter()
    found = deadlock.find_missing_timeout()
    elapsed = time.perf_counter() - started
    assert list(found.blocked) == ["confirm"]
    assert found.blocked["confirm"].startswith("trio.MemoryReceiveChannel.receive, awaited at ")
    assert elapsed < 1.0
    assert isinstance(found.__cause__, tf.WorkflowCancelledError)
