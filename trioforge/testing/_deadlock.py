"""Deadlock detection: notice at once that no task can ever wake up, instead of hanging.

Design note. In virtual time a stuck program is easy to recognise: nothing is
runnable, no deadline is pending (so the clock has nowhere to jump), and
nothing outside trio can wake a task, because no task waits on a file
descriptor, a subprocess or a worker thread. Nothing can change after that;
a naive run just hangs (``MockClock``'s autojump spins forever, a real clock
sleeps on I/O forever).

The detector is a trio :class:`~trio.abc.Instrument`. Its ``before_io_wait``
hook runs each time the run loop is about to wait, which is exactly when
the loop is idle. It first reads :func:`trio.lowlevel.current_statistics`
(runnable tasks, the next deadline, the ``run_sync_soon`` queue), which costs
almost nothing, and only when those three say "idle forever" walks the task
tree: each task's await chain (:meth:`trio.lowlevel.Task.iter_await_frames`)
tells whether it waits inside ``trio.to_thread.run_sync``, a subprocess, or an
I/O wait, any of which can still wake it. While the run waits on such a thing,
the walk is repeated at most every 10 ms of real time (under a ``MockClock``
the idle loop spins), so a long thread call costs a hundred cheap walks a
second rather than one per spin, and a deadlock that follows it is still
reported within 10 ms. Nothing is added to the per-task hot path. The count of I/O
waiters in the run's statistics is checked against the walk as a guard: a
waiter the walk did not recognise also counts as "can still wake up", so an
unknown case errs toward no report rather than a false one.

When the program is stuck, the hook asks the run (through ``run_sync_soon``,
the supported way to act from outside a task) to stop the work: the
executor's :meth:`~trioforge.WorkflowExecutor.cancel` when one was given, so
the run rolls back and records why, otherwise the block's own cancel scope.
When the block ends, :class:`Deadlock` is raised, naming every stuck task of
the block by its workflow task id (found from the :class:`~trioforge.TaskContext`
in its frames) and what it was waiting on.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING

import trio

from trioforge import TaskContext

if TYPE_CHECKING:
    from trioforge import WorkflowExecutor

__all__ = ["Deadlock", "fail_on_deadlock"]

_TRIO_DIR = os.path.dirname(trio.__file__) + os.sep
_REWALK = 0.01
"""Real seconds between two task-tree walks while the run waits on something outside trio."""


class Deadlock(Exception):
    """Raised when no task can ever run again: every task waits on something nobody will do.

    Raised by :func:`~trioforge.testing.run_virtual` and by
    :func:`fail_on_deadlock`, after the stuck work was cancelled and rolled
    back; never inside an exception group.

    Args:
        blocked: what each stuck task waited on, by task id.

    Attributes:
        blocked: what each stuck task waited on, by task id: a workflow task
            id where the waiting code runs inside a task of the workflow
            (a combinator's children count as their combinator), otherwise
            ``"trio task <name>"``. The value names the awaited trio call and
            where it was awaited, e.g. ``"trio.Event.wait, awaited at
            flow.py:12 in reserve"``.
    """

    def __init__(self, blocked: Mapping[str, str]) -> None:
        self.blocked = dict(blocked)
        stuck = "; ".join(f"{task!r} waits on {what}" for task, what in self.blocked.items())
        super().__init__(f"deadlock: no task can run and nothing can wake one up: {stuck}")

    def __reduce__(self) -> tuple[type[Deadlock], tuple[dict[str, str]]]:
        return (Deadlock, (self.blocked,))


def _is_trio(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(_TRIO_DIR)


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _wakeable(frames: list[FrameType]) -> str | None:
    """What can still wake a task awaiting ``frames``, or None if nothing outside trio can."""
    for frame in frames:
        module = _module(frame)
        name = frame.f_code.co_qualname
        if module == "trio._threads" and name == "to_thread_run_sync":
            return "thread"
        if module.startswith("trio._subprocess"):
            return "subprocess"
        if module.startswith("trio._core._io_"):
            return "fd"
        if name == "wait_all_tasks_blocked":
            return "wait_all_tasks_blocked"
    return None


def _is_entry_queue(frames: list[FrameType]) -> bool:
    """Whether this is trio's own ``run_sync_soon`` task (it always waits on its wakeup socket)."""
    return bool(frames) and frames[0].f_code.co_qualname == "EntryQueue.task"


def _io_waiters() -> int:
    """How many tasks the run's I/O statistics count as waiting (any backend)."""
    stats = trio.lowlevel.current_statistics().io_statistics
    total = 0
    for name in dir(stats):
        if name.startswith("tasks_waiting"):
            value = getattr(stats, name)
            if isinstance(value, int):
                total += value
    return total


def _all_tasks() -> Iterator[trio.lowlevel.Task]:
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        yield task
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)


def _frames(task: trio.lowlevel.Task) -> list[FrameType]:
    return [frame for frame, _ in task.iter_await_frames()]


def _can_wake(tasks: list[trio.lowlevel.Task]) -> bool:
    """Whether any task waits on something outside trio (or on wait_all_tasks_blocked)."""
    known_io = 0
    for task in tasks:
        frames = _frames(task)
        if _is_entry_queue(frames):
            known_io += 1
            continue
        if _wakeable(frames) is not None:
            return True
    # Guard: an I/O waiter the frame walk did not recognise can still wake up.
    return _io_waiters() > known_io


def _ancestors(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    """``task``'s ancestors, outermost first."""
    chain: list[trio.lowlevel.Task] = []
    nursery = task.parent_nursery
    while nursery is not None:
        parent = nursery.parent_task
        chain.append(parent)
        nursery = parent.parent_nursery
    chain.reverse()
    return chain


def _task_id(task: trio.lowlevel.Task) -> str:
    """The workflow task a trio task works for: the outermost TaskContext in its frames."""
    for holder in [*_ancestors(task), task]:
        for frame in _frames(holder):
            for value in frame.f_locals.values():
                if isinstance(value, TaskContext):
                    return value.task_id
    return f"trio task {task.name}"


def _waiting_on(frames: list[FrameType]) -> str:
    """The awaited trio call and the place that awaited it, from an await chain."""
    # The innermost frame outside trio awaited the first trio frame after it.
    caller = None
    for index in range(len(frames) - 1, -1, -1):
        if not _is_trio(frames[index]):
            caller = index
            break
    if caller is None:
        callee = frames[0] if frames else None
        return "nothing" if callee is None else f"trio.{callee.f_code.co_qualname}"
    frame = frames[caller]
    if frame.f_code is _HANG_CODE:
        return "the hang injected by FaultPlan.hang (trio.sleep_forever)"
    where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_qualname}"
    if caller + 1 < len(frames):
        return f"trio.{frames[caller + 1].f_code.co_qualname}, awaited at {where}"
    return f"something awaited at {where}"


def _describe(owner: trio.lowlevel.Task, tasks: list[trio.lowlevel.Task]) -> dict[str, str]:
    """What each stuck leaf task under ``owner`` (``owner`` included) waits on, by task id."""
    blocked: dict[str, list[str]] = {}
    for task in tasks:
        if any(nursery.child_tasks for nursery in task.child_nurseries):
            continue  # it waits for its children, which are reported themselves
        if task is not owner and owner not in _ancestors(task):
            continue
        waits = blocked.setdefault(_task_id(task), [])
        what = _waiting_on(_frames(task))
        if what not in waits:
            waits.append(what)
    return {task_id: "; ".join(waits) for task_id, waits in blocked.items()}


async def _hang_forever() -> None:
    """Block until cancelled: what a task given a ``hang`` fault does after its body."""
    await trio.sleep_forever()


_HANG_CODE = _hang_forever.__code__


class _Detector(trio.abc.Instrument):
    """Trips once, when the run loop is idle and nothing can ever wake a task."""

    def __init__(self, owner: trio.lowlevel.Task, executor: WorkflowExecutor | None) -> None:
        self.owner = owner
        self.executor = executor
        self.scope: trio.CancelScope | None = None
        self.token = trio.lowlevel.current_trio_token()
        self.next_walk = 0.0
        self.blocked: dict[str, str] | None = None

    def before_io_wait(self, timeout: float) -> None:
        if self.blocked is not None:
            return
        stats = trio.lowlevel.current_statistics()
        if (
            stats.tasks_runnable
            or stats.run_sync_soon_queue_size
            or stats.seconds_to_next_deadline != math.inf
        ):
            return
        now = time.monotonic()
        if now < self.next_walk:
            return
        tasks = list(_all_tasks())
        if _can_wake(tasks):
            # Idle on a thread, a process or I/O: under a MockClock the loop spins,
            # so look again only after a short real pause.
            self.next_walk = now + _REWALK
            return
        try:
            self.blocked = _describe(self.owner, tasks)
        except Exception as exc:  # a hook that raises is disabled by trio: the run would hang
            self.blocked = {"?": f"(the stuck tasks could not be described: {exc!r})"}
        self.token.run_sync_soon(self._stop)

    def _stop(self) -> None:
        assert self.blocked is not None
        stuck = ", ".join(repr(task_id) for task_id in self.blocked) or "nothing"
        reason = f"deadlock: no task can run and nothing can wake one up (stuck: {stuck})"
        if self.executor is not None and self.executor.running:
            self.executor.cancel(reason)
        elif self.scope is not None:
            self.scope.cancel(reason)


@contextlib.contextmanager
def fail_on_deadlock(executor: WorkflowExecutor | None = None) -> Iterator[None]:
    """Raise :class:`Deadlock` instead of hanging when the block's work can never progress.

    The async counterpart of the check :func:`~trioforge.testing.run_virtual`
    makes, for code that already runs inside trio, such as a pytest-trio
    test (with or without the ``autojump_clock`` fixture; any clock works)::

        async def test_no_deadlock(autojump_clock):
            executor = WorkflowExecutor(with_faults(wf, plan))
            with fail_on_deadlock(executor):
                await executor.execute_dataflow()

    A deadlock is found when no task can run, no deadline is pending, and no
    task waits on a file descriptor (a socket, a pipe), a subprocess or a
    worker thread (``trio.to_thread.run_sync``), so a shell task or a thread
    call without a timeout is never reported. The block's work is then
    stopped: through ``executor.cancel(reason)`` when ``executor`` is given
    and running (the run rolls back and its audit log's ``WorkflowCancelled``
    event names the deadlock), otherwise by cancelling the block, which rolls
    back any run inside it too. When the block ends, :class:`Deadlock` is
    raised, chained to the exception the block ended with (a
    :class:`~trioforge.WorkflowCancelledError`, say). Found within one pass of
    the run loop: no real time passes.

    A sync context manager, like :func:`trio.fail_after`; use it inside trio
    only. Limits: a task that ignores cancellation forever still hangs; a
    wakeup that only a thread trio did not start (a plain
    ``threading.Thread`` calling ``trio.from_thread``) or a signal could
    deliver is not seen, so such a wait counts as stuck.

    Args:
        executor: the executor whose run the block drives, if any.

    Raises:
        Deadlock: the block's work got stuck.
        RuntimeError: not called inside a trio task.
    """
    if not trio.lowlevel.in_trio_task():
        raise RuntimeError("fail_on_deadlock() must be used inside a trio task")
    detector = _Detector(trio.lowlevel.current_task(), executor)
    cause: Exception | None = None
    trio.lowlevel.add_instrument(detector)
    try:
        with trio.CancelScope() as scope:
            detector.scope = scope
            try:
                yield
            except Exception as exc:
                if detector.blocked is None:
                    raise
                cause = exc
    finally:
        with contextlib.suppress(KeyError):  # trio drops an instrument whose hook raised
            trio.lowlevel.remove_instrument(detector)
    if detector.blocked is not None:
        raise Deadlock(detector.blocked) from cause
