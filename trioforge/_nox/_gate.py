"""SessionGate: sessions that share a virtualenv never overlap; an exclusive one runs alone.

nox deletes and recreates a session's virtualenv when it starts (unless told
to reuse it), so two sessions with the same envdir must never run together:
one could delete the other's environment mid-install. And under
``--respect-allow-parallel`` a session with ``allow_parallel=False`` runs with
nothing beside it, as under ``nox -j``.

Why a gate held inside the task body, rather than extra dependency edges
between sessions that share an envdir: an edge is a false dependency. Under
the failure policy nox users expect (a failure aborts only what requires it)
a failed session would abort an unrelated session that merely shares its
folder, and a resume would treat the two as ordered. The gate orders nothing;
it only keeps them apart. Its costs, until the core's named resource pools
replace it (an ``envdir:PATH`` pool of 1 per folder, and a ``nox-parallel``
pool of ``max_parallel`` where an exclusive session takes every slot): a
session waiting at the gate holds one of the executor's ``max_concurrency``
slots, and its recorded duration includes the wait (its *timeout* does not:
the session task starts its clock only once admitted).

The state is a few counters changed synchronously on the trio thread; waiters
sleep on a :class:`trio.Event` that is replaced whenever a session leaves, and
check again. An exclusive session that waits blocks new admissions (writer
preference), so it is not starved by a stream of short sessions; it cannot
deadlock, because the sessions it waits for are already running and wait on
nothing here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs
import trio

__all__ = ["SessionGate"]


@attrs.define(eq=False)
class SessionGate:
    """Admits a session when no running session has its envdir (and, if exclusive, none runs).

    One gate serves every session of one workflow.
    """

    _busy: set[str] = attrs.field(factory=set, init=False)
    _running: int = attrs.field(default=0, init=False)
    _alone_running: bool = attrs.field(default=False, init=False)
    _alone_waiting: int = attrs.field(default=0, init=False)
    _changed: trio.Event | None = attrs.field(default=None, init=False)

    def _may_enter(self, key: str, alone: bool) -> bool:
        if key in self._busy or self._alone_running:
            return False
        if alone:
            return self._running == 0
        return self._alone_waiting == 0

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_for_change(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    @property
    def running(self) -> int:
        """How many sessions are inside the gate now."""
        return self._running

    @contextlib.asynccontextmanager
    async def admit(self, envdir_key: str, *, alone: bool = False) -> AsyncIterator[None]:
        """Wait until the session may run, and hold its place while the block runs.

        Args:
            envdir_key: what sessions that share a virtualenv share.
            alone: run with no other session.
        """
        await trio.lowlevel.checkpoint()
        if alone:
            self._alone_waiting += 1
        try:
            while not self._may_enter(envdir_key, alone):
                await self._wait_for_change()
        finally:
            if alone:
                self._alone_waiting -= 1
                self._notify()  # sessions held back for this one may go now
        self._busy.add(envdir_key)
        self._running += 1
        if alone:
            self._alone_running = True
        try:
            yield
        finally:
            self._busy.discard(envdir_key)
            self._running -= 1
            if alone:
                self._alone_running = False
            self._notify()
