"""Driving a run durably: the lease, one load under it, the rewind of a re-run, fenced recording.

:func:`driving` is what the executor wraps a run with when it has a store.
For a new run it creates the run's record; then it takes the run's lease and
keeps it (the heartbeat); for a resume it loads the run **once, under the
lease** (a load before the lease could miss what another driver did), and
restores it (:func:`~._durable.restore`, the one restore rule); for a
``rerun=`` it compensates the earlier completions of the tasks to re-run,
dependents first, before anything runs; then the run is recorded
(:func:`~._durable.recording`), every commit fenced by the lease owner.

Losing the lease is not a cancellation from outside: the tasks this driver
completed now belong to the driver that took over, which restores them, so
undoing them would undo the other driver's state. So a lost lease (found by
the heartbeat or by a refused commit) drops the run's completed tasks from
the rollback, cancels the run's scope at once with the reason, and the block
ends in :class:`LeaseLostError`; the store is not written again, so the run's
stored status stays the new driver's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs

from .._core import Run, WorkflowError, roll_back
from ._durable import Resumption, recording, restore
from ._lease import hold_lease
from ._owner import lease_owner
from ._protocol import RunStore
from ._records import LeaseLostError, RunLockedError, RunRecord, StoredRun

__all__ = ["LEASE_TTL", "ResumeRequest", "RewindError", "driving"]

#: Seconds a driver's lease lasts without renewal (renewed every third of it).
LEASE_TTL = 30.0


@attrs.frozen
class ResumeRequest:
    """How to resume a stored run (the options of ``WorkflowExecutor.resume``).

    Attributes:
        run_id: the run.
        force: resume even though the workflow's definition changed.
        rerun: tasks to run again (with everything downstream) though they completed.
        compensate: compensate the earlier completions of ``rerun``'s tasks first.
        on_restore: called with the :class:`Resumption` once it is decided,
            before the run starts (the command line's progress view).
    """

    run_id: str
    force: bool = False
    rerun: tuple[str, ...] = ()
    compensate: bool = True
    on_restore: Callable[[Resumption], None] | None = attrs.field(default=None, eq=False)


class RewindError(WorkflowError):
    """Raised by a resume with ``rerun=`` when compensating the earlier completions failed.

    Nothing was re-run. Attributes: ``run_id``; ``failures``, the exception of
    each compensation that failed, by task id.
    """

    def __init__(self, run_id: str, failures: dict[str, BaseException]) -> None:
        self.run_id = run_id
        self.failures = failures
        names = ", ".join(f"{tid!r} ({exc!r})" for tid, exc in failures.items())
        super().__init__(
            f"cannot re-run tasks of run {run_id!r}: compensating their earlier completion "
            f"failed for {names}; nothing was re-run (fix the compensation, or re-run "
            "without compensating: compensate=False, trioforge resume --no-compensate)"
        )


@asynccontextmanager
async def driving(
    store: RunStore,
    run: Run,
    definition: dict[str, Any],
    *,
    resume: ResumeRequest | None = None,
    compensation_timeout: float = 30.0,
    lease_ttl: float | None = None,
) -> AsyncIterator[Resumption | None]:
    """Drive ``run`` durably: lease, (for a resume) one load and restore, recording.

    A new run is created in the store first. Then the run's lease is taken
    and kept; a resumed run is loaded once, under the lease (so what another
    driver did before counts), restored (:func:`restore`), and the earlier
    completions of the tasks to re-run are compensated; then the block runs
    inside :func:`recording`, every commit fenced by the lease owner.

    Losing the lease (the heartbeat's renewal or a commit refused) stops the
    run at once without a rollback: the run's completed tasks are dropped
    from it before its scope is cancelled, since they now belong to the
    driver that took over, and the store is not written again. The block
    then ends in :class:`LeaseLostError`, whatever the run raised.

    Raises:
        RunNotFoundError: a resumed run is not in the store.
        RunLockedError: another live driver holds the run's lease.
        LeaseLostError: the lease was lost while the run ran.
        RewindError: compensating a re-run task's earlier completion failed.
    """
    run_id = run.workflow_id
    if resume is None:
        await store.create_run(RunRecord.start(run_id, definition, started_at=time.time()))
        # Read again only by a resume: drop it, so its object per task does not live in
        # the oldest generation for the whole run (where it triggers full collections).
        definition = {}
    owner = lease_owner()
    lost: list[LeaseLostError] = []

    def abandon(exc: RunLockedError) -> None:
        if not lost:
            if not isinstance(exc, LeaseLostError):  # pragma: no cover - a foreign store
                exc = LeaseLostError(exc.run_id, exc.holder, exc.expires_at, lost_by=owner)
            exc.args = (
                f"{exc}; this driver stopped at once and did not roll back "
                "(what it completed belongs to the driver that took the run over)",
            )
            lost.append(exc)
            run.cancel_reason = str(exc)
            run.scope.cancel(reason="the run's lease was lost")
        run.completed.clear()  # no rollback: the new driver owns these tasks

    resumed: Resumption | None = None
    try:
        ttl = LEASE_TTL if lease_ttl is None else lease_ttl
        async with hold_lease(store, run_id, owner=owner, ttl=ttl, on_lost=abandon):
            if resume is not None:
                stored = await store.load(run_id)
                resumed = restore(run, stored, definition, force=resume.force, rerun=resume.rerun)
                if resume.on_restore is not None:
                    resume.on_restore(resumed)
            async with recording(store, run, resumed=resumed, owner=owner, on_lost=abandon):
                if resume is not None and resume.compensate and resumed and resumed.rewound:
                    await _rewind(run, stored, resumed.rewound, compensation_timeout)
                yield resumed
    except Exception:
        # Cancelled, KeyboardInterrupt and SystemExit go on as they are.
        if lost:
            raise lost[0]  # noqa: B904 - what the run raised is kept as __context__
        raise


async def _rewind(run: Run, stored: StoredRun, rewound: list[str], limit: float) -> None:
    """Compensate the earlier completions of ``rewound`` (topological order), dependents first.

    The compensations see each task's restored ``ctx.state`` and its stored
    result; the events go to the store, which marks the tasks compensated.
    """
    restored = list(run.completed)
    earlier = {}
    for task_id in rewound:
        record = stored.tasks[task_id]
        if record.result_restorable:
            with contextlib.suppress(ValueError):
                earlier[task_id] = record.result()
    run.completed[:] = rewound
    run.results.update(earlier)
    try:
        undone = await roll_back(run, limit)
    finally:
        run.completed[:] = restored
        for task_id in earlier:
            del run.results[task_id]
    if undone.raised is not None:
        raise undone.raised  # a KeyboardInterrupt-like exception from a compensation
    if undone.failures:
        raise RewindError(run.workflow_id, undone.failures)
