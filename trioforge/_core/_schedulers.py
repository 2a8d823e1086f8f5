"""The three execution modes: sequential, layer by layer, and dataflow.

All three run each task with :meth:`TaskRunner.run_node` and differ only in
*when* they start it:

* sequential: one task at a time, in topological order;
* layers (``execute_parallel``): a nursery per topological layer; the next
  layer starts when the whole layer has finished (a barrier);
* dataflow (``execute_dataflow``): one nursery for the run; when a task
  succeeds, every dependent whose dependencies are now all done starts at
  once. No barrier, so the makespan is the critical path when slots are
  unbounded. With ``max_concurrency``, ready tasks wait in a priority heap
  (longest remaining path first) and start the moment a slot frees up; the
  slot is taken synchronously with ``CapacityLimiter.acquire_on_behalf_of_nowait``
  so no dispatcher task, and no extra context switch, sits between a task
  finishing and the next one starting.

Fail-fast: a failing task halts the run (nothing new starts, see
:meth:`Run.halt`) and cancels the nursery it runs in (its running siblings
see ``Cancelled`` and are recorded as cancelled, naming the failed task).
Sequential mode checkpoints between tasks, so the rest of the program runs
(and a cancel or the workflow deadline is seen) even when tasks never do.
Continue-independent: a failure marks every transitive dependent skipped and
the rest of the graph runs on.
"""

from __future__ import annotations

import contextvars
import enum
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Literal

import trio

from ._events import EventType
from ._ready import Demand, Pools, ReadyQueue
from ._runner import Run, TaskRunner
from ._workers import await_in_context

__all__ = [
    "SCHEDULES",
    "FailurePolicy",
    "Schedule",
    "run_dataflow",
    "run_layers",
    "run_pooled",
    "run_sequential",
]

#: The one vocabulary for how a run is scheduled, used everywhere: ``"sequential"``
#: (:meth:`~trioforge.WorkflowExecutor.execute`), ``"layers"``
#: (:meth:`~trioforge.WorkflowExecutor.execute_parallel`) and ``"dataflow"``
#: (:meth:`~trioforge.WorkflowExecutor.execute_dataflow`); also
#: ``resume(schedule=...)``, ``trioforge.testing.run_virtual(mode=...)`` and the
#: command line's ``--schedule``.
Schedule = Literal["sequential", "layers", "dataflow"]

#: Every :data:`Schedule`, in the order above.
SCHEDULES: tuple[Schedule, ...] = ("sequential", "layers", "dataflow")


class FailurePolicy(enum.Enum):
    """What a run does when a task fails (after its retries)."""

    FAIL_FAST = "fail_fast"
    """Cancel running tasks, start nothing new, roll back, raise."""

    CONTINUE_INDEPENDENT = "continue_independent"
    """Skip the failed tasks' dependents, run everything else, then roll back and raise."""


def _skip_dependents(run: Run, queue: ReadyQueue, node: int) -> None:
    ids = run.dag.ids
    failed = ids[node]
    for skipped in queue.skip_dependents(node):
        task_id = ids[skipped]
        run.skipped.append(task_id)
        run.emit(EventType.TASK_SKIPPED, task_id, detail=f"depends on failed task {failed!r}")


def _queue(run: Run, priorities: list[float] | None = None) -> ReadyQueue:
    dag = run.dag
    # Each node's successors asked of the graph when it finishes: a run reads them once
    # each, so building `dag.successors` first would only add to it. The payloads are
    # the node indices: `successors` hands back a list of the shared ints, which a
    # loop walks faster than the NodeIndices `successor_indices` makes.
    successors = dag.graph.successors
    return ReadyQueue(None, successors, priorities, counts=dag.in_degrees())


async def run_sequential(run: Run, policy: FailurePolicy) -> None:
    """Run every task one after another in topological order."""
    queue = _queue(run)
    restored = run.restored
    run_node = TaskRunner(run).run_node
    checkpoint = trio.lowlevel.checkpoint
    # Each task in a copy of the run's context, as in the concurrent modes' workers.
    base = contextvars.copy_context()
    await checkpoint()
    for node in run.dag.topological_order():
        if node in restored or queue.is_skipped(node):
            continue
        succeeded = await await_in_context(run_node(node), base.copy())
        # Between tasks: lets other tasks of the program run, and stops here once
        # cancel() was called or the deadline passed, even if no task checkpoints.
        await checkpoint()
        if not succeeded:
            if policy is FailurePolicy.FAIL_FAST:
                return
            _skip_dependents(run, queue, node)


async def run_layers(
    run: Run,
    policy: FailurePolicy,
    limiter: trio.CapacityLimiter | None,
    priorities: list[float] | None,
) -> None:
    """Run the workflow layer by layer, a nursery per layer.

    With ``limiter``, a layer's tasks start in priority order as slots free
    up (trio starts tasks spawned together in random order, so the order is
    kept by a per-layer ready heap rather than by the limiter's queue).
    """
    queue = _queue(run, priorities)
    restored = run.restored
    await trio.lowlevel.checkpoint()
    for layer_index, layer in enumerate(run.dag.layers):
        nodes = [node for node in layer if node not in restored and not queue.is_skipped(node)]
        if not nodes:
            continue
        run.emit(EventType.LAYER_STARTED, layer=layer_index, detail=f"{len(nodes)} tasks")
        failed_before = len(run.failures)
        status = "cancelled"
        try:
            async with trio.open_nursery() as nursery:
                if limiter is None:
                    done = (
                        partial(_cancel_on_failure, run, nursery.cancel_scope)
                        if policy is FailurePolicy.FAIL_FAST
                        else None
                    )
                    TaskRunner(run, layer=layer_index, done=done).spawn_all(nursery, nodes)
                else:
                    bounded = _Bounded(run, queue, policy, nursery, limiter, layer=layer_index)
                    for node in nodes:
                        queue.push(node)
                    bounded.fill()
            status = "failed" if len(run.failures) > failed_before else "completed"
        finally:
            run.reserver = None  # a layer's _Bounded reserves only while its layer runs
            run.emit(EventType.LAYER_COMPLETED, layer=layer_index, detail=status)
        if len(run.failures) > failed_before:
            if policy is FailurePolicy.FAIL_FAST:
                return
            for task_id in list(run.failures)[failed_before:]:
                _skip_dependents(run, queue, run.dag.index[task_id])


def _fail_fast(run: Run, node: int) -> str:
    return f"fail-fast: task {run.dag.ids[node]!r} failed"


def _cancel_on_failure(run: Run, scope: trio.CancelScope, node: int, succeeded: bool) -> None:
    if not succeeded:
        run.halt(_fail_fast(run, node), scope)


async def run_dataflow(
    run: Run,
    policy: FailurePolicy,
    limiter: trio.CapacityLimiter | None,
    priorities: list[float] | None,
) -> None:
    """Start each task the moment its last dependency succeeds."""
    queue = _queue(run, priorities)
    ready = queue.restore(run.restored) if run.restored else queue.roots()
    try:
        async with trio.open_nursery() as nursery:
            if limiter is None:
                _Unbounded(run, queue, policy, nursery).start_all(ready)
            else:
                bounded = _Bounded(run, queue, policy, nursery, limiter)
                for node in ready:
                    queue.push(node)
                bounded.fill()
    finally:
        run.reserver = None  # the commits after the run reserve nothing


class _Unbounded:
    """Dataflow without a slot limit: ready dependents start immediately."""

    __slots__ = ("finish", "nursery", "policy", "queue", "run", "spawn_all")

    def __init__(
        self, run: Run, queue: ReadyQueue, policy: FailurePolicy, nursery: trio.Nursery
    ) -> None:
        self.run = run
        self.queue = queue
        self.policy = policy
        self.nursery = nursery
        self.finish = queue.finish
        runner = TaskRunner(run, done=self.done)
        # Without a store every task is queued as it is (no start to record first).
        self.spawn_all = runner.spawn_all if run.checkpoint is not None else runner.queue_all

    def start_all(self, nodes: list[int]) -> None:
        self.spawn_all(self.nursery, nodes)

    def done(self, node: int, succeeded: bool) -> None:
        if succeeded:
            ready = self.finish(node)
            if ready:
                self.spawn_all(self.nursery, ready)
        elif self.policy is FailurePolicy.FAIL_FAST:
            self.run.halt(_fail_fast(self.run, node), self.nursery.cancel_scope)
        else:
            _skip_dependents(self.run, self.queue, node)


class _Started:
    """What :class:`_Bounded` and :class:`_Pooled` share: the run, its queue, what follows a task.

    A finished task that gave its room back releases its successors, a
    fail-fast stop, or its skipped dependents (:meth:`advance`).
    """

    __slots__ = ("ids", "layer", "nursery", "policy", "queue", "run", "run_node", "stopped")

    run_node: Callable[[int], Awaitable[bool]]

    def __init__(
        self,
        run: Run,
        queue: ReadyQueue,
        policy: FailurePolicy,
        nursery: trio.Nursery,
        layer: int | None,
    ) -> None:
        self.run = run
        self.queue = queue
        self.policy = policy
        self.nursery = nursery
        self.layer = layer
        self.stopped = False
        self.ids = run.dag.ids

    def fill(self) -> None:
        """Start ready tasks while there is room."""
        raise NotImplementedError

    def advance(self, node: int, succeeded: bool) -> None:
        """After ``node`` gave its room back: queue what it made ready (or stop), then fill."""
        if succeeded:
            ready = self.queue.finish(node)
            if self.layer is None:
                for succ in ready:
                    self.queue.push(succ)
        elif self.policy is FailurePolicy.FAIL_FAST:
            self.stopped = True
            self.run.halt(_fail_fast(self.run, node), self.nursery.cancel_scope)
            return
        elif self.layer is None:
            _skip_dependents(self.run, self.queue, node)
        self.fill()


class _Bounded(_Started):
    """At most ``limiter.total_tokens`` tasks at once, started in priority order.

    In dataflow mode (``layer`` is None) a finished task's newly ready
    dependents join the heap; in layer mode the heap holds one layer only.
    A task's slot is released in :meth:`done`; a cancelled task keeps its
    slot, which only happens when the whole run (and its limiter) is being
    torn down.

    Durable runs: each task's start must be durable before it runs, and a
    task that waits for its own commit when a slot frees keeps that slot
    idle meanwhile (with a slot per core, a shell task's commit would be a
    good part of its cycle). So each commit also *reserves* the starts of
    the tasks next in line (:meth:`reserve`, called by the run store's
    recorder; as many as there are slots, taken out of the heap into
    ``front``); once it is durable (:meth:`confirm`) such a task starts the
    moment a slot frees (:meth:`TaskRunner.start_reserved`), and the commit
    that records its start reserves the next ones. Priority order is kept:
    :meth:`fill` takes the better of ``front``'s first and the heap's top.
    """

    __slots__ = ("ahead", "front", "limiter", "pending", "runner")

    #: How many starts are kept reserved, per slot: with more than one per slot, a
    #: commit (asked for when fewer than one per slot are left) serves several
    #: starts, and the reserved tasks start while it is being made.
    RESERVE_PER_SLOT = 4
    #: ... and at most this many.
    RESERVE = 64

    def __init__(
        self,
        run: Run,
        queue: ReadyQueue,
        policy: FailurePolicy,
        nursery: trio.Nursery,
        limiter: trio.CapacityLimiter,
        *,
        layer: int | None = None,
    ) -> None:
        super().__init__(run, queue, policy, nursery, layer)
        self.limiter = limiter
        self.runner = TaskRunner(run, layer=layer, done=self.done)
        self.run_node = self.runner.run_node
        self.front: deque[tuple[float, int]] = deque()  # heap entries taken to reserve
        self.pending: dict[int, int] = {}  # reserved by the commit in flight: node -> attempt
        self.ahead: dict[int, int] = {}  # reserved by a durable commit: node -> attempt
        if run.checkpoint is not None:
            run.reserver = self  # until its nursery ends (run_dataflow, run_layers)

    def fill(self) -> None:
        """Start ready tasks, highest priority first, while slots are free."""
        queue = self.queue
        front = self.front
        limiter = self.limiter
        spawn = self.runner.spawn  # a task keeps its slot while its start is committed
        while not self.stopped and limiter.available_tokens >= 1:
            if front and (not queue or front[0] <= queue.peek_entry()):
                node = front.popleft()[1]
                self.pending.pop(node, None)
                attempt = self.ahead.pop(node, 0)
            elif queue:
                node = queue.pop()
                attempt = 0
            else:
                return
            limiter.acquire_on_behalf_of_nowait(node)
            if attempt:
                self.runner.start_reserved(self.nursery, node, attempt)
                if len(self.ahead) < limiter.total_tokens and not self.pending:
                    # Reserve more in time (unless the commit in flight does).
                    self.runner.commit_soon(self.nursery)
            else:
                spawn(self.nursery, node)

    def reserve(self) -> dict[str, int]:
        """Reserve the starts of the tasks next in line, for the commit being made.

        Returns them as ``task_id: attempt``; they become startable at once
        when :meth:`confirm` says that commit is durable.
        """
        front = self.front
        queue = self.queue
        self.pending = pending = {}
        if self.stopped or self.run.halted is not None:
            return {}
        room = min(self.limiter.total_tokens * self.RESERVE_PER_SLOT, self.RESERVE) - len(front)
        reserved: dict[str, int] = {}
        ids = self.ids
        base = self.run.attempt_base
        while room > 0 and queue:
            entry = queue.pop_entry()
            front.append(entry)
            task_id = ids[entry[1]]
            reserved[task_id] = pending[entry[1]] = base.get(task_id, 0) + 1
            room -= 1
        return reserved

    def confirm(self) -> None:
        """The commit that carried the last :meth:`reserve` is durable."""
        self.ahead.update(self.pending)
        self.pending = {}

    def done(self, node: int, succeeded: bool) -> None:
        self.limiter.release_on_behalf_of(node)
        self.advance(node, succeeded)


async def run_pooled(
    run: Run,
    policy: FailurePolicy,
    limiter: trio.CapacityLimiter | None,
    priorities: list[float] | None,
    pools: Pools,
    demands: Sequence[Demand],
    *,
    layers: bool = False,
) -> None:
    """Dataflow (or layers) where each task also takes units of named resource pools.

    Used instead of :func:`run_dataflow`/:func:`run_layers` only when some
    task names a pool, so runs without resources keep their own fast path.
    """
    await trio.lowlevel.checkpoint()
    queue = _queue(run, priorities)
    if not layers:
        ready = queue.restore(run.restored) if run.restored else queue.roots()
        async with trio.open_nursery() as nursery:
            pooled = _Pooled(run, queue, policy, nursery, limiter, pools, demands)
            for node in ready:
                queue.push(node)
            pooled.fill()
        return
    restored = run.restored
    for layer_index, layer in enumerate(run.dag.layers):
        nodes = [node for node in layer if node not in restored and not queue.is_skipped(node)]
        if not nodes:
            continue
        run.emit(EventType.LAYER_STARTED, layer=layer_index, detail=f"{len(nodes)} tasks")
        failed_before = len(run.failures)
        status = "cancelled"
        try:
            async with trio.open_nursery() as nursery:
                pooled = _Pooled(
                    run, queue, policy, nursery, limiter, pools, demands, layer=layer_index
                )
                for node in nodes:
                    queue.push(node)
                pooled.fill()
            status = "failed" if len(run.failures) > failed_before else "completed"
        finally:
            run.emit(EventType.LAYER_COMPLETED, layer=layer_index, detail=status)
        if len(run.failures) > failed_before:
            if policy is FailurePolicy.FAIL_FAST:
                return
            for task_id in list(run.failures)[failed_before:]:
                _skip_dependents(run, queue, run.dag.index[task_id])


class _Pooled(_Started):
    """Like :class:`_Bounded`, and a task starts only when its pools have room.

    ``fill`` pops the highest-priority ready task that fits both the slot
    limit (if any) and every pool it names (a task overtaken once then keeps
    its units: :meth:`ReadyQueue.pop_fitting`); a task gives its units (and its
    slot) back however it ends: success, failure, timeout or cancellation.
    """

    __slots__ = ("demands", "fits", "fits_beside", "limiter", "pools")

    def __init__(
        self,
        run: Run,
        queue: ReadyQueue,
        policy: FailurePolicy,
        nursery: trio.Nursery,
        limiter: trio.CapacityLimiter | None,
        pools: Pools,
        demands: Sequence[Demand],
        *,
        layer: int | None = None,
    ) -> None:
        super().__init__(run, queue, policy, nursery, layer)
        self.limiter = limiter
        self.pools = pools
        self.demands = demands
        self.run_node = TaskRunner(run, layer=layer).run_node
        fits = pools.fits
        self.fits: Callable[[int], bool] = lambda node: fits(demands[node])
        beside = pools.fits_beside  # the first task passed over keeps its units
        self.fits_beside: Callable[[int, int], bool] = lambda first, node: beside(
            demands[first], demands[node]
        )

    def fill(self) -> None:
        """Start ready tasks that fit, highest priority first, while slots are free."""
        queue, limiter, pools, demands = self.queue, self.limiter, self.pools, self.demands
        while queue and not self.stopped and (limiter is None or limiter.available_tokens >= 1):
            node = queue.pop_fitting(self.fits, self.fits_beside)
            if node is None:
                return
            if limiter is not None:
                limiter.acquire_on_behalf_of_nowait(node)
            pools.take(demands[node])
            self.nursery.start_soon(self.run_one, node, name=self.ids[node])

    async def run_one(self, node: int) -> None:
        try:
            succeeded = await self.run_node(node)
        finally:
            # Every ending gives the units back, a cancellation included.
            self.pools.give(self.demands[node])
            if self.limiter is not None:
                self.limiter.release_on_behalf_of(node)
        self.advance(node, succeeded)
