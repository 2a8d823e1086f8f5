"""The :class:`RunStore` protocol: the whole contract between the executor, the CLI and a backend.

It speaks only in :mod:`._records` values and audit events, so a PostgreSQL
store can be added without touching the executor. The SQLite backend is
:class:`~trioforge.store.SQLiteRunStore` (``_sqlite.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .._core import AuditEvent
from ._records import Lease, RunRecord, StoredRun

__all__ = ["RunStore"]


class RunStore(Protocol):
    """Where runs are kept; every method is async and a checkpoint.

    Implementations must make :meth:`commit` atomic and durable before it
    returns, let other processes read while a run writes, and never swallow
    ``trio.Cancelled``.
    """

    async def create_run(self, record: RunRecord) -> None:
        """Store a new run; each task of its definition stands ``pending`` until its events.

        Raises:
            ValueError: a run with that id is already stored.
        """
        ...

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
        """Append ``events`` to the run, in one transaction; a load folds them into its tasks.

        ``results`` holds the result of each task that ``events`` complete (by
        task id); others are ignored. ``states`` maps task ids to their
        ``ctx.state``, encoded as ``(json_text, restorable)`` by
        ``trioforge._store._codec.encode_state``, and replaces what the
        task's record held. ``definition``, when given, becomes the run's
        definition (and hash) from now on: a resume forced through a changed
        workflow stores it with its first events. Returns once the
        transaction is durable.

        Folding, event by event: ``TaskStarted`` makes the task ``running``,
        counts an attempt and sets ``started_at``; ``TaskCompleted`` makes it
        ``completed`` with ``finished_at`` and its result; ``TaskFailed`` and
        ``TaskTimedOut`` make it ``failed`` with the error (a following
        ``TaskRetrying`` makes it ``running`` again); ``TaskSkipped`` and
        ``TaskCancelled`` make it ``skipped`` and ``cancelled``;
        ``TaskCompensated`` marks it compensated; ``WorkflowStarted`` makes the
        run ``running``; the workflow's ending events set its status and
        ``finished_at``.

        ``owner``, when given, is a fencing token: the lease owner the driver
        holds the run's lease as. The transaction checks that ``owner`` still
        holds the lease and writes nothing if not, so a driver whose lease
        was taken over (its heartbeat stalled) can never overwrite what the
        new driver records.

        ``reserved`` (``task_id: attempt``) are starts reserved by this
        commit, after its events: each such attempt may start before a
        commit records its ``TaskStarted`` (a scheduler with a slot limit
        starts the task next in line the moment a slot frees). A load counts
        a reservation as a started attempt (``attempts``) unless a
        ``TaskStarted`` of that attempt or a later one follows it, or the run
        ended (a workflow ending event) after it without starting the task:
        after a crash, an attempt that may have run is counted, as if its
        start had been recorded.

        Raises:
            RunNotFoundError: the run is not in the store.
            LeaseLostError: ``owner`` no longer holds the run's lease.
        """
        ...

    async def load(self, run_id: str) -> StoredRun:
        """The run and every task's record, as one consistent snapshot.

        Raises:
            RunNotFoundError: the run is not in the store.
        """
        ...

    async def load_events(self, run_id: str) -> list[AuditEvent]:
        """Every audit event of the run, oldest first.

        Raises:
            RunNotFoundError: the run is not in the store.
        """
        ...

    async def list_runs(self, limit: int = 20, *, workflow: str | None = None) -> list[RunRecord]:
        """The newest ``limit`` runs (only ``workflow``'s, if given), newest first."""
        ...

    async def task_durations(self, workflow: str, *, runs: int = 20) -> dict[str, float]:
        """Each task's median duration in seconds over the newest ``runs`` runs of ``workflow``.

        Only completed tasks count; a task that never completed is absent.
        """
        ...

    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        """Become the run's only driver for ``ttl`` seconds (re-acquiring your own lease is fine).

        An expired lease, or one whose holder is known to be dead, is taken over.

        Raises:
            RunLockedError: another owner holds a live lease.
            RunNotFoundError: the run is not in the store.
        """
        ...

    async def renew_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        """Extend ``owner``'s lease to ``ttl`` seconds from now.

        Raises:
            RunLockedError: the lease is no longer ``owner``'s (taken over or released).
        """
        ...

    async def release_lease(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease; does nothing if ``owner`` does not hold it."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources; later calls raise ``trio.ClosedResourceError``."""
        ...
