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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import trio

from ._children import (
    _COMPLETED,
    _RESULTS,
    _at_least_one,
    _child_ctx,
    _children,
    _compensate_children,
    _one_task,
    _optional_task,
    _undo,
    _undoing,
    run_child,
)
from ._core import (
    TaskContext,
    TaskFailedError,
    WorkflowTask,
    _to_ids,
    context_function,
    count,
    has_compensation,
    seconds,
)

__all__ = ["ConditionalTask", "ParallelTasks", "RaceTasks", "SequentialTasks", "TryCatchTask"]


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
