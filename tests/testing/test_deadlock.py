"""Deadlock detection: stuck runs reported at once; thread, process and socket waits are not."""

from __future__ import annotations

import pickle
import socket
import sys
import threading
import time

import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge.combinators import ParallelTasks
from trioforge.testing import Deadlock, FaultPlan, fail_on_deadlock, run_in_trio, run_virtual

MODES = ["sequential", "layers", "dataflow"]


def stuck_workflow(undone: list[str]) -> tf.Workflow:
    """'first' completes after 1 s; 'stuck' then waits on an event nobody sets."""
    never = trio.Event()
    wf = tf.Workflow("stuck")

    async def undo(ctx: tf.TaskContext) -> None:
        await trio.sleep(1)
        undone.append(ctx.task_id)

    @wf.task(compensate=undo)
    async def first(ctx: tf.TaskContext) -> None:
        await trio.sleep(1)

    @wf.task(depends_on=["first"])
    async def stuck(ctx: tf.TaskContext) -> None:
        await never.wait()

    return wf


@pytest.mark.parametrize("mode", MODES)
def test_a_task_waiting_forever_is_named_within_a_second(mode: str) -> None:
    """run_virtual raises Deadlock naming the task and its wait, in well under a second."""
    undone: list[str] = []
    started = time.perf_counter()
    with pytest.raises(Deadlock) as info:
        run_virtual(stuck_workflow(undone), mode=mode)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert list(info.value.blocked) == ["stuck"]
    assert info.value.blocked["stuck"].startswith("trio.Event.wait, awaited at ")
    assert "test_deadlock.py" in info.value.blocked["stuck"]
    assert "'stuck' waits on trio.Event.wait" in str(info.value)


def test_the_run_is_rolled_back_before_deadlock_is_raised() -> None:
    """Completed work is compensated first; Deadlock is plain and chains the cancellation."""
    undone: list[str] = []
    with pytest.raises(Deadlock) as info:
        run_virtual(stuck_workflow(undone))
    assert undone == ["first"]
    assert type(info.value) is Deadlock
    assert isinstance(info.value.__cause__, tf.WorkflowCancelledError)
    assert info.value.__cause__.reason.startswith("deadlock: no task can run")


def test_a_hang_fault_without_timeout_is_a_deadlock() -> None:
    """A hang on a task with no timeout is reported as the injected hang."""
    undone: list[str] = []
    wf = stuck_workflow(undone)
    with pytest.raises(Deadlock) as info:
        run_virtual(wf, faults=FaultPlan(hang={"first"}))
    expected = {"first": "the hang injected by FaultPlan.hang (trio.sleep_forever)"}
    assert expected == info.value.blocked


def test_a_hang_fault_with_a_cancel_at_is_no_deadlock() -> None:
    """A pending cancel_at is a deadline: the run ends cancelled, not deadlocked."""
    run = run_virtual(stuck_workflow([]), faults=FaultPlan(hang={"first"}, cancel_at=5.0))
    assert isinstance(run.error, tf.WorkflowCancelledError)
    assert run.duration == 5.0


def test_every_stuck_task_is_named() -> None:
    """Two tasks stuck on different things are both reported."""
    wf = tf.Workflow("two")
    lock = trio.Lock()
    send, receive = trio.open_memory_channel[int](0)

    @wf.task
    async def left(ctx: tf.TaskContext) -> None:
        await receive.receive()

    @wf.task
    async def right(ctx: tf.TaskContext) -> None:
        await lock.acquire()
        await trio.sleep_forever()

    with pytest.raises(Deadlock) as info:
        run_virtual(wf)
    assert {"left", "right"} == set(info.value.blocked)
    assert info.value.blocked["left"].startswith("trio.MemoryReceiveChannel.receive")
    assert info.value.blocked["right"].startswith("trio.sleep_forever")
    send.close()


def test_stuck_children_count_as_their_combinator() -> None:
    """Children of a combinator, in their own trio tasks, are reported under its id."""
    never = trio.Event()

    async def wait(ctx: tf.TaskContext) -> None:
        await never.wait()

    wf = tf.Workflow("combo")
    wf.add_task(ParallelTasks("both", [tf.Task("x", wait), tf.Task("y", wait)]))
    with pytest.raises(Deadlock) as info:
        run_virtual(wf)
    assert list(info.value.blocked) == ["both"]


def test_deadlock_pickles() -> None:
    """A Deadlock survives pickling with its blocked tasks (e.g. across xdist workers)."""
    original = Deadlock({"a": "trio.Event.wait"})
    copy = pickle.loads(pickle.dumps(original))
    assert original.blocked == copy.blocked
    assert str(original) == str(copy)


def test_fail_on_deadlock_needs_trio() -> None:
    """Outside a trio task, fail_on_deadlock is a RuntimeError."""
    with pytest.raises(RuntimeError, match="inside a trio task"), fail_on_deadlock():
        pass


async def test_fail_on_deadlock_around_plain_trio_code(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without an executor the block itself is cancelled; the stuck trio task is named."""

    async def sleep_then_wait_forever() -> None:
        await trio.sleep(3)
        await trio.Event().wait()

    with pytest.raises(Deadlock) as info, fail_on_deadlock():
        await sleep_then_wait_forever()
    assert trio.current_time() == 3.0
    [(name, what)] = info.value.blocked.items()
    assert name.startswith("trio task ")
    assert what.startswith("trio.Event.wait, awaited at ")


async def test_fail_on_deadlock_with_an_executor(autojump_clock: trio.testing.MockClock) -> None:
    """With an executor, the run is cancelled through it: its audit log names the deadlock."""
    undone: list[str] = []
    executor = tf.WorkflowExecutor(stuck_workflow(undone))
    with pytest.raises(Deadlock) as info, fail_on_deadlock(executor):
        await executor.execute_dataflow()
    assert list(info.value.blocked) == ["stuck"]
    assert undone == ["first"]
    [event] = executor.audit_log.of_type(tf.EventType.WORKFLOW_CANCELLED)
    assert event.detail is not None
    assert event.detail.startswith("deadlock: ")
    # first ran 1 s, its undo 1 s; detection itself took no virtual time.
    assert trio.current_time() == 2.0


async def test_fail_on_deadlock_under_the_real_clock() -> None:
    """Any clock: under the real one, a deadlock is reported within a second too."""
    never = trio.Event()

    async def body(ctx: tf.TaskContext) -> None:
        await never.wait()

    started = time.perf_counter()
    with pytest.raises(Deadlock) as info:
        await run_in_trio(one_task(body))
    assert time.perf_counter() - started < 1.0
    assert list(info.value.blocked) == ["wait"]


async def test_a_block_that_finishes_is_left_alone(autojump_clock: trio.testing.MockClock) -> None:
    """No deadlock, no exception: the block's result stands."""
    with fail_on_deadlock():
        await trio.sleep(1)
    assert trio.current_time() == 1.0


# No false positives: waits that something outside trio's tasks will end.


def one_task(body: object) -> tf.Workflow:
    """A workflow of one task running ``body`` (no timeout)."""
    wf = tf.Workflow("one")
    wf.add_task(tf.Task("wait", body))  # type: ignore[arg-type]
    return wf


def test_a_thread_without_timeout_is_no_deadlock() -> None:
    """A task in trio.to_thread.run_sync is waited for, however long, in real time."""

    async def body(ctx: tf.TaskContext) -> str:
        await trio.to_thread.run_sync(time.sleep, 0.3)
        return "slept"

    run = run_virtual(one_task(body))
    assert run.error is None
    assert run.result is not None
    assert run.result.results["wait"] == "slept"


def test_a_task_waiting_on_a_thread_task_is_no_deadlock() -> None:
    """A task waiting on an event that a thread-waiting sibling will set is not stuck."""
    done = trio.Event()
    wf = tf.Workflow("pair")

    @wf.task
    async def worker(ctx: tf.TaskContext) -> None:
        await trio.to_thread.run_sync(time.sleep, 0.3)
        done.set()

    @wf.task
    async def waiter(ctx: tf.TaskContext) -> None:
        await done.wait()

    assert run_virtual(wf).error is None


def test_a_subprocess_without_timeout_is_no_deadlock() -> None:
    """A task in trio.run_process is waited for."""

    async def body(ctx: tf.TaskContext) -> int:
        done = await trio.run_process([sys.executable, "-c", "import time; time.sleep(0.3)"])
        return done.returncode

    run = run_virtual(one_task(body))
    assert run.error is None


def test_a_shell_task_without_timeout_is_no_deadlock(tmp_path: object) -> None:
    """A ShellTask's command is waited for."""
    wf = tf.Workflow("shell")
    wf.add_task(
        tf.ShellTask(
            "nap",
            run=[sys.executable, "-c", "import time; time.sleep(0.3)"],
            log_dir=str(tmp_path),
        )
    )
    assert run_virtual(wf).error is None


def test_a_socket_wait_is_no_deadlock() -> None:
    """A task reading a socket that another thread writes to later is waited for."""
    ours, theirs = socket.socketpair()
    writer = threading.Timer(0.3, theirs.send, args=(b"hi",))

    async def body(ctx: tf.TaskContext) -> bytes:
        sock = trio.socket.from_stdlib_socket(ours)
        return await sock.recv(2)

    writer.start()
    try:
        run = run_virtual(one_task(body))
    finally:
        writer.join()
        ours.close()
        theirs.close()
    assert run.result is not None
    assert run.result.results["wait"] == b"hi"
