"""The store's cleanup paths are bounded, and the group-commit flusher sleeps when idle.

Both run the executor against an in-memory store under the virtual clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge._core._events import AuditEvent, EventType
from trioforge._store._durable import FINAL_FLUSH_TIMEOUT
from trioforge._store._records import Lease, RunRecord, RunStoreError

_ENDS = {EventType.WORKFLOW_COMPLETED, EventType.WORKFLOW_FAILED}


class MemoryStore:
    """Just enough of a RunStore for a new run; commits of a run's end can hang."""

    def __init__(self, *, hang_at_end: float = 0.0) -> None:
        self.hang_at_end = hang_at_end
        self.batches: list[list[AuditEvent]] = []

    async def create_run(self, record: RunRecord) -> None:
        await trio.lowlevel.checkpoint()

    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        await trio.lowlevel.checkpoint()
        return Lease(run_id, owner, 1e12)

    async def renew_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        await trio.lowlevel.checkpoint()
        return Lease(run_id, owner, 1e12)

    async def release_lease(self, run_id: str, owner: str) -> None:
        await trio.lowlevel.checkpoint()

    async def commit(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        *,
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        if self.hang_at_end and any(e.type in _ENDS for e in events):
            await trio.sleep(self.hang_at_end)  # a store stuck behind another writer
        await trio.lowlevel.checkpoint()
        self.batches.append(list(events))


def _one_task(seconds: float) -> tf.Workflow:
    async def work(ctx: tf.TaskContext) -> str:
        await trio.sleep(seconds)
        return "done"

    wf = tf.Workflow("bounded")
    wf.add_task(tf.Task("work", work))
    return wf


async def test_the_final_flush_gives_up_at_its_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A store that hangs on the run's last commit holds the run for the final bound, no more."""
    store = MemoryStore(hang_at_end=1000.0)
    executor = tf.WorkflowExecutor(_one_task(1.0), store=store)  # type: ignore[arg-type]
    began = trio.current_time()
    with pytest.raises(RunStoreError, match="could not record"):
        await executor.execute_dataflow()
    assert trio.current_time() - began <= 1.0 + FINAL_FLUSH_TIMEOUT + 0.5


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of the group-commit flusher task."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_flush_every"):
            self.steps += 1


async def test_the_flusher_waits_on_an_event_while_nothing_is_buffered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """During a task's 100 idle seconds the background flusher wakes a few times, not 200."""
    store = MemoryStore()
    steps = _Steps()
    trio.lowlevel.add_instrument(steps)
    try:
        result = await tf.WorkflowExecutor(
            _one_task(100.0),
            store=store,  # type: ignore[arg-type]
        ).execute_dataflow()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert result.results == {"work": "done"}
    assert steps.steps < 10
