"""How a run that did not succeed ends: rollback, the terminal event, and one domain error.

The executor's lifecycle calls :func:`fail` when the run stopped itself (a
task failed, the deadline passed, :meth:`~trioforge.WorkflowExecutor.cancel`)
and :func:`stopped_from_outside` when the caller's cancel scope, an
interrupt or a bug stopped it; both roll back first (shielded, bounded by
``limit``) and never let a cleanup error hide why the run ended.
"""

from __future__ import annotations

from typing import NoReturn

import trio

from ._errors import TaskFailedError, WorkflowCancelledError, WorkflowError, WorkflowTimeoutError
from ._events import EventType
from ._groups import is_cancellation, lone_base_exception
from ._rollback import roll_back
from ._runner import Run, describe

__all__ = ["fail", "stopped_from_outside"]


async def stopped_from_outside(run: Run, exc: BaseException, start: float, limit: float) -> None:
    """Roll back a run stopped by the caller's cancel scope, an interrupt or a bug.

    The caller re-raises ``exc``; a lone ``KeyboardInterrupt``-like exception
    raised inside a task is raised as itself, and an interrupt raised by a
    compensation outranks them both (with ``exc`` as its context).
    """
    undone = await roll_back(run, limit)
    lone = lone_base_exception(exc)
    run.emit(
        EventType.WORKFLOW_CANCELLED,
        duration=trio.current_time() - start,
        error="Cancelled" if is_cancellation(exc) else describe(lone or exc),
        detail="stopped from outside the run",
    )
    stopper = lone if lone is not None else exc
    if not is_cancellation(stopper):
        for task_id, failure in run.failures.items():
            stopper.add_note(f"trioforge: task {task_id!r} had failed: {describe(failure)}")
    if undone.raised is not None and undone.raised is not stopper:
        raise undone.raised  # an interrupt from a compensation outranks exc
    if lone is not None:
        # A KeyboardInterrupt/SystemExit raised inside a task reaches the
        # caller as itself, not wrapped in the nursery's group.
        raise lone  # the group is kept as __context__


async def fail(run: Run, start: float, limit: float, *, stopped: bool) -> NoReturn:
    """Roll back, record the terminal event and raise the run's error.

    The reason escalates (a failure < the timeout < a cancel) and what came
    before is kept: every error carries ``failures`` and ``results`` and
    chains the first failure as ``__cause__``. A ``BaseException`` raised by
    a compensation is raised last, with the run's error as its context.
    """
    undone = await roll_back(run, limit)
    duration = trio.current_time() - start
    failures = run.failures
    cause = next(iter(failures.values()), None)
    error: WorkflowError
    if stopped and (run.cancel_reason is not None or run.workflow_timeout is None):
        reason = run.cancel_reason or run.stop_reason()
        run.emit(EventType.WORKFLOW_CANCELLED, duration=duration, detail=reason)
        error = WorkflowCancelledError(
            reason,
            completed=run.completed,
            compensation_failures=undone.failures,
            results=run.results,
            failures=failures,
        )
    elif stopped:
        assert run.workflow_timeout is not None
        run.emit(
            EventType.WORKFLOW_TIMED_OUT,
            duration=duration,
            detail=f"{len(failures)} task(s) had failed" if failures else None,
        )
        error = WorkflowTimeoutError(
            run.workflow_timeout,
            completed=run.completed,
            running=run.cancelled,
            compensation_failures=undone.failures,
            results=run.results,
            failures=failures,
        )
    else:
        first_id = next(iter(failures))
        run.emit(
            EventType.WORKFLOW_FAILED,
            duration=duration,
            error=describe(failures[first_id]),
            detail=f"task {first_id!r} failed first; {len(failures)} failed in all",
        )
        error = TaskFailedError(
            first_id,
            failures,
            completed=run.completed,
            skipped=run.skipped,
            compensation_failures=undone.failures,
            results=run.results,
        )
    if undone.raised is not None:
        # An interrupt (or other BaseException) from a compensation outranks
        # the run's error, which stays its context.
        error.__cause__ = cause
        undone.raised.__context__ = error
        raise undone.raised
    if cause is not None:
        raise error from cause
    raise error
