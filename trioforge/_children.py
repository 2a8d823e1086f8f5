"""How a combinator runs its children and undoes them.

A child runs under its own ``timeout`` (:func:`run_child`) with a context made
by :meth:`TaskContext.child`, so the undo steps it registers belong to the
combinator's task. When a combinator stops for any reason (a child's failure,
its own timeout, a cancel from outside), :func:`_undoing` compensates the
children that had completed, newest first, shielded and bounded by the
combinator's ``compensation_timeout`` (the core's ``undo_all``), and then lets
the exception go on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import attrs
import trio

from ._core import (
    TaskContext,
    TaskTimeoutError,
    UndoItem,
    WorkflowTask,
    has_compensation,
    is_cancellation,
    undo_all,
)

__all__ = ["run_child"]

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
