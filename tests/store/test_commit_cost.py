"""The cost of a commit does not grow with the size of the run, nor with its events (issue 12)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from trioforge._core._events import AuditEvent, EventType
from trioforge._store import _database
from trioforge._store._database import SQLiteDatabase
from trioforge._store._log import CHUNK
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


def test_a_commits_statements_do_not_grow_with_the_run(tmp_path: Path) -> None:
    """Committing two tasks' events runs the same statements in a 3- and a 2,000-task run."""
    found = []
    for n in (3, 2000):
        db = SQLiteDatabase(tmp_path / f"runs{n}.db")
        try:
            db.create_run(RunRecord.start("r1", _definition(n), started_at=T0))
            statements = _traced_commit(db, _events("t1") + _events("t2"))
        finally:
            db.close()
        # The commit's own transaction (a WAL reserve may follow it: _reserve_wal).
        statements = statements[
            statements.index("BEGIN IMMEDIATE") : statements.index("COMMIT") + 1
        ]
        found.append([s.split("(")[0].split(" WHERE")[0] for s in statements])
    assert found[0] == found[1]
    assert not [s for s in found[1] if "tasks" in s]


def test_a_commit_writes_one_log_row_per_chunk_of_events(tmp_path: Path) -> None:
    """20,000 events (10,000 tasks' starts and completions) are 79 rows, not 20,000."""
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("r1", _definition(10_000), started_at=T0))
        events = [e for i in range(10_000) for e in _events(f"t{i}")]
        db.commit("r1", events, {f"t{i}": i for i in range(10_000)})
        rows = db._conn.execute("SELECT count(*) FROM log").fetchone()[0]
        run = db.load("r1", now=T0)
    finally:
        db.close()
    assert rows == -(-20_000 // CHUNK)
    assert [run.tasks[f"t{i}"].result() for i in (0, 4_999, 9_999)] == [0, 4_999, 9_999]


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


def test_a_task_the_definition_lacks_is_listed_after_the_others(tmp_path: Path) -> None:
    """An event of an unknown task gives it a record after the definition's tasks."""
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("r1", _definition(3), started_at=T0))
        db.commit("r1", _events("extra"), {"extra": 5})
        run = db.load("r1", now=T0)
    finally:
        db.close()
    assert list(run.tasks) == ["t0", "t1", "t2", "extra"]
    assert [t.state for t in run.tasks.values()] == ["pending"] * 3 + ["completed"]
    assert run.tasks["extra"].result() == 5


def _wal_sizes_over_small_commits(path: Path, commits: int) -> list[int]:
    """The WAL file's size after each of ``commits`` one-task commits to a new store."""
    db = SQLiteDatabase(path)
    sizes = []
    try:
        db.create_run(RunRecord.start("r1", _definition(commits), started_at=T0))
        for i in range(commits):
            db.commit("r1", _events(f"t{i}"), {f"t{i}": i})
            sizes.append(Path(f"{path}-wal").stat().st_size)
    finally:
        db.close()
    return sizes


def test_small_commits_write_over_room_reserved_in_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many small commits grow the WAL file a few times, not once each (_reserve_wal)."""
    sizes = _wal_sizes_over_small_commits(tmp_path / "runs.db", 60)
    growths = sum(b > a for a, b in itertools.pairwise(sizes))
    monkeypatch.setattr(_database, "WAL_SMALL", 0)  # no reserving: what it saves
    unreserved = _wal_sizes_over_small_commits(tmp_path / "plain.db", 60)
    assert sum(b > a for a, b in itertools.pairwise(unreserved)) >= 50
    assert growths <= 3


def test_reserved_wal_room_is_never_read(tmp_path: Path) -> None:
    """Another connection, and the files as a SIGKILL would leave them, see no reserve.

    They see every commit and nothing of the rolled-back reserve transactions.
    """
    path = tmp_path / "runs.db"
    db = SQLiteDatabase(path)
    try:
        db.create_run(RunRecord.start("r1", _definition(30), started_at=T0))
        for i in range(30):
            db.commit("r1", _events(f"t{i}"), {f"t{i}": i})
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        for suffix in ("", "-wal"):  # the files as they are while the store is open
            shutil.copyfile(f"{path}{suffix}", f"{crashed / 'runs.db'}{suffix}")
        for where in (path, crashed / "runs.db"):
            other = SQLiteDatabase(where)
            try:
                run = other.load("r1", now=T0)
                tables = [r[0] for r in other._conn.execute("SELECT name FROM sqlite_master")]
                assert other._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                other.close()
            assert [run.tasks[f"t{i}"].result() for i in range(30)] == list(range(30))
            assert not [name for name in tables if "reserve" in name]
    finally:
        db.close()
