"""``executor.resume(run_id, rerun=[...])`` and forced resumes: what runs again, what is undone."""

from __future__ import annotations

from pathlib import Path

import pytest

import trioforge as tf
from trioforge._store._sqlite import SQLiteRunStore
from trioforge.store import RewindError


def chain(log: list[str], *, failing_undo: str | None = None, b_fn: str = "b") -> tf.Workflow:
    """The chain a -> b -> c, and d alone; each compensation logs what it sees."""
    wf = tf.Workflow("rerun")

    def make(task_id: str, deps: list[str]) -> tf.Task:
        async def body(ctx: tf.TaskContext) -> str:
            ctx.state["made"] = f"{task_id}@{ctx.attempt}"
            log.append(f"run {task_id}#{ctx.attempt}")
            return f"{task_id}-result"

        async def undo(ctx: tf.TaskContext) -> None:
            if task_id == failing_undo:
                raise RuntimeError(f"cannot undo {task_id}")
            log.append(f"undo {task_id} {ctx.state.get('made')} {ctx.result_of(task_id)}")

        body.__qualname__ = f"body_{b_fn if task_id == 'b' else task_id}"
        return tf.Task(task_id, body, depends_on=deps, compensate=undo)

    for task_id, deps in [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", [])]:
        wf.add_task(make(task_id, deps))
    return wf


async def _completed_run(store: SQLiteRunStore, log: list[str]) -> str:
    result = await tf.WorkflowExecutor(chain(log), store=store).execute_dataflow()
    log.clear()
    return result.workflow_id


async def test_rerun_undoes_dependents_first_then_runs_the_task_and_downstream(
    tmp_path: Path,
) -> None:
    """rerun=["b"] compensates c then b, with their restored state and result, then reruns both."""
    log: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await _completed_run(store, log)
        result = await tf.WorkflowExecutor(chain(log), store=store).resume(run_id, rerun=["b"])
        stored = await store.load(run_id)
    assert log[:2] == ["undo c c@1 c-result", "undo b b@1 b-result"]
    assert sorted(log[2:]) == ["run b#2", "run c#2"]
    assert result.results == {t: f"{t}-result" for t in "abcd"}
    assert {t.state for t in stored.tasks.values()} == {"completed"}
    assert not any(t.compensated for t in stored.tasks.values())
    assert stored.record.status == "completed"


async def test_rerun_without_compensation_only_runs_again(tmp_path: Path) -> None:
    """compensate=False re-runs b and c and undoes nothing."""
    log: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await _completed_run(store, log)
        await tf.WorkflowExecutor(chain(log), store=store).resume(
            run_id, rerun=["b"], compensate=False
        )
    assert sorted(log) == ["run b#2", "run c#2"]


async def test_a_failed_undo_before_a_rerun_runs_nothing(tmp_path: Path) -> None:
    """When compensating b's earlier completion fails, RewindError names it and nothing re-runs."""
    log: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await _completed_run(store, log)
        executor = tf.WorkflowExecutor(chain(log, failing_undo="b"), store=store)
        with pytest.raises(RewindError, match="'b'") as info:
            await executor.resume(run_id, rerun=["b"])
    assert list(info.value.failures) == ["b"]
    assert not any(line.startswith("run ") for line in log)


async def test_rerun_of_an_unknown_task_is_refused_before_anything(tmp_path: Path) -> None:
    """rerun=["nope"] raises ValueError naming it, and touches nothing."""
    log: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await _completed_run(store, log)
        with pytest.raises(ValueError, match="'nope'"):
            await tf.WorkflowExecutor(chain(log), store=store).resume(run_id, rerun=["nope"])
        events = await store.load_events(run_id)
    assert log == []
    assert events[-1].type == "WorkflowCompleted"


async def test_a_forced_resume_reruns_the_changed_task_and_its_dependents(
    tmp_path: Path,
) -> None:
    """With b's function changed, resume(force=True) runs b and c again, not a or d."""
    log: list[str] = []
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await _completed_run(store, log)
        changed = chain(log, b_fn="b_fixed")
        with pytest.raises(tf.DefinitionChangedError, match="changed: b"):
            await tf.WorkflowExecutor(changed, store=store).resume(run_id)
        resumed = tf.WorkflowExecutor(changed, store=store)
        await resumed.resume(run_id, force=True)
    assert sorted(log) == ["run b#2", "run c#2"]
