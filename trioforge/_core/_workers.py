"""Run a workflow's ready tasks in as few trio tasks as keeps them concurrent.

Design note. The naive way, and the one trioforge used first, gives every
workflow task a trio task of its own (``nursery.start_soon``). That costs
trio ~5 us a task on the machine the benchmarks run on: a coroutine, a
``trio.lowlevel.Task``, a copy of the context, a place in the nursery and in
the run queue, and a scheduler batch before it starts. Most of that buys
nothing for the many tasks that finish without ever waiting (a no-op, a
cached result, a computation) and is the same for the rest.

A :class:`Workers` instead keeps a queue of ready tasks and as few trio tasks
("workers", in the scheduler's nursery) as keep them concurrent. A worker
takes the next task and runs its first step itself, inside the task's own
:class:`contextvars.Context` (a fresh copy of the context the run started
in, as trio gives each new task), so context variables stay the task's own.
A task that finishes without waiting costs no trio task at all. A task that
waits (its coroutine yields to trio) keeps its worker until it ends, and the
worker's trio task runs in the task's context meanwhile (``Task.context``,
which trio reads at every step and swaps itself around
``trio.from_thread`` calls): its cancel scopes and nurseries belong to that
worker's trio task, exactly as if it had its own. When a task first waits,
every task still queued gets a free worker, started at once: a waiting task
never holds back the tasks queued after it, which start in the next
scheduler pass. (Spawned as trio tasks of their own, tasks queued together
would all start in one pass; here the first starts in that pass and the
others at most one pass later.)

A worker running a long series of tasks that never wait checkpoints every
:data:`SLICE` seconds, so the rest of the program (I/O, timers, a cancel)
still runs. The worker's own code is protected from ``KeyboardInterrupt``;
the jobs' code must not be (``trio.lowlevel.disable_ki_protection``, as
``TaskRunner.run_node`` is), so a Ctrl-C reaches a task's code as it would
in a trio task of its own. When a worker ends with an exception (a cancellation or
``KeyboardInterrupt`` that reached it through a task: the nursery it runs in
is going down), the tasks still queued never start; the ``abandon`` callback
hears of them, so a scheduler can record what it had promised about them.

A worker carries the id of the task it runs as its trio task's name, so
trio's task tree (debuggers, instruments, :func:`trio.lowlevel.current_task`)
still shows which workflow task is which. What a task sees that differs
from a trio task of its own: :func:`trio.lowlevel.current_task` is its
worker, which other tasks ran in before it. Stack walks (``Task.iter_await_frames``, used by
:mod:`trioforge.testing`'s deadlock detector) see through a worker into the
task's own frames.
"""

from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from types import FrameType
from typing import Any, TypeVar

import trio

__all__ = ["SLICE", "Workers", "await_in_context"]

T = TypeVar("T")

#: Seconds a worker may run tasks that never wait before it checkpoints.
SLICE = 0.002


class Workers:
    """A queue of ready tasks and the trio tasks that run them.

    Args:
        job: makes the coroutine that runs one queued item to its end.
        abandon: called with the items still queued when a worker ends with
            an exception; none of them ever started.
        names: each item's name, which its worker's trio task carries while
            it runs the item.
    """

    __slots__ = ("_abandon", "_context", "_free", "_job", "_names", "_queue")

    def __init__(
        self,
        job: Callable[[int], Coroutine[Any, Any, object]],
        abandon: Callable[[list[int]], object],
        names: Sequence[str],
    ) -> None:
        self._job = job
        self._abandon = abandon
        self._names = names
        # Each task gets a copy of this: the context of the scheduler that made us.
        self._context = contextvars.copy_context()
        self._queue: deque[int] = deque()
        # Workers that will look at the queue again before they wait for a task.
        self._free = 0

    def start(self, nursery: trio.Nursery, item: int) -> None:
        """Queue ``item``; make sure a worker in ``nursery`` will take it."""
        self._queue.append(item)
        if not self._free:
            self._spawn(nursery)

    def start_all(self, nursery: trio.Nursery, items: Iterable[int]) -> None:
        """Queue ``items`` in order; make sure a worker in ``nursery`` will take them."""
        queue = self._queue
        queue.extend(items)
        if queue and not self._free:
            self._spawn(nursery)

    def _spawn(self, nursery: trio.Nursery, count: int = 1) -> None:
        self._free += count
        for _ in range(count):
            nursery.start_soon(self._work, nursery, name=_IDLE)

    @trio.lowlevel.enable_ki_protection
    async def _work(self, nursery: trio.Nursery) -> None:  # noqa: ASYNC910 - a trio task of ours
        """Run queued tasks until the queue is empty (see the module's note).

        Not a checkpoint when no task it ran waited: it is only ever a trio
        task of its own, started with ``start_soon``, which no caller awaits.
        Protected from ``KeyboardInterrupt`` (trio delivers it at a checkpoint
        instead), so a Ctrl-C cannot land between two steps of a task and
        leave the task half run; the jobs' own code is not protected.
        """
        queue = self._queue
        job = self._job
        base = self._context
        names = self._names
        me = trio.lowlevel.current_task()
        clock = time.perf_counter
        pause = clock() + SLICE
        waiting = False
        try:
            while queue:
                if clock() >= pause:
                    me.name = _IDLE
                    await trio.lowlevel.checkpoint()
                    pause = clock() + SLICE
                item = queue.popleft()
                me.name = names[item]
                coro = job(item)
                context = base.copy()
                try:
                    trap = context.run(coro.send, None)
                except StopIteration:
                    continue  # it ended without waiting
                # It waits: it keeps this worker; every task still queued gets a free
                # worker, which starts in the next scheduler pass.
                waiting = True
                self._free -= 1
                if len(queue) > self._free:
                    self._spawn(nursery, len(queue) - self._free)
                await _rest_in_context(coro, context, trap)
                waiting = False
                self._free += 1
                pause = clock() + SLICE
        except BaseException:
            # The nursery is going down: what is still queued never starts.
            left = list(queue)
            queue.clear()
            if left:
                self._abandon(left)
            raise
        finally:
            me.name = _IDLE
            if not waiting:
                self._free -= 1


async def await_in_context(coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
    """``await coro`` with every step of it inside ``context``, in the calling trio task.

    What a worker does for one task (see the module's note), for a caller that
    runs tasks one at a time in its own trio task (``execute()``): the first
    step inside ``context.run``, the later ones with the trio task's
    ``context`` set to ``context`` until the coroutine ends.
    """
    try:
        trap = context.run(coro.send, None)
    except StopIteration as stop:
        result: T = stop.value
        return result  # noqa: ASYNC910 - a checkpoint only if the coroutine had one, as `await`
    return await _rest_in_context(coro, context, trap)  # type: ignore[return-value]


async def _rest_in_context(
    coro: Coroutine[Any, Any, object], context: contextvars.Context, trap: object
) -> object:
    """Drive ``coro``, which yielded ``trap`` at its first step, to its end inside ``context``.

    The calling trio task runs in ``context`` meanwhile (trio runs each step
    in ``Task.context``, and swaps it itself around ``trio.from_thread``
    calls), then in its own context again.
    """
    me = trio.lowlevel.current_task()
    own = me.context
    me.context = context
    try:
        return await _Resume(coro, trap)
    finally:
        me.context = own


class _Resume(Generator[Any, Any, object]):
    """Awaiting this drives ``coro``, which yielded ``trap`` once already, to its end.

    What ``await coro`` does natively, from the second step on. ``cr_frame``
    and ``cr_await`` are the coroutine's, so walks along an await chain
    (``trio.lowlevel.Task.iter_await_frames``) go on into it.
    """

    __slots__ = ("_coro", "_trap")

    def __init__(self, coro: Coroutine[Any, Any, object], trap: object) -> None:
        self._coro = coro
        self._trap: object = trap

    def __await__(self) -> Generator[Any, Any, object]:
        return self

    def __next__(self) -> object:
        trap = self._trap
        if trap is not _TAKEN:
            self._trap = _TAKEN
            return trap
        return self._coro.send(None)

    def send(self, value: Any, /) -> object:
        """Resume the coroutine with ``value``."""
        return self._coro.send(value)

    def throw(self, *exc: Any) -> object:
        """Raise an exception (a cancellation, say) inside the coroutine."""
        return self._coro.throw(*exc)

    def close(self) -> None:
        """Close the coroutine."""
        self._coro.close()

    @property
    def cr_frame(self) -> FrameType | None:
        """The coroutine's frame."""
        frame: FrameType | None = getattr(self._coro, "cr_frame", None)
        return frame

    @property
    def cr_await(self) -> Any:
        """What the coroutine awaits."""
        return getattr(self._coro, "cr_await", None)


_TAKEN = object()
_IDLE = "trioforge: tasks"
