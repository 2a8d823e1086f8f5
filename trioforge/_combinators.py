"""Combinators: tasks built from other tasks.

Each combinator is a :class:`~trioforge.WorkflowTask`, so it can be added to a
workflow or nested in another combinator. Children run with contexts made by
:meth:`TaskContext.child`: they read the combinator's upstream results, keep
their own ``state``, and each child's ``timeout`` is enforced.

A child's failure is reported as the child's own exception when only one
child can fail at a time (:class:`SequentialTasks`, :class:`ConditionalTask`,
:class:`TryCatchTask`), and as a :class:`~trioforge.TaskFailedError` keeping
every child failure when several run at once (:class:`ParallelTasks`,
:class:`RaceTasks`). When a combinator fails, the children that had completed
are compensated first (shielded, bounded by ``compensation_timeout``), so a
failed combinator leaves nothing half done. A combinator that times out, or
is cancelled from outside (a cancel, the workflow deadline, a fail-fast
sibling), has failed as far as the saga is concerned: it undoes its completed
children the same way, then lets the cancellation go on. When a completed
combinator is rolled back, its completed children are compensated in reverse
order. Undo steps that children register with ``ctx.add_compensation``
belong to the combinator's own task (the executor undoes them).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import attrs
import trio

from ._core import (
    TaskContext,
    TaskFailedError,
    TaskTimeoutError,
    UndoItem,
    WorkflowTask,
    _to_ids,
    context_function,
    count,
    has_compensation,
    is_cancellation,
    seconds,
    undo_all,
)

__all__ = ["ConditionalTask", "ParallelTasks", "RaceTasks", "SequentialTasks", "TryCatchTask"]

_T = TypeVar("_T")
_COMPLETED = "completed"
_RESULTS = "results"


async def run_child(child: WorkflowTask, ctx: TaskContext) -> Any:
    """Run a child task under its own timeout; a timeout raises :class:`TaskTimeoutError`."""
    timeout = child.timeout
    if timeout is None:
        return await child.run(ctx)
    with trio.move_on_after(timeout):
        return await child.run(ctx)
    raise TaskTimeoutError(child.id, timeout)


def _child_ctx(ctx: TaskContext, child: WorkflowTask, results: dict[str, Any]) -> TaskContext:
    return ctx.child(child.id, results=results, upstream=results)


async def _undo(
    ctx: TaskContext, children: Sequence[WorkflowTask], completed: Sequence[str], limit: float
) -> dict[str, BaseException]:
    """Compensate ``completed`` children in reverse order, shielded and bounded.

    A compensation that raises does not stop the others. Returns the failures
    by child id; a compensation still unfinished when ``limit`` runs out
    counts as failed with a :class:`TimeoutError`. A ``KeyboardInterrupt``
    (or another ``BaseException``) raised by one is re-raised once the rest
    is done (after an interrupt, the rest is not run).
    """
    by_id = {child.id: child for child in children}
    results: dict[str, Any] = ctx.state.get(_RESULTS, {})
    items = [
        UndoItem(
            child_id,
            partial(by_id[child_id].compensate, _child_ctx(ctx, by_id[child_id], results)),
        )
        for child_id in reversed(completed)
        if has_compensation(by_id[child_id])
    ]
    undone = await undo_all(items, limit, _no_event)
    if undone.raised is not None:
        raise undone.raised
    return undone.failures


def _no_event(*_args: object) -> None:
    """A child's undo is the combinator's business: no audit event of its own."""


async def _undoing(
    body: Callable[[], Awaitable[_T]],
    ctx: TaskContext,
    children: Sequence[WorkflowTask],
    completed: Sequence[str],
    limit: float,
) -> _T:
    """Run ``body``; if it raises anything, undo the ``completed`` children, then re-raise.

    Anything: a child's failure, this combinator's own timeout, a cancel from
    outside (``cancel()``, the workflow deadline, a fail-fast sibling) or an
    interrupt. For the saga a stopped combinator has failed, so it leaves
    nothing half done. The undo is shielded and bounded (see :func:`_undo`);
    its failures become notes on the exception, unless that is a cancellation.
    """
    try:
        return await body()
    except BaseException as stop:
        failures: dict[str, BaseException] = {}
        # _undo is shielded and bounded by `limit` itself; this outer shield only
        # shows it here, and bounds a compensation that swallows its cancel.
        with trio.move_on_after(2 * limit, shield=True):
            failures = await _undo(ctx, children, completed, limit)
        if not is_cancellation(stop):
            _note_undo_failures(stop, failures)
        raise


async def _compensate_children(
    ctx: TaskContext, children: Sequence[WorkflowTask], completed: Sequence[str], limit: float
) -> None:
    """Like :func:`_undo`, but raise an ExceptionGroup of every compensation failure."""
    failures = await _undo(ctx, children, completed, limit)
    if failures:
        raise ExceptionGroup(
            "compensation failed for " + ", ".join(repr(c) for c in failures),
            [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in failures.values()],
        )


def _note_undo_failures(exc: BaseException, failures: dict[str, BaseException]) -> None:
    """Record on ``exc`` which children could not be compensated, without replacing it."""
    for child_id, error in failures.items():
        exc.add_note(f"compensating child {child_id!r} also failed: {error!r}")


def _children(value: Sequence[WorkflowTask]) -> tuple[WorkflowTask, ...]:
    children = tuple(value)
    seen: set[str] = set()
    for child in children:
        if not isinstance(child, WorkflowTask):
            raise TypeError(f"a combinator's children must be WorkflowTasks, got {child!r}")
        if child.id in seen:
            raise ValueError(f"two children share the id {child.id!r}")
        if child.depends_on:
            raise ValueError(
                f"child {child.id!r} declares depends_on={list(child.depends_on)!r}; "
                "a combinator's children run as it says, so put dependencies on the combinator"
            )
        seen.add(child.id)
    return children


def _at_least_one(_instance: object, attribute: attrs.Attribute[Any], value: tuple[Any]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must hold at least one task")


def _optional_task(value: WorkflowTask | None) -> WorkflowTask | None:
    if value is None:
        return None
    return _children([value])[0]


def _one_task(value: WorkflowTask) -> WorkflowTask:
    return _children([value])[0]


@attrs.frozen
class ParallelTasks:
    """Run children concurrently in one nursery; the first failure cancels the rest.

    The result is a dict of each child's result by child id. On failure,
    raises :class:`~trioforge.TaskFailedError` with every child failure.

    Args:
        id: the combinator's task id.
        tasks: the children (at least one, unique ids, no ``depends_on``).
        depends_on: ids of the workflow tasks that must succeed first.
        timeout: seconds the whole combinator may run (children keep their own).
        estimate: expected seconds, for scheduling priority.
        retries: retries of the whole combinator after a failure.
        compensation_timeout: limit for compensating children, in seconds.
    """

    id: str
    tasks: tuple[WorkflowTask, ...] = attrs.field(converter=_children, validator=_at_least_one)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )

    @property
    def has_compensation(self) -> bool:
        """Whether any child has something to undo."""
        return any(has_compensation(c) for c in self.tasks)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        """Run every child at once; return their results by id."""
        results: dict[str, Any] = {}
        completed: list[str] = []
        failures: dict[str, BaseException] = {}
        ctx.state[_RESULTS] = results
        ctx.state[_COMPLETED] = completed

        async def all_children() -> None:
            async with trio.open_nursery() as nursery:

                async def one(child: WorkflowTask) -> None:
                    await trio.lowlevel.checkpoint()
                    try:
                        result = await run_child(child, ctx.child(child.id))
                    except Exception as exc:
                        failures[child.id] = exc
                        nursery.cancel_scope.cancel(reason=f"child {child.id!r} failed")
                    else:
                        results[child.id] = result
                        completed.append(child.id)

                for child in self.tasks:
                    nursery.start_soon(one, child)

        # A child's Exception never leaves `one`: what stops the nursery is this
        # combinator's timeout or a cancel from outside.
        await _undoing(all_children, ctx, self.tasks, completed, self.compensation_timeout)
        if failures:
            undo_failures = await _undo(ctx, self.tasks, completed, self.compensation_timeout)
            first = next(iter(failures))
            raise TaskFailedError(
                first, failures, completed=completed, compensation_failures=undo_failures
            ) from failures[first]
        return {child.id: results[child.id] for child in self.tasks}

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate the children in reverse completion order."""
        await _compensate_children(
            ctx, self.tasks, ctx.state.get(_COMPLETED, []), self.compensation_timeout
        )


@attrs.frozen
class SequentialTasks:
    """Run children one after another; each may read earlier siblings' results.

    The result is a dict of each child's result by child id. A failing child
    stops the sequence; its own exception propagates (after the completed
    children were compensated; a compensation failure is added to it as a note).

    Args:
        id: the combinator's task id.
        tasks: the children, in order (at least one, unique ids, no ``depends_on``).
        depends_on: ids of the workflow tasks that must succeed first.
        timeout: seconds the whole combinator may run (children keep their own).
        estimate: expected seconds, for scheduling priority.
        retries: retries of the whole combinator after a failure.
        compensation_timeout: limit for compensating children, in seconds.
    """

    id: str
    tasks: tuple[WorkflowTask, ...] = attrs.field(converter=_children, validator=_at_least_one)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )

    @property
    def has_compensation(self) -> bool:
        """Whether any child has something to undo."""
        return any(has_compensation(c) for c in self.tasks)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        """Run the children in order; return their results by id."""
        results: dict[str, Any] = {}
        completed: list[str] = []
        ctx.state[_RESULTS] = results
        ctx.state[_COMPLETED] = completed

        async def children() -> dict[str, Any]:
            await trio.lowlevel.checkpoint()
            for child in self.tasks:
                results[child.id] = await run_child(child, _child_ctx(ctx, child, results))
                completed.append(child.id)
            return dict(results)

        return await _undoing(children, ctx, self.tasks, completed, self.compensation_timeout)

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate the children in reverse order."""
        await _compensate_children(
            ctx, self.tasks, ctx.state.get(_COMPLETED, []), self.compensation_timeout
        )


@attrs.frozen
class ConditionalTask:
    """Run ``if_true`` when ``predicate(ctx)`` is true, else ``if_false`` (if any).

    The result is the chosen branch's result, or None when the predicate is
    false and there is no ``if_false``.

    Args:
        id: the combinator's task id.
        predicate: ``predicate(ctx)``, a plain or an async function returning a bool.
        if_true: the task to run when the predicate is true.
        if_false: the task to run when it is false, or None.
        depends_on: ids of the workflow tasks that must succeed first.
        timeout: seconds the whole combinator may run (children keep their own).
        estimate: expected seconds, for scheduling priority.
        retries: retries of the whole combinator after a failure.
        compensation_timeout: limit for compensating children, in seconds.
    """

    id: str
    predicate: Callable[[TaskContext], bool | Awaitable[bool]] = attrs.field(
        validator=context_function(awaitable=False, optional=False)
    )
    if_true: WorkflowTask = attrs.field(converter=_one_task)
    if_false: WorkflowTask | None = attrs.field(default=None, converter=_optional_task)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )

    @property
    def branches(self) -> tuple[WorkflowTask, ...]:
        """The branches that exist."""
        return (self.if_true,) if self.if_false is None else (self.if_true, self.if_false)

    @property
    def has_compensation(self) -> bool:
        """Whether either branch has something to undo."""
        return any(has_compensation(c) for c in self.branches)

    async def run(self, ctx: TaskContext) -> Any:
        """Evaluate the predicate and run the chosen branch."""
        decision = self.predicate(ctx)
        if inspect.isawaitable(decision):
            decision = await decision
        else:
            await trio.lowlevel.checkpoint()
        branch = self.if_true if decision else self.if_false
        if branch is None:
            return None
        results: dict[str, Any] = ctx.state.setdefault(_RESULTS, {})
        results[branch.id] = await run_child(branch, ctx.child(branch.id))
        ctx.state[_COMPLETED] = [branch.id]
        return results[branch.id]

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate the branch that ran."""
        await _compensate_children(
            ctx, self.branches, ctx.state.get(_COMPLETED, []), self.compensation_timeout
        )


@attrs.frozen
class TryCatchTask:
    """Run ``task``; if it fails with one of ``catch``, run ``fallback`` instead.

    The result is ``task``'s result, or ``fallback``'s. The caught exception
    is in ``ctx.state["error"]`` of both this task and the fallback.
    Cancellation is never caught.

    Args:
        id: the combinator's task id.
        task: the task to try.
        fallback: the task to run when ``task`` fails.
        catch: the exception types that trigger the fallback.
        depends_on: ids of the workflow tasks that must succeed first.
        timeout: seconds the whole combinator may run (children keep their own).
        estimate: expected seconds, for scheduling priority.
        retries: retries of the whole combinator after a failure.
        compensation_timeout: limit for compensating children, in seconds.
    """

    id: str
    task: WorkflowTask = attrs.field(converter=_one_task)
    fallback: WorkflowTask = attrs.field(converter=_one_task)
    catch: tuple[type[Exception], ...] = attrs.field(default=(Exception,), kw_only=True)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if self.task.id == self.fallback.id:
            raise ValueError(f"task and fallback share the id {self.task.id!r}")

    @property
    def has_compensation(self) -> bool:
        """Whether the task or the fallback has something to undo."""
        return has_compensation(self.task) or has_compensation(self.fallback)

    async def run(self, ctx: TaskContext) -> Any:
        """Run the task, or the fallback when the task fails."""
        results: dict[str, Any] = ctx.state.setdefault(_RESULTS, {})
        try:
            results[self.task.id] = await run_child(self.task, ctx.child(self.task.id))
        except self.catch as exc:
            ctx.state["error"] = exc
        else:
            ctx.state[_COMPLETED] = [self.task.id]
            return results[self.task.id]
        fallback_ctx = ctx.child(self.fallback.id)
        fallback_ctx.state["error"] = ctx.state["error"]
        results[self.fallback.id] = await run_child(self.fallback, fallback_ctx)
        ctx.state[_COMPLETED] = [self.fallback.id]
        return results[self.fallback.id]

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate whichever of task and fallback completed."""
        await _compensate_children(
            ctx,
            (self.task, self.fallback),
            ctx.state.get(_COMPLETED, []),
            self.compensation_timeout,
        )


@attrs.frozen
class RaceTasks:
    """Run children concurrently; the first to succeed wins and the others are cancelled.

    The result is the winner's result; the winner's id is kept in the
    combinator's own ``ctx.state["winner"]`` (visible to its compensation).
    A loser that also completed before its cancel arrived is compensated at
    once. Fails, with :class:`~trioforge.TaskFailedError` holding every child
    failure, only when every child failed.

    Args:
        id: the combinator's task id.
        tasks: the competing children (at least one, unique ids, no ``depends_on``).
        depends_on: ids of the workflow tasks that must succeed first.
        timeout: seconds the whole combinator may run (children keep their own).
        estimate: expected seconds, for scheduling priority.
        retries: retries of the whole combinator after a failure.
        compensation_timeout: limit for compensating children, in seconds.
    """

    id: str
    tasks: tuple[WorkflowTask, ...] = attrs.field(converter=_children, validator=_at_least_one)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )

    @property
    def has_compensation(self) -> bool:
        """Whether any child has something to undo."""
        return any(has_compensation(c) for c in self.tasks)

    async def run(self, ctx: TaskContext) -> Any:
        """Race the children; return the winner's result."""
        results: dict[str, Any] = {}
        completed: list[str] = []
        failures: dict[str, BaseException] = {}
        ctx.state[_RESULTS] = results

        async def race() -> None:
            async with trio.open_nursery() as nursery:

                async def one(child: WorkflowTask) -> None:
                    await trio.lowlevel.checkpoint()
                    try:
                        result = await run_child(child, ctx.child(child.id))
                    except Exception as exc:
                        failures[child.id] = exc
                    else:
                        results[child.id] = result
                        completed.append(child.id)
                        nursery.cancel_scope.cancel(reason=f"child {child.id!r} won the race")

                for child in self.tasks:
                    nursery.start_soon(one, child)

        # Stopped by its timeout or a cancel from outside: every child that
        # completed (the winner too) is undone.
        await _undoing(race, ctx, self.tasks, completed, self.compensation_timeout)
        if not completed:
            first = next(iter(failures))
            raise TaskFailedError(first, failures) from failures[first]
        winner = completed[0]
        ctx.state["winner"] = winner
        ctx.state[_COMPLETED] = [winner]
        if len(completed) > 1:
            # Losers that finished before their cancel arrived: their results are
            # discarded, so their effects must go too.
            # If a loser's effects cannot be undone, the race fails: the winner is
            # undone too, so that nothing of this failed task remains.
            await _undoing(
                partial(
                    _compensate_children, ctx, self.tasks, completed[1:], self.compensation_timeout
                ),
                ctx,
                self.tasks,
                [winner],
                self.compensation_timeout,
            )
        return results[winner]

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate the winner."""
        await _compensate_children(
            ctx, self.tasks, ctx.state.get(_COMPLETED, []), self.compensation_timeout
        )
