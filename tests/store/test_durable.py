"""Durable runs in the library: recording to a store, resume, refusals, priorities."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

import trioforge as tf
import trioforge.store
from trioforge import Schedule
from trioforge._core._events import AuditEvent
from trioforge._store._durable import DefinitionChangedError, definition_of
from trioforge._store._records import RunLockedError, RunNotFoundError
from trioforge._store._sqlite import SQLiteRunStore
from trioforge.combinators import FallbackTask


def build(
    calls: list[str], *, broken: set[str], store_for_check: list[SQLiteRunStore]
) -> tf.Workflow:
    """The diamond a -> (b, c) -> d; tasks in ``broken`` fail; b checks that a is durable."""
    wf = tf.Workflow("durable")

    def make(task_id: str, deps: tuple[str, ...]) -> tf.Task:
        async def body(ctx: tf.TaskContext) -> dict[str, object]:
            calls.append(f"{task_id}#{ctx.attempt}")
            # A broken task fails well after its healthy siblings have finished.
            await trio.sleep(0.2 if task_id in broken else 0.01)
            if task_id in broken:
                raise RuntimeError(f"{task_id} is broken")
            if task_id == "b" and store_for_check:
                # Another connection sees a's completion before b, its dependent, starts.
                other = SQLiteRunStore(store_for_check[0].path)
                try:
                    stored = await other.load(ctx.workflow_id)
                finally:
                    await other.aclose()
                assert stored.tasks["a"].state == "completed"
            return {"id": task_id, "inputs": [ctx.result_of(d)["id"] for d in deps]}

        return tf.Task(task_id, body, depends_on=deps)

    for task_id, deps in [("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c"))]:
        wf.add_task(make(task_id, deps))
    return wf


async def test_a_run_is_recorded_with_results(tmp_path: Path) -> None:
    """Every task's state and result and the run's status land in the store."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        calls: list[str] = []
        wf = build(calls, broken=set(), store_for_check=[store])
        executor = tf.WorkflowExecutor(wf, store=store)
        result = await executor.execute_dataflow()
        stored = await store.load(result.workflow_id)
        assert stored.record.status == "completed"
        assert {t: r.state for t, r in stored.tasks.items()} == dict.fromkeys("abcd", "completed")
        assert stored.completed_results() == result.results
        events = await store.load_events(result.workflow_id)
        assert events == executor.audit_log.events
        assert events[-1].type == "WorkflowCompleted"


@pytest.mark.parametrize("schedule", ["dataflow", "layers", "sequential"])
async def test_resume_runs_only_what_did_not_complete(tmp_path: Path, schedule: Schedule) -> None:
    """After a failure is fixed, resume runs the failed task and its dependents only."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        calls: list[str] = []
        broken = {"c"}
        wf = build(calls, broken=broken, store_for_check=[])
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id
        assert (await store.load(run_id)).record.status == "failed"
        # The rollback had nothing to undo (no compensations), so a and b stay done.
        broken.clear()
        calls.clear()
        result = await tf.WorkflowExecutor(wf, store=store).resume(run_id, schedule=schedule)
        assert result.workflow_id == run_id
        assert sorted(calls) == ["c#2", "d#1"]
        assert result.results["d"] == {"id": "d", "inputs": ["b", "c"]}
        assert result.results["b"] == {"id": "b", "inputs": ["a"]}
        stored = await store.load(run_id)
        assert stored.record.status == "completed"
        assert stored.tasks["c"].attempts == 2


async def test_resume_refuses_a_changed_definition(tmp_path: Path) -> None:
    """A changed workflow is refused with the changed tasks named, unless forced."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        calls: list[str] = []
        wf = build(calls, broken={"d"}, store_for_check=[])
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id

        async def new_step(ctx: tf.TaskContext) -> dict[str, object]:
            return {"id": "e", "inputs": []}

        changed = build(calls, broken=set(), store_for_check=[])
        changed.add_task(tf.Task("e", new_step))
        with pytest.raises(DefinitionChangedError) as info:
            await tf.WorkflowExecutor(changed, store=store).resume(run_id)
        assert info.value.changed == ["e"]
        assert "added: e" in str(info.value)
        result = await tf.WorkflowExecutor(changed, store=store).resume(run_id, force=True)
        assert set(result.results) == {"a", "b", "c", "d", "e"}


async def test_after_a_forced_resume_a_plain_resume_of_the_same_workflow_works(
    tmp_path: Path,
) -> None:
    """A forced resume stores the new definition and says so: the next resume needs no force."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        calls: list[str] = []
        broken = {"d"}
        wf = build(calls, broken=broken, store_for_check=[])
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id

        async def new_step(ctx: tf.TaskContext) -> dict[str, object]:
            return {"id": "e", "inputs": []}

        changed = build(calls, broken=broken, store_for_check=[])
        changed.add_task(tf.Task("e", new_step))
        forced = tf.WorkflowExecutor(changed, store=store)
        with pytest.raises(tf.TaskFailedError):  # d is still broken
            await forced.resume(run_id, force=True)
        stored = await store.load(run_id)
        assert stored.record.definition == definition_of(changed, {})
        assert list(stored.tasks) == ["a", "b", "c", "d", "e"]
        (started,) = [e for e in forced.audit_log.events if e.type == "WorkflowStarted"]
        assert started.detail == (
            "durable (resumed; 3 tasks restored; definition changed, resumed with force "
            "(added: e))"
        )
        assert started in await store.load_events(run_id)
        broken.clear()
        calls.clear()
        again = tf.WorkflowExecutor(changed, store=store)
        result = await again.resume(run_id)
        assert sorted(calls) == ["d#3"]
        assert set(result.results) == {"a", "b", "c", "d", "e"}
        (started,) = [e for e in again.audit_log.events if e.type == "WorkflowStarted"]
        assert started.detail == "durable (resumed; 4 tasks restored)"
        # The workflow the run started from is now the changed one.
        with pytest.raises(DefinitionChangedError, match="removed: e"):
            await tf.WorkflowExecutor(wf, store=store).resume(run_id)


async def test_a_task_run_again_by_resume_keeps_its_ctx_state(tmp_path: Path) -> None:
    """A task's attempts share ctx.state across a resume: attempt 2 sees what attempt 1 noted."""
    seen: list[dict[str, object]] = []
    broken = {"provision"}

    async def provision(ctx: tf.TaskContext) -> list[str]:
        seen.append(json.loads(json.dumps(ctx.state)))
        created: list[str] = ctx.state.setdefault("created", [])
        created.append(f"vm-{ctx.attempt}")
        if "provision" in broken:
            raise RuntimeError("quota exceeded")
        return list(created)

    wf = tf.Workflow("provisioning")
    wf.add_task(tf.Task("provision", provision))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute()
        run_id = (await store.list_runs())[0].id
        assert (await store.load(run_id)).tasks["provision"].ctx_state() == {"created": ["vm-1"]}
        broken.clear()
        result = await tf.WorkflowExecutor(wf, store=store).resume(run_id)
        stored = await store.load(run_id)
    assert seen == [{}, {"created": ["vm-1"]}]
    assert result.results["provision"] == ["vm-1", "vm-2"]
    assert stored.tasks["provision"].ctx_state() == {"created": ["vm-1", "vm-2"]}


async def test_a_second_driver_is_refused(tmp_path: Path) -> None:
    """While a live process holds a run's lease, resume is refused and names the holder."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        calls: list[str] = []
        wf = build(calls, broken={"d"}, store_for_check=[])
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id
        import os
        import socket

        holder = f"{socket.gethostname()}:{os.getpid()}:other-driver"
        await store.acquire_lease(run_id, holder, 60)
        with pytest.raises(RunLockedError, match="other-driver"):
            await tf.WorkflowExecutor(wf, store=store).resume(run_id)
        assert calls.count("d#1") == 1


async def test_resume_of_an_unknown_run(tmp_path: Path) -> None:
    """Resuming a run the store does not have names the run and the store."""
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        wf = build([], broken=set(), store_for_check=[])
        with pytest.raises(RunNotFoundError, match="nope"):
            await tf.WorkflowExecutor(wf, store=store).resume("nope")


async def test_resume_without_a_store_is_a_usage_error() -> None:
    """resume() on an executor without a store says what is missing."""
    with pytest.raises(TypeError, match="store="):
        await tf.WorkflowExecutor(build([], broken=set(), store_for_check=[])).resume("x")


async def test_compensated_tasks_run_again_on_resume(tmp_path: Path) -> None:
    """A task whose effects were rolled back is not restored: resume runs it again."""
    undone: list[str] = []
    calls: list[str] = []
    broken = {"second"}

    async def first(ctx: tf.TaskContext) -> str:
        calls.append("first")
        return "made"

    async def undo_first(ctx: tf.TaskContext) -> None:
        undone.append(ctx.result_of("first"))

    async def second(ctx: tf.TaskContext) -> str:
        calls.append("second")
        if "second" in broken:
            raise ValueError("broken")
        return "ok"

    wf = tf.Workflow("saga")
    wf.add_task(tf.Task("first", first, compensate=undo_first))
    wf.add_task(tf.Task("second", second, depends_on=["first"]))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute()
        assert undone == ["made"]
        run_id = (await store.list_runs())[0].id
        broken.clear()
        calls.clear()
        await tf.WorkflowExecutor(wf, store=store).resume(run_id)
        assert calls == ["first", "second"]


@pytest.mark.parametrize("schedule", ["dataflow", "layers", "sequential"])
async def test_a_task_whose_dependency_runs_again_runs_again_too(
    tmp_path: Path, schedule: Schedule
) -> None:
    """A completed task is not restored when something it depends on runs again.

    ``a`` is rolled back (it has a compensation), ``b`` had nothing to undo and
    stays completed in the store; on resume ``a`` runs again, so ``b`` runs
    after it (it must see this run's ``a``) and the rollback order stays valid.
    """
    calls: list[str] = []
    undone: list[str] = []
    broken = {"c"}

    def make(task_id: str, deps: tuple[str, ...], undo: bool = False) -> tf.Task:
        async def body(ctx: tf.TaskContext) -> str:
            calls.append(f"{task_id}#{ctx.attempt}")
            if task_id in broken:
                raise ValueError(f"{task_id} is broken")
            return "+".join([task_id, *(str(ctx.result_of(d)) for d in deps)])

        async def compensate(ctx: tf.TaskContext) -> None:
            undone.append(task_id)

        return tf.Task(task_id, body, depends_on=deps, compensate=compensate if undo else None)

    wf = tf.Workflow("rerun")
    wf.add_task(make("a", (), undo=True))
    wf.add_task(make("b", ("a",)))
    wf.add_task(make("c", ("b",)))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute()
        run_id = (await store.list_runs())[0].id
        stored = await store.load(run_id)
        assert stored.tasks["a"].compensated
        assert stored.tasks["b"].state == "completed"
        assert not stored.tasks["b"].compensated
        broken.clear()
        calls.clear()
        result = await tf.WorkflowExecutor(wf, store=store).resume(run_id, schedule=schedule)
        assert calls == ["a#2", "b#2", "c#2"]
        assert result.completed == ["a", "b", "c"]
        assert result.results["c"] == "c+b+a"
        assert (await store.load(run_id)).record.status == "completed"


async def test_resume_reads_the_run_once_under_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume loads the stored run exactly once, while it holds the run's lease.

    So what another driver finished before the lease was taken counts, and
    nothing runs twice.
    """
    path = tmp_path / "runs.db"
    async with SQLiteRunStore(path) as store:
        calls: list[str] = []
        broken = {"c"}
        wf = build(calls, broken=broken, store_for_check=[])
        with pytest.raises(tf.TaskFailedError):
            await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
        run_id = (await store.list_runs())[0].id
        broken.clear()
        await tf.WorkflowExecutor(wf, store=store).resume(run_id)
        calls.clear()
        real_load = store.load
        leased_at_load: list[bool] = []

        async def load(wanted: str) -> tf.store.StoredRun:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT owner FROM leases WHERE run_id = ?", (wanted,))
                leased_at_load.append(rows.fetchone() is not None)
            return await real_load(wanted)

        monkeypatch.setattr(store, "load", load)
        result = await tf.WorkflowExecutor(wf, store=store).resume(run_id)
        assert leased_at_load == [True]
        assert calls == []
        assert sorted(result.completed) == ["a", "b", "c", "d"]


async def test_ctx_last_attempt_counts_retries_across_a_resume(tmp_path: Path) -> None:
    """ctx.last_attempt is true only when no retry follows, also after a resume."""
    seen: list[tuple[int, bool]] = []
    fixed: list[bool] = []

    async def flaky(ctx: tf.TaskContext) -> str:
        seen.append((ctx.attempt, ctx.last_attempt))
        if not (fixed and ctx.last_attempt):
            raise ValueError("not yet")
        return "done"

    wf = tf.Workflow("flaky")
    wf.add_task(tf.Task("t", flaky, retries=1))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(
            wf, store=store, backoff=tf.Backoff(initial=0.001, jitter=0)
        )
        with pytest.raises(tf.TaskFailedError):
            await executor.execute_dataflow()
        assert seen == [(1, False), (2, True)]
        fixed.append(True)
        run_id = (await store.list_runs())[0].id
        await executor.resume(run_id)
        # The resumed run gets its retry again; attempts keep counting.
        assert seen[2:] == [(3, False), (4, True)]


async def test_a_fallback_runs_only_at_the_very_end_after_a_resume(tmp_path: Path) -> None:
    """A FallbackTask's fallback runs on the last attempt of the resumed run, not the first."""
    fallback_attempts: list[int] = []
    fallback_fixed: list[bool] = []

    async def main(ctx: tf.TaskContext) -> str:
        raise ValueError("the command is broken")

    async def fallback(ctx: tf.TaskContext) -> str:
        fallback_attempts.append(ctx.attempt)
        if not fallback_fixed:
            raise ValueError("the fallback is broken too")
        return "fallback result"

    wf = tf.Workflow("fallback")
    wf.add_task(
        FallbackTask("p", tf.Task("p.main", main), tf.Task("p.fallback", fallback), retries=1)
    )
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(
            wf, store=store, backoff=tf.Backoff(initial=0.001, jitter=0)
        )
        with pytest.raises(tf.TaskFailedError):
            await executor.execute_dataflow()
        assert fallback_attempts == [2]
        fallback_fixed.append(True)
        run_id = (await store.list_runs())[0].id
        result = await executor.resume(run_id)
        assert fallback_attempts == [2, 4]
        assert result.results["p"] == "fallback result"


async def test_priorities_use_median_durations_of_earlier_runs(tmp_path: Path) -> None:
    """With one slot, the task that took longest in earlier runs starts first."""
    order: list[str] = []

    def make(task_id: str, seconds: float) -> tf.Task:
        async def body(ctx: tf.TaskContext) -> None:
            order.append(task_id)
            await trio.sleep(seconds)

        return tf.Task(task_id, body)

    wf = tf.Workflow("medians")
    wf.add_task(make("quick", 0.01))
    wf.add_task(make("slow", 0.2))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        await tf.WorkflowExecutor(wf, store=store, max_concurrency=1).execute_dataflow()
        assert order == ["quick", "slow"]  # no history: ties go to the first added
        order.clear()
        await tf.WorkflowExecutor(wf, store=store, max_concurrency=1).execute_dataflow()
        assert order == ["slow", "quick"]


class _CountingStore(SQLiteRunStore):
    """A store that counts its commits and keeps each one's event types."""

    batches: list[list[str]]

    async def commit(self, run_id: str, events: Any, *args: Any, **kwargs: Any) -> None:
        self.batches.append([f"{e.type.value}:{e.task_id}" for e in events])
        await super().commit(run_id, events, *args, **kwargs)


@pytest.mark.parametrize("limit", [None, 1])
async def test_a_dependent_start_rides_in_its_dependency_completion_commit(
    tmp_path: Path, limit: int | None
) -> None:
    """On a chain, each completion shares its commit with the next start: one commit a task."""
    n = 12
    wf = tf.Workflow("chain")
    ran: list[str] = []
    for i in range(n):

        async def body(ctx: tf.TaskContext) -> str:
            ran.append(ctx.task_id)
            await trio.lowlevel.checkpoint()
            return ctx.task_id

        wf.add_task(tf.Task(f"t{i}", body, depends_on=[f"t{i - 1}"] if i else []))
    counting = _CountingStore(tmp_path / "runs.db")
    counting.batches = []
    async with counting as store:
        result = await tf.WorkflowExecutor(
            wf, store=store, max_concurrency=limit
        ).execute_dataflow()
        stored = await store.load(result.workflow_id)
    assert [f"t{i}" for i in range(n)] == ran
    assert dict.fromkeys(ran, "completed") == {t: r.state for t, r in stored.tasks.items()}
    riding = [
        b
        for b in counting.batches
        for i in range(1, n)
        if f"WorkflowTaskCompleted:t{i - 1}" in b and f"WorkflowTaskStarted:t{i}" in b
    ]
    # WorkflowStarted + t0's start, then one commit per completion, then the end.
    assert n - 1 == len(riding)
    assert len(counting.batches) <= n + 2


class _HeldStore(SQLiteRunStore):
    """A store whose ``hold_at``-th commit waits for ``release`` (``held`` is set then)."""

    hold_at: int
    calls: int
    held: trio.Event
    release: trio.Event

    async def commit(self, run_id: str, events: Any, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls == self.hold_at:
            self.held.set()
            await self.release.wait()
        await super().commit(run_id, events, *args, **kwargs)


def _held(path: Path, hold_at: int) -> _HeldStore:
    store = _HeldStore(path)
    store.hold_at, store.calls = hold_at, 0
    store.held, store.release = trio.Event(), trio.Event()
    return store


def _wide(n: int, ran: list[str]) -> tf.Workflow:
    wf = tf.Workflow("wide")
    for i in range(n):

        async def body(ctx: tf.TaskContext) -> str:
            ran.append(ctx.task_id)
            return ctx.task_id

        wf.add_task(tf.Task(f"t{i}", body))
    return wf


@pytest.mark.parametrize("schedule", ["dataflow", "layers"])
@pytest.mark.parametrize("hold_at", [1, 2], ids=["starts", "completions"])
async def test_no_task_waits_alive_for_a_commit_in_a_wide_durable_run(
    tmp_path: Path, schedule: str, hold_at: int
) -> None:
    """While the starts (then the completions) of 200 tasks commit, no trio task per task lives.

    The starts are recorded before the tasks are spawned, and spawned together
    once durable; a completed task ends without waiting for its commit.
    """
    n = 200
    ran: list[str] = []
    before = trio.lowlevel.current_statistics().tasks_living
    held = _held(tmp_path / "runs.db", hold_at)
    async with held as store:
        executor = tf.WorkflowExecutor(_wide(n, ran), store=store)
        run = executor.execute_dataflow if schedule == "dataflow" else executor.execute_parallel
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await held.held.wait()
            living = trio.lowlevel.current_statistics().tasks_living - before
            ran_while_held = len(ran)
            held.release.set()
        stored = await store.load(executor.audit_log.events[0].workflow_id)
    assert living < 10
    assert ran_while_held == (0 if hold_at == 1 else n)
    assert sorted(ran) == sorted(f"t{i}" for i in range(n))
    assert {r.state for r in stored.tasks.values()} == {"completed"}


async def test_tasks_cancelled_while_their_starts_commit_end_cancelled_without_running(
    tmp_path: Path,
) -> None:
    """A cancel during the commit of their starts: no body runs, each ends recorded cancelled."""
    ran: list[str] = []
    held = _held(tmp_path / "runs.db", 1)
    async with held as store:
        executor = tf.WorkflowExecutor(_wide(20, ran), store=store)
        caught: list[BaseException] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(executor.execute_dataflow)
                await held.held.wait()
                executor.cancel("stop while the starts commit")
                held.release.set()
        except* tf.WorkflowCancelledError as group:
            caught.extend(group.exceptions)
        run_id = executor.audit_log.events[0].workflow_id
        stored = await store.load(run_id)
    assert (len(caught), ran) == (1, [])
    events = [(e.type, e.task_id) for e in executor.audit_log.events if e.task_id is not None]
    for i in range(20):
        assert events.index((tf.EventType.TASK_STARTED, f"t{i}")) < events.index(
            (tf.EventType.TASK_CANCELLED, f"t{i}")
        )
    assert {r.state for r in stored.tasks.values()} == {"cancelled"}


async def test_a_durable_run_makes_no_audit_event_object_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder reads the audit log's compact records: no AuditEvent is made per event.

    Each one would live until the run's log is dropped, and 20,000 of them made
    the garbage collector's full collections the largest cost of a durable run.
    """
    made: list[object] = []
    original = AuditEvent.__init__

    def counting(self: AuditEvent, *args: Any, **kwargs: Any) -> None:
        made.append(args[0] if args else kwargs.get("type"))
        original(self, *args, **kwargs)

    ran: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(_wide(100, ran), store=store)
        monkeypatch.setattr(AuditEvent, "__init__", counting)
        result = await executor.execute_dataflow()
        monkeypatch.undo()
        stored = await store.load(result.workflow_id)
        stored_events = await store.load_events(result.workflow_id)
    assert made == []
    assert len(ran) == 100
    assert {r.state for r in stored.tasks.values()} == {"completed"}
    assert [(str(e.type), e.task_id) for e in stored_events] == [
        (str(e.type), e.task_id) for e in executor.audit_log.events
    ]


async def test_a_durable_run_keeps_going_while_another_task_keeps_the_loop_busy(
    tmp_path: Path,
) -> None:
    """The store does not starve behind a busy event loop.

    A task that computes between checkpoints keeps trio's thread busy, and a
    worker thread then gets the GIL back only now and then: when every commit
    ran in a worker thread, each one of this 30-task chain took about a second
    next to one such task (and a run past the 30 s commit bound failed). The
    store now runs its calls on the trio thread: the chain takes milliseconds.
    """
    stop = trio.Event()

    async def spin() -> None:
        while not stop.is_set():
            total = 0
            for k in range(2000):
                total += k
            await trio.lowlevel.checkpoint()

    wf = tf.Workflow("chain")
    for i in range(30):

        async def link(ctx: tf.TaskContext) -> None:
            return None

        wf.add_task(tf.Task(f"c{i}", link, depends_on=[f"c{i - 1}"] if i else ()))
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(spin)
        with trio.fail_after(10):  # about 0.1 s; over 30 s before
            async with SQLiteRunStore(tmp_path / "runs.db") as store:
                result = await tf.WorkflowExecutor(wf, store=store).execute_dataflow()
                stored = await store.load(result.workflow_id)
        stop.set()
    assert {r.state for r in stored.tasks.values()} == {"completed"}
