"""The trip with each booking's undo registered the moment the booking exists.

Needs ``TaskContext.add_compensation`` (see the testing guide): a task that
booked and then failed, timed out or was cancelled is undone too, so the
property is simply "after a failed run, nothing is held".
"""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from testing_trip import ITEMS, Bookings

import trioforge as tf
from trioforge.testing import FaultPlan, fail_on_deadlock, faults, run_virtual, with_faults

#: Each task: its dependencies and how long it waits for a confirmation after booking.
STEPS = {
    "flight": ((), 2.0),
    "hotel": ((), 3.0),
    "car": (("flight",), 1.0),
    "payment": (("hotel", "car"), 0.0),
}


def saga_trip_workflow(bookings: Bookings) -> tf.Workflow:
    """The trip of ``testing_trip``, undoing each booking through ``ctx.add_compensation``."""
    wf = tf.Workflow("trip")
    for item, (deps, confirm_seconds) in STEPS.items():

        async def book(ctx: tf.TaskContext, confirm_seconds: float = confirm_seconds) -> str:
            ref = await bookings.book(ctx.task_id)
            ctx.add_compensation(bookings.release, ctx.task_id)  # no checkpoint in between
            await trio.sleep(confirm_seconds)
            return ref

        wf.add_task(tf.Task(item, book, depends_on=deps, timeout=10))
    return wf


@settings(deadline=None)
@given(plan=faults(saga_trip_workflow(Bookings())))
def test_nothing_is_left_booked(plan: FaultPlan) -> None:
    """Whatever fails, hangs or is cancelled, and whenever: a failed run holds nothing."""
    bookings = Bookings()
    run = run_virtual(saga_trip_workflow(bookings), faults=plan)
    if run.error is None:
        assert set(ITEMS) == bookings.held
    else:
        assert set() == bookings.held


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=faults(saga_trip_workflow(Bookings()), cancel=False))
async def test_nothing_is_left_booked_async(
    autojump_clock: trio.testing.MockClock, plan: FaultPlan
) -> None:
    """The same in a pytest-trio test, with with_faults and your own executor."""
    bookings = Bookings()
    executor = tf.WorkflowExecutor(with_faults(saga_trip_workflow(bookings), plan))
    try:
        with fail_on_deadlock(executor):
            await executor.execute_dataflow()
    except tf.WorkflowError:
        assert set() == bookings.held
    else:
        assert set(ITEMS) == bookings.held
