"""The SQLite run store's synchronous core: one connection and every query (no trio).

:class:`SQLiteDatabase` is what runs on the store's worker thread; the async
:class:`SQLiteRunStore` only decides *when* these methods run (one at a time,
off the event loop). Keeping them synchronous keeps every transaction in one
plain function that is easy to read and to test.

Transactions are explicit: the connection is in autocommit mode
(``isolation_level=None``) and each write is ``BEGIN IMMEDIATE ... COMMIT``,
which takes the write lock up front, so a busy database makes us wait in
``BEGIN`` (up to the busy timeout) instead of failing halfway. Reads that need
more than one query run in one read transaction, so they see one snapshot
even while another process commits.

Durability: the file is in WAL mode. With ``synchronous=FULL`` (the default)
every ``COMMIT`` fsyncs the WAL before it returns, so a commit that returned
survives a SIGKILL *and* a power cut. With ``synchronous=NORMAL`` the WAL is
fsynced only at checkpoints: a returned commit is in the OS page cache and
survives the process being killed (the kernel still writes it), but the last
commits may be lost if the machine itself goes down.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .._core import AuditEvent, EventRows, EventType, fields_of
from ._codec import encode_result
from ._fold import ensure_rows, fold
from ._owner import holder_is_dead
from ._records import (
    Lease,
    LeaseLostError,
    RunLockedError,
    RunNotFoundError,
    RunRecord,
    RunStoreError,
    StoredRun,
    TaskRecord,
    definition_hash,
)
from ._schema import MIGRATIONS, Migration, migrate, schema_version

__all__ = ["STEP", "SQLiteDatabase", "WouldWait", "is_busy", "run_steps"]

T = TypeVar("T")

#: Events (or task rows) written per step of :meth:`SQLiteDatabase.commit_steps` and
#: :meth:`SQLiteDatabase.create_run_steps`: about 2 ms of work on a slow VM.
STEP = 256

_TASK_COLUMNS = (
    "run_id, task_id, state, attempts, started_at, finished_at, error, "
    "result_json, result_restorable, duration, compensated, ctx_state_json, ctx_state_restorable"
)
_RUN_COLUMNS = (
    "r.id, r.workflow, r.definition_hash, r.definition, r.status, r.started_at, "
    "r.finished_at, l.owner, l.expires_at"
)


def effective_status(status: str, owner: str | None, expires_at: float | None, now: float) -> str:
    """``interrupted`` for a ``running`` run with no live lease; the stored status otherwise."""
    if status != "running":
        return status
    if owner is None or expires_at is None or expires_at <= now or holder_is_dead(owner):
        return "interrupted"
    return status


class SQLiteDatabase:
    """One connection to a run store file and every operation on it.

    Not thread-safe: the caller runs one method at a time (any thread).

    Args:
        path: the database file; its folder is created if missing.
        synchronous: ``"full"`` or ``"normal"`` (see the module docs).
        busy_timeout: seconds to wait for another process's write lock.
        migrations: the schema steps (tests pass extra ones).
        readonly: open the file read-only (``mode=ro``): no folder is made,
            the journal mode is left alone and nothing is migrated, so a
            store can be read without write access to it. A store that needs
            a migration is refused (open it once with write access).
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "full",
        busy_timeout: float = 10.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        readonly: bool = False,
        wait: bool = True,
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f'synchronous must be "full" or "normal", got {synchronous!r}')
        self.path = path
        self._rows: tuple[str, set[str]] | None = None
        self._wait = True
        self._busy_timeout = busy_timeout
        if readonly:
            self._conn = _open_readonly(path, busy_timeout, len(migrations))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout if wait else 0.0,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{path}: cannot use WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, where=str(path), migrations=migrations)
            conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000):d}")
        except sqlite3.OperationalError as exc:
            conn.close()
            if not wait and is_busy(exc):
                raise WouldWait(str(exc)) from exc
            raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Make a transaction that would wait for another process's lock fail at once.

        Inside, such a transaction raises :class:`WouldWait` (nothing written).
        """
        self._wait = False
        try:
            yield
        finally:
            self._wait = True

    @contextmanager
    def _transaction(self, kind: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if self._wait:
            conn.execute(f"BEGIN {kind}")
        else:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute(f"BEGIN {kind}")
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise WouldWait(str(exc)) from exc
                raise
            finally:
                conn.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000):d}")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(run_id, str(self.path))

    # -- runs --------------------------------------------------------------

    def create_run(self, record: RunRecord) -> None:
        """Insert the run and one ``pending`` row per task of its definition."""
        run_steps(self.create_run_steps(record))

    def create_run_steps(self, record: RunRecord) -> Generator[None, None, None]:
        """:meth:`create_run` in steps: yields inside the transaction between pieces.

        Closing the generator before it ends rolls the transaction back.
        """
        definition = json.dumps(record.definition, ensure_ascii=False, separators=(",", ":"))
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
                raise ValueError(f"run {record.id!r} is already in the run store {self.path}")
            conn.execute(
                "INSERT INTO runs (id, workflow, definition_hash, definition, status, "
                "started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.workflow,
                    record.definition_hash,
                    definition,
                    record.status,
                    record.started_at,
                    record.finished_at,
                ),
            )
            task_ids = record.task_ids
            for start in range(0, len(task_ids), STEP):
                if start:
                    yield
                conn.executemany(
                    "INSERT OR IGNORE INTO tasks (run_id, task_id, position, state) "
                    "VALUES (?, ?, ?, 'pending')",
                    [
                        (record.id, tid, pos)
                        for pos, tid in enumerate(task_ids[start : start + STEP], start)
                    ],
                )
        self._rows = (record.id, set(record.task_ids))

    def commit(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        now: float | None = None,
    ) -> None:
        """Append ``events`` and apply them to the run's rows, in one durable transaction.

        ``states`` are encoded already (:func:`encode_state`); ``definition``,
        if given, replaces the run's definition first. ``owner``, if given, is
        the fencing token: the commit is refused (nothing is written) unless
        ``owner`` holds the run's lease, checked inside the transaction.

        Raises:
            LeaseLostError: ``owner`` no longer holds the run's lease.
        """
        run_steps(self.commit_steps(run_id, events, results, states, definition, owner, now))

    def commit_steps(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        now: float | None = None,
    ) -> Generator[None, None, None]:
        """:meth:`commit` in steps of at most :data:`STEP` events: yields inside the transaction.

        So a caller on the trio thread can let other tasks run between steps.
        Closing the generator before it ends rolls the transaction back.
        """
        encoded = {tid: encode_result(value) for tid, value in results.items()}
        # Field tuples (the recorder's EventRows hold them already): (type, workflow_id,
        # clock, wall, task_id, layer, attempt, duration, error, detail).
        rows = events.rows if isinstance(events, EventRows) else [fields_of(e) for e in events]
        with self._transaction() as conn:
            self._require_run(conn, run_id)
            if owner is not None:
                _check_owner(conn, run_id, owner, now)
            known = self._known_rows(conn, run_id)
            try:
                if definition is not None:
                    _replace_definition(conn, run_id, definition)
                    known.clear()  # rows may have been added
                ids = dict.fromkeys(row[4] for row in rows if row[4] is not None)
                ids.update(dict.fromkeys(states or {}))
                ensure_rows(conn, run_id, ids, known)
                for start in range(0, len(rows), STEP):
                    if start:
                        yield
                    piece = rows[start : start + STEP]
                    # A generator: each row's parameters are freed once written.
                    conn.executemany(
                        "INSERT INTO events (run_id, type, workflow_id, clock, wall, task_id, "
                        "layer, attempt, duration, error, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        ((run_id, *row) for row in piece),
                    )
                    fold(conn, run_id, piece, encoded)
                if states:
                    conn.executemany(
                        "UPDATE tasks SET ctx_state_json = ?, ctx_state_restorable = ? "
                        "WHERE run_id = ? AND task_id = ?",
                        [(text, int(ok), run_id, tid) for tid, (text, ok) in states.items()],
                    )
            except BaseException:
                self._rows = None  # the rows this transaction added are rolled back
                raise

    def _known_rows(self, conn: sqlite3.Connection, run_id: str) -> set[str]:
        """Task ids of the run known to have a row (the last run committed to, cached).

        Rows are only ever added to a run (by its lease holder), so the cache
        can only miss rows, never claim one that is not there, unless a
        transaction that added rows rolled back (then it is dropped).
        """
        if self._rows is None or self._rows[0] != run_id:
            self._rows = (run_id, set())
        return self._rows[1]

    def load(self, run_id: str, now: float) -> StoredRun:
        """The run and its tasks, read in one snapshot."""
        return run_steps(self.load_steps(run_id, now))

    def load_steps(self, run_id: str, now: float) -> Generator[None, None, StoredRun]:
        """:meth:`load` in steps of at most :data:`STEP` tasks (yields inside the snapshot)."""
        with self._transaction("DEFERRED") as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs r LEFT JOIN leases l ON l.run_id = r.id "
                "WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id, str(self.path))
            cursor = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE run_id = ? ORDER BY position",
                (run_id,),
            )
            tasks: dict[str, TaskRecord] = {}
            while piece := cursor.fetchmany(STEP):
                for r in piece:
                    tasks[r[1]] = _task_record(r)
                yield
        return StoredRun(_run_record(row, now), tasks)

    def load_events(self, run_id: str) -> list[AuditEvent]:
        """Every event of the run, oldest first."""
        return run_steps(self.load_events_steps(run_id))

    def load_events_steps(self, run_id: str) -> Generator[None, None, list[AuditEvent]]:
        """:meth:`load_events` in steps of at most :data:`STEP` events (inside the snapshot)."""
        with self._transaction("DEFERRED") as conn:
            self._require_run(conn, run_id)
            cursor = conn.execute(
                "SELECT type, workflow_id, clock, wall, task_id, layer, attempt, duration, "
                "error, detail FROM events WHERE run_id = ? ORDER BY seq",
                (run_id,),
            )
            events: list[AuditEvent] = []
            while piece := cursor.fetchmany(STEP):
                events.extend(AuditEvent(EventType(r[0]), *r[1:]) for r in piece)
                yield
        return events

    def list_runs(self, limit: int, workflow: str | None, now: float) -> list[RunRecord]:
        """The newest ``limit`` runs (of ``workflow`` if given), newest first."""
        where = "WHERE r.workflow = ? " if workflow is not None else ""
        params: tuple[Any, ...] = (workflow, limit) if workflow is not None else (limit,)
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r LEFT JOIN leases l ON l.run_id = r.id "
            f"{where}ORDER BY r.started_at DESC, r.seq DESC LIMIT ?",
            params,
        ).fetchall()
        return [_run_record(row, now) for row in rows]

    def delete_runs(self, run_ids: Sequence[str], now: float) -> list[str]:
        """Delete runs with their tasks, events and leases; return the ids deleted.

        A run whose lease is held by a live owner is never deleted (it is
        being driven now); unknown ids are skipped. One transaction.
        """
        deleted: list[str] = []
        with self._transaction() as conn:
            for run_id in run_ids:
                row = conn.execute(
                    "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
                ).fetchone()
                if row is not None and row[1] > now and not holder_is_dead(row[0]):
                    continue
                if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount:
                    deleted.append(run_id)
        return deleted

    def completed_durations(self, workflow: str, runs: int) -> list[tuple[str, float]]:
        """``(task_id, duration)`` of every completed task of the newest ``runs`` runs."""
        return run_steps(self.completed_durations_steps(workflow, runs))

    def completed_durations_steps(
        self, workflow: str, runs: int
    ) -> Generator[None, None, list[tuple[str, float]]]:
        """:meth:`completed_durations` in steps of at most :data:`STEP` rows."""
        with self._transaction("DEFERRED") as conn:
            cursor = conn.execute(
                "SELECT task_id, duration FROM tasks WHERE state = 'completed' "
                "AND duration IS NOT NULL AND run_id IN (SELECT id FROM runs WHERE workflow = ? "
                "ORDER BY started_at DESC, seq DESC LIMIT ?)",
                (workflow, runs),
            )
            rows: list[tuple[str, float]] = []
            while piece := cursor.fetchmany(STEP):
                rows.extend(piece)
                yield
        return rows

    # -- leases ------------------------------------------------------------

    def acquire_lease(self, run_id: str, owner: str, ttl: float, now: float) -> Lease:
        """Take the run's lease unless someone else holds a live one."""
        with self._transaction() as conn:
            self._require_run(conn, run_id)
            row = conn.execute(
                "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            previous = None
            if row is not None and row[0] != owner:
                holder, expires_at = row
                if expires_at > now and not holder_is_dead(holder):
                    raise RunLockedError(run_id, holder, expires_at, now=now)
                previous = holder
            conn.execute(
                "INSERT INTO leases (run_id, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (run_id, owner, now, now + ttl),
            )
        return Lease(run_id, owner, now + ttl, previous)

    def renew_lease(self, run_id: str, owner: str, ttl: float, now: float) -> Lease:
        """Extend ``owner``'s lease; it must still be theirs (even if it has expired)."""
        with self._transaction() as conn:
            self._require_run(conn, run_id)
            row = conn.execute(
                "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise LeaseLostError(run_id, None, None, lost_by=owner)
            if row[0] != owner:
                raise LeaseLostError(run_id, row[0], row[1], now=now, lost_by=owner)
            conn.execute("UPDATE leases SET expires_at = ? WHERE run_id = ?", (now + ttl, run_id))
        return Lease(run_id, owner, now + ttl)

    def release_lease(self, run_id: str, owner: str) -> None:
        """Drop ``owner``'s lease on the run; nothing happens if they do not hold it."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))


def run_steps(steps: Generator[None, None, T]) -> T:
    """Run a call made of steps (``..._steps``) to its end, in one go; return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock we needed."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class WouldWait(Exception):
    """A transaction would have waited for another process's write lock.

    Raised inside :meth:`SQLiteDatabase.without_waiting`.
    """


def _task_record(row: Sequence[Any]) -> TaskRecord:
    """A :class:`TaskRecord` of a row of ``_TASK_COLUMNS``."""
    run_id, task_id, state, attempts, started, finished, error, result, *flags = row
    result_ok, duration, compensated, state_json, state_ok = flags
    return TaskRecord(
        run_id,
        task_id,
        state,
        attempts,
        started,
        finished,
        error,
        result,
        bool(result_ok),
        duration,
        bool(compensated),
        state_json,
        None if state_ok is None else bool(state_ok),
    )


def _open_readonly(path: Path, busy_timeout: float, latest: int) -> sqlite3.Connection:
    """A read-only connection to the store at ``path`` whose schema is version ``latest``.

    SQLite reads a WAL-mode file through its ``-shm`` index, which a reader
    creates when the folder is writable. When it cannot (a read-only folder,
    no ``-shm`` left behind), the file is opened ``immutable``: no locks,
    which is right for a store nobody with our rights can be writing.
    """
    uri = path.absolute().as_uri()
    last: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(
            uri + query,
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            found = schema_version(conn)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError as exc:
            conn.close()
            last = exc
            continue
        if found != latest:
            conn.close()
            if found > latest:
                raise RunStoreError(
                    f"the run store {path} has schema version {found}, newer than this "
                    f"trioforge knows ({latest}); upgrade trioforge to use it"
                )
            raise RunStoreError(
                f"the run store {path} has schema version {found} and must be migrated to "
                f"{latest} first: run or resume a workflow with write access to it once"
            )
        return conn
    assert last is not None
    raise last


def _check_owner(conn: sqlite3.Connection, run_id: str, owner: str, now: float | None) -> None:
    """Raise :class:`LeaseLostError` unless ``owner`` holds the run's lease (even expired)."""
    row = conn.execute(
        "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        raise LeaseLostError(run_id, None, None, lost_by=owner)
    if row[0] != owner:
        raise LeaseLostError(run_id, row[0], row[1], now=now, lost_by=owner)


def _replace_definition(
    conn: sqlite3.Connection, run_id: str, definition: Mapping[str, Any]
) -> None:
    """Make ``definition`` the run's: its hash and name, a row for each new task, its order.

    Rows of tasks the definition no longer has are kept (their history
    stays), after the definition's tasks.
    """
    text = json.dumps(definition, ensure_ascii=False, separators=(",", ":"))
    name = definition.get("name")
    conn.execute(
        "UPDATE runs SET definition = ?, definition_hash = ?, workflow = COALESCE(?, workflow) "
        "WHERE id = ?",
        (
            text,
            definition_hash(definition),
            name if isinstance(name, str) and name else None,
            run_id,
        ),
    )
    ids = [task["id"] for task in definition["tasks"]]
    known = set(ids)
    old = [
        row[0]
        for row in conn.execute(
            "SELECT task_id FROM tasks WHERE run_id = ? ORDER BY position", (run_id,)
        )
    ]
    order = ids + [tid for tid in old if tid not in known]
    conn.executemany(
        "INSERT OR IGNORE INTO tasks (run_id, task_id, position, state) "
        "VALUES (?, ?, ?, 'pending')",
        [(run_id, tid, pos) for pos, tid in enumerate(order)],
    )
    conn.executemany(
        "UPDATE tasks SET position = ? WHERE run_id = ? AND task_id = ?",
        [(pos, run_id, tid) for pos, tid in enumerate(order)],
    )


def _run_record(row: Sequence[Any], now: float) -> RunRecord:
    status = effective_status(row[4], row[7], row[8], now)
    return RunRecord(row[0], row[1], row[2], json.loads(row[3]), status, row[5], row[6])
