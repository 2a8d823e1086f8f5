"""Property-test the trip's rollback against every fault plan hypothesis draws (sync test)."""

from __future__ import annotations

from hypothesis import given, settings
from testing_trip import ITEMS, Bookings, trip_workflow

from trioforge import EventType
from trioforge.testing import FaultPlan, faults, run_virtual


@settings(deadline=None)  # trio runs: the first one imports and warms up
@given(plan=faults(trip_workflow(Bookings())))
def test_completed_bookings_are_released(plan: FaultPlan) -> None:
    """Whatever fails, hangs or is cancelled, every task that completed is undone, last first."""
    bookings = Bookings()
    run = run_virtual(trip_workflow(bookings), faults=plan)
    if run.error is None:
        assert set(ITEMS) == bookings.held
        return
    assert run.completed[::-1] == run.compensated
    # Rollback undoes the tasks that completed. A task stopped after it
    # booked (it failed, hung until its timeout, or was cancelled) did not
    # complete, so only such a task can still hold a booking:
    started = {e.task_id for e in run.audit_log.of_type(EventType.TASK_STARTED)}
    assert bookings.held <= started - set(run.completed)
