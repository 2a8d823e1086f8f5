"""Execution invariants over random DAGs, random durations and random failures, in virtual time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trioforge as tf
from trioforge.testing import SimulatedWorkflow, run_virtual, workflows

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
