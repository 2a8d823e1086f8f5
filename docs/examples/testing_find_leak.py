"""Let hypothesis find the smallest fault plan that leaves a booking behind."""

from __future__ import annotations

from hypothesis import find, settings
from testing_trip import Bookings, trip_workflow

from trioforge.testing import FaultPlan, faults, run_virtual


def leaks(plan: FaultPlan) -> bool:
    """Whether the trip, run with ``plan``, fails and still holds a booking."""
    bookings = Bookings()
    run = run_virtual(trip_workflow(bookings), faults=plan)
    return run.error is not None and bool(bookings.held)


def smallest_leak() -> FaultPlan:
    """The simplest plan that leaks, as hypothesis shrinks it."""
    return find(
        faults(trip_workflow(Bookings())),
        leaks,
        settings=settings(database=None, max_examples=500, deadline=None),
    )


if __name__ == "__main__":
    print(
        smallest_leak()
    )  # FaultPlan(fail_before=frozenset(), fail_after=frozenset({'flight'}), ...)
