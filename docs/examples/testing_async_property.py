"""The trip's properties in async pytest-trio tests, in virtual time (``autojump_clock``)."""

from __future__ import annotations

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from testing_trip import ITEMS, Bookings, trip_workflow

from trioforge import EventType, TaskFailedError, WorkflowExecutor
from trioforge.testing import FaultPlan, fail_on_deadlock, faults, run_in_trio, with_faults


# The autojump clock is one object for all examples of the test; nothing in it
# needs resetting (only its time moves on), so the health check can be turned off.
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=faults(trip_workflow(Bookings())))
async def test_completed_bookings_are_released_async(
    autojump_clock: trio.testing.MockClock, plan: FaultPlan
) -> None:
    """The sync property, inside trio: run_in_trio applies the plan, cancel_at included."""
    bookings = Bookings()
    run = await run_in_trio(trip_workflow(bookings), faults=plan)
    if run.error is None:
        assert set(ITEMS) == bookings.held
        return
    assert run.completed[::-1] == run.compensated
    started = {e.task_id for e in run.audit_log.of_type(EventType.TASK_STARTED)}
    assert bookings.held <= started - set(run.completed)


async def test_failed_payment_releases_everything(autojump_clock: trio.testing.MockClock) -> None:
    """A payment that fails before it books rolls back the three other bookings."""
    bookings = Bookings()
    plan = FaultPlan(fail_before={"payment"})
    executor = WorkflowExecutor(with_faults(trip_workflow(bookings), plan))
    with pytest.raises(TaskFailedError) as info, fail_on_deadlock(executor):
        await executor.execute_dataflow()
    assert info.value.task_id == "payment"
    assert set() == bookings.held
    # hotel ends at 3.5, car at 0.5 + 2 + 0.5 + 1 = 4; then three releases of 0.25 each.
    expected_end = 4.75
    assert expected_end == trio.current_time()
