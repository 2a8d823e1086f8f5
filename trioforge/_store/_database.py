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

import contextlib
import json
import os
import sqlite3
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .._core import AuditEvent, EventColumns, EventType, fields_of
from ._codec import encode_result
from ._log import (
    Logged,
    RunFold,
    decode_chunk,
    decode_reserved,
    encode_chunks,
    encode_reserved,
    run_updates,
)
from ._owner import holder_is_dead
from ._records import (
    Lease,
    LeaseLostError,
    RunLockedError,
    RunNotFoundError,
    RunRecord,
    RunStoreError,
    StoreContentError,
    StoredRun,
    canonical_json,
    json_hash,
)
from ._schema import MIGRATIONS, Migration, migrate, schema_version

__all__ = [
    "WAL_AHEAD",
    "WAL_RESERVE",
    "WAL_SMALL",
    "SQLiteDatabase",
    "WouldWait",
    "is_busy",
    "run_steps",
]

#: A commit that appends at most this many pages to the WAL makes room for more
#: (:meth:`SQLiteDatabase._reserve_wal`) ...
WAL_SMALL = 32
#: ... for this many commits of its size ...
WAL_AHEAD = 16
#: ... but at most this many pages (SQLite checkpoints, and starts the WAL over,
#: once it holds 1,000 pages).
WAL_RESERVE = 1024

T = TypeVar("T")

#: Rows read per step of the ``..._steps`` reads: about 2 ms of work on a slow VM.
#: (A commit writes one ``log`` row of at most ``_log.CHUNK`` events per step.)
STEP = 256
# Every query of runs reads them FROM _RUNS.
_RUNS = "runs r LEFT JOIN definitions d ON d.run_id = r.id LEFT JOIN leases l ON l.run_id = r.id"
_RUN_COLUMNS = (
    "r.id, r.workflow, r.definition_hash, d.definition, r.status, r.started_at, "
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
        self._wait = True
        self._busy_timeout = busy_timeout
        self._busy_ms = round(busy_timeout * 1000)  # the connection's, as last set
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
            self._busy_ms = round(busy_timeout * 1000)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
            self._page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        except sqlite3.OperationalError as exc:
            conn.close()
            if not wait and is_busy(exc):
                raise WouldWait(str(exc)) from exc
            raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._wal_path = path.with_name(path.name + "-wal")
        self._wal_name = os.fspath(self._wal_path)  # stat() after each commit: no Path call
        self._wal_size = 0  # the WAL file's size after the last reserve

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

    def _timeout(self, milliseconds: int) -> None:
        """Set the connection's busy timeout (a statement only when it changes)."""
        if self._busy_ms != milliseconds:
            self._conn.execute(f"PRAGMA busy_timeout = {milliseconds:d}")
            self._busy_ms = milliseconds

    @contextmanager
    def _transaction(self, kind: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if self._wait:
            self._timeout(round(self._busy_timeout * 1000))
            conn.execute(f"BEGIN {kind}")
        else:
            # Nothing in this transaction waits for another process: a busy lock at
            # BEGIN raises WouldWait, later (rare) a busy error, and the caller runs
            # the call again where it may wait (SQLiteRunStore._write).
            self._timeout(0)
            try:
                conn.execute(f"BEGIN {kind}")
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise WouldWait(str(exc)) from exc
                raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if kind == "IMMEDIATE":
            self._reserve_wal()

    def _reserve_wal(self) -> None:
        """After a small commit that made the WAL file longer, make room for the next ones.

        An fsync of a file that grew must also commit the file system's
        journal (its new size): on ext4 a commit appending a few pages to the
        WAL took 0.43 ms where one writing over existing bytes of it took
        0.2 ms, and a durable run of many small group commits (a deep
        workflow) makes one per wave of tasks. So when a commit of at most
        :data:`WAL_SMALL` pages appended, room is reserved for
        :data:`WAL_AHEAD` more such commits, or as much as the WAL holds
        (doubling it), up to :data:`WAL_RESERVE` pages: a transaction writes
        that many pages of zeros into the WAL (a page cache of two pages
        makes SQLite spill them there) and rolls back. Rolled-back frames are
        never read (SQLite checks each frame's salt and checksum, up to the
        last commit), and the next commits write over them, so their fsyncs
        change no file size. A large commit pays the journal once for many
        pages, and is left alone. SQLite deletes the WAL file when the last
        connection closes, so the room lasts as long as the store is open.

        Best effort, after the commit returned: it never waits for another
        process's lock, and any error leaves things as they were (the next
        commit meets a real problem itself).
        """
        wal = self._wal_name
        try:
            size = os.stat(wal).st_size
        except OSError:
            return
        grew, self._wal_size = size - self._wal_size, size
        page = self._page_size
        if not 0 < grew <= WAL_SMALL * page:
            return
        pages = min(max(WAL_AHEAD * -(-grew // page), size // page), WAL_RESERVE)
        conn = self._conn
        self._timeout(0)
        cache = None
        try:
            cache = int(conn.execute("PRAGMA cache_size").fetchone()[0])
            conn.execute("PRAGMA cache_size = 2")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE trioforge_wal_reserve (x BLOB)")
            conn.execute("INSERT INTO trioforge_wal_reserve VALUES (zeroblob(?))", (pages * page,))
        except sqlite3.Error:
            pass  # best effort (see above)
        finally:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if cache is not None:
                    conn.execute(f"PRAGMA cache_size = {cache:d}")
        with contextlib.suppress(OSError):
            self._wal_size = os.stat(wal).st_size

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(run_id, str(self.path))

    # -- runs --------------------------------------------------------------

    def create_run(self, record: RunRecord) -> None:
        """Insert the run (its tasks stand ``pending`` until its log says otherwise)."""
        run_steps(self.create_run_steps(record))

    def create_run_steps(self, record: RunRecord) -> Generator[None, None, None]:
        """:meth:`create_run` as a call in steps (it has one)."""
        definition = record.definition_json or canonical_json(record.definition)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
                raise ValueError(f"run {record.id!r} is already in the run store {self.path}")
            conn.execute(
                "INSERT INTO runs (id, workflow, definition_hash, definition, status, "
                "started_at, finished_at) VALUES (?, ?, ?, '', ?, ?, ?)",
                (
                    record.id,
                    record.workflow,
                    record.definition_hash,
                    record.status,
                    record.started_at,
                    record.finished_at,
                ),
            )
            # Apart, so that updating the run's status does not rewrite its definition.
            conn.execute(
                "INSERT INTO definitions (run_id, definition) VALUES (?, ?)",
                (record.id, definition),
            )
        yield from ()  # a generator (of no step), like the other ..._steps calls

    def commit(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        now: float | None = None,
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        """Append ``events`` and apply them to the run's rows, in one durable transaction.

        ``states`` are encoded already (:func:`encode_state`); ``definition``,
        if given, replaces the run's definition first. ``owner``, if given, is
        the fencing token: the commit is refused (nothing is written) unless
        ``owner`` holds the run's lease, checked inside the transaction.

        ``reserved``: the starts the commit reserves (see ``RunStore.commit``).

        Raises:
            LeaseLostError: ``owner`` no longer holds the run's lease.
        """
        run_steps(
            self.commit_steps(run_id, events, results, states, definition, owner, now, reserved)
        )

    def commit_steps(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        now: float | None = None,
        reserved: Mapping[str, int] | None = None,
    ) -> Generator[None, None, None]:
        """:meth:`commit`, in one transaction, a ``log`` row of at most 256 events per step.

        So a caller on the trio thread can let other tasks run between steps.
        Closing the generator before it ends rolls the transaction back.
        """
        encoded = {tid: encode_result(value) for tid, value in results.items()}
        # The recorder's batches are columns already: no object per event is made.
        batch = (
            events
            if isinstance(events, EventColumns)
            else EventColumns.from_rows(map(fields_of, events))
        )
        with self._transaction() as conn:
            if owner is None:
                self._require_run(conn, run_id)
            elif not _check_owner(conn, run_id, owner, now):  # a lease row: the run exists
                self._require_run(conn, run_id)
                raise LeaseLostError(run_id, None, None, lost_by=owner)
            if definition is not None:
                _replace_definition(conn, run_id, definition)
            insert = (
                "INSERT INTO log (run_id, events, times, results, states, reserved) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            )
            chunks = encode_chunks(batch, encoded, states)
            chunk = next(chunks)  # one at least
            for following in chunks:
                conn.execute(insert, (run_id, *chunk, None))
                yield
                chunk = following
            # The reservations come after the commit's events: on its last row.
            conn.execute(insert, (run_id, *chunk, encode_reserved(reserved)))
            for status, finished_at in run_updates(batch):
                conn.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                    (status, finished_at, run_id),
                )

    def load(self, run_id: str, now: float) -> StoredRun:
        """The run and its tasks, read in one snapshot."""
        return run_steps(self.load_steps(run_id, now))

    def load_steps(self, run_id: str, now: float) -> Generator[None, None, StoredRun]:
        """:meth:`load`, a log row (at most 256 events) per step, inside one snapshot.

        Each task's record is the fold of the run's events (``_log``).
        """
        with self._transaction("DEFERRED") as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUNS} WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id, str(self.path))
            record = _run_record(row, now, self.path)
            fold = RunFold(run_id, record.task_ids)
            for chunk in self._log(conn, run_id):
                fold.apply(*chunk)
                yield
        return StoredRun(record, fold.records())

    def _log(self, conn: sqlite3.Connection, run_id: str) -> Iterator[Logged]:
        """The run's log rows, decoded and checked, oldest first (at most 256 events each)."""
        cursor = conn.execute(
            "SELECT seq, events, times, results, states, reserved FROM log "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        for seq, events, times, results, states, reserved in cursor:
            where = f"the run store {self.path}, run {run_id!r}, log row {seq}"
            rows, done, kept = decode_chunk(events, times, results, states, where)
            yield rows, done, kept, decode_reserved(reserved, where)

    def load_events(self, run_id: str) -> list[AuditEvent]:
        """Every event of the run, oldest first."""
        return run_steps(self.load_events_steps(run_id))

    def load_events_steps(self, run_id: str) -> Generator[None, None, list[AuditEvent]]:
        """:meth:`load_events` a log row (at most 256 events) per step, inside the snapshot."""
        with self._transaction("DEFERRED") as conn:
            self._require_run(conn, run_id)
            events: list[AuditEvent] = []
            for rows, *_ in self._log(conn, run_id):
                events.extend(AuditEvent(EventType(r[0]), *r[1:]) for r in rows)
                yield
        return events

    def list_runs(self, limit: int, workflow: str | None, now: float) -> list[RunRecord]:
        """The newest ``limit`` runs (of ``workflow`` if given), newest first."""
        where = "WHERE r.workflow = ? " if workflow is not None else ""
        params: tuple[Any, ...] = (workflow, limit) if workflow is not None else (limit,)
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM {_RUNS} "
            f"{where}ORDER BY r.started_at DESC, r.seq DESC LIMIT ?",
            params,
        ).fetchall()
        return [_run_record(row, now, self.path) for row in rows]

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
        """:meth:`completed_durations`, a log row (at most 256 events) per step."""
        with self._transaction("DEFERRED") as conn:
            newest = conn.execute(
                "SELECT id FROM runs WHERE workflow = ? "
                "ORDER BY started_at DESC, seq DESC LIMIT ?",
                (workflow, runs),
            ).fetchall()
            found: list[tuple[str, float]] = []
            for (run_id,) in newest:
                fold = RunFold(run_id, ())
                for chunk in self._log(conn, run_id):
                    fold.apply(*chunk)
                    yield
                found.extend(fold.completed_durations())
        return found

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


def _check_owner(conn: sqlite3.Connection, run_id: str, owner: str, now: float | None) -> bool:
    """Whether the run has a lease; raise :class:`LeaseLostError` if it is not ``owner``'s.

    (An expired lease still counts as ``owner``'s until someone takes it.)
    """
    row = conn.execute(
        "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return False
    if row[0] != owner:
        raise LeaseLostError(run_id, row[0], row[1], now=now, lost_by=owner)
    return True


def _replace_definition(
    conn: sqlite3.Connection, run_id: str, definition: Mapping[str, Any]
) -> None:
    """Make ``definition`` the run's: its hash, its name and its tasks' order.

    Tasks the definition no longer has keep their history in the log: a
    load lists them after the definition's tasks.
    """
    text = canonical_json(definition)
    name = definition.get("name")
    conn.execute(
        "UPDATE runs SET definition_hash = ?, workflow = COALESCE(?, workflow) WHERE id = ?",
        (json_hash(text), name if isinstance(name, str) and name else None, run_id),
    )
    conn.execute("UPDATE definitions SET definition = ? WHERE run_id = ?", (text, run_id))


def _run_record(row: Sequence[Any], now: float, where: Path) -> RunRecord:
    status = effective_status(row[4], row[7], row[8], now)
    try:
        definition = json.loads(row[3])
        return RunRecord(row[0], row[1], row[2], definition, status, row[5], row[6])
    except (TypeError, ValueError, RecursionError) as exc:  # None: no definitions row
        raise StoreContentError(
            f"the run store {where}, run {row[0]!r}: its definition cannot be read "
            f"({exc}); the store file is damaged or was not written by trioforge"
        ) from None
