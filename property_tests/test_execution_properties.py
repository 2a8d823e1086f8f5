"""Execution invariants over random DAGs, random durations and random failures, in virtual time."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trioforge as tf
from trioforge.testing import (
    DagSpec,
    SimulatedWorkflow,
    TaskSpec,
    dag_specs,
    run_virtual,
    workflows,
)

Mode = tf.Schedule
MODES: list[Mode] = ["sequential", "layers", "dataflow"]


def check_dependency_order(wf: SimulatedWorkflow) -> None:
    """Every task that started did so after all its dependencies succeeded, and at most once."""
    trace = wf.trace
    for task_id, starts in trace.starts.items():
        assert len(starts) == 1, f"{task_id} started {len(starts)} times"
        for dep in wf.spec.dependencies[task_id]:
            assert dep in trace.ends, f"{task_id} started before {dep} succeeded"
            assert trace.ends[dep] <= starts[0]


def check_rollback(wf: SimulatedWorkflow, error: tf.WorkflowError | None) -> None:
    """Compensations ran for exactly the completed tasks, dependents before dependencies."""
    trace = wf.trace
    if error is None:
        assert trace.compensated == []
        return
    assert sorted(trace.compensated) == sorted(trace.ends)
    position = {task_id: i for i, task_id in enumerate(trace.compensated)}
    for task_id in trace.compensated:
        for dep in wf.spec.dependencies[task_id]:
            assert position[task_id] < position[dep]


@pytest.mark.parametrize("mode", MODES)
@given(wf=workflows(max_tasks=60, max_deps=3, failures=True))
def test_dependencies_finish_first_and_rollback_is_exact(
    mode: Mode, wf: SimulatedWorkflow
) -> None:
    """Any mode: dependency order, at most once, nothing left running, exact rollback."""
    run = run_virtual(wf, mode=mode)
    check_dependency_order(wf)
    check_rollback(wf, run.error)
    assert wf.trace.running == 0
    if wf.spec.failing & set(wf.trace.starts):
        assert isinstance(run.error, tf.TaskFailedError)
        assert run.error.task_id in wf.spec.failing
        assert set(run.error.failures) <= wf.spec.failing
    else:
        assert run.error is None
        assert run.result is not None
        assert sorted(run.result.completed) == sorted(wf.spec.ids)


@given(wf=workflows(max_tasks=60, max_deps=3, failures=True))
def test_nothing_after_a_failed_layer_starts(wf: SimulatedWorkflow) -> None:
    """execute_parallel: once a layer has a failure, no later layer starts."""
    run_virtual(wf, mode="layers")
    layers = wf.execution_layers()
    layer_of = {task_id: i for i, layer in enumerate(layers) for task_id in layer}
    failed_layers = [layer_of[t] for t in wf.trace.failures]
    if failed_layers:
        first = min(failed_layers)
        assert all(layer_of[t] <= first for t in wf.trace.starts)


@given(wf=workflows(max_tasks=60, max_deps=3, failures=True))
def test_dataflow_starts_nothing_after_the_first_failure(wf: SimulatedWorkflow) -> None:
    """execute_dataflow (fail fast): no task starts after the first failure."""
    run_virtual(wf, mode="dataflow")
    if wf.trace.failures:
        first = min(wf.trace.failures.values())
        assert all(starts[0] <= first for starts in wf.trace.starts.values())


@given(wf=workflows(max_tasks=80, max_deps=4))
def test_parallel_makespan_is_sum_of_slowest_per_layer(wf: SimulatedWorkflow) -> None:
    """execute_parallel's virtual makespan is the sum over layers of the longest task."""
    run = run_virtual(wf, mode="layers")
    assert run.result is not None
    durations = wf.spec.durations
    expected = 0.0
    for layer in wf.execution_layers():
        expected += max(durations[t] for t in layer)
    assert run.result.duration == expected


@given(wf=workflows(max_tasks=80, max_deps=4))
def test_dataflow_makespan_is_the_critical_path(wf: SimulatedWorkflow) -> None:
    """execute_dataflow with unbounded slots finishes in exactly the critical path."""
    run = run_virtual(wf, mode="dataflow")
    assert run.result is not None
    _path, length = wf.critical_path()
    assert run.result.duration == length


@given(wf=workflows(max_tasks=60, max_deps=3), slots=st.integers(1, 4))
def test_bounded_dataflow_respects_slots_and_list_scheduling_bounds(
    wf: SimulatedWorkflow, slots: int
) -> None:
    """max_concurrency is never exceeded, and the makespan obeys Graham's list-scheduling bound."""
    run = run_virtual(wf, mode="dataflow", max_concurrency=slots)
    assert run.result is not None
    assert wf.trace.max_running <= slots
    check_dependency_order(wf)
    _path, critical = wf.critical_path()
    work = sum(wf.spec.durations.values())
    assert run.result.duration >= max(critical, work / slots) - 1e-9
    # Any list schedule without idle slots while work is ready meets this bound.
    assert run.result.duration <= work / slots + critical * (1 - 1 / slots) + 1e-9


@given(wf=workflows(max_tasks=60, max_deps=3, failures=True))
def test_continue_independent_skips_exactly_the_dependents_of_failures(
    wf: SimulatedWorkflow,
) -> None:
    """CONTINUE_INDEPENDENT runs every task not downstream of a failure, and skips the rest."""
    run = run_virtual(wf, mode="dataflow", failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT)
    downstream: set[str] = set()
    for task in wf.spec.tasks:  # drawn order is topological
        if any(d in wf.spec.failing or d in downstream for d in task.deps):
            downstream.add(task.id)
    assert set(wf.trace.starts) == set(wf.spec.ids) - downstream
    check_dependency_order(wf)
    if wf.spec.failing:
        assert isinstance(run.error, tf.TaskFailedError)
        assert set(run.error.failures) == wf.spec.failing - downstream
        assert set(run.error.skipped) == downstream
        check_rollback(wf, run.error)
    else:
        assert run.error is None


@attrs.define
class StopRun:
    """What one run of :func:`_stop_run` did, in virtual time and in order."""

    log: list[tuple[str, str, float]] = attrs.Factory(list)
    undone: list[str] = attrs.Factory(list)
    completed: list[str] = attrs.Factory(list)
    error: BaseException | None = None
    start: float = 0.0
    end: float = 0.0

    def starts(self) -> list[tuple[str, float]]:
        """Each task start: its id and time, in order."""
        return [(task_id, at) for what, task_id, at in self.log if what == "start"]


def _stop_run(
    spec: DagSpec, mode: Mode, timeout: float, cpu: frozenset[str], cancel_by: str | None
) -> StopRun:
    """Run ``spec``: CPU-bound (``cpu``) or sleeping tasks, each registering an undo step."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    run = StopRun()

    async def release(task_id: str) -> None:
        await trio.lowlevel.checkpoint()
        run.undone.append(task_id)

    def make(task: TaskSpec) -> tf.Task:
        async def body(ctx: tf.TaskContext) -> None:
            run.log.append(("start", task.id, trio.current_time()))
            ctx.add_compensation(release, task.id)
            if task.id in cpu:
                clock.jump(task.duration)  # work without a checkpoint
            else:
                await trio.sleep(task.duration)
            if task.id == cancel_by:
                run.log.append(("cancel", task.id, trio.current_time()))
                executor.cancel("drawn")
            if task.fails:
                raise ValueError(task.id)

        return tf.Task(task.id, body, depends_on=task.deps)

    wf = tf.Workflow("stops")
    for task in spec.tasks:
        wf.add_task(make(task))
    executor = tf.WorkflowExecutor(wf, workflow_timeout=timeout)
    method = {"sequential": "execute", "layers": "execute_parallel"}.get(mode, "execute_dataflow")

    async def main() -> None:
        run.start = trio.current_time()
        try:
            result = await getattr(executor, method)()
        except (tf.TaskFailedError, tf.WorkflowCancelledError, tf.WorkflowTimeoutError) as exc:
            run.error = exc
            run.completed = exc.completed
        else:
            run.completed = result.completed
        run.end = trio.current_time()

    trio.run(main, clock=clock)
    return run


@pytest.mark.parametrize("mode", MODES)
@given(
    spec=dag_specs(max_tasks=12, max_deps=2, failures=True),
    timeout=st.sampled_from([0.25, 0.5, 1.0, 2.0, 100.0]),
    data=st.data(),
)
def test_no_task_starts_after_a_stop_and_every_step_is_undone_once(
    mode: Mode, spec: DagSpec, timeout: float, data: st.DataObject
) -> None:
    """With CPU-bound tasks too: nothing starts after a stop; each step is undone once."""
    ids = spec.ids
    cpu = frozenset(data.draw(st.sets(st.sampled_from(ids)), label="cpu"))
    cancel_by = data.draw(st.none() | st.sampled_from(ids), label="cancel_by")
    run = _stop_run(spec, mode, timeout, cpu, cancel_by)
    deadline = run.start + timeout
    assert all(at < deadline for _task_id, at in run.starts())
    kinds = [what for what, _task_id, _at in run.log]
    if "cancel" in kinds:
        assert "start" not in kinds[kinds.index("cancel") :]
        assert isinstance(run.error, tf.WorkflowCancelledError)
    elif run.end >= deadline:
        assert isinstance(run.error, tf.WorkflowTimeoutError)
    if run.error is None:
        assert run.undone == []
        assert sorted(ids) == sorted(run.completed)
    else:
        # Every started task registered one step: each is undone exactly once.
        assert sorted(task_id for task_id, _at in run.starts()) == sorted(run.undone)
