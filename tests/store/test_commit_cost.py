"""The cost of a commit does not grow with the size of the run (issue 12, item 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from trioforge._core._events import AuditEvent, EventType
from trioforge._store._database import SQLiteDatabase
from trioforge._store._records import RunRecord

T0 = 1_700_000_000.0


def _definition(n: int) -> dict[str, object]:
    return {"name": "wide", "tasks": [{"id": f"t{i}", "depends_on": []} for i in range(n)]}


def _events(task_id: str) -> list[AuditEvent]:
    return [
        AuditEvent(EventType.TASK_STARTED, "r1", 0.0, T0, task_id, None, 1),
        AuditEvent(EventType.TASK_COMPLETED, "r1", 1.0, T0 + 1, task_id, None, 1, 1.0),
    ]


def _traced_commit(db: SQLiteDatabase, events: list[AuditEvent]) -> list[str]:
    statements: list[str] = []
    db._conn.set_trace_callback(statements.append)
    try:
        db.commit("r1", events, {e.task_id: 1 for e in events if e.task_id})
    finally:
        db._conn.set_trace_callback(None)
    return statements


def test_a_commit_of_known_tasks_never_scans_the_runs_rows(tmp_path: Path) -> None:
    """Committing events of tasks the definition has runs no MAX(position) scan of the run."""
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("r1", _definition(2000), started_at=T0))
        statements = _traced_commit(db, _events("t5") + _events("t1999"))
        # A second connection (another process) knows nothing cached: still no scan.
        other = SQLiteDatabase(tmp_path / "runs.db")
        try:
            later = _traced_commit(other, _events("t7"))
        finally:
            other.close()
    finally:
        db.close()
    scans = [s for s in statements + later if "MAX(position)" in s]
    assert scans == []


def test_a_batch_applies_its_events_in_order(tmp_path: Path) -> None:
    """A batch of every task's start, then every completion, leaves each task completed once."""
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("r1", _definition(500), started_at=T0))
        starts = [e for i in range(500) for e in _events(f"t{i}")[:1]]
        ends = [e for i in range(500) for e in _events(f"t{i}")[1:]]
        db.commit("r1", starts + ends + _events("t0")[:1], {"t0": 0})
        run = db.load("r1", now=T0)
    finally:
        db.close()
    assert run.tasks["t0"].state == "running"
    del run.tasks["t0"]
    assert {"completed"} == {task.state for task in run.tasks.values()}
    assert {1} == {task.attempts for task in run.tasks.values()}


def test_a_task_the_definition_lacks_still_gets_a_row_after_the_others(tmp_path: Path) -> None:
    """An event of an unknown task gives it a pending row at the end, then applies."""
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("r1", _definition(3), started_at=T0))
        db.commit("r1", _events("extra"), {"extra": 5})
        run = db.load("r1", now=T0)
        rows = db._conn.execute(
            "SELECT task_id, position FROM tasks WHERE run_id = 'r1' ORDER BY position"
        ).fetchall()
    except sqlite3.Error:
        raise
    finally:
        db.close()
    assert rows == [("t0", 0), ("t1", 1), ("t2", 2), ("extra", 3)]
    assert run.tasks["extra"].state == "completed"
    assert run.tasks["extra"].result() == 5
