"""Ready tasks run in a few trio tasks (``_core/_workers.py``), each in its own context."""

from __future__ import annotations

import contextvars
from pathlib import Path

import pytest
import trio
import trio.testing
from helpers import CONCURRENT_MODES, run_mode, workflow

import trioforge as tf
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


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_each_task_has_its_own_context(mode: str) -> None:
    """A context variable a task sets is not seen by tasks that run after it.

    Each task sees the value the run started with, as a trio task of its own
    would; before, a dependent started by its dependency's completion
    inherited the dependency's values.
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


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
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
