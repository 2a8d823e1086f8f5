"""run_virtual and run_in_trio: schedule names, faults, cancel_at, completed and compensated."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge.testing import FaultPlan, InjectedFault, run_in_trio, run_virtual


def make_task(
    task_id: str,
    seconds: float,
    undone: list[str],
    *,
    deps: tuple[str, ...] = (),
    undo_seconds: float = 0.0,
) -> tf.Task:
    """A task that sleeps ``seconds``; its compensation sleeps ``undo_seconds`` and records it."""

    async def body(ctx: tf.TaskContext) -> str:
        await trio.sleep(seconds)
        return task_id

    async def undo(ctx: tf.TaskContext) -> None:
        await trio.sleep(undo_seconds)
        undone.append(task_id)

    return tf.Task(task_id, body, depends_on=deps, compensate=undo)


def line(undone: list[str], *, undo_seconds: float = 0.0) -> tf.Workflow:
    """A (1 s) -> b (2 s) -> c (4 s)."""
    wf = tf.Workflow("line")
    wf.add_task(make_task("a", 1, undone, undo_seconds=undo_seconds))
    wf.add_task(make_task("b", 2, undone, deps=("a",), undo_seconds=undo_seconds))
    wf.add_task(make_task("c", 4, undone, deps=("b",), undo_seconds=undo_seconds))
    return wf


@pytest.mark.parametrize("mode", ["sequential", "layers", "dataflow"])
def test_every_schedule_name_runs(mode: str) -> None:
    """The three names of resume(schedule=...) all run the workflow, in exact virtual time."""
    run = run_virtual(line([]), mode=mode)  # type: ignore[arg-type]
    assert run.error is None
    assert run.completed == ["a", "b", "c"]
    assert run.duration == 7.0


def test_layers_runs_layer_by_layer() -> None:
    """mode='layers' is execute_parallel: its events carry layer numbers."""
    run = run_virtual(line([]), mode="layers")
    assert [e.layer for e in run.audit_log.of_type(tf.EventType.LAYER_STARTED)] == [0, 1, 2]


@pytest.mark.parametrize("mode", ["parallel", "layer", "Dataflow", ""])
def test_unknown_mode_lists_the_accepted_names(mode: str) -> None:
    """An unknown mode is a ValueError naming the three accepted names and the value."""
    with pytest.raises(
        ValueError, match=r"^mode must be one of 'sequential', 'layers', 'dataflow', got "
    ) as info:
        run_virtual(line([]), mode=mode)  # type: ignore[arg-type]
    assert repr(mode) in str(info.value)


def test_the_old_parallel_name_points_at_layers() -> None:
    """'parallel', the old name, gets a hint toward 'layers'."""
    with pytest.raises(ValueError, match="the layer-by-layer schedule is 'layers'"):
        run_virtual(line([]), mode="parallel")  # type: ignore[arg-type]


async def test_run_virtual_inside_trio_points_at_run_in_trio() -> None:
    """Inside a trio run, run_virtual raises a clear RuntimeError instead of trio's own."""
    with pytest.raises(
        RuntimeError, match=r"run_virtual\(\) starts its own trio run.*run_in_trio"
    ):
        run_virtual(line([]))


def test_faults_must_be_a_plan() -> None:
    """faults= takes a FaultPlan or None."""
    with pytest.raises(TypeError, match="faults must be a FaultPlan or None"):
        run_virtual(line([]), faults={"hang": {"a"}})  # type: ignore[arg-type]


def test_a_fault_fails_the_run_and_rolls_back() -> None:
    """fail_after on c: a and b completed and are undone in reverse order; c is not."""
    undone: list[str] = []
    run = run_virtual(line(undone), faults=FaultPlan(fail_after={"c"}))
    assert isinstance(run.error, tf.TaskFailedError)
    assert isinstance(run.error.__cause__, InjectedFault)
    assert run.completed == ["a", "b"]
    assert run.compensated == ["b", "a"]
    assert undone == ["b", "a"]
    assert run.duration == 7.0


@pytest.mark.parametrize("mode", ["sequential", "layers", "dataflow"])
def test_cancel_at_cancels_the_run_at_that_virtual_time(mode: str) -> None:
    """cancel_at=2.5 stops b mid-way: the run ends cancelled at 2.5 after undoing a."""
    undone: list[str] = []
    run = run_virtual(line(undone), mode=mode, faults=FaultPlan(cancel_at=2.5))  # type: ignore[arg-type]
    assert isinstance(run.error, tf.WorkflowCancelledError)
    assert run.error.reason == "FaultPlan.cancel_at: cancelled 2.5s after the run started"
    assert run.completed == ["a"]
    assert run.compensated == ["a"]
    assert run.duration == 2.5
    cancelled = run.audit_log.of_type(tf.EventType.TASK_CANCELLED)
    assert [(e.task_id, e.clock) for e in cancelled] == [("b", 2.5)]


def test_cancel_at_after_the_end_does_nothing() -> None:
    """A cancel planned after the run ended never fires."""
    run = run_virtual(line([]), faults=FaultPlan(cancel_at=60.0))
    assert run.error is None
    assert run.duration == 7.0


def test_cancel_at_zero_cancels_before_anything_completes() -> None:
    """cancel_at=0 cancels at the start: nothing completes, nothing to undo."""
    run = run_virtual(line([]), faults=FaultPlan(cancel_at=0.0))
    assert isinstance(run.error, tf.WorkflowCancelledError)
    assert run.completed == []
    assert run.duration == 0.0


def test_cancel_at_keeps_the_callers_audit_sinks() -> None:
    """The caller's audit_sinks still get every event when cancel_at adds its own sink."""
    seen: list[tf.AuditEvent] = []

    class Sink:
        def emit(self, event: tf.AuditEvent) -> None:
            seen.append(event)

    run = run_virtual(line([]), faults=FaultPlan(cancel_at=1.5), audit_sinks=[Sink()])
    assert run.audit_log.events == seen


def test_compensated_leaves_out_undos_the_timeout_never_started() -> None:
    """Undos of 10 s each under a 15 s limit: c done, b cut short, a never started."""
    undone: list[str] = []
    wf = line(undone, undo_seconds=10.0)
    wf.add_task(make_task("d", 1, undone, deps=("c",)))
    run = run_virtual(wf, faults=FaultPlan(fail_before={"d"}), compensation_timeout=15.0)
    assert isinstance(run.error, tf.TaskFailedError)
    assert run.completed == ["a", "b", "c"]
    assert run.compensated == ["c", "b"]
    assert undone == ["c"]
    assert {"a", "b"} == set(run.error.compensation_failures)
    assert run.duration == 7.0 + 15.0


def test_compensated_lists_failed_undos_too() -> None:
    """An undo that raises still began: it is listed, in order."""

    async def fine(ctx: tf.TaskContext) -> None:
        await trio.sleep(1)

    async def broken(ctx: tf.TaskContext) -> None:
        raise RuntimeError("cannot undo")

    wf = tf.Workflow("w")
    wf.add_task(tf.Task("a", fine, compensate=fine))
    wf.add_task(tf.Task("b", fine, depends_on=("a",), compensate=broken))
    wf.add_task(tf.Task("c", fine, depends_on=("b",)))
    run = run_virtual(wf, faults=FaultPlan(fail_before={"c"}))
    assert run.compensated == ["b", "a"]


async def test_run_in_trio_works_in_a_pytest_trio_test(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """run_in_trio: the same run inside trio, with the test's virtual clock."""
    undone: list[str] = []
    start = trio.current_time()
    run = await run_in_trio(line(undone), mode="layers", faults=FaultPlan(cancel_at=2.5))
    assert isinstance(run.error, tf.WorkflowCancelledError)
    assert run.compensated == ["a"]
    assert trio.current_time() - start == 2.5


async def test_run_in_trio_leaves_no_task_behind(autojump_clock: trio.testing.MockClock) -> None:
    """When run_in_trio returns, the cancel_at task is gone too."""
    before = len(list(_children(trio.lowlevel.current_task())))
    await run_in_trio(line([]), faults=FaultPlan(cancel_at=30.0))
    assert before == len(list(_children(trio.lowlevel.current_task())))


def _children(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    return [child for nursery in task.child_nurseries for child in nursery.child_tasks]


async def test_run_in_trio_refuses_unknown_modes() -> None:
    """run_in_trio checks mode= like run_virtual."""
    with pytest.raises(ValueError, match="mode must be one of"):
        await run_in_trio(line([]), mode="parallel")  # type: ignore[arg-type]
