"""Reserved starts: a slot-limited durable run starts the next task without a commit of its own.

Each commit of such a run also reserves the starts of the tasks next in line;
a reserved task starts the moment a slot frees, and its start is committed
later. The promise stays the same: no task body runs before a commit that
records its start or reserves it, and after a crash a reservation that no
recorded start followed counts as an attempt (so a task run again always
sees a higher attempt). These tests check both halves: the scheduler (what
runs when, against what was durable), and the store's fold (what a load
counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import trioforge as tf
from trioforge._core._events import AuditEvent, EventType
from trioforge._store._records import RunRecord
from trioforge._store._sqlite import SQLiteRunStore

T0 = 1_700_000_000.0
STARTED = EventType.TASK_STARTED


class _Watching(SQLiteRunStore):
    """A slow store that keeps, after each commit returns, which starts are durable.

    ``recorded``: tasks whose ``TaskStarted`` a returned commit holds;
    ``reserved``: tasks a returned commit reserved.
    """

    recorded: set[str]
    reserved: set[str]
    commits: int

    async def commit(self, run_id: str, events: Any, *args: Any, **kwargs: Any) -> None:
        batch = [e.task_id for e in events if e.type is STARTED]
        # A slow commit: tasks end while it is in flight, and the slots they free must
        # not go to tasks whose reservation it carries (not durable yet).
        await trio.sleep(0.003)
        await super().commit(run_id, events, *args, **kwargs)
        self.commits += 1
        self.recorded.update(batch)
        self.reserved.update(kwargs.get("reserved") or ())


def _watching(path: Path) -> _Watching:
    store = _Watching(path)
    store.recorded, store.reserved, store.commits = set(), set(), 0
    return store


@pytest.mark.parametrize("schedule", ["dataflow", "layers"])
async def test_no_body_runs_before_its_start_is_durable_and_reserved_ones_do_not_wait(
    tmp_path: Path, schedule: str
) -> None:
    n, limit = 60, 2
    store = _watching(tmp_path / "runs.db")
    seen: dict[str, tuple[bool, bool]] = {}
    wf = tf.Workflow("reserving")
    for i in range(n):

        async def body(ctx: tf.TaskContext) -> None:
            # What was durable when this body began: its own start, or a reservation of it.
            seen[ctx.task_id] = (ctx.task_id in store.recorded, ctx.task_id in store.reserved)
            await trio.sleep(0.001)

        # Layers: five layers of twelve (each task needs one of the layer before).
        needs = [f"t{i - 12}"] if schedule == "layers" and i >= 12 else []
        wf.add_task(tf.Task(f"t{i}", body, depends_on=needs))
    async with store:
        executor = tf.WorkflowExecutor(wf, store=store, max_concurrency=limit)
        if schedule == "dataflow":
            result = await executor.execute_dataflow()
        else:
            result = await executor.execute_parallel()
        stored = await store.load(result.workflow_id)
    assert set(seen) == {f"t{i}" for i in range(n)}
    # The promise: every body began after a commit recorded or reserved its start.
    assert all(own or ahead for own, ahead in seen.values()), seen
    # Most began on a reservation, before any commit of their own start ...
    early = [task for task, (own, ahead) in seen.items() if ahead and not own]
    assert len(early) >= n // 2, seen
    # ... and commits served several starts each, instead of one a task.
    assert store.commits < n * 2 // 3, store.commits
    # Once the run ended, each task stands completed after one attempt: no reservation
    # left over (the last ones reserved were started) is counted twice or at all.
    assert {r.state for r in stored.tasks.values()} == {"completed"}
    assert {r.attempts for r in stored.tasks.values()} == {1}


def _ev(kind: EventType, task_id: str | None = None, attempt: int | None = None) -> AuditEvent:
    return AuditEvent(kind, "r1", 1.0, T0, task_id, None, attempt, None, None, None)


async def _store_with(tmp_path: Path, *commits: tuple[list[AuditEvent], dict[str, int]]) -> Any:
    """Load run r1 (tasks a, b, c) after the given ``(events, reserved)`` commits."""
    definition = {
        "name": "abc",
        "tasks": [{"id": t, "depends_on": []} for t in "abc"],
    }
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        await store.create_run(RunRecord.start("r1", definition, started_at=T0))
        for events, reserved in commits:
            await store.commit("r1", events, {}, reserved=reserved)
        return await store.load("r1")


async def test_a_reservation_no_start_followed_counts_as_an_attempt(tmp_path: Path) -> None:
    # A crash after b and c were reserved, b's start recorded, c's not: c may have run.
    stored = await _store_with(
        tmp_path,
        ([_ev(EventType.WORKFLOW_STARTED), _ev(STARTED, "a", 1)], {"b": 1, "c": 1}),
        ([_ev(STARTED, "b", 1)], {}),
    )
    tasks = stored.tasks
    assert (tasks["a"].state, tasks["a"].attempts) == ("running", 1)
    assert (tasks["b"].state, tasks["b"].attempts) == ("running", 1)  # counted once
    assert (tasks["c"].state, tasks["c"].attempts) == ("pending", 1)  # may have begun


async def test_a_run_that_ended_voids_the_reservations_it_did_not_use(tmp_path: Path) -> None:
    stored = await _store_with(
        tmp_path,
        ([_ev(EventType.WORKFLOW_STARTED), _ev(STARTED, "a", 1)], {"b": 1, "c": 1}),
        ([_ev(STARTED, "b", 1), _ev(EventType.WORKFLOW_CANCELLED)], {}),
    )
    assert stored.tasks["b"].attempts == 1
    assert (stored.tasks["c"].state, stored.tasks["c"].attempts) == ("pending", 0)


async def test_a_resume_counts_the_reservations_of_the_run_it_resumes(tmp_path: Path) -> None:
    # Crashed with c reserved; the resume runs c as attempt 2, which the fold sees.
    stored = await _store_with(
        tmp_path,
        ([_ev(EventType.WORKFLOW_STARTED)], {"c": 1}),
        ([_ev(EventType.WORKFLOW_STARTED), _ev(STARTED, "c", 2)], {"a": 1}),
    )
    assert (stored.tasks["c"].state, stored.tasks["c"].attempts) == ("running", 2)
    assert stored.tasks["a"].attempts == 1


async def test_a_resumed_run_gives_a_reserved_task_a_higher_attempt(tmp_path: Path) -> None:
    attempts: dict[str, list[int]] = {}
    broken = {"c"}

    async def body(ctx: tf.TaskContext) -> None:
        attempts.setdefault(ctx.task_id, []).append(ctx.attempt)
        await trio.lowlevel.checkpoint()
        if ctx.task_id in broken:
            raise RuntimeError("broken")

    wf = tf.Workflow("abc")
    wf.add_task(tf.Task("a", body))
    wf.add_task(tf.Task("b", body))
    wf.add_task(tf.Task("c", body, depends_on=["a", "b"]))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id
        # Then a resume that crashed just after a commit reserved c's second attempt
        # (c may have run as attempt 2 before its start was recorded).
        resumed = AuditEvent(
            EventType.WORKFLOW_STARTED, run_id, 9.0, T0, None, None, None, None, None, None
        )
        await store.commit(run_id, [resumed], {}, reserved={"c": 2})
        assert (await store.load(run_id)).tasks["c"].attempts == 2
        broken.clear()
        result = await tf.WorkflowExecutor(wf, store=store).resume(run_id)
    assert result.workflow_id == run_id
    # Only c runs again, and as attempt 3: never a second attempt 2.
    assert attempts == {"a": [1], "b": [1], "c": [1, 3]}
