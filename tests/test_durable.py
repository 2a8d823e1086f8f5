"""Durable runs in the library: recording to a store, resume, refusals, priorities."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import trioforge as tf
from trioforge._durable import DefinitionChangedError
from trioforge._store import SQLiteRunStore
from trioforge._store_records import RunLockedError, RunNotFoundError


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
async def test_resume_runs_only_what_did_not_complete(tmp_path: Path, schedule: str) -> None:
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
