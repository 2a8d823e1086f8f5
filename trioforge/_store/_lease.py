"""One driver per run: lease owners, liveness, and the heartbeat that keeps a lease.

A process that drives a run (runs or resumes it) holds the run's *lease*: a
row naming the owner and an expiry. It renews the lease every ``ttl / 3``
seconds; a second driver is refused while the lease is live, and takes it over
once the lease has expired, i.e. the holder has missed about three heartbeats
and is presumed dead.

Waiting out the whole ``ttl`` after a crash is annoying when the dead holder
ran on this very machine, which is the common case (Ctrl-C, OOM killer,
SIGKILL, then "fix it and resume"). So an owner is ``host:pid:token``, and a
holder whose host is ours and whose pid no longer exists is dead at once. The
check errs on the safe side: a reused pid, another host, a container with the
same host name but its own pid space, or a non-POSIX system all look alive and
fall back to the expiry. The random token tells apart two stores in one
process.

:func:`keep_lease` is the heartbeat as a task to start in the driver's own
nursery; :func:`hold_lease` wraps acquire, heartbeat and release in one
``async with`` for callers that have no nursery of their own. When a renewal
finds the lease gone (someone took it over after our heartbeat stalled), the
heartbeat raises :class:`RunLockedError`, which cancels the driver: two
drivers must never write the same run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import trio

from .._core import single_error
from ._records import RunLockedError

if TYPE_CHECKING:
    from ._protocol import RunStore
    from ._records import Lease

from ._owner import lease_owner

__all__ = ["hold_lease", "keep_lease"]

#: Longest wait for the lease to be released when ``hold_lease`` exits.
RELEASE_TIMEOUT = 10.0


async def keep_lease(
    store: RunStore,
    run_id: str,
    owner: str,
    ttl: float,
    *,
    interval: float | None = None,
    on_lost: Callable[[RunLockedError], None] | None = None,
) -> None:
    """Renew ``owner``'s lease every ``interval`` (default ``ttl / 3``) seconds, forever.

    Start it in the nursery of whatever drives the run; cancel it when the run
    ends. A renewal that fails for another reason (the database busy for
    longer than its timeout, say) is retried at the next beat, as long as the
    lease has not lapsed meanwhile.

    ``on_lost``, if given, is called with the error before it is raised
    (synchronously, so the driver can stop its run before anything else
    happens).

    Raises:
        RunLockedError: the lease was taken over or released, so the caller
            no longer owns the run and must stop.
        Exception: renewals kept failing until the lease lapsed (the last
            failure is raised).
    """
    every = ttl / 3 if interval is None else interval
    if not every > 0 or every >= ttl:
        raise ValueError(f"interval must be > 0 and < ttl ({ttl}), got {every!r}")
    renewed = trio.current_time()
    while True:
        await trio.sleep(every)
        asked = trio.current_time()
        try:
            await store.renew_lease(run_id, owner, ttl)
        except RunLockedError as exc:
            if on_lost is not None:
                on_lost(exc)
            raise
        except Exception:
            if trio.current_time() + every - renewed >= ttl:
                raise  # the next beat would come after the lease lapsed
        else:
            renewed = asked


@asynccontextmanager
async def hold_lease(
    store: RunStore,
    run_id: str,
    *,
    owner: str | None = None,
    ttl: float = 30.0,
    interval: float | None = None,
    on_lost: Callable[[RunLockedError], None] | None = None,
) -> AsyncIterator[Lease]:
    """Acquire the run's lease, renew it while the block runs, release it after.

    Args:
        store: the run store.
        run_id: the run to drive.
        owner: the owner name; a fresh :func:`lease_owner` by default.
        ttl: seconds a lease lasts without renewal.
        interval: seconds between renewals (default ``ttl / 3``).
        on_lost: called with the error when the heartbeat finds the lease
            lost, before the block is cancelled.

    Raises:
        RunLockedError: on entry, another live process drives the run; inside
            the block, the lease was lost (the block is cancelled first).

    The release runs under a shield, for at most 10 seconds; if it fails,
    the lease simply expires.
    """
    who = lease_owner() if owner is None else owner
    lease = await store.acquire_lease(run_id, who, ttl)
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                beat = partial(keep_lease, interval=interval, on_lost=on_lost)
                nursery.start_soon(beat, store, run_id, who, ttl)
                try:
                    yield lease
                finally:
                    nursery.cancel_scope.cancel(reason="the lease is no longer needed")
    except BaseException:
        # Never hide the original failure behind a cleanup error: the lease expires.
        with contextlib.suppress(Exception), trio.move_on_after(RELEASE_TIMEOUT, shield=True):
            await store.release_lease(run_id, who)
        raise
    with trio.move_on_after(RELEASE_TIMEOUT, shield=True):
        await store.release_lease(run_id, who)
