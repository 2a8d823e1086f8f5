"""Running undo work (compensations, registered steps): shielded, bounded, fully recorded.

Rollback and the undo of a failed attempt's steps share one driver,
:func:`undo_all`. It runs a list of undo items one at a time inside a single
``trio.move_on_after(limit, shield=True)`` scope, and whatever happens it
finishes its bookkeeping: every item ends with exactly one event
(``WorkflowTaskCompensated`` or ``WorkflowTaskCompensationFailed``) and every
failure is kept, the first per task.

What can go wrong with an item, and what the driver does:

* it raises an ``Exception``: recorded, the next item runs;
* the limit runs out while it runs: it and every item not yet run are
  recorded as failed with a ``TimeoutError``;
* it overruns the limit and returns anyway (it swallowed ``trio.Cancelled``):
  recorded as failed with a ``TimeoutError``, never as done. No trio program
  can stop a function that swallows ``Cancelled`` in a loop; the limit bounds
  every well-behaved item, not such a one;
* it raises another ``BaseException``: recorded; when it is an interrupt
  (``KeyboardInterrupt``, ``SystemExit``) the items not yet run are recorded
  as not run, otherwise they still run; the exception is handed back in
  :attr:`Undone.raised` for the caller to re-raise once its own bookkeeping
  (the run's terminal event) is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from ._groups import is_cancellation

__all__ = ["Emit", "UndoItem", "Undone", "describe", "is_interrupt", "step_label", "undo_all"]


def describe(exc: BaseException) -> str:
    """``"Type: message"`` for audit events."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` asks the whole program to stop (``KeyboardInterrupt``, ``SystemExit``)."""
    return isinstance(exc, KeyboardInterrupt | SystemExit)


def step_label(number: int, fn: Callable[..., object]) -> str:
    """``"step 2: release"``: how events name a registered undo step (numbered from 1)."""
    inner = getattr(fn, "func", fn)  # a functools.partial
    name = getattr(inner, "__qualname__", None) or repr(fn)
    return f"step {number}: {name}"


@attrs.frozen
class UndoItem:
    """One piece of undo work: a task's ``compensate`` (``label`` None) or one registered step.

    ``attempt`` is set only for the steps of a failed attempt undone before
    the task's next attempt (not a rollback of the task).
    """

    task_id: str
    call: Callable[[], Awaitable[object]]
    label: str | None = None
    attempt: int | None = None


#: ``emit(ok, item, duration, error)``: record the outcome of one item.
Emit = Callable[[bool, UndoItem, float | None, str | None], object]


@attrs.define(eq=False)
class Undone:
    """What :func:`undo_all` did: the failures (first per task) and a BaseException to re-raise."""

    failures: dict[str, BaseException] = attrs.Factory(dict)
    raised: BaseException | None = None


async def undo_all(items: Sequence[UndoItem], limit: float, emit: Emit) -> Undone:
    """Run ``items`` in order in one shielded scope of ``limit`` seconds (see the module note)."""
    undone = Undone()
    failures = undone.failures
    position = 0
    with trio.move_on_after(limit, shield=True) as scope:
        # A schedule point even with nothing to undo (shielded: it cannot raise).
        await trio.lowlevel.checkpoint()
        while position < len(items):
            item = items[position]
            position += 1
            started = trio.current_time()
            try:
                await item.call()
            except trio.Cancelled:
                # Inside the shield only the limit can cancel: recorded below.
                position -= 1
                raise
            except Exception as exc:
                failures.setdefault(item.task_id, exc)
                emit(False, item, trio.current_time() - started, describe(exc))
                continue
            except BaseException as exc:
                if is_cancellation(exc):  # a group of Cancelled: the limit, as above
                    position -= 1
                    raise
                # KeyboardInterrupt, SystemExit or another BaseException: recorded
                # now, handed back for the caller to re-raise after its bookkeeping.
                failures.setdefault(item.task_id, exc)
                emit(False, item, trio.current_time() - started, describe(exc))
                if undone.raised is None:
                    undone.raised = exc
                if is_interrupt(exc):
                    break
                continue
            if scope.cancel_called:
                # It returned after the limit ran out: it swallowed the cancel.
                late = TimeoutError(f"compensation overran its limit of {limit:g}s")
                failures.setdefault(item.task_id, late)
                emit(False, item, trio.current_time() - started, describe(late))
                continue
            emit(True, item, trio.current_time() - started, None)
    if position < len(items):
        if undone.raised is not None and is_interrupt(undone.raised):
            reason: BaseException = RuntimeError(
                f"not run: the rollback was interrupted by {describe(undone.raised)}"
            )
        else:
            reason = TimeoutError(f"compensation did not finish within {limit:g}s")
        for item in items[position:]:
            failures.setdefault(item.task_id, reason)
            emit(False, item, None, describe(reason))
    return undone
