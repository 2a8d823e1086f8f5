"""Rollback by compensation (a saga): the order (pure) and its shielded driver.

A task can only complete after every task it depends on completed, so the
reverse of the completion order is always a reverse dependency order: each
task is compensated before anything it depends on. Compensations run one at a
time in that order, inside one shielded cancel scope bounded by the
executor's ``compensation_timeout``: they run even while the caller is being
cancelled, and can never hang the caller. A compensation that raises is
recorded and the rest still run; when the time runs out, every compensation
not yet done is recorded as failed with a :class:`TimeoutError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import trio

from ._events import EventType
from ._runner import Run, describe
from ._task import WorkflowTask, has_compensation

__all__ = ["compensate_completed", "compensation_order"]


def compensation_order(
    completed: Sequence[str], has_compensation: Callable[[str], bool]
) -> list[str]:
    """The tasks to compensate, in order.

    That is the reverse completion order, without the tasks that have nothing to undo.
    """
    return [task_id for task_id in reversed(completed) if has_compensation(task_id)]


async def compensate_completed(run: Run, limit: float) -> dict[str, BaseException]:
    """Compensate every completed task of ``run``; return the failures by task id."""
    index = run.dag.index
    tasks: Mapping[str, WorkflowTask] = {tid: run.tasks[index[tid]] for tid in run.completed}
    order = compensation_order(run.completed, lambda tid: has_compensation(tasks[tid]))
    failures: dict[str, BaseException] = {}
    if not order:
        return failures
    done = 0
    with trio.move_on_after(limit, shield=True):
        for task_id in order:
            node = index[task_id]
            ctx = run.context(node, run.attempts(task_id), compensating=True)
            started = trio.current_time()
            try:
                await tasks[task_id].compensate(ctx)
            except Exception as exc:
                failures[task_id] = exc
                run.emit(
                    EventType.TASK_COMPENSATION_FAILED,
                    task_id,
                    duration=trio.current_time() - started,
                    error=describe(exc),
                )
            else:
                run.emit(
                    EventType.TASK_COMPENSATED,
                    task_id,
                    duration=trio.current_time() - started,
                )
            done += 1
    for task_id in order[done:]:
        late = TimeoutError(f"compensation did not finish within {limit:g}s")
        failures[task_id] = late
        run.emit(EventType.TASK_COMPENSATION_FAILED, task_id, error=describe(late))
    return failures
