"""The run's promises under cancellation and failure (issue 10: items 1, 3, 5, 6, 10)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from helpers import MODES, Recorder, run_mode, workflow

import trioforge as tf
from trioforge._core import is_cancellation


def cpu_chain(
    clock: trio.testing.MockClock, ran: list[str], undone: list[str], count: int = 5
) -> tf.Workflow:
    """``count`` chained tasks, each 1 s of work that never reaches a checkpoint."""
    tasks = []
    for i in range(count):
        task_id = f"t{i}"

        async def body(ctx: tf.TaskContext, task_id: str = task_id) -> str:
            ran.append(task_id)
            clock.jump(1.0)  # CPU work: virtual time passes, no await
            return task_id

        async def undo(ctx: tf.TaskContext) -> None:
            undone.append(ctx.task_id)

        deps = (f"t{i - 1}",) if i else ()
        tasks.append(tf.Task(task_id, body, depends_on=deps, compensate=undo))
    return workflow(*tasks)


@pytest.mark.parametrize("mode", MODES)
async def test_no_task_starts_after_the_deadline_without_checkpoints(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Tasks that never checkpoint cannot carry a run past workflow_timeout: it times out."""
    ran: list[str] = []
    undone: list[str] = []
    executor = tf.WorkflowExecutor(cpu_chain(autojump_clock, ran, undone), workflow_timeout=1.5)
    with pytest.raises(tf.WorkflowTimeoutError) as info:
        await run_mode(executor, mode)
    assert ran == ["t0", "t1"]
    assert info.value.completed == ["t0", "t1"]
    assert undone == ["t1", "t0"]
    started = [e.task_id for e in executor.audit_log.of_type("WorkflowTaskStarted")]
    assert started == ["t0", "t1"]


@pytest.mark.parametrize("mode", MODES)
async def test_no_task_starts_after_cancel_called_by_a_task(mode: str) -> None:
    """A task that calls cancel() and returns: its dependent never starts, the run is cancelled."""
    rec = Recorder()
    executor: tf.WorkflowExecutor

    async def stopper(ctx: tf.TaskContext) -> str:
        executor.cancel("stop")
        return "done"

    async def undo(ctx: tf.TaskContext) -> None:
        rec.compensated.append(ctx.task_id)

    wf = workflow(
        tf.Task("a", stopper, compensate=undo),
        rec.task("b", deps=("a",)),
    )
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.WorkflowCancelledError) as info:
        await run_mode(executor, mode)
    assert info.value.reason == "stop"
    assert rec.starts == {}
    assert rec.compensated == ["a"]


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_by_the_last_task_is_not_success(mode: str) -> None:
    """A run whose last task calls cancel() ends cancelled and rolled back, not successful."""
    undone: list[str] = []

    async def last(ctx: tf.TaskContext) -> None:
        executor.cancel("changed my mind")

    async def undo(ctx: tf.TaskContext) -> None:
        undone.append(ctx.task_id)

    executor = tf.WorkflowExecutor(workflow(tf.Task("only", last, compensate=undo)))
    with pytest.raises(tf.WorkflowCancelledError):
        await run_mode(executor, mode)
    assert undone == ["only"]


async def test_execute_checkpoints_between_tasks() -> None:
    """execute() lets the rest of the program run between tasks that never checkpoint."""
    turns = 0
    seen: list[int] = []

    async def step(ctx: tf.TaskContext) -> None:
        seen.append(turns)  # how often the watcher ran before this task started

    ids = [f"t{i}" for i in range(10)]
    wf = workflow(*(tf.Task(t, step, depends_on=ids[:i][-1:]) for i, t in enumerate(ids)))

    async def watcher() -> None:
        nonlocal turns
        while len(seen) < len(ids):
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watcher)
        await tf.WorkflowExecutor(wf).execute()
    # trio orders a batch of runnable tasks at random, so count turns, not positions.
    assert seen[-1] >= len(ids) // 2


def failing_then_slow(rec: Recorder) -> tf.Workflow:
    """``bad`` fails at 1 s; ``slow`` (independent) runs for 10 s."""
    return workflow(
        rec.task("ok", 0.5, result="value"),
        rec.task("bad", 1.0, fail=ValueError("broken")),
        rec.task("slow", 10.0),
    )


async def test_timeout_after_a_failure_keeps_the_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure, then the deadline: WorkflowTimeoutError keeps the failure as cause."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(
        failing_then_slow(rec),
        workflow_timeout=5,
        failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT,
    )
    with pytest.raises(tf.WorkflowTimeoutError) as info:
        await executor.execute_dataflow()
    assert list(info.value.failures) == ["bad"]
    assert info.value.failures["bad"] is info.value.__cause__
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.results == {"ok": "value"}
    assert "bad" in str(info.value)


async def test_cancel_after_a_failure_keeps_the_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """CONTINUE_INDEPENDENT: a failure then cancel(): WorkflowCancelledError keeps the failure."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(
        failing_then_slow(rec), failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT
    )

    async def cancel_later() -> None:
        await trio.sleep(3)
        executor.cancel("operator")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(tf.WorkflowCancelledError) as info:
            await executor.execute_dataflow()
    assert list(info.value.failures) == ["bad"]
    assert info.value.failures["bad"] is info.value.__cause__
    assert info.value.results == {"ok": "value"}


async def test_cancel_outranks_a_passed_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """A cancel() after the deadline passed (no checkpoint between) is reported as the cancel."""

    async def late(ctx: tf.TaskContext) -> None:
        autojump_clock.jump(10)
        executor.cancel("too late anyway")

    executor = tf.WorkflowExecutor(workflow(tf.Task("late", late)), workflow_timeout=1)
    with pytest.raises(tf.WorkflowCancelledError) as info:
        await executor.execute()
    assert info.value.reason == "too late anyway"


async def test_interrupt_outranks_a_failure_and_names_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A KeyboardInterrupt after a task failed propagates as itself, noting the failure."""
    rec = Recorder()
    wf = workflow(
        rec.task("bad", 1.0, fail=ValueError("broken")),
        rec.task("interrupt", 2.0, fail=KeyboardInterrupt()),
    )
    executor = tf.WorkflowExecutor(wf, failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT)
    with pytest.raises(KeyboardInterrupt) as info:
        await executor.execute_dataflow()
    notes = getattr(info.value, "__notes__", [])
    assert notes == ["trioforge: task 'bad' had failed: ValueError: broken"]


async def test_task_failed_error_carries_results() -> None:
    """TaskFailedError holds the completed tasks' results, not only their ids."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", result=1),
        rec.task("b", deps=("a",), result=2),
        rec.task("bad", fail=ValueError("x")),
    )
    executor = tf.WorkflowExecutor(wf, failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT)
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert info.value.results == {"a": 1, "b": 2}


async def test_cancelled_error_carries_results(autojump_clock: trio.testing.MockClock) -> None:
    """WorkflowCancelledError holds the results of the tasks completed before the cancel."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(workflow(rec.task("a", 1, result=1), rec.task("b", 10)))

    async def cancel_later() -> None:
        await trio.sleep(5)
        executor.cancel("enough")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(tf.WorkflowCancelledError) as info:
            await executor.execute_dataflow()
    assert info.value.results == {"a": 1}
    assert info.value.failures == {}


class Boom(BaseException):
    """A BaseException that is neither an Exception nor an interrupt."""


def three_step_saga(rec: Recorder, raising: BaseException) -> tf.Workflow:
    """``a`` then ``b`` complete; ``c`` fails; ``b``'s compensation raises ``raising``."""

    async def undo_b(ctx: tf.TaskContext) -> None:
        await trio.lowlevel.checkpoint()
        raise raising

    return workflow(
        rec.task("a"),
        tf.Task("b", rec.task("b").fn, depends_on=("a",), compensate=undo_b),
        rec.task("c", deps=("b",), fail=ValueError("c broke")),
    )


async def test_compensation_raising_base_exception_finishes_the_rollback() -> None:
    """A BaseException from a compensation: the rest run, events are recorded; it propagates."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(three_step_saga(rec, Boom("bad undo")))
    with pytest.raises(Boom) as info:
        await executor.execute()
    assert rec.compensated == ["a"]
    assert isinstance(info.value.__context__, tf.TaskFailedError)
    assert isinstance(info.value.__context__.compensation_failures["b"], Boom)
    types = [(e.type, e.task_id) for e in executor.audit_log.events[-3:]]
    assert types == [
        ("WorkflowTaskCompensationFailed", "b"),
        ("WorkflowTaskCompensated", "a"),
        ("WorkflowFailed", None),
    ]


async def test_compensation_interrupt_stops_the_rollback_but_records_it() -> None:
    """A KeyboardInterrupt in a compensation: the rest is recorded as not run; it propagates."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(three_step_saga(rec, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt) as info:
        await executor.execute()
    assert rec.compensated == []
    assert isinstance(info.value.__context__, tf.TaskFailedError)
    events = executor.audit_log.events[-3:]
    assert [(e.type, e.task_id) for e in events] == [
        ("WorkflowTaskCompensationFailed", "b"),
        ("WorkflowTaskCompensationFailed", "a"),
        ("WorkflowFailed", None),
    ]
    assert "interrupted" in (events[1].error or "")


async def test_compensation_that_swallows_cancel_is_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A compensation that swallows Cancelled and overruns its limit is recorded as failed."""

    async def stubborn(ctx: tf.TaskContext) -> None:
        for _ in range(3):
            try:
                await trio.sleep(10)
            except trio.Cancelled:  # the misbehaviour under test
                continue

    async def work(ctx: tf.TaskContext) -> None:
        await trio.lowlevel.checkpoint()

    async def fail(ctx: tf.TaskContext) -> None:
        raise ValueError("x")

    wf = workflow(tf.Task("a", work, compensate=stubborn), tf.Task("b", fail, depends_on=("a",)))
    executor = tf.WorkflowExecutor(wf, compensation_timeout=5)
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    assert isinstance(info.value.compensation_failures["a"], TimeoutError)
    assert executor.audit_log.of_type("WorkflowTaskCompensated") == []


async def test_cancel_during_retry_backoff_ends_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task cancelled while waiting to retry gets a WorkflowTaskCancelled event saying so."""

    async def flaky(ctx: tf.TaskContext) -> None:
        await trio.sleep(1)
        raise ConnectionError("down")

    executor = tf.WorkflowExecutor(
        workflow(tf.Task("flaky", flaky, retries=3)),
        backoff=tf.Backoff(initial=10, jitter=0),
    )

    async def cancel_later() -> None:
        await trio.sleep(5)
        executor.cancel("operator")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(tf.WorkflowCancelledError):
            await executor.execute_dataflow()
    events = [(e.type, e.detail) for e in executor.audit_log.events if e.task_id == "flaky"]
    assert events[-1] == ("WorkflowTaskCancelled", "while waiting to retry: operator")


@pytest.mark.parametrize("mode", ["execute_parallel", "execute_dataflow"])
async def test_fail_fast_cancel_names_the_failed_task(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Under fail-fast, a cancelled sibling's event says which task failed."""
    rec = Recorder()
    wf = workflow(rec.task("bad", 1, fail=ValueError("x")), rec.task("slow", 10))
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.TaskFailedError):
        await run_mode(executor, mode)
    (cancelled,) = executor.audit_log.of_type("WorkflowTaskCancelled")
    assert (cancelled.task_id, cancelled.detail) == ("slow", "fail-fast: task 'bad' failed")


async def test_timeout_cancel_says_so(autojump_clock: trio.testing.MockClock) -> None:
    """A task cut off by workflow_timeout has an event detail naming the timeout."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(workflow(rec.task("slow", 10)), workflow_timeout=2)
    with pytest.raises(tf.WorkflowTimeoutError):
        await executor.execute_dataflow()
    (cancelled,) = executor.audit_log.of_type("WorkflowTaskCancelled")
    assert cancelled.detail == "workflow_timeout of 2s ran out"


async def test_compensation_base_exception_outranks_an_outside_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Stopped from outside, a compensation's BaseException propagates after the bookkeeping."""
    rec = Recorder()

    async def undo(ctx: tf.TaskContext) -> None:
        await trio.lowlevel.checkpoint()
        raise Boom("bad undo")

    wf = workflow(
        rec.task("a", 1),
        tf.Task("b", rec.task("b", 1).fn, depends_on=("a",), compensate=undo),
        rec.task("slow", 100, deps=("b",)),
    )
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(Boom) as info, trio.move_on_after(5):
        await executor.execute_dataflow()
    context = info.value.__context__
    assert context is not None
    assert is_cancellation(context)
    assert rec.compensated == ["a"]
    last = executor.audit_log.events[-1]
    assert (last.type, last.detail) == ("WorkflowCancelled", "stopped from outside the run")
