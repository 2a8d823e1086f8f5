"""Find a missing timeout: a task that waits forever is reported as a Deadlock, at once."""

from __future__ import annotations

import trio

import trioforge as tf
from trioforge.testing import Deadlock, run_virtual


def payment_workflow() -> tf.Workflow:
    """Charge the card, then wait for the bank's confirmation, with no timeout."""
    wf = tf.Workflow("payment")
    # In production the bank's webhook sends on this channel; in a test, nobody does.
    _webhook, confirmations = trio.open_memory_channel[str](1)

    @wf.task
    async def charge(ctx: tf.TaskContext) -> None:
        await trio.sleep(1)

    @wf.task(depends_on=["charge"])  # forgot timeout=...
    async def confirm(ctx: tf.TaskContext) -> str:
        return await confirmations.receive()

    return wf


def find_missing_timeout() -> Deadlock:
    """Run the workflow in virtual time and return the Deadlock it ends in."""
    try:
        run_virtual(payment_workflow())
    except Deadlock as deadlock:
        return deadlock
    raise AssertionError("the run ended without a deadlock")


if __name__ == "__main__":
    print(find_missing_timeout())
    # deadlock: no task can run and nothing can wake one up: 'confirm' waits on
    # trio.MemoryReceiveChannel.receive, awaited at .../testing_deadlock.py:22 in confirm
