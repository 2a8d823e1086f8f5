"""Fault plans over random DAGs: what each fault does, exact rollback, deadlocks; virtual time."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import trioforge as tf
from trioforge.testing import (
    Deadlock,
    FaultPlan,
    InjectedFault,
    SimulatedFailure,
    SimulatedWorkflow,
    Trace,
    faults,
    run_virtual,
    workflows,
)

MODES = ["sequential", "layers", "dataflow"]

DRAWS = workflows(max_tasks=20, max_deps=3, failures=True).flatmap(
    lambda wf: st.tuples(st.just(wf), faults(wf, max_faults=4, max_cancel_at=5.0))
)


class Events:
    """An audit sink keeping every event, so a run that raised Deadlock can be checked too."""

    def __init__(self) -> None:
        self.events: list[tf.AuditEvent] = []

    def emit(self, event: tf.AuditEvent) -> None:
        self.events.append(event)

    def ids(self, kind: tf.EventType) -> list[str]:
        return [e.task_id for e in self.events if e.type == kind and e.task_id is not None]


def check_faults(plan: FaultPlan, trace: Trace, completed: list[str]) -> None:
    """Each fault did what it says: no body for fail_before, no completion for the others."""
    assert not plan.fail_before & set(trace.starts)
    assert not (plan.fail_after | plan.hang) & set(completed)
    for task_id in plan.fail_after | plan.hang:
        # A faulty task that ran its body to the end did so before the fault fired.
        if task_id in trace.ends:
            assert task_id not in completed


@pytest.mark.parametrize("mode", MODES)
@given(draw=DRAWS)
def test_faults_roll_back_exactly_or_deadlock(
    mode: str, draw: tuple[SimulatedWorkflow, FaultPlan]
) -> None:
    """Any DAG, mode and plan: exact rollback of completed tasks; a deadlock only from a hang."""
    wf, plan = draw
    sink = Events()
    deadlock: Deadlock | None = None
    error: tf.WorkflowError | None = None
    try:
        run = run_virtual(wf, mode=mode, faults=plan, audit_sinks=[sink])  # type: ignore[arg-type]
    except Deadlock as exc:
        deadlock = exc
    else:
        error = run.error
        assert run.completed == sink.ids(tf.EventType.TASK_COMPLETED)
        assert run.compensated == wf.trace.compensated
    if deadlock is not None:
        # Simulated tasks have no timeout: only a hang with no cancel pending gets stuck.
        assert plan.cancel_at is None
        assert deadlock.blocked
        assert set(deadlock.blocked) <= plan.hang
    event("deadlock" if deadlock is not None else type(error).__name__ if error else "success")
    completed = sink.ids(tf.EventType.TASK_COMPLETED)
    assert wf.trace.running == 0
    check_faults(plan, wf.trace, completed)
    if error is None and deadlock is None:
        assert sorted(wf.spec.ids) == sorted(completed)
        assert not plan.faulty & set(wf.trace.starts)
        assert wf.trace.compensated == []
        return
    # Rolled back: every completed task undone, last completed first.
    assert completed[::-1] == wf.trace.compensated
    if isinstance(error, tf.TaskFailedError):
        for task_id, failure in error.failures.items():
            if task_id in plan.fail_before:
                assert isinstance(failure, InjectedFault)
            elif task_id in wf.spec.failing:
                # The body's own failure comes first; a fault after it never fires.
                assert isinstance(failure, SimulatedFailure)
            else:
                assert task_id in plan.fail_after
                assert isinstance(failure, InjectedFault)
    if isinstance(error, tf.WorkflowCancelledError):
        assert plan.cancel_at is not None
        assert error.reason.startswith("FaultPlan.cancel_at")
