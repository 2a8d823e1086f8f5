"""The run store: schema and migrations, commits, loads, leases, group commit, crash safety."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge._core._audit import fields_of
from trioforge._core._events import AuditEvent, EventType
from trioforge._store._codec import (
    decode_result,
    decode_state,
    dump_result,
    encode_result,
    encode_state,
)
from trioforge._store._database import SQLiteDatabase
from trioforge._store._lease import hold_lease, keep_lease
from trioforge._store._owner import holder_is_dead, lease_owner
from trioforge._store._records import (
    RunLockedError,
    RunNotFoundError,
    RunRecord,
    RunStoreError,
    TaskRecord,
    definition_hash,
    definition_snapshot,
)
from trioforge._store._schema import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from trioforge._store._sqlite import SQLiteRunStore, default_store_path
from trioforge._store._writer import RunRecorder

T0 = 1_700_000_000.0
DIAMOND = {
    "name": "diamond",
    "tasks": [
        {"id": "a", "depends_on": []},
        {"id": "b", "depends_on": ["a"]},
        {"id": "c", "depends_on": ["a"]},
        {"id": "d", "depends_on": ["b", "c"]},
    ],
}


class FakeClock:
    """A settable wall clock for leases."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(
    kind: EventType,
    task_id: str | None = None,
    wall: float = T0,
    *,
    run_id: str = "r1",
    attempt: int | None = None,
    duration: float | None = None,
    error: str | None = None,
    detail: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        kind, run_id, wall - T0, wall, task_id, None, attempt, duration, error, detail
    )


def record(
    run_id: str = "r1",
    definition: dict[str, Any] | None = None,
    started_at: float = T0,
) -> RunRecord:
    return RunRecord.start(run_id, definition or DIAMOND, started_at=started_at)


async def new_store(tmp_path: Path, **kwargs: Any) -> SQLiteRunStore:
    store = SQLiteRunStore(tmp_path / "runs.db", **kwargs)
    await store.create_run(record())
    return store


def completed(task_id: str, start: float, end: float, run_id: str = "r1") -> list[AuditEvent]:
    return [
        ev(EventType.TASK_STARTED, task_id, start, run_id=run_id, attempt=1),
        ev(
            EventType.TASK_COMPLETED,
            task_id,
            end,
            run_id=run_id,
            attempt=1,
            duration=end - start,
        ),
    ]


# -- schema and migrations ------------------------------------------------------


async def test_schema_is_created_on_first_use(tmp_path: Path) -> None:
    """A store on a new path creates its folder and file, in WAL mode, at the newest schema."""
    path = tmp_path / "deep" / "runs.db"
    async with SQLiteRunStore(path):
        assert path.exists()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"runs", "definitions", "log", "leases"}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_migration_from_an_older_version_keeps_the_data(tmp_path: Path) -> None:
    """A file at the current version opened with one more step is migrated, its runs still load."""
    path = tmp_path / "runs.db"
    async with SQLiteRunStore(path) as store:
        await store.create_run(record())
        await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
    extra = Migration(SCHEMA_VERSION + 1, "runs.note", ("ALTER TABLE runs ADD COLUMN note TEXT",))
    async with SQLiteRunStore(path, migrations=(*MIGRATIONS, extra)) as store:
        run = await store.load("r1")
    assert run.tasks["a"].state == "completed"
    assert run.tasks["a"].result() == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert "note" in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    conn.close()


def old_store(path: Path, version: int, events: int = 0) -> list[AuditEvent]:
    """A file as trioforge wrote it at schema ``version`` (1 or 2); return its events.

    Run r1 of tasks a-d: a completed (result ``{"n": 1}``; at version 2 with a
    ctx.state), b started, c and d pending; ``events`` more events (b's
    earlier attempts, each a start and a retry) make the run longer than one
    log row.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, where=str(path), migrations=MIGRATIONS[:version])
    definition = record().definition
    conn.execute(
        "INSERT INTO runs (id, workflow, definition_hash, definition, status, started_at) "
        "VALUES ('r1', 'diamond', ?, ?, 'running', ?)",
        (definition_hash(definition), json.dumps(definition), T0),
    )
    rows = [
        ("a", "completed", 1, T0, T0 + 1, '{"n":1}', 1, 1.0),
        ("b", "running", 1 + events // 2, T0 + 1, None, None, 0, None),
        ("c", "pending", 0, None, None, None, 0, None),
        ("d", "pending", 0, None, None, None, 0, None),
    ]
    for position, (tid, state, attempts, started, finished, result, ok, duration) in enumerate(
        rows
    ):
        conn.execute(
            "INSERT INTO tasks (run_id, task_id, position, state, attempts, started_at, "
            "finished_at, result_json, result_restorable, duration) "
            "VALUES ('r1', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tid, position, state, attempts, started, finished, result, ok, duration),
        )
    if version >= 2:
        conn.execute(
            "UPDATE tasks SET ctx_state_json = ?, ctx_state_restorable = 1 WHERE task_id = 'a'",
            (encode_state({"made": "x"})[0],),
        )
    out = [
        ev(EventType.TASK_STARTED, "a", T0, attempt=1),
        ev(EventType.TASK_COMPLETED, "a", T0 + 1, attempt=1, duration=1.0),
        *(
            ev(kind, "b", T0 + 1, attempt=n)
            for n in range(1, events // 2 + 1)
            for kind in (EventType.TASK_STARTED, EventType.TASK_RETRYING)
        ),
        ev(EventType.TASK_STARTED, "b", T0 + 1, attempt=1 + events // 2),
    ]
    for event in out:
        conn.execute(
            "INSERT INTO events (run_id, type, workflow_id, clock, wall, task_id, layer, attempt, "
            "duration, error, detail) VALUES ('r1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fields_of(event),
        )
    conn.close()
    return out


async def test_migration_from_version_1_keeps_the_run_and_marks_states_unknown(
    tmp_path: Path,
) -> None:
    """A version 1 run loads the same at version 3; tasks that had started lost their state.

    Version 1 stored no states, so a task that had started is marked "state
    not restorable" (a resume must not pretend it restored it) and one that
    never started "no state recorded".
    """
    path = tmp_path / "runs.db"
    events = old_store(path, 1)
    async with SQLiteRunStore(path) as store:
        run = await store.load("r1")
        assert await store.load_events("r1") == events
        await store.commit("r1", [ev(EventType.TASK_STARTED, "c", T0 + 2, attempt=1)], {})
        later = await store.load("r1")
    assert list(run.tasks) == ["a", "b", "c", "d"]
    assert run.tasks["a"] == TaskRecord(
        "r1", "a", "completed", 1, T0, T0 + 1, None, '{"n":1}', True, 1.0, False, None, False
    )
    assert run.tasks["a"].result() == {"n": 1}
    assert run.tasks["b"] == TaskRecord(
        "r1", "b", "running", 1, T0 + 1, ctx_state_restorable=False
    )
    assert run.record.status == "interrupted"
    assert {t: r.ctx_state_restorable for t, r in run.tasks.items()} == {
        "a": False,
        "b": False,
        "c": None,
        "d": None,
    }
    assert run.unrestorable_states() == ["a"]
    # A task that starts after the upgrade records no state until it has one.
    assert later.tasks["c"].ctx_state_restorable is None
    assert later.tasks["c"].state == "running"


async def test_migration_from_version_2_moves_rows_and_events_into_the_log(
    tmp_path: Path,
) -> None:
    """Version 3 drops ``tasks`` and ``events``; a run's events are its log, 256 per row."""
    path = tmp_path / "runs.db"
    events = old_store(path, 2, events=600)
    async with SQLiteRunStore(path) as store:
        run = await store.load("r1")
        assert await store.load_events("r1") == events
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    log_rows = conn.execute("SELECT count(*) FROM log").fetchone()[0]
    conn.close()
    assert tables == {"runs", "definitions", "log", "leases"}
    assert log_rows == 3  # 603 events
    assert run.tasks["a"].ctx_state() == {"made": "x"}
    assert run.tasks["a"].result() == {"n": 1}
    assert (run.tasks["b"].state, run.tasks["b"].attempts) == ("running", 301)
    assert [run.tasks[t].state for t in "cd"] == ["pending", "pending"]


def test_migrate_returns_the_old_version_and_skips_applied_steps(tmp_path: Path) -> None:
    """migrate() reports the version it found and applies only the steps above it."""
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(conn, where="x.db") == 0
    assert migrate(conn, where="x.db") == SCHEMA_VERSION
    conn.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer trioforge is refused with a message naming both versions."""
    path = tmp_path / "runs.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(
        RunStoreError, match=rf"schema version 99, newer than .* \({SCHEMA_VERSION}\)"
    ):
        await SQLiteRunStore(path).list_runs()


def test_migrations_must_be_numbered_from_one(tmp_path: Path) -> None:
    """A gap in the migration numbers is a programming error."""
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        migrate(conn, where="x", migrations=(Migration(2, "x", ()),))
    conn.close()


# -- records ------------------------------------------------------------------------


def test_run_record_validates_status_and_definition() -> None:
    """Bad statuses and definitions without a task list are rejected with the field named."""
    with pytest.raises(ValueError, match=r"status must be one of .* got 'done'"):
        RunRecord("r", "w", "h", DIAMOND, "done")
    with pytest.raises(ValueError, match='definition must be a dict with "tasks"'):
        RunRecord("r", "w", "h", {"name": "x"})
    with pytest.raises(ValueError, match="state must be one of"):
        TaskRecord("r", "t", "ok")


def test_definition_hash_ignores_key_order_and_sees_changes() -> None:
    """The hash is of canonical JSON: key order does not matter, content does."""
    same = {"tasks": DIAMOND["tasks"], "name": "diamond"}
    assert definition_hash(DIAMOND) == definition_hash(same)
    changed = {"name": "diamond", "tasks": DIAMOND["tasks"][:3]}
    assert definition_hash(DIAMOND) != definition_hash(changed)
    assert definition_hash(DIAMOND).startswith("sha256:")


def test_a_definition_that_refers_to_itself_is_a_value_error() -> None:
    """Encoding does not check each container for cycles; a cycle is still refused."""
    looped: dict[str, Any] = {"name": "loop", "tasks": [{"id": "a", "depends_on": []}]}
    looped["tasks"][0]["extra"] = looped
    with pytest.raises(ValueError, match="refers to itself"):
        definition_hash(looped)


def test_definition_snapshot_of_a_workflow() -> None:
    """A Workflow's snapshot lists its tasks in order with dependencies and settings."""
    wf = tf.Workflow("build")

    @wf.task(timeout=5)
    async def fetch(ctx: tf.TaskContext) -> None: ...

    @wf.task(depends_on=["fetch"], retries=2)
    async def make(ctx: tf.TaskContext) -> None: ...

    wf.add_dependency("fetch", "make")
    snap = definition_snapshot(wf, source="yaml text")
    assert snap == {
        "name": "build",
        "tasks": [
            {"id": "fetch", "depends_on": [], "timeout": 5},
            {"id": "make", "depends_on": ["fetch"], "retries": 2},
        ],
        "source": "yaml text",
    }
    rec = RunRecord.start("r", snap, started_at=T0)
    assert rec.workflow == "build"
    assert rec.definition_hash == definition_hash(snap)
    assert rec.dependencies == {"fetch": [], "make": ["fetch"]}


# -- commit and load ------------------------------------------------------------------


async def test_commit_and_load_round_trip(tmp_path: Path) -> None:
    """What a commit writes comes back from load and load_events, tasks in definition order."""
    store = await new_store(tmp_path)
    events = [
        ev(EventType.WORKFLOW_STARTED, None, T0, detail="diamond"),
        *completed("a", T0, T0 + 1),
        *completed("c", T0 + 1, T0 + 4),
        *completed("b", T0 + 1, T0 + 2),
        *completed("d", T0 + 4, T0 + 5),
        ev(EventType.WORKFLOW_COMPLETED, None, T0 + 5, duration=5.0),
    ]
    await store.commit("r1", events, {"a": {"n": 1}, "b": [1, 2], "c": "x", "d": None})
    run = await store.load("r1")
    await store.aclose()
    assert run.record == RunRecord(
        "r1", "diamond", definition_hash(DIAMOND), DIAMOND, "completed", T0, T0 + 5
    )
    assert list(run.tasks) == ["a", "b", "c", "d"]
    assert run.tasks["c"] == TaskRecord(
        "r1", "c", "completed", 1, T0 + 1, T0 + 4, None, '"x"', True, 3.0, False
    )
    assert run.completed_results() == {"a": {"n": 1}, "b": [1, 2], "c": "x", "d": None}
    store2 = SQLiteRunStore(tmp_path / "runs.db")
    assert await store2.load_events("r1") == events
    await store2.aclose()


async def test_json_shapes_for_the_cli(tmp_path: Path) -> None:
    """to_json() gives the documented shapes of `runs --json` and `show --json`."""
    store = await new_store(tmp_path)
    await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
    run = await store.load("r1")
    (listed,) = await store.list_runs()
    await store.aclose()
    assert listed.to_json() == {
        "id": "r1",
        "workflow": "diamond",
        "status": "interrupted",
        "started_at": "2023-11-14T22:13:20+00:00",
        "finished_at": None,
    }
    shown = run.to_json()
    assert shown["id"] == "r1"
    assert shown["workflow"] == "diamond"
    assert shown["tasks"][0] == {
        "id": "a",
        "state": "completed",
        "attempts": 1,
        "started_at": "2023-11-14T22:13:20+00:00",
        "finished_at": "2023-11-14T22:13:21+00:00",
        "compensated": False,
    }
    assert [t["state"] for t in shown["tasks"]] == ["completed", "pending", "pending", "pending"]
    json.dumps(shown)


async def test_task_state_transitions(tmp_path: Path) -> None:
    """Each event moves its task as documented, across separate commits."""
    store = await new_store(tmp_path)

    async def state_after(*events: AuditEvent) -> dict[str, TaskRecord]:
        await store.commit("r1", events, {})
        return (await store.load("r1")).tasks

    tasks = await state_after(ev(EventType.TASK_STARTED, "a", T0 + 1, attempt=1))
    assert (tasks["a"].state, tasks["a"].attempts, tasks["a"].started_at) == ("running", 1, T0 + 1)
    tasks = await state_after(
        ev(EventType.TASK_FAILED, "a", T0 + 2, attempt=1, duration=1.0, error="OSError: x")
    )
    assert (tasks["a"].state, tasks["a"].error, tasks["a"].finished_at) == (
        "failed",
        "OSError: x",
        T0 + 2,
    )
    tasks = await state_after(ev(EventType.TASK_RETRYING, "a", T0 + 2, attempt=2))
    assert tasks["a"].state == "running"
    tasks = await state_after(ev(EventType.TASK_STARTED, "a", T0 + 3, attempt=2))
    assert (tasks["a"].state, tasks["a"].attempts, tasks["a"].finished_at) == ("running", 2, None)
    tasks = await state_after(
        ev(EventType.TASK_TIMED_OUT, "a", T0 + 4, attempt=2, duration=1.0, error="Timeout")
    )
    assert (tasks["a"].state, tasks["a"].error, tasks["a"].duration) == ("failed", "Timeout", 1.0)
    tasks = await state_after(
        ev(EventType.TASK_SKIPPED, "b", T0 + 4, detail="depends on failed task 'a'"),
        ev(EventType.TASK_STARTED, "c", T0 + 4, attempt=1),
        ev(EventType.TASK_CANCELLED, "c", T0 + 5, attempt=1, duration=1.0),
    )
    assert [t.state for t in tasks.values()] == ["failed", "skipped", "cancelled", "pending"]
    tasks = await state_after(
        *completed("d", T0 + 5, T0 + 6), ev(EventType.TASK_COMPENSATED, "d", T0 + 7)
    )
    assert (tasks["d"].state, tasks["d"].compensated) == ("completed", True)
    await store.commit("r1", [ev(EventType.WORKFLOW_FAILED, None, T0 + 8)], {})
    assert (await store.load("r1")).record.status == "failed"
    assert (await store.load("r1")).record.finished_at == T0 + 8
    # A resume starts the run again.
    await store.commit("r1", [ev(EventType.WORKFLOW_STARTED, None, T0 + 9)], {})
    again = (await store.load("r1")).record
    assert (again.finished_at, again.status) == (None, "interrupted")  # running, no lease
    await store.aclose()


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (EventType.WORKFLOW_COMPLETED, "completed"),
        (EventType.WORKFLOW_FAILED, "failed"),
        (EventType.WORKFLOW_CANCELLED, "cancelled"),
        (EventType.WORKFLOW_TIMED_OUT, "timed_out"),
    ],
)
async def test_workflow_endings_set_the_run_status(
    tmp_path: Path, event: EventType, status: str
) -> None:
    """Each workflow-level ending event sets its status and finished_at."""
    store = await new_store(tmp_path)
    await store.commit("r1", [ev(event, None, T0 + 3)], {})
    rec = (await store.load("r1")).record
    await store.aclose()
    assert (rec.status, rec.finished_at) == (status, T0 + 3)


async def test_results_restorable_or_not(tmp_path: Path) -> None:
    """JSON results round-trip; lossy ones keep their JSON; others are null; all unrestorable."""
    definition = {"name": "w", "tasks": [{"id": t} for t in "abcde"]}
    store = SQLiteRunStore(tmp_path / "runs.db")
    await store.create_run(RunRecord.start("r1", definition, started_at=T0))
    events = [e for t in "abcde" for e in completed(t, T0, T0 + 1)]
    results = {"a": {"k": [1, 2.5, None]}, "b": (1, 2), "c": object(), "d": math.nan}
    await store.commit("r1", events, results)
    run = await store.load("r1")
    await store.aclose()
    rows = {t: (r.result_json, r.result_restorable) for t, r in run.tasks.items()}
    assert rows == {
        "a": ('{"k":[1,2.5,null]}', True),
        "b": ("[1,2]", False),
        "c": (None, False),
        "d": (None, False),
        "e": (None, False),  # completed without a result handed to commit
    }
    assert run.completed_results() == {"a": {"k": [1, 2.5, None]}}
    assert run.unrestorable() == ["b", "c", "d", "e"]
    with pytest.raises(ValueError, match="task 'b' of run 'r1' has no restorable result"):
        run.tasks["b"].result()


async def test_states_are_stored_on_their_tasks_rows(tmp_path: Path) -> None:
    """A commit's states replace what the rows held; restorable ones decode to equal dicts."""
    store = await new_store(tmp_path)
    first = {"ids": ["vm-1"], "__children__": {"x": {"n": 1.5}}}
    await store.commit(
        "r1",
        [ev(EventType.TASK_STARTED, "a", attempt=1), ev(EventType.TASK_STARTED, "b", attempt=1)],
        {},
        states={"a": encode_state(first), "b": encode_state({"pair": (1, 2)})},
    )
    run = await store.load("r1")
    assert (run.tasks["a"].ctx_state_json, run.tasks["a"].ctx_state_restorable) == (
        '{"ids":["vm-1"],"__children__":{"x":{"n":1.5}}}',
        True,
    )
    assert run.tasks["a"].ctx_state() == first
    assert (run.tasks["b"].ctx_state_json, run.tasks["b"].ctx_state_restorable) == (
        '{"pair":[1,2]}',
        False,
    )
    assert run.tasks["c"].ctx_state_restorable is None
    with pytest.raises(ValueError, match=r"task 'b' of run 'r1' has no restorable ctx\.state"):
        run.tasks["b"].ctx_state()
    await store.commit(
        "r1",
        completed("a", T0, T0 + 1),
        {"a": 1},
        states={"a": encode_state({"ids": ["vm-1", "vm-2"]})},
    )
    run = await store.load("r1")
    await store.aclose()
    assert run.tasks["a"].ctx_state() == {"ids": ["vm-1", "vm-2"]}
    assert run.unrestorable_states() == []


class Refused(Exception):
    """A user exception kept in a task's state."""


def test_encode_state_round_trips_or_says_it_cannot(tmp_path: Path) -> None:
    """JSON, ShellResults, paths and exceptions round-trip; anything else is not restorable."""
    shell = tf.ShellResult("t", 0, {"k": "v"}, tmp_path / "t.log", 1.5, 2)
    failure = tf.ShellCommandError("t", "exit 3", returncode=3, log_path=tmp_path / "t.log")
    failure.add_note("while deploying")
    state = {
        "results": {"t": shell},
        "error": failure,
        "caught": Refused("no", 7),
        "where": tmp_path,
        "plain": [None, True, 2, 2.5, "x", {"nested": []}],
    }
    text, restorable = encode_state(state)
    assert restorable
    assert text is not None
    back = decode_state(text)
    assert back["results"] == {"t": shell}
    assert back["where"] == tmp_path
    assert back["plain"] == state["plain"]
    error = back["error"]
    assert type(error) is tf.ShellCommandError
    assert (str(error), error.task_id, error.returncode, error.log_path, error.__notes__) == (
        str(failure),
        "t",
        3,
        tmp_path / "t.log",
        ["while deploying"],
    )
    assert type(back["caught"]) is Refused
    assert back["caught"].args == ("no", 7)

    class Local(Exception):
        pass

    assert encode_state({"pair": (1, 2)}) == ('{"pair":[1,2]}', False)
    int_keys: dict[Any, Any] = {1: "int key"}
    assert encode_state(int_keys) == ('{"1":"int key"}', False)
    assert encode_state({"s": {1, 2}}) == (None, False)
    assert encode_state({"nan": math.nan}) == (None, False)
    assert encode_state({"obj": object()}) == (None, False)
    # A class that cannot be found again by its name is not restorable.
    assert encode_state({"e": Local("x")})[1] is False
    # An exception type whose module this process never imported is not decoded (no import).
    stored = encode_state({"e": Refused("x")})[0]
    assert stored is not None
    with pytest.raises(ValueError, match="it is not loaded"):
        decode_state(stored.replace(__name__, "never_imported_module"))


async def test_commit_replaces_the_definition(tmp_path: Path) -> None:
    """A commit with a definition makes it the run's: hash, name, new tasks, its order."""
    store = await new_store(tmp_path)
    await store.commit("r1", completed("a", T0, T0 + 1) + completed("c", T0, T0 + 1), {"a": 1})
    forced = {
        "name": "diamond2",
        "tasks": [
            {"id": "a", "depends_on": []},
            {"id": "e", "depends_on": ["a"]},
            {"id": "b", "depends_on": ["e"]},
            {"id": "d", "depends_on": ["b"]},
        ],
    }
    await store.commit(
        "r1", [ev(EventType.WORKFLOW_STARTED, detail="forced")], {}, definition=forced
    )
    run = await store.load("r1")
    with pytest.raises(ValueError, match="definition must be a dict"):
        await store.commit("r1", [], {}, definition={"tasks": "no"})
    await store.aclose()
    assert (run.record.definition, run.record.definition_hash, run.record.workflow) == (
        forced,
        definition_hash(forced),
        "diamond2",
    )
    # c is gone from the definition, but its record (its history) is kept, last.
    assert list(run.tasks) == ["a", "e", "b", "d", "c"]
    assert run.tasks["c"].state == "completed"
    assert run.tasks["e"].state == "pending"
    assert run.tasks["a"].result() == 1


async def test_commit_reads_only_the_results_of_tasks_it_completes(tmp_path: Path) -> None:
    """Results of tasks not completed by the batch are neither read nor stored."""

    class Watching(dict[str, Any]):
        read: list[str] = []  # noqa: RUF012

        def __getitem__(self, key: str) -> Any:
            self.read.append(key)
            return super().__getitem__(key)

    store = await new_store(tmp_path)
    results = Watching(a=1, b=2)
    await store.commit("r1", completed("a", T0, T0 + 1), results)
    run = await store.load("r1")
    await store.aclose()
    assert Watching.read == ["a"]
    assert run.tasks["b"].result_json is None


async def test_a_commit_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a commit fails after writing its log rows, none of its events remain."""
    import trioforge._store._database as sqlite_module

    store = await new_store(tmp_path)
    await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
    # The name _database calls after writing the log rows.
    real_updates = sqlite_module.run_updates  # type: ignore[attr-defined]

    def failing_updates(*args: Any) -> Any:
        real_updates(*args)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_module, "run_updates", failing_updates)
    with pytest.raises(sqlite3.OperationalError):
        await store.commit("r1", completed("b", T0 + 1, T0 + 2), {"b": 2})
    monkeypatch.setattr(sqlite_module, "run_updates", real_updates)
    run = await store.load("r1")
    events = await store.load_events("r1")
    await store.aclose()
    assert run.tasks["b"].state == "pending"
    assert [e.task_id for e in events] == ["a", "a"]


async def test_unknown_runs_are_named_with_the_store(tmp_path: Path) -> None:
    """load, load_events, commit and leases of an unknown run raise RunNotFoundError."""
    store = await new_store(tmp_path)
    path = str(tmp_path / "runs.db")
    for call in (
        store.load("nope"),
        store.load_events("nope"),
        store.commit("nope", [ev(EventType.TASK_STARTED, "a", run_id="nope")], {}),
        store.acquire_lease("nope", "me", 10),
    ):
        with pytest.raises(RunNotFoundError) as info:
            await call
        assert str(info.value) == f"no run 'nope' in the run store {path}"
        assert isinstance(info.value, LookupError)
        assert isinstance(info.value, tf.WorkflowError)
    await store.aclose()


async def test_creating_a_run_twice_is_refused(tmp_path: Path) -> None:
    """A second create_run with the same id raises instead of overwriting."""
    store = await new_store(tmp_path)
    with pytest.raises(ValueError, match="run 'r1' is already in the run store"):
        await store.create_run(record())
    await store.aclose()


async def test_events_for_tasks_outside_the_definition_get_rows(tmp_path: Path) -> None:
    """A task seen only in events gets a row after the definition's tasks."""
    store = await new_store(tmp_path)
    await store.commit("r1", completed("extra", T0, T0 + 1), {"extra": 3})
    run = await store.load("r1")
    await store.aclose()
    assert list(run.tasks) == ["a", "b", "c", "d", "extra"]
    assert run.tasks["extra"].result() == 3


# -- listing and durations ----------------------------------------------------------


async def test_list_runs_newest_first(tmp_path: Path) -> None:
    """Runs come newest first, ties in insertion order reversed, limited and filtered."""
    store = SQLiteRunStore(tmp_path / "runs.db")
    other = {"name": "other", "tasks": [{"id": "x"}]}
    await store.create_run(record("old", started_at=T0))
    await store.create_run(record("new", started_at=T0 + 10))
    await store.create_run(record("tie", started_at=T0 + 10))
    await store.create_run(RunRecord.start("o", other, started_at=T0 + 5))
    assert [r.id for r in await store.list_runs()] == ["tie", "new", "o", "old"]
    assert [r.id for r in await store.list_runs(2)] == ["tie", "new"]
    assert [r.id for r in await store.list_runs(workflow="diamond")] == ["tie", "new", "old"]
    with pytest.raises(ValueError, match="limit must be an int >= 1, got 0"):
        await store.list_runs(0)
    await store.aclose()


async def test_task_durations_are_medians_over_earlier_runs(tmp_path: Path) -> None:
    """Medians of completed durations, per task, over the newest runs of the workflow only."""
    store = SQLiteRunStore(tmp_path / "runs.db")
    for i, (a, b) in enumerate([(1.0, 10.0), (3.0, 20.0), (2.0, None), (100.0, 1.0)]):
        run_id = f"r{i}"
        await store.create_run(record(run_id, started_at=T0 + i))
        events = completed("a", T0, T0 + a, run_id)
        if b is not None:
            events += completed("b", T0, T0 + b, run_id)
        else:
            events += [
                ev(EventType.TASK_STARTED, "b", T0, run_id=run_id),
                ev(EventType.TASK_FAILED, "b", T0 + 99, run_id=run_id, duration=99.0),
            ]
        await store.commit(run_id, events, {})
    await store.create_run(
        RunRecord.start("o", {"name": "o", "tasks": [{"id": "a"}]}, started_at=T0)
    )
    await store.commit("o", completed("a", T0, T0 + 1000, "o"), {})
    assert await store.task_durations("diamond", runs=3) == {"a": 3.0, "b": 10.5}
    assert await store.task_durations("diamond") == {"a": 2.5, "b": 10.0}
    assert await store.task_durations("nothing") == {}
    await store.aclose()


# -- leases ---------------------------------------------------------------------------


async def test_lease_acquire_refuse_renew_expire_take_over(tmp_path: Path) -> None:
    """A live lease refuses others; renewing extends it; once expired it is taken over."""
    clock = FakeClock()
    store = await new_store(tmp_path, clock=clock)
    lease = await store.acquire_lease("r1", "A", 10)
    assert (lease.owner, lease.expires_at, lease.taken_over_from) == ("A", T0 + 10, None)
    clock.now = T0 + 5
    with pytest.raises(RunLockedError) as info:
        await store.acquire_lease("r1", "B", 10)
    assert str(info.value) == (
        "run 'r1' is being driven by A (lease held until 2023-11-14T22:13:30+00:00 (in 5s)); "
        "only one process may drive a run: wait for it to finish, or stop it and retry "
        "once its lease has expired"
    )
    assert (info.value.holder, info.value.expires_at) == ("A", T0 + 10)
    assert (await store.renew_lease("r1", "A", 10)).expires_at == T0 + 15
    clock.now = T0 + 14
    with pytest.raises(RunLockedError):
        await store.acquire_lease("r1", "B", 10)
    assert (await store.acquire_lease("r1", "A", 10)).expires_at == T0 + 24  # re-entrant
    clock.now = T0 + 24.5
    taken = await store.acquire_lease("r1", "B", 10)
    assert (taken.owner, taken.taken_over_from) == ("B", "A")
    with pytest.raises(RunLockedError) as lost:
        await store.renew_lease("r1", "A", 10)
    assert str(lost.value) == (
        "A lost the lease on run 'r1': it is now held by B until "
        "2023-11-14T22:13:54.500000+00:00 (in 10s); stop driving this run"
    )
    await store.release_lease("r1", "A")  # not A's: nothing happens
    with pytest.raises(RunLockedError):
        await store.acquire_lease("r1", "A", 10)
    await store.release_lease("r1", "B")
    with pytest.raises(RunLockedError, match="B lost the lease on run 'r1': it was released"):
        await store.renew_lease("r1", "B", 10)
    assert (await store.acquire_lease("r1", "A", 10)).taken_over_from is None
    await store.aclose()


async def test_a_dead_local_holder_is_taken_over_before_expiry(tmp_path: Path) -> None:
    """A lease whose holder is a process of this host that has exited is taken over at once."""
    proc = await trio.run_process(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_stdout=True
    )
    dead = f"{socket.gethostname()}:{int(proc.stdout)}:feedbeef"
    assert holder_is_dead(dead)
    store = await new_store(tmp_path)
    await store.acquire_lease("r1", dead, 3600)
    taken = await store.acquire_lease("r1", lease_owner(), 10)
    assert taken.taken_over_from == dead
    await store.aclose()


def test_holder_liveness_errs_on_the_side_of_alive() -> None:
    """Only a pid of this host that does not exist counts as dead."""
    assert not holder_is_dead(lease_owner())
    assert not holder_is_dead(f"{socket.gethostname()}:1:abc")  # init: alive
    assert not holder_is_dead("another-host.example:999999:abc")
    assert not holder_is_dead("not an owner")
    assert not holder_is_dead(f"{socket.gethostname()}:notapid:abc")
    owner = lease_owner()
    host, pid, token = owner.rsplit(":", 2)
    assert (host, int(pid), len(token)) == (socket.gethostname(), os.getpid(), 8)


async def test_a_running_run_without_a_live_lease_is_interrupted(tmp_path: Path) -> None:
    """Status running is reported only while a live lease backs it."""
    clock = FakeClock()
    store = await new_store(tmp_path, clock=clock)
    assert (await store.load("r1")).record.status == "interrupted"
    await store.acquire_lease("r1", "A", 10)
    assert (await store.load("r1")).record.status == "running"
    assert [r.status for r in await store.list_runs()] == ["running"]
    clock.now = T0 + 11
    assert (await store.load("r1")).record.status == "interrupted"
    await store.commit("r1", [ev(EventType.WORKFLOW_COMPLETED, None, T0 + 11)], {})
    assert (await store.load("r1")).record.status == "completed"
    await store.aclose()


# The heartbeat tests use real time: under an autojump clock, virtual time jumps
# while a renewal waits for its worker thread, which no real run would see.


async def test_hold_lease_keeps_it_alive_and_releases_it(tmp_path: Path) -> None:
    """While the block runs past the ttl the heartbeat keeps others out; afterwards it is free."""
    store = await new_store(tmp_path)
    start = time.monotonic()
    async with hold_lease(store, "r1", owner="A", ttl=0.6, interval=0.1) as lease:
        assert lease.owner == "A"
        for _ in range(5):
            await trio.sleep(0.2)
            with pytest.raises(RunLockedError):
                await store.acquire_lease("r1", "B", 0.6)
    assert time.monotonic() - start > 0.6 * 1.5
    assert (await store.acquire_lease("r1", "B", 0.6)).taken_over_from is None
    await store.aclose()


async def test_hold_lease_cancels_the_block_when_the_lease_is_lost(tmp_path: Path) -> None:
    """A renewal that finds the lease taken cancels the block and raises RunLockedError."""
    store = await new_store(tmp_path)
    reached_end = []

    async def drive() -> None:
        async with hold_lease(store, "r1", owner="A", ttl=3.0, interval=0.05):
            # Another process takes the lease over, in one statement.
            thief = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
            thief.execute("UPDATE leases SET owner = 'B', expires_at = ?", (time.time() + 60,))
            thief.close()
            await trio.sleep(30)
            reached_end.append(True)

    start = time.monotonic()
    with pytest.raises(RunLockedError, match="A lost the lease on run 'r1': it is now held by B"):
        await drive()
    assert reached_end == []
    assert time.monotonic() - start < 10
    assert (await store.renew_lease("r1", "B", 60.0)).owner == "B"  # B's lease was left alone
    await store.aclose()


async def test_hold_lease_refuses_a_second_driver_and_lets_block_errors_through(
    tmp_path: Path,
) -> None:
    """Entering on a held run raises RunLockedError; a block's own error comes out unwrapped."""
    store = await new_store(tmp_path)
    await store.acquire_lease("r1", "A", 60)
    with pytest.raises(RunLockedError, match="being driven by A"):
        async with hold_lease(store, "r1", owner="B"):
            pass  # pragma: no cover
    await store.release_lease("r1", "A")
    with pytest.raises(KeyError, match="boom"):
        async with hold_lease(store, "r1", owner="B"):
            raise KeyError("boom")
    assert (await store.acquire_lease("r1", "C", 10)).taken_over_from is None  # B released
    with pytest.raises(ValueError, match="interval must be > 0 and < ttl"):
        await keep_lease(store, "r1", "C", 10, interval=10)
    await store.aclose()


class FlakyLeases:
    """Lease calls that fail with OSError on the listed renewals (1-based)."""

    def __init__(self, failing: set[int] | None = None, *, always: bool = False) -> None:
        self.failing = failing or set()
        self.always = always
        self.renewals: list[float] = []

    async def renew_lease(self, run_id: str, owner: str, ttl: float) -> None:
        await trio.lowlevel.checkpoint()
        self.renewals.append(trio.current_time())
        if self.always or len(self.renewals) in self.failing:
            raise OSError("database is locked")


async def test_keep_lease_survives_a_failed_renewal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One failed renewal is retried at the next beat while the lease is still valid."""
    store = FlakyLeases({2})
    start = trio.current_time()
    with trio.move_on_after(10):
        await keep_lease(store, "r1", "A", 3.0)  # type: ignore[arg-type]
    assert [t - start for t in store.renewals] == [float(i) for i in range(1, 10)]


async def test_keep_lease_gives_up_before_the_lease_lapses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When renewals keep failing, the last failure is raised before the lease would lapse."""
    store = FlakyLeases(always=True)
    start = trio.current_time()
    with pytest.raises(OSError, match="database is locked"):
        await keep_lease(store, "r1", "A", 3.0)  # type: ignore[arg-type]
    assert [t - start for t in store.renewals] == [1.0, 2.0]


# -- threading, cancellation, closing -------------------------------------------------


async def test_a_store_call_cancelled_before_it_starts_writes_nothing(tmp_path: Path) -> None:
    """A commit in an already cancelled scope raises Cancelled; under a shield it goes through."""
    store = await new_store(tmp_path)
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
    assert scope.cancelled_caught
    assert (await store.load("r1")).tasks["a"].state == "pending"
    with trio.CancelScope() as scope:
        scope.cancel()
        with trio.CancelScope(shield=True):
            await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
    assert (await store.load("r1")).tasks["a"].state == "completed"
    await store.aclose()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another writer: a connection holding the store's write lock until it commits."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _until_a_store_thread_runs() -> None:
    with trio.fail_after(10):
        while not any(t.name == "trioforge store" for t in threading.enumerate()):  # noqa: ASYNC110 - a thread has no event
            await trio.sleep(0.01)


async def test_a_commit_in_flight_finishes_before_cancellation_is_raised(
    tmp_path: Path,
) -> None:
    """A commit waiting in its thread for another writer's lock finishes, then raises Cancelled."""
    store = await new_store(tmp_path)
    other = _hold_write_lock(store.path)
    after_commit = []
    try:
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def committer() -> None:
                with scope:
                    await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})
                    after_commit.append("returned")
                    await trio.lowlevel.checkpoint()
                    after_commit.append("not cancelled")  # pragma: no cover

            nursery.start_soon(committer)
            await _until_a_store_thread_runs()  # the lock is taken: it waits off the trio thread
            scope.cancel()
            await trio.sleep(0.05)
            caught = [scope.cancelled_caught]  # still waiting for the thread
            other.execute("COMMIT")
    finally:
        other.close()
    caught.append(scope.cancelled_caught)
    assert caught == [False, True]
    # The commit returned normally; the cancellation came at the next checkpoint.
    assert after_commit == ["returned"]
    assert (await store.load("r1")).tasks["a"].state == "completed"
    await store.aclose()


async def test_a_call_that_would_wait_for_a_lock_waits_in_a_thread(tmp_path: Path) -> None:
    """While another writer holds the lock the event loop keeps running; then the call succeeds."""
    store = await new_store(tmp_path)
    other = _hold_write_lock(store.path)
    ticks = 0
    try:
        async with trio.open_nursery() as nursery:

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await trio.sleep(0.01)

            nursery.start_soon(ticker)
            async with trio.open_nursery() as calls:
                calls.start_soon(store.commit, "r1", completed("a", T0, T0 + 1), {"a": 1})
                await _until_a_store_thread_runs()
                before = ticks
                await trio.sleep(0.3)
                assert ticks - before >= 5  # the loop ran while the commit waited
                other.execute("COMMIT")
            nursery.cancel_scope.cancel(reason="done")
    finally:
        other.close()
    assert (await store.load("r1")).tasks["a"].state == "completed"
    await store.aclose()


async def test_a_commit_cancelled_between_its_steps_writes_nothing(tmp_path: Path) -> None:
    """A commit runs on the trio thread a step at a time; a cancel between steps rolls it back."""
    store = await new_store(tmp_path)
    events = [e for i in range(400) for e in completed(f"t{i}", T0, T0 + 1)]
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_at_first_chance() -> None:
                scope.cancel(reason="stop the commit")

            nursery.start_soon(cancel_at_first_chance)
            await store.commit("r1", events, {f"t{i}": i for i in range(400)})
    assert scope.cancelled_caught
    assert await store.load_events("r1") == []
    assert {r.state for r in (await store.load("r1")).tasks.values()} == {"pending"}
    await store.commit("r1", completed("a", T0, T0 + 1), {"a": 1})  # the store still works
    assert (await store.load("r1")).tasks["a"].state == "completed"
    await store.aclose()


async def test_long_calls_let_other_tasks_run_between_their_steps(tmp_path: Path) -> None:
    """Committing and reading a 2,000-task run yields to other tasks between steps."""
    n = 2000
    definition = {"name": "big", "tasks": [{"id": f"t{i}", "depends_on": []} for i in range(n)]}
    store = SQLiteRunStore(tmp_path / "runs.db")
    ticks: list[str] = []
    phase = ["idle"]

    async def ticker() -> None:
        while True:
            ticks.append(phase[0])
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("create", lambda: store.create_run(record("big", definition))),
            (
                "commit",
                lambda: store.commit(
                    "big",
                    [e for i in range(n) for e in completed(f"t{i}", T0, T0 + 1, "big")],
                    {f"t{i}": i for i in range(n)},
                ),
            ),
            ("load", lambda: store.load("big")),
            ("events", lambda: store.load_events("big")),
        ]
        for name, call in calls:
            phase[0] = name
            await call()
        phase[0] = "done"
        nursery.cancel_scope.cancel(reason="measured")
    assert len((await store.load("big")).tasks) == n
    await store.aclose()
    # One step is at most _log.CHUNK (256) events; creating a run writes one row.
    assert ticks.count("commit") >= 2 * n // 256 - 1
    assert ticks.count("load") >= 2 * n // 256 - 1
    assert ticks.count("events") >= 2 * n // 256 - 1


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    """After aclose every call raises ClosedResourceError; closing twice is fine."""
    store = await new_store(tmp_path)
    await store.aclose()
    await store.aclose()
    with pytest.raises(trio.ClosedResourceError, match="is closed"):
        await store.load("r1")


async def test_invalid_options_are_refused(tmp_path: Path) -> None:
    """Unknown synchronous modes and non-positive ttls are rejected up front."""
    with pytest.raises(ValueError, match="synchronous must be one of 'full', 'normal'"):
        SQLiteRunStore(tmp_path / "x.db", synchronous="off")
    store = await new_store(tmp_path)
    with pytest.raises(ValueError, match="ttl must be a finite number of seconds > 0, got 0"):
        await store.acquire_lease("r1", "A", 0)
    await store.aclose()


async def test_synchronous_pragma_is_applied(tmp_path: Path) -> None:
    """FULL (2) by default, NORMAL (1) when asked."""
    full = SQLiteDatabase(tmp_path / "a.db")
    normal = SQLiteDatabase(tmp_path / "b.db", synchronous="normal")
    assert full._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert normal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert full._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    full.close()
    normal.close()


# -- another reader while a run writes --------------------------------------------------

_READER = textwrap.dedent(
    """
    import json, sys, trio
    from trioforge._store._sqlite import SQLiteRunStore

    async def main():
        async with SQLiteRunStore(sys.argv[1]) as store:
            print(json.dumps((await store.load(sys.argv[2])).to_json()))

    trio.run(main)
    """
)


async def test_another_process_reads_a_live_run(tmp_path: Path) -> None:
    """While a run writes, a second connection and another process read consistent snapshots."""
    n = 40
    definition = {"name": "w", "tasks": [{"id": f"t{i}"} for i in range(n)]}
    path = tmp_path / "runs.db"
    writer = SQLiteRunStore(path)
    reader = SQLiteRunStore(path)
    await writer.create_run(RunRecord.start("r1", definition, started_at=time.time()))
    await writer.acquire_lease("r1", lease_owner(), 60)
    for i in range(n // 2):
        await writer.commit("r1", completed(f"t{i}", T0, T0 + 1), {f"t{i}": i})

    proc = await trio.run_process(
        [sys.executable, "-c", _READER, str(path), "r1"], capture_stdout=True
    )
    shown = json.loads(proc.stdout)
    assert shown["status"] == "running"
    assert [t["state"] for t in shown["tasks"]].count("completed") == n // 2

    seen: list[int] = []

    async def write_rest() -> None:
        for i in range(n // 2, n):
            await writer.commit("r1", completed(f"t{i}", T0, T0 + 1), {f"t{i}": i})

    async def read_while_writing() -> None:
        while not seen or seen[-1] < n:
            run = await reader.load("r1")
            done = run.in_state("completed")
            # A snapshot is consistent: exactly the first len(done) tasks are completed.
            assert done == [f"t{i}" for i in range(len(done))]
            assert run.completed_results() == {f"t{i}": i for i in range(len(done))}
            seen.append(len(done))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_rest)
        nursery.start_soon(read_while_writing)
    assert seen == sorted(seen)
    assert seen[0] >= n // 2
    assert seen[-1] == n
    await writer.aclose()
    await reader.aclose()


# -- group commit -------------------------------------------------------------------------


class SlowStore:
    """A store whose commit takes `delay` virtual seconds and records each batch."""

    def __init__(self, delay: float = 1.0, fail: BaseException | None = None) -> None:
        self.delay = delay
        self.fail = fail
        self.batches: list[list[AuditEvent]] = []
        self.results: list[dict[str | None, Any]] = []
        self.states: list[dict[str, tuple[str | None, bool]]] = []
        self.definitions: list[Mapping[str, Any] | None] = []
        self.ended_at: list[float] = []

    async def commit(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        *,
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        taken = dict(states or {})
        await trio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(events))
        self.results.append({e.task_id: results.get(e.task_id or "") for e in events})
        self.states.append(taken)
        self.definitions.append(definition)
        self.ended_at.append(trio.current_time())


async def test_completions_of_one_tick_share_a_commit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Five tasks completing together get one commit, and each flush returns after it."""
    store = SlowStore()
    results: dict[str, Any] = {}
    rec = RunRecorder(store, "r1", results)  # type: ignore[arg-type]
    flushed: dict[str, float] = {}

    async def task(name: str) -> None:
        await trio.sleep(1)
        results[name] = name.upper()
        rec.emit(ev(EventType.TASK_COMPLETED, name))
        await rec.flush()
        flushed[name] = trio.current_time()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for name in "abcde":
            nursery.start_soon(task, name)
    assert rec.commits == 1
    assert sorted(e.task_id or "" for e in store.batches[0]) == list("abcde")
    assert store.results[0] == {t: t.upper() for t in "abcde"}
    assert flushed == dict.fromkeys("abcde", start + 2)
    assert rec.unflushed == 0


async def test_events_emitted_during_a_commit_go_into_the_next_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A flush never returns before its own events are committed, even if they missed a batch."""
    store = SlowStore()
    rec = RunRecorder(store, "r1", {})  # type: ignore[arg-type]
    done: dict[str, float] = {}

    async def first() -> None:
        rec.emit(ev(EventType.TASK_COMPLETED, "a"))
        await rec.flush()
        done["a"] = trio.current_time()

    async def second() -> None:
        await trio.sleep(0.5)
        rec.emit(ev(EventType.TASK_COMPLETED, "b"))
        await rec.flush()
        done["b"] = trio.current_time()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(second)
    assert [[e.task_id for e in b] for b in store.batches] == [["a"], ["b"]]
    assert done == {"a": start + 1, "b": start + 2}


async def test_a_cancelled_leader_still_commits_its_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling the flush that leads a commit lets the commit finish, then raises Cancelled."""
    store = SlowStore()
    rec = RunRecorder(store, "r1", {})  # type: ignore[arg-type]
    rec.emit(ev(EventType.TASK_COMPLETED, "a"))
    with trio.move_on_after(0.1) as scope:
        await rec.flush()
    assert scope.cancelled_caught
    assert [[e.task_id for e in b] for b in store.batches] == [["a"]]
    assert rec.unflushed == 0


async def test_a_failed_commit_breaks_the_recorder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The failing flush and every later one raise RunStoreError chained to the cause."""
    store = SlowStore(fail=OSError("disk full"))
    rec = RunRecorder(store, "r1", {})  # type: ignore[arg-type]
    rec.emit(ev(EventType.TASK_COMPLETED, "a"))
    with pytest.raises(RunStoreError, match="could not record run 'r1'") as info:
        await rec.flush()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RunStoreError):
        await rec.flush()


async def test_the_recorder_keeps_only_its_run(autojump_clock: trio.testing.MockClock) -> None:
    """Events of other runs are ignored; a flush with nothing new commits nothing."""
    store = SlowStore()
    rec = RunRecorder(store, "r1", {})  # type: ignore[arg-type]
    rec.emit(ev(EventType.TASK_STARTED, "a", run_id="other"))
    assert rec.unflushed == 0
    await rec.flush()
    assert store.batches == []


async def test_the_recorder_commits_the_states_of_its_batch_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each commit carries the encoded ctx.state of the tasks it has events of, as of taking it."""
    store = SlowStore()
    states: dict[str, dict[str, Any]] = {"a": {"ids": [1]}, "c": {"never": "sent"}}
    rec = RunRecorder(store, "r1", {}, states)  # type: ignore[arg-type]
    rec.emit(ev(EventType.TASK_STARTED, "a", attempt=1))
    rec.emit(ev(EventType.TASK_STARTED, "b", attempt=1))  # b has no state: nothing to send
    states["a"]["ids"].append(2)  # changed after its event, before the batch is taken

    async def change_during_the_commit() -> None:
        await trio.sleep(0.5)
        states["a"]["ids"].append(3)
        states["b"] = {"late": True}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(change_during_the_commit)
        await rec.flush()
    rec.emit(ev(EventType.TASK_COMPENSATED, "a"))
    await rec.flush()
    assert store.states == [
        {"a": ('{"ids":[1,2]}', True)},
        {"a": ('{"ids":[1,2,3]}', True)},
    ]


async def test_the_recorder_sends_a_definition_with_its_first_commit_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A forced resume's definition goes with the first commit, and only with it."""
    store = SlowStore()
    rec = RunRecorder(store, "r1", {}, {}, definition=DIAMOND)  # type: ignore[arg-type]
    rec.emit(ev(EventType.WORKFLOW_STARTED))
    await rec.flush()
    rec.emit(ev(EventType.TASK_STARTED, "a", attempt=1))
    await rec.flush()
    assert store.definitions == [DIAMOND, None]


async def test_recorder_as_an_audit_sink_of_a_real_run(tmp_path: Path) -> None:
    """Wired to an executor's audit log, the recorder makes the whole run durable."""
    wf = tf.Workflow("real")

    @wf.task
    async def a(ctx: tf.TaskContext) -> int:
        await trio.lowlevel.checkpoint()
        return 1

    @wf.task(depends_on=["a"])
    async def b(ctx: tf.TaskContext) -> list[int]:
        return [ctx.result_of("a"), 2]

    store = SQLiteRunStore(tmp_path / "runs.db")
    executor = tf.WorkflowExecutor(wf)
    results: dict[str, Any] = {}
    recorders: list[RunRecorder] = []

    class Starter:
        """Creates the run's recorder when its first event arrives."""

        def emit(self, event: AuditEvent) -> None:
            if not recorders:
                recorders.append(RunRecorder(store, event.workflow_id, results))
            recorders[0].emit(event)

    executor.audit_log.sinks.append(Starter())
    result = await executor.execute_dataflow()
    results.update(result.results)
    run_id = result.workflow_id
    await store.create_run(RunRecord.start(run_id, definition_snapshot(wf), started_at=T0))
    await recorders[0].flush()
    run = await store.load(run_id)
    await store.aclose()
    assert run.record.status == "completed"
    assert run.completed_results() == {"a": 1, "b": [1, 2]}


# -- crash safety ------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time, trio
    from trioforge._core._events import AuditEvent, EventType
    from trioforge._store._sqlite import SQLiteRunStore
    from trioforge._store._records import RunRecord
    from trioforge._store._writer import RunRecorder

    PAD = "x" * 400

    async def main(path):
        async with SQLiteRunStore(path) as store:
            definition = {"name": "kill", "tasks": []}
            await store.create_run(RunRecord.start("run", definition, started_at=time.time()))
            results = {}
            recorder = RunRecorder(store, "run", results)
            print("ready", flush=True)
            i = 0
            while True:
                tid = f"t{i}"
                now = time.time()
                recorder.emit(AuditEvent(EventType.TASK_STARTED, "run", 0.0, now, tid, attempt=1))
                for _ in range(20):
                    recorder.emit(
                        AuditEvent(EventType.LAYER_STARTED, "run", 0.0, now, tid, detail=PAD)
                    )
                results[tid] = {"i": i, "pad": PAD}
                recorder.emit(
                    AuditEvent(EventType.TASK_COMPLETED, "run", 0.0, now, tid, attempt=1)
                )
                await recorder.flush()
                print(f"ack {i}", flush=True)
                i += 1

    trio.run(main, sys.argv[1])
    """
)
_EVENTS_PER_COMMIT = 22


@pytest.mark.parametrize("seed", range(1, 9))
def test_sigkill_never_loses_an_acknowledged_commit(tmp_path: Path, seed: int) -> None:
    """After a SIGKILL at a random moment the file is intact and holds every acknowledged commit.

    Odd seeds kill right after reading an acknowledgement (the sharpest test of
    "acknowledged means durable"); even seeds a little later, anywhere in the
    commits that follow (a torn write would break integrity or atomicity).
    """
    rng = random.Random(seed)
    path = tmp_path / "runs.db"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    target = rng.randint(1, 40)
    acked: list[int] = []
    for line in proc.stdout:
        acked.append(int(line.split()[1]))
        if len(acked) >= target:
            break
    if seed % 2 == 0:
        time.sleep(rng.uniform(0, 0.004))
    proc.send_signal(signal.SIGKILL)
    acked += [int(line.split()[1]) for line in proc.stdout.read().splitlines()]
    proc.wait(10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert acked == list(range(len(acked)))

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()

    async def check() -> None:
        async with SQLiteRunStore(path) as store:
            run = await store.load("run")
            events = await store.load_events("run")
        results = run.completed_results()
        for i in acked:
            assert run.tasks[f"t{i}"].state == "completed"
            assert results[f"t{i}"]["i"] == i
        # Each commit is whole: no batch is half there.
        assert len(events) % _EVENTS_PER_COMMIT == 0
        assert len(events) // _EVENTS_PER_COMMIT >= len(acked)
        assert run.in_state("running") == []
        assert run.record.status == "interrupted"

    trio.run(check)


# -- where the store lives ----------------------------------------------------------------


def test_default_store_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--store beats TRIOFORGE_STORE, which beats beside-the-file, which beats the cwd."""
    monkeypatch.chdir(tmp_path)
    wf_file = tmp_path / "proj" / "ci.yaml"
    env = {"TRIOFORGE_STORE": "env/runs.db"}
    assert default_store_path(wf_file, store="x.db", environ=env) == tmp_path / "x.db"
    assert default_store_path(wf_file, environ=env) == tmp_path / "env" / "runs.db"
    assert default_store_path(wf_file, environ={"TRIOFORGE_STORE": ""}) == (
        tmp_path / "proj" / ".trioforge" / "runs.db"
    )
    assert default_store_path(environ={}) == tmp_path / ".trioforge" / "runs.db"
    monkeypatch.setenv("TRIOFORGE_STORE", "/abs/runs.db")
    assert default_store_path(wf_file) == Path("/abs/runs.db")


def test_results_round_trip_with_shell_results_nested(tmp_path: Path) -> None:
    """A combinator's result (ShellResults in dicts and lists) is stored restorably."""
    one = tf.ShellResult("a", 0, {"k": "v"}, tmp_path / "a.log", 1.5, 2)
    two = tf.ShellResult("b", 0, {}, tmp_path / "b.log", 0.5, 1, fallback=True)
    nested = {"a": one, "more": [two, {"n": 1}]}
    text, restorable = encode_result(nested)
    assert restorable
    assert text is not None
    assert decode_result(text) == nested
    # The top-level form earlier versions wrote (dump_result) still reads back.
    assert decode_result(json.dumps(dump_result(one))) == one
    # What does not survive the round trip is stored for reading, not restored.
    assert encode_result((1, 2)) == ("[1,2]", False)
    assert encode_result({"x": {1, 2}}) == (None, False)
    assert encode_result(math.inf) == (None, False)


async def test_a_failed_attempts_undone_steps_do_not_mark_the_task_rolled_back(
    tmp_path: Path,
) -> None:
    """Steps undone before a retry (events with an attempt) are not a rollback of the task."""
    store = await new_store(tmp_path)
    await store.commit(
        "r1",
        [
            ev(EventType.TASK_STARTED, "a", T0, attempt=1),
            ev(EventType.TASK_FAILED, "a", T0 + 1, attempt=1, duration=1.0, error="E: x"),
            ev(EventType.TASK_COMPENSATED, "a", T0 + 1, attempt=1, detail="step 1: undo"),
            ev(EventType.TASK_RETRYING, "a", T0 + 1, attempt=2),
        ],
        {},
    )
    assert (await store.load("r1")).tasks["a"].compensated is False
    await store.commit(
        "r1", [ev(EventType.TASK_COMPENSATED, "a", T0 + 2, detail="step 1: undo")], {}
    )
    assert (await store.load("r1")).tasks["a"].compensated is True  # a rollback's undo counts
    await store.aclose()
