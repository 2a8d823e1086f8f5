"""Folding a batch of audit events into a run's rows: a few statements per batch, not per event.

A commit appends its events and applies each one to its task's row (or the
run's). The naive way runs one ``UPDATE`` per event and, before it, makes
sure the task has a row with ``INSERT ... SELECT MAX(position) + 1``, which
scans all of the run's rows: the cost of a commit then grows with the size
of the run (5 ms per commit at 10,000 tasks). Here every event becomes one
``(statement, parameters)`` pair; runs of consecutive pairs with the same
statement go to the database in one ``executemany`` (order is kept, so a
start and a completion of one task in one batch still apply in that order);
and only a task whose row is not known yet (one the definition does not
have) is looked up, through the primary key, and given a row after the
others.

Pure functions over a ``sqlite3.Connection`` inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, MutableSet, Sequence
from itertools import groupby
from typing import Any

from .._core import EventType

__all__ = ["RUN_ENDS", "ensure_rows", "fold"]

_FAILURE_ENDS = frozenset({EventType.TASK_FAILED.value, EventType.TASK_TIMED_OUT.value})
_TASK_STARTED = EventType.TASK_STARTED.value
_TASK_COMPLETED = EventType.TASK_COMPLETED.value
#: The run status each run-ending event stores.
RUN_ENDS = {
    EventType.WORKFLOW_COMPLETED: "completed",
    EventType.WORKFLOW_FAILED: "failed",
    EventType.WORKFLOW_CANCELLED: "cancelled",
    EventType.WORKFLOW_TIMED_OUT: "timed_out",
}
_WHERE = " WHERE run_id = ? AND task_id = ?"
_STARTED = (
    "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?, "
    "finished_at = NULL, duration = NULL" + _WHERE
)
_COMPLETED = (
    "UPDATE tasks SET state = 'completed', finished_at = ?, duration = ?, error = NULL, "
    "result_json = ?, result_restorable = ?, compensated = 0" + _WHERE
)
# Final unless a TASK_RETRYING follows (in this batch or the next).
_FAILED = "UPDATE tasks SET state = 'failed', finished_at = ?, duration = ?, error = ?" + _WHERE
_RETRYING = "UPDATE tasks SET state = 'running'" + _WHERE
_CANCELLED = "UPDATE tasks SET state = 'cancelled', finished_at = ?, duration = ?" + _WHERE
_SKIPPED = "UPDATE tasks SET state = 'skipped'" + _WHERE
_COMPENSATED = "UPDATE tasks SET compensated = 1" + _WHERE
_RUN_STARTED = "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?"
_RUN_ENDED = "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?"


def ensure_rows(
    conn: sqlite3.Connection, run_id: str, task_ids: Iterable[str], known: MutableSet[str]
) -> None:
    """Give each task of ``task_ids`` not in ``known`` a row (``pending``, after the others).

    ``known`` holds task ids that have a row for sure; the ones checked or
    created here are added to it.
    """
    for task_id in task_ids:
        if task_id in known:
            continue
        key = (run_id, task_id)
        if not conn.execute("SELECT 1 FROM tasks" + _WHERE, key).fetchone():
            conn.execute(
                "INSERT INTO tasks (run_id, task_id, position, state) "
                "SELECT ?, ?, COALESCE(MAX(position) + 1, 0), 'pending' "
                "FROM tasks WHERE run_id = ?",
                (*key, run_id),
            )
        known.add(task_id)


def fold(
    conn: sqlite3.Connection,
    run_id: str,
    rows: Sequence[tuple[Any, ...]],
    encoded: Mapping[str, tuple[str | None, bool]],
) -> None:
    """Apply events to the run's rows, in order (``encoded``: results by task id).

    ``rows``: each event as the tuple of its :class:`AuditEvent` fields
    (``fields_of``), the type as its string.
    """
    pairs = (_statement(run_id, row, encoded) for row in rows)
    for sql, group in groupby((p for p in pairs if p is not None), key=lambda p: p[0]):
        conn.executemany(sql, [params for _, params in group])


def _statement(
    run_id: str, row: tuple[Any, ...], encoded: Mapping[str, tuple[str | None, bool]]
) -> tuple[str, tuple[Any, ...]] | None:
    """The statement and parameters that apply one event; None for events that change no row."""
    kind, _workflow_id, _clock, wall, task_id, _layer, attempt, duration, error, _detail = row
    if kind == _TASK_STARTED:
        return _STARTED, (wall, run_id, task_id)
    if kind == _TASK_COMPLETED:
        text, restorable = encoded.get(task_id or "", (None, False))
        return _COMPLETED, (wall, duration, text, int(restorable), run_id, task_id)
    if kind in _FAILURE_ENDS:
        return _FAILED, (wall, duration, error, run_id, task_id)
    if kind == EventType.TASK_RETRYING:
        return _RETRYING, (run_id, task_id)
    if kind == EventType.TASK_CANCELLED:
        return _CANCELLED, (wall, duration, run_id, task_id)
    if kind == EventType.TASK_SKIPPED:
        return _SKIPPED, (run_id, task_id)
    if kind == EventType.TASK_COMPENSATED and attempt is None:
        # With an attempt: a failed attempt's steps, undone before its retry (not a rollback).
        return _COMPENSATED, (run_id, task_id)
    if kind == EventType.WORKFLOW_STARTED:
        return _RUN_STARTED, (run_id,)
    if kind in RUN_ENDS:
        return _RUN_ENDED, (RUN_ENDS[kind], wall, run_id)
    return None
