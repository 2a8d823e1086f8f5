"""The SQLite run store's schema and its migrations.

The schema version lives in ``PRAGMA user_version`` (0 in a new, empty file).
:data:`MIGRATIONS` is the ordered list of steps; step *N* takes a database
from version *N - 1* to *N*. Opening a store runs every step above the file's
version, each in its own ``BEGIN IMMEDIATE`` transaction (a new file's all in
one) that re-reads the version first, so two processes opening the same new
file at once cannot both apply a step, and a crash mid-step leaves the file at
the previous version.
A file whose version is newer than the last step is refused: an older
trioforge must not write to a schema it does not know.

Rules for adding a step: never edit a step that has shipped; append one with
the next version, made of plain SQL statements (``ALTER TABLE ... ADD
COLUMN``, ``CREATE INDEX``, or create-copy-drop-rename for anything else)
and, only when SQL cannot say it, a ``convert`` function that runs after
them in the same transaction; document it in ``docs/store.rst``.

Version 1
---------
``runs``
    one row per run: ``seq`` (insertion order, tie-break for equal start
    times), ``id`` (unique), ``workflow``, ``definition_hash``,
    ``definition`` (JSON), ``status``, ``started_at``, ``finished_at``
    (epoch seconds).
``tasks``
    one row per task of a run, keyed by ``(run_id, task_id)``: ``position``
    (definition order), ``state``, ``attempts``, ``started_at``,
    ``finished_at``, ``duration``, ``error``, ``result_json``,
    ``result_restorable``, ``compensated``.
``events``
    every audit event, in order (``seq``), with every field of
    :class:`AuditEvent`.
``leases``
    at most one row per run: ``owner``, ``acquired_at``, ``expires_at``.

Version 2
---------
``tasks`` gains ``ctx_state_json`` (the task's ``ctx.state`` as tagged JSON,
or NULL) and ``ctx_state_restorable`` (1, 0, or NULL when no state was
recorded). Rows of tasks that had started are set to 0: their state was
never stored, so a resume must not pretend it restored it.

Version 3
---------
``log`` replaces ``tasks`` and ``events``: a run is the list of its events,
in rows of at most 256 (``seq``, ``run_id``, ``events``, ``times``,
``results``, ``states``: see ``_log`` for their encoding), and each task's
record is the fold of its events when the run is loaded. Each run's
``events`` become its log; each stored result goes with the row of the
task's completion, each stored ``ctx.state`` with the run's last row.
``definitions`` (``run_id``, ``definition``) takes the runs' definitions,
and ``runs.definition`` is left empty: a definition of a large workflow is
megabytes, and SQLite rewrites a whole row to update its status.

Version 4
---------
``log`` gains ``reserved`` (JSON ``{task_id: attempt}`` or NULL): the starts a
commit reserved, on its last row (see ``RunStore.commit``). Older rows have
none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import attrs

from .._core import EventColumns
from ._log import encode_chunks
from ._records import RunStoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate", "schema_version"]


@attrs.frozen
class Migration:
    """One schema step: from ``version - 1`` to ``version``.

    Attributes:
        version: the version the step produces (1, 2, ...).
        description: one line for the docs and error messages.
        statements: the SQL statements, run in order in one transaction.
        convert: run after the statements, in the same transaction, for what
            SQL cannot say (None: nothing).
    """

    version: int
    description: str
    statements: tuple[str, ...]
    convert: Callable[[sqlite3.Connection], None] | None = None


def _events_to_log(conn: sqlite3.Connection) -> None:
    """Version 3: write each run's events and task rows as its log, then drop them."""
    runs = [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY seq")]
    for run_id in runs:
        events = conn.execute(
            "SELECT type, workflow_id, clock, wall, task_id, layer, attempt, duration, error, "
            "detail FROM events WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        batch = EventColumns.from_rows(events)
        results: dict[str, tuple[str | None, bool]] = {}
        states: dict[str, tuple[str | None, bool]] = {}
        for task_id, result, result_ok, state, state_ok in conn.execute(
            "SELECT task_id, result_json, result_restorable, ctx_state_json, "
            "ctx_state_restorable FROM tasks WHERE run_id = ? ORDER BY position",
            (run_id,),
        ):
            if result is not None or result_ok:
                results[task_id] = (result, bool(result_ok))
            if state_ok is not None:
                states[task_id] = (state, bool(state_ok))
        for chunk in encode_chunks(batch, results, states):
            conn.execute(
                "INSERT INTO log (run_id, events, times, results, states) VALUES (?, ?, ?, ?, ?)",
                (run_id, *chunk),
            )
    conn.execute("DROP TABLE events")
    conn.execute("DROP TABLE tasks")


_RUN_STATUSES = "'running', 'completed', 'failed', 'cancelled', 'timed_out', 'interrupted'"
_TASK_STATES = "'pending', 'running', 'completed', 'failed', 'skipped', 'cancelled'"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, tasks, events and leases",
        (
            f"""
            CREATE TABLE runs (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                workflow TEXT NOT NULL,
                definition_hash TEXT NOT NULL,
                definition TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ({_RUN_STATUSES})),
                started_at REAL NOT NULL,
                finished_at REAL
            )
            """,
            "CREATE INDEX runs_by_start ON runs (started_at, seq)",
            "CREATE INDEX runs_by_workflow ON runs (workflow, started_at, seq)",
            f"""
            CREATE TABLE tasks (
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                task_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ({_TASK_STATES})),
                attempts INTEGER NOT NULL DEFAULT 0,
                started_at REAL,
                finished_at REAL,
                duration REAL,
                error TEXT,
                result_json TEXT,
                result_restorable INTEGER NOT NULL DEFAULT 0 CHECK (result_restorable IN (0, 1)),
                compensated INTEGER NOT NULL DEFAULT 0 CHECK (compensated IN (0, 1)),
                PRIMARY KEY (run_id, task_id)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE events (
                seq INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                workflow_id TEXT NOT NULL,
                task_id TEXT,
                clock REAL NOT NULL,
                wall REAL NOT NULL,
                layer INTEGER,
                attempt INTEGER,
                duration REAL,
                error TEXT,
                detail TEXT
            )
            """,
            "CREATE INDEX events_by_run ON events (run_id, seq)",
            """
            CREATE TABLE leases (
                run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
                owner TEXT NOT NULL,
                acquired_at REAL NOT NULL,
                expires_at REAL NOT NULL
            )
            """,
        ),
    ),
    Migration(
        2,
        "tasks.ctx_state_json and tasks.ctx_state_restorable",
        (
            "ALTER TABLE tasks ADD COLUMN ctx_state_json TEXT",
            "ALTER TABLE tasks ADD COLUMN ctx_state_restorable INTEGER "
            "CHECK (ctx_state_restorable IN (0, 1))",
            "UPDATE tasks SET ctx_state_restorable = 0 WHERE attempts > 0",
        ),
    ),
    Migration(
        3,
        "log replaces tasks and events",
        (
            """
            CREATE TABLE log (
                seq INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                events TEXT NOT NULL,
                times BLOB NOT NULL,
                results TEXT,
                states TEXT
            )
            """,
            "CREATE INDEX log_by_run ON log (run_id, seq)",
            """
            CREATE TABLE definitions (
                run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
                definition TEXT NOT NULL
            )
            """,
            "INSERT INTO definitions (run_id, definition) SELECT id, definition FROM runs",
            "UPDATE runs SET definition = ''",
        ),
        _events_to_log,
    ),
    Migration(
        4,
        "log.reserved",
        ("ALTER TABLE log ADD COLUMN reserved TEXT",),
    ),
)

#: The version this trioforge writes: the last migration's.
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version``."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(
    conn: sqlite3.Connection, *, where: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database up to the last of ``migrations``; return the version it had.

    ``conn`` must be in autocommit mode (``isolation_level=None``); ``where``
    names the file in error messages.

    Raises:
        RunStoreError: the file's version is newer than the last migration.
        ValueError: ``migrations`` are not numbered 1, 2, 3, ...
    """
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError(
            f"migrations must be numbered 1, 2, 3, ...; got {[m.version for m in migrations]}"
        )
    latest = len(migrations)
    found = schema_version(conn)
    if found > latest:
        raise RunStoreError(
            f"the run store {where} has schema version {found}, newer than this "
            f"trioforge knows ({latest}); upgrade trioforge to use it"
        )
    pending = list(migrations[found:])
    # A new file takes every step in one transaction (one fsync, not one a step).
    groups = [pending] if found == 0 else [[step] for step in pending]
    for group in groups:
        if not group:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = schema_version(conn)  # another process may have got here first
            for step in group:
                if current < step.version:
                    for statement in step.statements:
                        conn.execute(statement)
                    if step.convert is not None:
                        step.convert(conn)
                    conn.execute(f"PRAGMA user_version = {step.version:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
