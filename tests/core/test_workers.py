"""Ready tasks run in a few trio tasks (``_core/_workers.py``), each in its own context."""

from __future__ import annotations

import contextvars
import sys
from pathlib import Path

import pytest
import trio
import trio.testing
from helpers import CONCURRENT_MODES, MODES, run_mode, workflow
from trio._core._ki import ki_protection_enabled

import trioforge as tf
from trioforge._core import leave_note
from trioforge._store._sqlite import SQLiteRunStore

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_workers_var", default="unset")


class SpawnCounter(trio.abc.Instrument):
    """Counts the trio tasks spawned while it is installed."""

    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


def no_ops(count: int, *, chained: bool = False) -> tf.Workflow:
    """``count`` tasks that return at once: independent, or each depending on the one before."""
    wf = tf.Workflow("no-ops")
    for i in range(count):

        async def body(ctx: tf.TaskContext, i: int = i) -> int:
            return i

        wf.add_task(tf.Task(f"t{i}", body, depends_on=(f"t{i - 1}",) if chained and i else ()))
    return wf


@pytest.mark.parametrize(
    ("mode", "chained"),
    [("execute_parallel", False), ("execute_dataflow", False), ("execute_dataflow", True)],
)
async def test_tasks_that_never_wait_cost_no_trio_task_each(mode: str, chained: bool) -> None:
    """500 tasks that return without waiting run in a handful of trio tasks, not 500.

    (A chain in layer mode is 500 layers, each its own nursery and so its own worker.)
    """
    counter = SpawnCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        result = await run_mode(tf.WorkflowExecutor(no_ops(500, chained=chained)), mode)
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert result.results == {f"t{i}": i for i in range(500)}
    assert counter.spawned < 20


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_a_waiting_task_does_not_hold_back_the_tasks_queued_after_it(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """100 independent tasks that each sleep 1 s all run at once: the run takes 1 s."""
    wf = tf.Workflow("sleepers")
    for i in range(100):

        async def body(ctx: tf.TaskContext) -> None:
            await trio.sleep(1)

        wf.add_task(tf.Task(f"s{i}", body))
    began = trio.current_time()
    await run_mode(tf.WorkflowExecutor(wf), mode)
    assert trio.current_time() - began == 1.0


@pytest.mark.parametrize("mode", MODES)
async def test_each_task_has_its_own_context(mode: str) -> None:
    """A context variable a task sets is not seen by tasks that run after it.

    Each task sees the value the run started with, as a trio task of its own
    would; before, a dependent started by its dependency's completion
    inherited the dependency's values, and in ``execute()`` every task saw
    what the tasks before it had set.
    """
    seen: dict[str, str] = {}

    async def setter(ctx: tf.TaskContext) -> None:
        seen[ctx.task_id] = VAR.get()
        VAR.set(ctx.task_id)

    wf = workflow(
        tf.Task("a", setter),
        tf.Task("b", setter, depends_on=("a",)),
        tf.Task("c", setter, depends_on=("b",)),
        tf.Task("d", setter),
    )
    token = VAR.set("outer")
    try:
        await run_mode(tf.WorkflowExecutor(wf), mode)
    finally:
        VAR.reset(token)
    assert seen == {"a": "outer", "b": "outer", "c": "outer", "d": "outer"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_waiting_task_keeps_its_context_while_others_run(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A task's context values last across its own awaits; tasks running meanwhile see theirs."""
    seen: dict[str, str] = {}

    async def waiter(ctx: tf.TaskContext) -> None:
        VAR.set(ctx.task_id)
        await trio.sleep(1)
        seen[ctx.task_id] = VAR.get()

    async def quick(ctx: tf.TaskContext) -> None:
        seen[ctx.task_id] = VAR.get()
        VAR.set(ctx.task_id)

    wf = workflow(
        tf.Task("w1", waiter),
        tf.Task("q1", quick),
        tf.Task("w2", waiter),
        tf.Task("q2", quick),
    )
    await run_mode(tf.WorkflowExecutor(wf), mode)
    assert seen == {"w1": "w1", "w2": "w2", "q1": "unset", "q2": "unset"}


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_tasks_that_never_wait_let_the_rest_of_the_program_run(mode: str) -> None:
    """A long chain of tasks that never wait still lets another trio task take turns."""
    ticks: list[int] = []
    turns = 0
    done = False

    async def ticker() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await trio.lowlevel.checkpoint()

    wf = tf.Workflow("chain")
    count = 5_000
    for i in range(count):

        async def body(ctx: tf.TaskContext) -> None:
            ticks.append(turns)

        wf.add_task(tf.Task(f"t{i}", body, depends_on=(f"t{i - 1}",) if i else ()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        try:
            await run_mode(tf.WorkflowExecutor(wf), mode)
        finally:
            done = True
    # The chain took several worker time slices (2 ms each): the ticker ran in between.
    assert ticks[-1] - ticks[0] >= 2


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_the_worker_carries_the_waiting_tasks_frames(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """The await-frame walk of the trio task running a waiting task reaches the task's body."""
    release = trio.Event()
    frames: list[str] = []

    async def body(ctx: tf.TaskContext) -> None:
        await release.wait()

    async def quick(ctx: tf.TaskContext) -> None:
        return None

    async def look() -> None:
        await trio.testing.wait_all_tasks_blocked()
        root = trio.lowlevel.current_root_task()
        assert root is not None
        todo = [root]
        while todo:
            task = todo.pop()
            if task.name == "waits":
                frames.extend(frame.f_code.co_name for frame, _ in task.iter_await_frames())
            todo.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
        release.set()

    wf = workflow(tf.Task("quick", quick), tf.Task("waits", body, depends_on=("quick",)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(look)
        await run_mode(tf.WorkflowExecutor(wf), mode)
    assert "body" in frames
    assert frames.index("run_node") < frames.index("body")


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_no_durable_task_runs_after_cancel_called_by_a_task(
    tmp_path: Path, mode: str
) -> None:
    """In a durable run, the tasks admitted with the one that calls cancel() do not run.

    Their starts were committed together; each ends recorded as cancelled.
    """
    ran: list[str] = []
    executor: tf.WorkflowExecutor

    async def body(ctx: tf.TaskContext) -> None:
        ran.append(ctx.task_id)
        executor.cancel("stop")

    wf = workflow(*(tf.Task(f"t{i}", body) for i in range(20)))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(wf, store=store)
        with pytest.raises(tf.WorkflowCancelledError):
            await run_mode(executor, mode)
    assert len(ran) == 1
    started = {e.task_id for e in executor.audit_log.of_type("WorkflowTaskStarted")}
    ended = {
        e.task_id
        for kind in ("WorkflowTaskCompleted", "WorkflowTaskCancelled")
        for e in executor.audit_log.of_type(kind)
    }
    assert started == ended


class LoopPasses(trio.abc.Instrument):
    """Counts the scheduler's passes (one I/O check each)."""

    def __init__(self) -> None:
        self.passes = 0

    def after_io_wait(self, timeout: float) -> None:
        self.passes += 1


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
@pytest.mark.parametrize("slots", [None, 50])
async def test_ready_tasks_that_wait_all_start_within_one_pass(
    autojump_clock: trio.testing.MockClock, mode: str, slots: int | None
) -> None:
    """50 ready tasks that each wait start in at most two scheduler passes, not 50."""
    passes = LoopPasses()
    starts: dict[str, int] = {}

    async def body(ctx: tf.TaskContext) -> None:
        starts[ctx.task_id] = passes.passes
        await trio.sleep(1)

    wf = workflow(*(tf.Task(f"t{i}", body) for i in range(50)))
    trio.lowlevel.add_instrument(passes)
    try:
        await run_mode(tf.WorkflowExecutor(wf, max_concurrency=slots), mode)
    finally:
        trio.lowlevel.remove_instrument(passes)
    assert len(starts) == 50
    assert max(starts.values()) - min(starts.values()) <= 1


@pytest.mark.parametrize("mode", MODES)
async def test_from_thread_calls_see_the_threads_context(mode: str) -> None:
    """trio.from_thread.run inside a task runs in the thread's context, as in any trio task.

    And what it sets there does not leak into the task.
    """

    async def read_and_set() -> str:
        seen = VAR.get()
        VAR.set("set by the from_thread call")
        return seen

    def in_thread() -> str:
        VAR.set("set in the thread")
        return trio.from_thread.run(read_and_set)

    async def body(ctx: tf.TaskContext) -> tuple[str, str]:
        VAR.set("set in the task")
        seen = await trio.to_thread.run_sync(in_thread)
        return seen, VAR.get()

    result = await run_mode(tf.WorkflowExecutor(workflow(tf.Task("t", body))), mode)
    assert result.results["t"] == ("set in the thread", "set in the task")


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_a_note_a_task_left_is_not_given_to_tasks_that_never_ran(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, mode: str
) -> None:
    """A task that left a note and recovered: its dependents, cancelled unrun, do not carry it."""
    executor: tf.WorkflowExecutor

    async def recovers(ctx: tf.TaskContext) -> str:
        with trio.move_on_after(0.1):
            try:
                await trio.sleep(1)
            except trio.Cancelled:
                leave_note("a call of task 'a' is still running")
                raise
        return "recovered"

    async def stopper(ctx: tf.TaskContext) -> None:
        executor.cancel("stop")

    wf = workflow(
        tf.Task("a", recovers),
        *(tf.Task(f"b{i}", stopper, depends_on=("a",)) for i in range(5)),
    )
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(wf, store=store)
        with pytest.raises(tf.WorkflowCancelledError):
            await run_mode(executor, mode)
    details = [e.detail for e in executor.audit_log.of_type("WorkflowTaskCancelled")]
    assert details
    assert all("task 'a'" not in (detail or "") for detail in details)


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_ctrl_c_reaches_task_code_but_not_a_worker_between_steps(mode: str) -> None:
    """Task code is unprotected from KeyboardInterrupt; the worker stepping it is protected.

    A Ctrl-C landing in the worker between two steps would leave the task half
    run (its cancel scopes open on the worker); trio defers it to a checkpoint.
    """
    seen: dict[str, bool] = {}

    async def body(ctx: tf.TaskContext) -> None:
        seen["task"] = trio.lowlevel.currently_ki_protected()
        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != "_work":
            frame = frame.f_back  # type: ignore[assignment]
        assert frame is not None, "the task did not run in a worker"
        seen["worker"] = ki_protection_enabled(frame)
        await trio.lowlevel.checkpoint()
        seen["task after waiting"] = trio.lowlevel.currently_ki_protected()

    await run_mode(tf.WorkflowExecutor(workflow(tf.Task("t", body))), mode)
    assert seen == {"task": False, "worker": True, "task after waiting": False}
