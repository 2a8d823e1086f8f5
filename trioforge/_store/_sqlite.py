"""The run store: the :class:`RunStore` protocol and its SQLite implementation.

A run store keeps runs durable: the definition each run started from, every
audit event, and each task's state, result and ``ctx.state``, so a run can be
shown from another process while it is live, resumed after its process died,
and reported on afterwards. The protocol is the whole contract between the
executor, the CLI and a backend; it speaks only in :mod:`._store_records`
values and audit events, so a PostgreSQL store can be added later without
touching the executor.

The one write, :meth:`RunStore.commit`, is "these events happened, these are
the results of the tasks they complete and the states of the tasks they
concern": one transaction that appends the events and folds them into the
task rows, returning only once it is durable.
The executor decides how many events go into one commit (see
``docs/store.rst`` for the group-commit recipe), which is what keeps writes
from slowing the scheduler.

Threading, and why this way
---------------------------
sqlite3 calls block, and a commit with ``synchronous=FULL`` waits for an
fsync, so trio's advice is a worker thread per call. We did that, and it
starves: a worker thread needs the GIL back after every SQLite statement, and
while the trio thread always has a task to run (tasks computing between their
checkpoints), it lets go of the GIL only for an instant per scheduler batch,
which also restarts the worker's wait before it may ask for it. Next to one
such task a 2-statement commit took over a second; a durable run stalled,
then failed its 30 s commit bound (``benchmarks/busy_loop_store.py``).

So a call runs on the trio thread (:meth:`SQLiteRunStore._write`), as a
generator of steps of at most ``_log.CHUNK`` (256) events, with a checkpoint after
each step, inside its transaction; only the last step's COMMIT (an fsync)
cannot be cut. The transaction starts without waiting for another process's
lock (``busy_timeout`` 0); if the lock is taken, the whole call runs in a
worker thread instead (``trio.to_thread.run_sync``), which waits for it up
to the busy timeout: another process never blocks the event loop. Reads
that grow with a run (``load``, ``load_events``, earlier durations) go in
steps too; ``delete_runs`` (housekeeping) and every call of a read-only
store run in a worker thread. A
``CapacityLimiter(1)`` that belongs to the store makes calls run one at a
time in the order they were made (trio's limiters are fair, FIFO), whichever
thread they run on; the single connection is opened with
``check_same_thread=False`` for that reason.

Cancellation: waiting for the limiter is a normal trio checkpoint, so a call
cancelled before it starts raises ``trio.Cancelled`` and did nothing. A call
cancelled at a checkpoint between its steps closes its generator, which
rolls the transaction back: nothing was written, and ``Cancelled`` goes on.
A call running in a worker thread always finishes
(``abandon_on_cancel=False``, the default) and a cancellation that arrived
meanwhile is raised at the next checkpoint, never swallowed. A caller that
must get its commit through even when its scope is cancelled (the final
flush of a failing run) awaits it under ``trio.CancelScope(shield=True)`` or
``trio.move_on_after(limit, shield=True)``; a call in a worker thread is
bounded by the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import trio

from .._core import AuditEvent, EventColumns, EventType, check, count, fields_of, one_of, seconds
from ._database import SQLiteDatabase, WouldWait, is_busy, run_steps
from ._records import Lease, RunRecord, StoredRun, validate_definition
from ._schema import MIGRATIONS, Migration

__all__ = ["STORE_ENV", "SQLiteRunStore", "default_store_path"]

_COMPLETED = EventType.TASK_COMPLETED.value

T = TypeVar("T")

#: Seconds ``aclose`` waits, shielded, for the calls before it to finish.
CLOSE_TIMEOUT = 30.0

#: The environment variable that names the store file.
STORE_ENV = "TRIOFORGE_STORE"


def default_store_path(
    workflow_file: str | os.PathLike[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Where the run store lives, by precedence.

    1. ``store`` (the ``--store PATH`` option), if given;
    2. else ``$TRIOFORGE_STORE``, if set and not empty;
    3. else ``.trioforge/runs.db`` beside ``workflow_file``;
    4. else ``.trioforge/runs.db`` in the current directory.

    Relative paths are resolved against the current directory.

    Args:
        workflow_file: the workflow file being run, if any.
        store: an explicit path, which wins over everything.
        environ: the environment to read (``os.environ`` by default).
    """
    env = os.environ if environ is None else environ
    if store is not None:
        chosen = Path(store)
    elif env.get(STORE_ENV):
        chosen = Path(env[STORE_ENV])
    elif workflow_file is not None:
        chosen = Path(workflow_file).absolute().parent / ".trioforge" / "runs.db"
    else:
        chosen = Path(".trioforge") / "runs.db"
    return chosen.expanduser().absolute()


class SQLiteRunStore:
    """A :class:`RunStore` in one SQLite file, in WAL mode.

    Nothing is opened until the first call (or ``async with``), which creates
    the file and its folder if needed and migrates the schema. Use it as an
    async context manager, or call :meth:`aclose`.

    Args:
        path: the database file (see :func:`default_store_path`).
        synchronous: ``"full"`` (default): a commit is fsynced before it
            returns, so it survives a power cut; ``"normal"``: faster, and
            still survives the process being killed, but the last commits can
            be lost if the machine goes down.
        busy_timeout: seconds to wait for another process's write lock.
        clock: the time source for leases and for telling an ``interrupted``
            run (default ``time.time``); called on the trio thread.
        migrations: the schema steps; only tests pass anything else.
        readonly: only read: the file is opened read-only (``mode=ro``), is
            never created, switched to WAL mode or migrated, so ``runs``,
            ``show`` and ``report`` work without write access; every write
            fails.

    Attributes:
        path: the database file, absolute.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "full",
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
        readonly: bool = False,
    ) -> None:
        check("synchronous", synchronous, one_of(("full", "normal")))
        check("busy_timeout", busy_timeout, seconds(optional=False))
        self.path = Path(path).absolute()
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._migrations = tuple(migrations)
        self._readonly = readonly
        self._limiter = trio.CapacityLimiter(1)
        self._db: SQLiteDatabase | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteRunStore({str(self.path)!r})"

    async def __aenter__(self) -> SQLiteRunStore:
        await self._call(lambda db: None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _database(self, *, wait: bool = True) -> SQLiteDatabase:
        # Under the limiter, on the trio thread (wait=False) or a worker thread.
        if self._db is None:
            self._db = SQLiteDatabase(
                self.path,
                synchronous=self._synchronous,
                busy_timeout=self._busy_timeout,
                migrations=self._migrations,
                readonly=self._readonly,
                wait=wait,
            )
        return self._db

    async def _call(self, fn: Callable[[SQLiteDatabase], T]) -> T:
        """One call of the database, as :meth:`_write` runs it (in one step)."""
        return await self._write(lambda db: _at_once(lambda: fn(db)))

    async def _write(self, steps: Callable[[SQLiteDatabase], Generator[None, None, T]]) -> T:
        """One call: on the trio thread a step at a time, else in a worker thread.

        See "Threading" above.

        ``steps(db)`` is the call as a generator that yields between pieces of
        work (inside its transaction) and returns the result; other tasks run
        at each yield. When the call would wait for another process's lock
        (or the store is read-only: opening one may wait), it runs in one
        piece in a worker thread instead.
        """
        if self._closed:
            raise trio.ClosedResourceError(f"{self!r} is closed")
        if not self._readonly:
            async with self._limiter:
                if self._closed:
                    raise trio.ClosedResourceError(f"{self!r} is closed")
                try:
                    db = self._database(wait=False)
                    with db.without_waiting():
                        gen = steps(db)
                        try:
                            while True:
                                try:
                                    gen.send(None)
                                except StopIteration as done:
                                    result: T = done.value
                                    return result
                                await trio.lowlevel.checkpoint()
                        finally:
                            gen.close()  # rolls back a transaction left open (a cancel)
                except WouldWait:
                    pass  # another process's lock: wait for it off the trio thread
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
        return await self._in_thread(lambda db: run_steps(steps(db)))

    async def _in_thread(self, fn: Callable[[SQLiteDatabase], T]) -> T:
        """One call in a worker thread, which may wait for other processes' locks."""
        if self._closed:
            raise trio.ClosedResourceError(f"{self!r} is closed")
        return await trio.to_thread.run_sync(
            lambda: fn(self._database()), limiter=self._limiter, thread_name="trioforge store"
        )

    async def create_run(self, record: RunRecord) -> None:
        """See :meth:`RunStore.create_run`."""
        await self._write(lambda db: db.create_run_steps(record))

    async def commit(
        self,
        run_id: str,
        events: Sequence[AuditEvent],
        results: Mapping[str, Any],
        *,
        states: Mapping[str, tuple[str | None, bool]] | None = None,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        """See :meth:`RunStore.commit`.

        The results of the completed tasks are picked out here, on the trio
        thread, so the worker never reads a dict the run is still filling.

        Raises:
            ValueError: ``definition`` is not a definition snapshot.
        """
        # The recorder's batches are columns made for this commit (no object per event);
        # anything else is copied into new ones, which the caller cannot change meanwhile.
        batch = (
            events
            if isinstance(events, EventColumns)
            else EventColumns.from_rows(map(fields_of, events))
        )
        done = dict.fromkeys(tid for _, tid in batch.positions_of(_COMPLETED))
        picked = {tid: results[tid] for tid in done if tid in results}
        encoded = dict(states or {})
        if definition is not None:
            validate_definition(definition)
        now = self._clock()
        kept = dict(reserved) if reserved else None
        await self._write(
            lambda db: db.commit_steps(
                run_id, batch, picked, encoded, definition, owner, now, kept
            )
        )

    async def load(self, run_id: str) -> StoredRun:
        """See :meth:`RunStore.load`."""
        now = self._clock()
        return await self._write(lambda db: db.load_steps(run_id, now))

    async def load_events(self, run_id: str) -> list[AuditEvent]:
        """See :meth:`RunStore.load_events`."""
        return await self._write(lambda db: db.load_events_steps(run_id))

    async def list_runs(self, limit: int = 20, *, workflow: str | None = None) -> list[RunRecord]:
        """See :meth:`RunStore.list_runs`."""
        check("limit", limit, count(minimum=1, optional=False))
        now = self._clock()
        return await self._call(lambda db: db.list_runs(limit, workflow, now))

    async def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Delete these runs (tasks, events, leases too); return the ids deleted.

        Not part of :class:`RunStore`: housekeeping (``trioforge prune``).
        A run whose lease a live driver holds is never deleted; unknown ids
        are skipped.
        """
        ids = list(run_ids)
        now = self._clock()
        # In a worker thread: deleting a run deletes each of its events and tasks, which
        # could hold the event loop for long (housekeeping, not a run's hot path).
        return await self._in_thread(lambda db: db.delete_runs(ids, now))

    async def task_durations(self, workflow: str, *, runs: int = 20) -> dict[str, float]:
        """See :meth:`RunStore.task_durations`."""
        rows = await self._write(lambda db: db.completed_durations_steps(workflow, runs))
        by_task: dict[str, list[float]] = {}
        for task_id, duration in rows:
            by_task.setdefault(task_id, []).append(duration)
        return {tid: statistics.median(values) for tid, values in by_task.items()}

    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        """See :meth:`RunStore.acquire_lease`."""
        _check_ttl(ttl)
        now = self._clock()
        return await self._call(lambda db: db.acquire_lease(run_id, owner, ttl, now))

    async def renew_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        """See :meth:`RunStore.renew_lease`."""
        _check_ttl(ttl)
        now = self._clock()
        return await self._call(lambda db: db.renew_lease(run_id, owner, ttl, now))

    async def release_lease(self, run_id: str, owner: str) -> None:
        """See :meth:`RunStore.release_lease`."""
        await self._call(lambda db: db.release_lease(run_id, owner))

    async def aclose(self) -> None:
        """Close the connection once calls already made have finished.

        Closing happens even if the caller is cancelled (it is shielded, for
        at most 30 seconds of waiting behind calls still
        running; past that the connection is left to the garbage collector);
        the cancellation is raised afterwards. Closing twice is fine.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
            async with self._limiter:  # after the calls already made
                self._close()  # on the trio thread, as the calls run (see "Threading")
        await trio.lowlevel.checkpoint_if_cancelled()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _at_once(fn: Callable[[], T]) -> Generator[None, None, T]:
    """``fn()`` as a one-step generator (for :meth:`SQLiteRunStore._write`)."""
    result = fn()
    yield from ()
    return result


def _check_ttl(ttl: float) -> None:
    check("ttl", ttl, seconds(optional=False))
