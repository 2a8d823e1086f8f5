"""Rollback by compensation (a saga): the order (pure) and its shielded driver.

What is undone: every completed task's ``compensate``, and every undo step
registered with ``ctx.add_compensation``, whether its task completed, failed,
timed out or was cancelled.

The order. A task can only complete after every task it depends on
completed, so the reverse of the completion order is a reverse dependency
order: each task is undone before anything it depends on. A task that did
not complete has no started dependents, so its steps run first (newest
registration first); then each completed task, in reverse completion order,
gets its ``compensate`` and then its own steps, newest first.

The driver is :func:`~trioforge._core._undo.undo_all`: one item at a time,
inside one shielded cancel scope bounded by the executor's
``compensation_timeout``, so the rollback runs even while the caller is being
cancelled, and every item is recorded (see that module for what happens when
an item raises, overruns the limit, or raises a ``BaseException``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from ._runner import Run
from ._task import has_compensation
from ._undo import UndoItem, Undone, step_label, undo_all

__all__ = ["compensation_order", "roll_back", "undo_order"]


def compensation_order(
    completed: Sequence[str], has_compensation: Callable[[str], bool]
) -> list[str]:
    """The completed tasks whose ``compensate`` runs, in order: reverse completion order."""
    return [task_id for task_id in reversed(completed) if has_compensation(task_id)]


def undo_order(
    completed: Sequence[str],
    has_compensation: Callable[[str], bool],
    steps: Mapping[str, int],
) -> list[tuple[str, int | None]]:
    """Every piece of undo work, in order, as ``(task_id, step)``.

    ``step`` is None for a task's ``compensate``, else the index (from 0) of
    a registered step. ``steps`` holds how many steps each task registered,
    in the order the tasks first registered one.
    """
    done = set(completed)
    order: list[tuple[str, int | None]] = []
    for task_id in reversed(list(steps)):
        if task_id not in done:
            order.extend((task_id, index) for index in reversed(range(steps[task_id])))
    for task_id in reversed(completed):
        if has_compensation(task_id):
            order.append((task_id, None))
        order.extend((task_id, index) for index in reversed(range(steps.get(task_id, 0))))
    return order


async def roll_back(run: Run, limit: float) -> Undone:
    """Undo what ``run`` did, within ``limit`` seconds; each step at most once.

    The failures (the first per task, also merged into
    :attr:`Run.compensation_failures`) and any ``BaseException`` to re-raise
    once the caller's bookkeeping is done come back in the :class:`Undone`.
    """
    index = run.dag.index
    tasks = run.tasks
    registered = {task_id: list(steps) for task_id, steps in run.steps.items() if steps}
    run.steps.clear()
    order = undo_order(
        run.completed,
        lambda task_id: has_compensation(tasks[index[task_id]]),
        {task_id: len(steps) for task_id, steps in registered.items()},
    )
    items: list[UndoItem] = []
    for task_id, step in order:
        if step is None:
            node = index[task_id]
            ctx = run.context(node, run.attempts(task_id), compensating=True)
            items.append(UndoItem(task_id, partial(tasks[node].compensate, ctx)))
        else:
            fn, args = registered[task_id][step]
            items.append(UndoItem(task_id, partial(fn, *args), step_label(step + 1, fn)))
    undone = await undo_all(items, limit, run.emit_undo)
    for task_id, exc in undone.failures.items():
        run.compensation_failures.setdefault(task_id, exc)
    undone.failures = dict(run.compensation_failures)
    return undone
