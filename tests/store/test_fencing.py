"""Two drivers on one store file: a driver that lost its lease stops at once, without rollback.

A stalled heartbeat is simulated with each store's ``clock=``: driver B's
clock runs ahead, so A's lease has expired from B's point of view and B takes
the run over. A's next commit (or its next renewal) is then refused, because
every commit carries the lease owner as a fencing token.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

import trioforge as tf
from trioforge._core._events import AuditEvent, EventType
from trioforge._store._database import SQLiteDatabase
from trioforge._store._records import LeaseLostError, RunLockedError, RunRecord
from trioforge._store._sqlite import SQLiteRunStore

T0 = 1_700_000_000.0
TAKER = "elsewhere:1:b"


class Clock:
    """A settable wall clock for one store's leases."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def chain(log: list[str], gate: trio.Event, b_started: trio.Event) -> tf.Workflow:
    """A (with a compensation) -> b, which waits for ``gate``."""

    async def a(ctx: tf.TaskContext) -> str:
        log.append("a")
        return "a"

    async def undo_a(ctx: tf.TaskContext) -> None:
        log.append("undo a")

    async def b(ctx: tf.TaskContext) -> str:
        log.append("b")
        b_started.set()
        await gate.wait()
        return "b"

    wf = tf.Workflow("fenced")
    wf.add_task(tf.Task("a", a, compensate=undo_a))
    wf.add_task(tf.Task("b", b, depends_on=["a"]))
    return wf


def raw_run(path: Path, run_id: str) -> tuple[str, dict[str, str], list[str]]:
    """The stored status, task states and event types, read without the store's rules."""
    with sqlite3.connect(path) as conn:
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    store = SQLiteDatabase(path, readonly=True)
    try:
        states = {tid: task.state for tid, task in store.load(run_id, now=0.0).tasks.items()}
        kinds = [str(event.type) for event in store.load_events(run_id)]
    finally:
        store.close()
    return status, states, kinds


async def test_a_commit_of_a_stale_owner_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Once B took the lease over, A's commit raises LeaseLostError; B's commit lands."""
    definition = {"name": "w", "tasks": [{"id": "a", "depends_on": []}]}
    clock_a, clock_b = Clock(), Clock(T0 + 100)
    async with (
        SQLiteRunStore(tmp_path / "runs.db", clock=clock_a) as store_a,
        SQLiteRunStore(tmp_path / "runs.db", clock=clock_b) as store_b,
    ):
        await store_a.create_run(RunRecord.start("r1", definition, started_at=T0))
        await store_a.acquire_lease("r1", "A:1:a", 30)
        started = [AuditEvent(EventType.TASK_STARTED, "r1", 0.0, T0, "a", None, 1)]
        await store_a.commit("r1", started, {}, owner="A:1:a")
        await store_b.acquire_lease("r1", TAKER, 30)
        with pytest.raises(LeaseLostError) as lost:
            await store_a.commit("r1", started, {}, owner="A:1:a")
        assert isinstance(lost.value, RunLockedError)
        assert (lost.value.holder, lost.value.lost_by) == (TAKER, "A:1:a")
        await store_b.commit("r1", started, {}, owner=TAKER)
        run = await store_b.load("r1")
    assert run.tasks["a"].attempts == 2
    assert len(raw_run(tmp_path / "runs.db", "r1")[2]) == 2


async def test_a_driver_whose_commit_is_refused_stops_without_rollback(tmp_path: Path) -> None:
    """A's run, taken over while b ran, stops at b's completion: no undo, status not cancelled."""
    log: list[str] = []
    gate, b_started = trio.Event(), trio.Event()
    wf = chain(log, gate, b_started)
    clock_a, clock_b = Clock(), Clock(T0 + 100)
    path = tmp_path / "runs.db"
    outcome: list[BaseException] = []
    async with (
        SQLiteRunStore(path, clock=clock_a) as store_a,
        SQLiteRunStore(path, clock=clock_b) as store_b,
    ):
        executor = tf.WorkflowExecutor(wf, store=store_a)

        async def drive_a() -> None:
            try:
                await executor.execute_dataflow()
            except Exception as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drive_a)
            await b_started.wait()
            run_id = (await store_b.list_runs())[0].id
            lease = await store_b.acquire_lease(run_id, TAKER, 30)
            gate.set()
        status, states, kinds = raw_run(path, run_id)
        (error,) = outcome
        assert isinstance(error, LeaseLostError)
        assert lease.taken_over_from is not None
        assert lease.taken_over_from == error.lost_by
        assert "did not roll back" in str(error)
        assert log == ["a", "b"]  # a's compensation never ran
        assert status == "running"  # not overwritten as cancelled
        assert states == {"a": "completed", "b": "running"}
        assert "WorkflowCancelled" not in kinds
        assert kinds[-1] == "WorkflowTaskStarted"  # b's; its completion was refused
        assert (await store_b.load(run_id)).record.status == "running"


async def test_a_driver_whose_heartbeat_finds_the_lease_gone_stops_without_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's heartbeat renewal is refused after B took over: A stops at once, nothing undone."""
    monkeypatch.setattr("trioforge._store._driving.LEASE_TTL", 0.6)  # a beat every 0.2 s
    log: list[str] = []
    never, b_started = trio.Event(), trio.Event()
    wf = chain(log, never, b_started)
    clock_a, clock_b = Clock(), Clock(T0 + 100)
    path = tmp_path / "runs.db"
    async with (
        SQLiteRunStore(path, clock=clock_a) as store_a,
        SQLiteRunStore(path, clock=clock_b) as store_b,
    ):
        executor = tf.WorkflowExecutor(wf, store=store_a)
        outcome: list[BaseException] = []

        async def drive_a() -> None:
            try:
                await executor.execute_dataflow()
            except BaseException as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drive_a)
            await b_started.wait()
            await store_b.acquire_lease((await store_b.list_runs())[0].id, TAKER, 30)
        (error,) = outcome
        assert isinstance(error, LeaseLostError), repr(error)
        run_id = (await store_b.list_runs())[0].id
        status, states, kinds = raw_run(path, run_id)
        assert log == ["a", "b"]
        assert status == "running"
        assert states["a"] == "completed"
        assert "WorkflowCancelled" not in kinds
        # B drives the run on: a is restored, b runs to completion.
        await store_b.release_lease(run_id, TAKER)
        log.clear()
        done = trio.Event()
        done.set()
        resumed = await tf.WorkflowExecutor(chain(log, done, trio.Event()), store=store_b).resume(
            run_id
        )
    assert log == ["b"]
    assert resumed.results == {"a": "a", "b": "b"}
