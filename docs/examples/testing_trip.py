"""The workflow the testing guide property-tests: book a trip, undo the bookings on failure.

``Bookings`` stands in for a booking service. Each task books one thing,
then confirms it (the ``sleep``), and its ``compensate`` releases the
booking when a later failure rolls the run back.
"""

from __future__ import annotations

import attrs
import trio

import trioforge as tf

ITEMS = ("flight", "hotel", "car", "payment")


@attrs.define(eq=False)
class Bookings:
    """What is booked right now."""

    held: set[str] = attrs.Factory(set)

    async def book(self, item: str) -> str:
        """Book ``item``; return its reference."""
        await trio.sleep(0.5)
        self.held.add(item)
        return f"{item}-ref"

    async def release(self, item: str) -> None:
        """Release the booking of ``item``."""
        await trio.sleep(0.25)
        self.held.discard(item)


def trip_workflow(bookings: Bookings) -> tf.Workflow:
    """Flight and hotel at once, then the car, then the payment; each undone on rollback."""
    wf = tf.Workflow("trip")

    async def release(ctx: tf.TaskContext) -> None:
        await bookings.release(ctx.task_id)

    @wf.task(timeout=10, compensate=release)
    async def flight(ctx: tf.TaskContext) -> str:
        ref = await bookings.book("flight")
        await trio.sleep(2)  # wait for the airline's confirmation
        return ref

    @wf.task(timeout=10, compensate=release)
    async def hotel(ctx: tf.TaskContext) -> str:
        ref = await bookings.book("hotel")
        await trio.sleep(3)
        return ref

    @wf.task(depends_on=["flight"], timeout=10, compensate=release)
    async def car(ctx: tf.TaskContext) -> str:
        ref = await bookings.book("car")
        await trio.sleep(1)
        return ref

    @wf.task(depends_on=["hotel", "car"], timeout=10, compensate=release)
    async def payment(ctx: tf.TaskContext) -> str:
        return await bookings.book("payment")

    return wf
