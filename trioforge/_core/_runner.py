"""The one place a task runs: its context, timeout scope, retries, outcome and events.

Every execution mode calls :meth:`TaskRunner.run_node`. It never lets a task
failure escape: an ``Exception`` (including the :class:`TaskTimeoutError` recorded when
the task's own scope caught its deadline) becomes a recorded failure and the
function returns False. Cancellation and every other ``BaseException`` are
recorded and re-raised untouched, so the caller's nursery and cancel scopes
see them as trio intends.

No task starts once the run is stopping. Before an attempt starts, the
runner compares the time it reads anyway for the ``WorkflowTaskStarted``
event with the run's deadline and reads :attr:`Run.halted` (set by
``cancel()`` and by a fail-fast failure): one comparison and one attribute
read, no checkpoint. A task refused there waits at one checkpoint for the
cancel that stops the run (the run's scope, whose deadline has passed or
which ``cancel()`` cancelled, or the fail-fast nursery's), so even tasks that
never checkpoint cannot carry a run past its deadline or a cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NoReturn

import trio

from ._audit import NO_DURATION
from ._errors import TaskTimeoutError
from ._events import EventType
from ._groups import is_cancellation
from ._left_behind import take_note
from ._run import Run
from ._task import Task, TaskContext, single_attempt_context
from ._undo import Undone, describe, undo_all
from ._workers import Workers

__all__ = ["Run", "TaskRunner", "describe"]


async def _refuse(run: Run) -> NoReturn:
    """The run is stopping: do not start the task; wait for the cancel that stops the run.

    The run's scope has passed its deadline or was cancelled, or the fail-fast
    nursery was, so the checkpoint raises ``trio.Cancelled``.
    """
    await trio.lowlevel.checkpoint()
    # Not reached: whatever halted the run cancelled a scope around this task.
    run.scope.cancel(reason=run.stop_reason())
    await trio.lowlevel.checkpoint()
    raise AssertionError("a halted run's task was not cancelled")  # pragma: no cover


# The hot path appends an event's fields to the audit log's flat buffers (see AuditLog):
# no new object for the garbage collector to track, nor a float object per time.
_STARTED = EventType.TASK_STARTED.value
_COMPLETED = EventType.TASK_COMPLETED.value


class TaskRunner:
    """Runs tasks of one run for a scheduler: ``await runner.run_node(node)``.

    Every execution mode runs its tasks through :meth:`run_node`. A scheduler
    that starts tasks concurrently hands them to :meth:`spawn` or
    :meth:`spawn_all`, which queue them for a few trio tasks that run them
    (:class:`~trioforge._core._workers.Workers`): a task that never waits costs
    no trio task of its own.

    Args:
        run: the run the tasks belong to.
        layer: the layer index recorded in the events (layer mode only).
        done: ``done(node, succeeded)``, called synchronously when a task
            ends (not after a cancellation), so a scheduler can start the
            next tasks without a coroutine of its own around each task.
    """

    __slots__ = (
        "_again",
        "_gated",
        "_releasing",
        "_workers",
        "completed_shape",
        "done",
        "layer",
        "queue_all",
        "run",
        "started_shape",
    )

    queue_all: Callable[[trio.Nursery, Iterable[int]], None]
    """``queue_all(nursery, nodes)``: queue ``nodes`` for the workers, in order.

    :meth:`spawn_all` without a store (nothing to record first): the workers'
    own method, so a dataflow run pays no call of ours per finished task.
    """

    def __init__(
        self,
        run: Run,
        *,
        layer: int | None = None,
        done: Callable[[int, bool], object] | None = None,
    ) -> None:
        self.run = run
        self.layer = layer
        self.done = done
        # The audit shapes of this runner's single-attempt starts and completions.
        self.started_shape = run.audit.shape(_STARTED, run.workflow_id, layer, 1)
        self.completed_shape = run.audit.shape(_COMPLETED, run.workflow_id, layer, 1)
        self._gated: list[int] = []  # recorded starts waiting for their commit (spawn)
        self._releasing = False
        self._again = False  # _release: go round again (set by every _gate since its last round)
        self._workers = Workers(self.run_node, self._abandon, run.dag.ids)
        self.queue_all = self._workers.start_all

    def spawn_all(self, nursery: trio.Nursery, nodes: list[int]) -> None:
        """:meth:`spawn` each of ``nodes``, in order (in one go for first attempts)."""
        run = self.run
        if run.checkpoint is None or run.halted is not None:
            self._workers.start_all(nursery, nodes)
            return
        audit = run.audit
        if audit.sinks or run.attempt_base:
            for node in nodes:
                self.spawn(nursery, node)
            return
        if not nodes:
            return
        # spawn() for each node, with one clock read: a durable run's hot path.
        started = run.clock.current_time()
        if started >= run.deadline:
            self._workers.start_all(nursery, nodes)  # they refuse to start
            return
        self._admit_first(nursery, nodes, started)

    def _admit_first(self, nursery: trio.Nursery, nodes: list[int], started: float) -> None:
        """Record the starts of ``nodes``' first attempts; run them once those are durable.

        The starts go into the audit log as :meth:`AuditLog.record_fields` would
        put them there without a sink (inlined, as in :meth:`run_node`: a
        durable run's hot path), all with one clock reading.
        """
        run = self.run
        audit = run.audit
        ids = run.dag.ids
        count = len(nodes)
        if count == 1:  # most calls: a completion released one dependent
            node = nodes[0]
            audit._pending.append(ids[node])
            audit._marks.append(self.started_shape)
            audit._times.fromlist([started, time.time(), NO_DURATION])
            run.admitted[node] = (started, 1, False)
        else:
            audit._pending.extend([ids[node] for node in nodes])
            audit._marks.extend([self.started_shape] * count)
            audit._times.fromlist([started, time.time(), NO_DURATION] * count)
            run.admitted.update(dict.fromkeys(nodes, (started, 1, False)))
        for follower in audit.followers:
            follower()
        self._gate(nursery, nodes)

    def _gate(self, nursery: trio.Nursery, nodes: list[int]) -> None:
        """Hold ``nodes`` (their starts recorded) for :meth:`_release`, started if need be.

        With no node: have :meth:`_release` commit what is recorded, soon.
        """
        self._gated.extend(nodes)
        self._again = True
        if not self._releasing:
            self._releasing = True
            nursery.start_soon(self._release, nursery, name="trioforge: durable starts")

    def _abandon(self, nodes: list[int]) -> None:
        """Tasks queued when their nursery went down: those recorded as started end cancelled."""
        run = self.run
        admitted = run.admitted
        for node in nodes:
            entry = admitted.pop(node, None)
            if entry is not None:
                started, attempt, _recheck = entry
                _cancelled(run, run.dag.ids[node], self.layer, attempt, started, ran=False)

    def spawn(self, nursery: trio.Nursery, node: int) -> None:
        """Start ``node``'s task: at once, or (durable runs) once its start is durable.

        In a durable run every attempt's start is committed (or reserved: see
        :meth:`start_reserved`) before its body runs. Rather than spawn each
        task to wait for that commit (a parked trio task per task, all alive
        at once in a wide graph, each woken separately), the start of the
        first attempt is recorded here and the tasks spawned together once
        the group commit holding their starts returns (:meth:`_release`, one
        coroutine per batch). If that commit fails, each task meets the error
        at its own checkpoint, as it would have; if it is cancelled, the tasks
        end as cancelled without running.
        """
        run = self.run
        if run.checkpoint is None or run.halted is not None:
            self._workers.start(nursery, node)
            return
        started = run.clock.current_time()
        if started >= run.deadline:
            self._workers.start(nursery, node)  # it refuses to start
            return
        task_id = run.dag.ids[node]
        attempt = run.attempt_base.get(task_id, 0) + 1
        if attempt == 1 and not run.audit.sinks:
            self._admit_first(nursery, [node], started)
            return
        self._record_start(node, attempt, started)
        self._gate(nursery, [node])

    def _record_start(self, node: int, attempt: int, started: float) -> None:
        """Record ``node``'s ``attempt`` as started (its event, and :attr:`Run.admitted`)."""
        run = self.run
        fields = (_STARTED, run.workflow_id, started, time.time(), run.dag.ids[node], self.layer)
        run.audit.record_fields((*fields, attempt, None, None, None))
        run.admitted[node] = (started, attempt, False)

    def start_reserved(self, nursery: trio.Nursery, node: int, attempt: int) -> None:
        """Start ``node``'s ``attempt`` at once: a durable commit reserved its start.

        A scheduler with a slot limit has the run store reserve the starts of
        the tasks next in line with the commits it makes anyway (see
        ``_Bounded``), so a reserved task need not wait for a commit of its
        own start when a slot frees: its start is recorded here (and committed
        with the next commit, which also reserves the next tasks: see
        :meth:`commit_soon`) and it runs at once. After a crash, a reservation that no
        recorded start followed counts as a started attempt (the run store's
        fold), so the guarantee stays: an attempt that may have run is known.
        """
        run = self.run
        started = run.clock.current_time()
        if run.halted is not None or started >= run.deadline:
            self._workers.start(nursery, node)  # it refuses to start
            return
        self._record_start(node, attempt, started)
        self._workers.start(nursery, node)

    def commit_soon(self, nursery: trio.Nursery) -> None:
        """Have what is recorded committed soon, though no task waits for it.

        A scheduler that reserves starts asks for it when few are left: the
        commit records the reserved starts made since, and reserves more.
        """
        self._gate(nursery, [])

    async def _release(self, nursery: trio.Nursery) -> None:
        """Spawn the tasks :meth:`spawn` recorded, a batch at a time, once their starts commit."""
        run = self.run
        checkpoint = run.checkpoint
        assert checkpoint is not None
        admitted = run.admitted
        batch: list[int] = []
        try:
            while True:  # _gate() starts this with a task recorded, or a commit wanted
                batch, self._gated = self._gated, []
                self._again = False
                try:
                    await checkpoint()
                except Exception:
                    # The store failed (or the lease is lost): the recorder keeps the
                    # error, and each task raises it at its own checkpoint, as before.
                    for node in batch:
                        started, attempt, _recheck = admitted[node]
                        admitted[node] = (started, attempt, True)
                self._workers.start_all(nursery, batch)
                batch = []
                # A cancel point of our own (the recorder's may raise instead), which
                # also lets the tasks just spawned record their dependents' starts.
                await trio.lowlevel.checkpoint()
                if not self._again:  # nothing gated nor asked for since this round began
                    return
        except BaseException as exc:
            if is_cancellation(exc):
                # Recorded as started, never run: they end cancelled, as a task
                # waiting for this commit would.
                self._abandon([*batch, *self._gated])
                self._gated = []
            raise
        finally:
            self._releasing = False

    # Unprotected from Ctrl-C like any trio task's code, also when a worker (whose own
    # code is protected) runs it: trio decides from the nearest marked frame.
    @trio.lowlevel.disable_ki_protection
    async def run_node(self, node: int) -> bool:  # noqa: PLR0915 - the hot path is one frame
        """Run one task to success or final failure; return whether it succeeded.

        Retries failed attempts (a timeout is a failed attempt) after the
        executor's backoff; never retries a cancellation.

        This is the per-task hot path of every mode. A plain :class:`Task`
        with no timeout and no retries in a run that is not resumed and has no
        executor-wide timeout or retries (see :attr:`Run.plain`) takes the
        single-attempt path inline: no deadline, no retry loop, no checkpoint,
        and ``fn(ctx)`` awaited directly; in a durable run, only once
        :meth:`spawn` has recorded and committed its start. Everything else
        goes through :func:`_run_attempts`.
        """
        run = self.run
        task = run.tasks[node]
        if not (run.plain and type(task) is Task and task.timeout is None and not task.retries):
            return await _run_attempts(run, node, self.layer, self.done)
        task_id = run.dag.ids[node]
        workflow_id = run.workflow_id
        layer = self.layer
        audit = run.audit
        sinks = audit.sinks
        now = run.clock.current_time
        if run.checkpoint is not None:
            # A durable run: only a task whose first attempt's start spawn() recorded
            # and committed takes this path (pooled tasks, and those whose commit
            # failed, checkpoint in the general one).
            admitted = run.admitted.get(node)
            if admitted is None or admitted[2]:
                return await _run_attempts(run, node, layer, self.done)
            del run.admitted[node]
            started = admitted[0]
            if run.halted is not None or now() >= run.deadline:
                # Its start is recorded (and durable): it ends cancelled, never run.
                _cancelled(run, task_id, layer, 1, started, ran=False)
                await _refuse(run)
        else:
            started = now()
            if run.halted is not None or started >= run.deadline:
                await _refuse(run)
            if sinks:
                wall = time.time()
                audit.record_fields(
                    (_STARTED, workflow_id, started, wall, task_id, layer, 1, None, None, None)
                )
            else:
                audit._pending.append(task_id)
                audit._marks.append(self.started_shape)
                audit._times.fromlist([started, time.time(), NO_DURATION])
        ctx = single_attempt_context(
            task_id, workflow_id, run.results, run.upstream, run.states, run.steps
        )
        try:
            result = await task._fn(ctx)  # the fn property would cost a call per task
        except Exception as exc:
            _failed_attempt(run, task_id, layer, 1, started, exc, 0)
            if self.done is not None:
                self.done(node, False)
            # A body may fail before its first checkpoint: make this path one (rare, cheap).
            await trio.lowlevel.checkpoint()
            return False
        except BaseException as exc:
            if is_cancellation(exc):
                _cancelled(run, task_id, layer, 1, started)
            raise
        run.results[task_id] = result
        run.completed.append(task_id)
        ended = now()
        if sinks:
            audit.record_fields(
                (
                    _COMPLETED,
                    workflow_id,
                    ended,
                    time.time(),
                    task_id,
                    layer,
                    1,
                    ended - started,
                    None,
                    None,
                )
            )
        else:
            audit._pending.append(task_id)
            audit._marks.append(self.completed_shape)
            audit._times.fromlist([ended, time.time(), ended - started])
            for follower in audit.followers:
                follower()
        if self.done is not None:
            self.done(node, True)
        return True


async def _run_attempts(  # noqa: PLR0915 - one frame per attempt loop
    run: Run,
    node: int,
    layer: int | None,
    done: Callable[[int, bool], object] | None,
) -> bool:
    """:meth:`TaskRunner.run_node` for every task the single-attempt path does not take."""
    task = run.tasks[node]
    task_id = run.dag.ids[node]
    timeout = task.timeout
    if timeout is None:
        timeout = run.task_timeout
    retries = getattr(task, "retries", None)
    if retries is None:
        retries = run.default_retries
    limit = timeout
    # A plain Task's run() only awaits fn(ctx): skip that frame.
    call = task.fn if type(task) is Task else task.run
    audit = run.audit
    record = audit.record_fields
    workflow_id = run.workflow_id
    now = run.clock.current_time
    # A resumed run keeps counting the attempts the task made before.
    base = run.attempt_base.get(task_id, 0)
    attempt = base + 1
    # Recorded and made durable before this task was spawned (TaskRunner.spawn)?
    admitted = run.admitted.pop(node, None) if run.admitted else None
    while True:
        ctx = TaskContext(
            task_id,
            workflow_id,
            attempt,
            run.results,
            run.upstream,
            run.states,
            last_attempt=attempt > retries + base,
            steps=run.steps,
        )
        if attempt != 1:
            run.retried[task_id] = attempt
        if admitted is not None:
            started, _attempt, recheck = admitted
            admitted = None
            if run.halted is not None or now() >= run.deadline:
                # Its start is recorded (and durable): it ends cancelled, never run.
                _cancelled(run, task_id, layer, attempt, started, ran=False)
                await _refuse(run)
        else:
            recheck = run.checkpoint is not None
            started = now()
            if run.halted is not None or started >= run.deadline:
                await _refuse(run)
            record(
                (
                    _STARTED,
                    workflow_id,
                    started,
                    time.time(),
                    task_id,
                    layer,
                    attempt,
                    None,
                    None,
                    None,
                )
            )
        try:
            if recheck and run.checkpoint is not None:
                # Durable runs: the attempt is recorded before it runs, so a task run
                # again after a crash always sees a higher ctx.attempt.
                await run.checkpoint()
            if limit is not None:
                with trio.move_on_after(limit) as scope:
                    result = await call(ctx)
                if scope.cancelled_caught or scope.cancel_called:
                    raise TaskTimeoutError(task_id, limit)
            else:
                result = await call(ctx)
        except Exception as exc:
            error: Exception = exc
        except BaseException as exc:
            if is_cancellation(exc):
                _cancelled(run, task_id, layer, attempt, started)
            raise
        else:
            run.results[task_id] = result
            run.completed.append(task_id)
            ended = now()
            record(
                (
                    _COMPLETED,
                    workflow_id,
                    ended,
                    time.time(),
                    task_id,
                    layer,
                    attempt,
                    ended - started,
                    None,
                    None,
                )
            )
            if done is not None:
                # In durable runs the dependents this starts record their attempts'
                # starts now, and none runs before the commit that holds its start
                # (TaskRunner.spawn, or its own checkpoint above); a commit holds every
                # event emitted before it, this completion too. So a completion is
                # durable before anything that depends on it runs, at one commit per
                # wave, without this task waiting for it (the run's last flush takes
                # the completions nothing waited for).
                done(node, True)
            await trio.lowlevel.checkpoint()
            return True
        delay = _failed_attempt(run, task_id, layer, attempt, started, error, retries + base)
        if delay is None:
            if done is not None:
                done(node, False)
            await trio.lowlevel.checkpoint()
            return False
        try:
            if task_id in run.steps:
                # Only the successful attempt's steps may wait for a rollback.
                await _undo_attempt(run, task_id, attempt)
            await trio.sleep(delay)
        except BaseException as exc:
            if is_cancellation(exc):
                # Cancelled while waiting to retry: the task ends cancelled, not retrying.
                _cancelled(run, task_id, layer, attempt, started, waiting=True)
            raise
        attempt += 1


async def _undo_attempt(run: Run, task_id: str, attempt: int) -> None:
    """Undo the steps a failed attempt registered (shielded, bounded) before the next one."""
    items = run.step_items(task_id, attempt)
    undone: Undone = await undo_all(items, run.compensation_limit, run.emit_undo)
    for failed_id, exc in undone.failures.items():
        run.compensation_failures.setdefault(failed_id, exc)
    if undone.raised is not None:
        raise undone.raised


def _cancelled(
    run: Run,
    task_id: str,
    layer: int | None,
    attempt: int,
    started: float,
    *,
    waiting: bool = False,
    ran: bool = True,
) -> None:
    """Record ``task_id``'s attempt as cancelled (``ran``: its body had started)."""
    run.cancelled.append(task_id)
    # What stays behind: the task's own note, else one its body's calls left. Nothing
    # when the body never ran (the current context's note is then someone else's).
    note = None
    if ran:
        left = take_note()
        note = getattr(run.tasks[run.dag.index[task_id]], "cancel_note", None) or left
    reason = "; ".join(filter(None, (run.stop_reason(), note)))
    run.emit(
        EventType.TASK_CANCELLED,
        task_id,
        layer=layer,
        attempt=attempt,
        duration=trio.current_time() - started,
        detail=f"while waiting to retry: {reason}" if waiting else reason,
    )


def _failed_attempt(
    run: Run,
    task_id: str,
    layer: int | None,
    attempt: int,
    started: float,
    error: Exception,
    retries: int,
) -> float | None:
    """Record a failed attempt; return the wait before the next one, or None if it was the last."""
    timed_out = isinstance(error, TaskTimeoutError) and error.task_id == task_id
    left = take_note()
    note = getattr(run.tasks[run.dag.index[task_id]], "cancel_note", None) or left
    note = note if timed_out else None
    run.emit(
        EventType.TASK_TIMED_OUT if timed_out else EventType.TASK_FAILED,
        task_id,
        layer=layer,
        attempt=attempt,
        duration=trio.current_time() - started,
        error=describe(error),
        detail=note,
    )
    if attempt > retries:
        run.failures[task_id] = error
        return None
    delay = run.backoff.delay(attempt, run.rng)
    run.emit(
        EventType.TASK_RETRYING,
        task_id,
        layer=layer,
        attempt=attempt + 1,
        detail=f"retrying in {delay:.3f}s",
    )
    return delay
