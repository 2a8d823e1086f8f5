"""TaskContext.add_compensation: undo steps registered when the side effect happens (issue 15)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from helpers import MODES, run_mode, workflow

import trioforge as tf
from trioforge._core._rollback import undo_order
from trioforge.combinators import SequentialTasks


class Ledger:
    """Records every undo step and compensation, in the order they ran."""

    def __init__(self) -> None:
        self.undone: list[str] = []

    async def release(self, what: str) -> None:
        """An undo step."""
        await trio.lowlevel.checkpoint()
        self.undone.append(what)

    async def compensate(self, ctx: tf.TaskContext) -> None:
        """A task's ``compensate``."""
        await trio.lowlevel.checkpoint()
        self.undone.append(f"compensate {ctx.task_id}")


def test_undo_order_is_pure_and_exact() -> None:
    """Unfinished tasks' steps first, then per completed task: compensate, then steps reversed."""
    order = undo_order(["a", "b"], lambda task_id: task_id == "b", {"a": 2, "x": 1, "b": 1})
    assert order == [("x", 0), ("b", None), ("b", 0), ("a", 1), ("a", 0)]


@pytest.mark.parametrize("mode", MODES)
async def test_failed_task_steps_are_undone_in_reverse(mode: str) -> None:
    """A task that registers steps and then fails has them undone, newest first."""
    ledger = Ledger()

    async def take_then_fail(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "lock")
        ctx.add_compensation(ledger.release, "file")
        raise ValueError("after the side effects")

    executor = tf.WorkflowExecutor(workflow(tf.Task("t", take_then_fail)))
    with pytest.raises(tf.TaskFailedError):
        await run_mode(executor, mode)
    assert ledger.undone == ["file", "lock"]
    details = [e.detail for e in executor.audit_log.of_type("WorkflowTaskCompensated")]
    assert details == ["step 2: Ledger.release", "step 1: Ledger.release"]


async def test_order_across_tasks_and_with_compensate() -> None:
    """Compensate then steps per task; reverse dependency order across tasks; unfinished first."""
    ledger = Ledger()

    async def first(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "first step 1")
        ctx.add_compensation(ledger.release, "first step 2")

    async def second(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "second step")

    async def third(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "third step")
        raise RuntimeError("third failed")

    wf = workflow(
        tf.Task("first", first, compensate=ledger.compensate),
        tf.Task("second", second, depends_on=("first",), compensate=ledger.compensate),
        tf.Task("third", third, depends_on=("second",)),
    )
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(wf).execute()
    assert ledger.undone == [
        "third step",
        "compensate second",
        "second step",
        "compensate first",
        "first step 2",
        "first step 1",
    ]


async def test_failed_attempt_steps_are_undone_before_the_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Steps of a failed attempt are undone before the next one; only the winner's wait."""
    ledger = Ledger()
    log: list[str] = []

    async def flaky(ctx: tf.TaskContext) -> None:
        log.append(f"attempt {ctx.attempt} starts after {list(ledger.undone)}")
        ctx.add_compensation(ledger.release, f"attempt {ctx.attempt}")
        if ctx.attempt == 1:
            raise ConnectionError("first try fails")

    async def later(ctx: tf.TaskContext) -> None:
        raise ValueError("later task fails")

    wf = workflow(
        tf.Task("flaky", flaky, retries=1), tf.Task("later", later, depends_on=("flaky",))
    )
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.TaskFailedError):
        await executor.execute()
    assert log == ["attempt 1 starts after []", "attempt 2 starts after ['attempt 1']"]
    assert ledger.undone == ["attempt 1", "attempt 2"]
    # The retry's undo names the failed attempt; the rollback's carries none.
    events = executor.audit_log.of_type("WorkflowTaskCompensated")
    assert [(e.task_id, e.attempt) for e in events] == [("flaky", 1), ("flaky", None)]


@pytest.mark.parametrize("stop", ["cancel", "task timeout", "workflow timeout"])
async def test_steps_of_a_stopped_task_are_undone(
    autojump_clock: trio.testing.MockClock, stop: str
) -> None:
    """A task cancelled or timed out after registering a step still gets it undone."""
    ledger = Ledger()

    async def hang(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "resource")
        await trio.sleep_forever()

    task = tf.Task("hang", hang, timeout=3 if stop == "task timeout" else None)
    executor = tf.WorkflowExecutor(
        workflow(task), workflow_timeout=3 if stop == "workflow timeout" else None
    )
    async with trio.open_nursery() as nursery:
        if stop == "cancel":
            nursery.start_soon(_cancel_after, executor, 3)
        with pytest.raises(tf.WorkflowError):
            await executor.execute_dataflow()
    assert ledger.undone == ["resource"]


async def _cancel_after(executor: tf.WorkflowExecutor, seconds: float) -> None:
    await trio.sleep(seconds)
    executor.cancel("test")


async def test_failing_step_is_recorded_and_the_rest_run() -> None:
    """A failing step gets its own event, compensation_failures the first; the others still run."""
    ledger = Ledger()

    async def broken(what: str) -> None:
        await trio.lowlevel.checkpoint()
        raise OSError(what)

    async def body(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "one")
        ctx.add_compensation(broken, "two")
        ctx.add_compensation(broken, "three")
        raise ValueError("x")

    executor = tf.WorkflowExecutor(workflow(tf.Task("t", body)))
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    assert ledger.undone == ["one"]
    assert str(info.value.compensation_failures["t"]) == "three"
    failed = executor.audit_log.of_type("WorkflowTaskCompensationFailed")
    assert ["step 3: " + broken.__qualname__, "step 2: " + broken.__qualname__] == [
        e.detail for e in failed
    ]


async def test_steps_are_shielded_and_bounded(autojump_clock: trio.testing.MockClock) -> None:
    """A step that hangs is cut off at compensation_timeout and recorded; the run still ends."""

    async def hangs() -> None:
        await trio.sleep_forever()

    async def body(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(hangs)
        raise ValueError("x")

    executor = tf.WorkflowExecutor(workflow(tf.Task("t", body)), compensation_timeout=2)
    start = trio.current_time()
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    assert trio.current_time() - start == 2
    assert isinstance(info.value.compensation_failures["t"], TimeoutError)


async def test_steps_belong_to_their_run(autojump_clock: trio.testing.MockClock) -> None:
    """Two runs stopped from outside each undo their own step, once; none carries over."""
    ledger = Ledger()

    async def body(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "once")
        await trio.sleep(10)

    executor = tf.WorkflowExecutor(workflow(tf.Task("t", body)))
    with trio.move_on_after(1):
        await executor.execute()
    with trio.move_on_after(1):
        await executor.execute()
    assert ledger.undone == ["once", "once"]  # one per run, never twice in a run


async def test_steps_in_combinator_children_belong_to_the_combinator() -> None:
    """A step registered by a combinator's child is undone under the combinator's task id."""
    ledger = Ledger()

    async def child(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, f"by {ctx.task_id}")

    async def fails(ctx: tf.TaskContext) -> None:
        raise ValueError("x")

    combo = SequentialTasks("combo", [tf.Task("child", child), tf.Task("fails", fails)])
    executor = tf.WorkflowExecutor(workflow(combo))
    with pytest.raises(tf.TaskFailedError):
        await executor.execute()
    assert ledger.undone == ["by child"]
    (event,) = executor.audit_log.of_type("WorkflowTaskCompensated")
    assert event.task_id == "combo"


async def test_successful_run_runs_no_step() -> None:
    """Steps only run on rollback: a successful run leaves them alone."""
    ledger = Ledger()

    async def body(ctx: tf.TaskContext) -> None:
        ctx.add_compensation(ledger.release, "kept")

    await tf.WorkflowExecutor(workflow(tf.Task("t", body))).execute()
    assert ledger.undone == []


def test_add_compensation_refuses_a_sync_step() -> None:
    """A sync undo step, or one that cannot take the arguments, is a TypeError naming the task."""
    ctx = tf.TaskContext("t", "run")

    def sync(what: str) -> None:
        """Not async."""

    with pytest.raises(TypeError, match="task 't': add_compensation needs an async function"):
        ctx.add_compensation(sync, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot take 2 argument"):
        ctx.add_compensation(Ledger().release, "x", "y")
