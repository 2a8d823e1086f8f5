"""Group commit: make a run's events durable in few transactions without delaying anyone.

The guarantee we need is "a task's completion and result are durable before
any task that depends on it starts". The naive way, one commit per event,
costs an fsync per event and makes every completion wait for every other
one's. Committing on a timer would batch well but either adds latency or
acknowledges completions that are not durable yet.

:class:`RunRecorder` follows the run's audit log: a commit reads the new
events back from the log by position, as a slice of the log's own buffers
(``AuditLog._columns``), so a durable run keeps the log's compact
recording and makes no object per event; while nothing is waiting to be
flushed, the log also calls it after each event, to wake its background
flush (it can also be used as an audit sink: ``emit`` records each event it
is given in a log of its own, which it follows the same way). Whoever needs durability
awaits :meth:`RunRecorder.flush`, which returns once every event emitted
before the call is committed. Flushes share commits, leader/follower style:

* if no commit is in flight, the caller becomes the leader: it yields (so
  completions from the same scheduler tick are emitted too, with the starts
  of the dependents they release), again while a yield brought new events
  (up to :data:`GATHER_YIELDS` times), takes the whole buffer and
  commits it;
* if one is in flight, the caller waits once: for that commit, when its
  events are in that batch; else for the next batch, which the first such
  waiter is woken to lead (with everything that piled up meanwhile) when the
  commit in flight ends. A flush never wakes up only to wait again, which
  matters when thousands of tasks complete together.

So there is at most one commit in flight, and batches grow by themselves when
commits are slow (many completions, one fsync). The leader's commit runs
under a shield: once events are taken from the buffer they are committed even
if the leader is cancelled (the cancellation is raised when the commit
returns), so cancelling a run never drops a completion that already happened.
The shield has a deadline (:data:`COMMIT_TIMEOUT`, or sooner the deadline a
bounded cleanup passes to ``flush``, as the run's final flush does): a commit
that misses it breaks the recorder instead of holding a cleanup past its
bound.
A commit that fails breaks the recorder: that flush and every later one
raise :class:`RunStoreError`, because a run that cannot record must stop.

Fencing: each commit carries the driver's lease owner, and the store refuses
it (writes nothing) once another driver has taken the lease over. The
recorder then calls ``on_lost`` (the driver stops its run without rolling
back), and every later flush calls it again, so a task that completed after
the loss is dropped as well, then checkpoints, which raises ``Cancelled``
inside the stopped run, and else raises the :class:`LeaseLostError`.

Each commit also carries the ``ctx.state`` of every task it has an event of
(an attempt's start, completion, failure, retry, cancellation,
compensation), so a resumed run gets back what a task remembered for its
compensation. The leader encodes them when it takes the batch, on the trio
thread: tasks change their states while they run, so no worker thread may
read them. A state is read when its batch is taken, a little after its
events were emitted, so the store gets the task's newest state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from .._core import AuditEvent, AuditLog, EventColumns
from ._codec import encode_state
from ._records import LeaseLostError, RunStoreError

if TYPE_CHECKING:
    from ._protocol import RunStore

__all__ = ["COMMIT_TIMEOUT", "GATHER_YIELDS", "RunRecorder"]

#: At most how many times a leader yields to gather events before it commits
#: (it stops at the first yield that brought none).
GATHER_YIELDS = 4

#: Seconds one group commit may take (waiting for the store included) when
#: the caller has no nearer deadline of its own.
COMMIT_TIMEOUT = 30.0


class RunRecorder:
    """An audit sink that commits one run's events to a store in groups.

    Args:
        store: the run store (the run must already be created).
        run_id: the run; events of other runs are ignored.
        results: the run's results by task id (the live dict is fine: each
            commit reads the results of the tasks it completes, on the trio
            thread).
        states: the run's ``ctx.state`` dicts by task id (the live dict is
            fine, likewise: each commit encodes the states of the tasks it has
            events of, on the trio thread); None to store no states.
        definition: a definition to make the run's with the first commit
            (a resume forced through a changed workflow); None to keep it.
        owner: the lease owner the run is driven as, sent with each commit as
            a fencing token; None for no check.
        on_lost: called (with the error) whenever a flush finds the lease lost.
        log: the audit log to follow (every event recorded in it from now on
            that belongs to ``run_id``); None to be fed through :meth:`emit`
            instead (into a log of its own). A recorder that follows a log must
            be :meth:`detach`-ed from it when the run is over.
        reserve: called as each commit's batch is taken: the starts to
            reserve with it (``task_id: attempt``, see ``RunStore.commit``);
            None to reserve none.
        confirm: called once a commit that reserved starts is durable.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        results: Mapping[str, Any],
        states: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        definition: Mapping[str, Any] | None = None,
        owner: str | None = None,
        on_lost: Callable[[LeaseLostError], None] | None = None,
        log: AuditLog | None = None,
        reserve: Callable[[], Mapping[str, int]] | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._reserve = reserve
        self._confirm = confirm
        self.owner = owner
        self._on_lost = on_lost
        self._lost: LeaseLostError | None = None
        self._waiting = trio.Event()
        self.run_id = run_id
        self._results = results
        self._states = states
        self._definition = definition
        # Positions in the followed log (its own one when fed through emit()).
        self._own_log = log is None
        self._log = AuditLog() if log is None else log
        self._taken = len(self._log)  # where the next batch starts
        self._durable = self._taken  # every event before this is committed
        self._committing = False
        self._inflight_end = self._taken  # where the batch in flight ends
        self._in_batch = trio.lowlevel.ParkingLot()  # waiters whose events are in it
        self._after = trio.lowlevel.ParkingLot()  # waiters whose events came after
        self._broken: BaseException | None = None
        #: How many commits this recorder made (for tests and statistics).
        self.commits = 0

    def __repr__(self) -> str:
        return f"RunRecorder({self.run_id!r}, unflushed={self.unflushed})"

    @property
    def _emitted(self) -> int:
        """The position after the last event recorded."""
        return len(self._log)

    @property
    def unflushed(self) -> int:
        """Events recorded but not yet durable (of any run, in a followed log)."""
        return self._emitted - self._durable

    def _wake(self) -> None:
        self._waiting.set()

    def emit(self, event: AuditEvent) -> None:
        """Buffer an event of this run (does not write anything).

        Raises:
            RuntimeError: this recorder follows an audit log.
        """
        if not self._own_log:
            raise RuntimeError("this recorder follows an audit log; record events there")
        if event.workflow_id == self.run_id:
            self._log.record(event)

    def detach(self) -> None:
        """Stop following the audit log (see :meth:`wait_unflushed`)."""
        if self._wake in self._log.followers:
            self._log.followers.remove(self._wake)

    def _take(self) -> EventColumns:
        """Every event of this run recorded since the last batch.

        As a slice of the log's own buffers when they hold only this run's
        events (no object per event), else picked out of the log's rows.
        """
        end = self._emitted
        run_id = self.run_id
        batch = self._log._columns(self._taken, end, run_id)
        if batch is None:
            batch = EventColumns.from_rows(
                row for row in self._log.rows(self._taken, end) if row[1] == run_id
            )
        self._taken = self._inflight_end = end
        return batch

    async def wait_unflushed(self) -> None:
        """Return once some event is waiting to be flushed (at once if one is).

        The recorder follows the log (is called after each event) only while
        this waits, so a busy run pays no call per event for it.
        """
        while not self.unflushed:
            self._log.followers.append(self._wake)
            try:
                await self._waiting.wait()
            finally:
                self.detach()
            self._waiting = trio.Event()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def flush(self, *, deadline: float = math.inf) -> None:
        """Return once every event emitted before this call is durable.

        A commit this call leads is shielded from cancellation until
        :data:`COMMIT_TIMEOUT` seconds have passed or ``deadline`` (trio time),
        whichever comes first: a cleanup that must end by a bound passes it.

        Raises:
            RunStoreError: a commit failed (this one or an earlier one).
        """
        target = self._emitted
        if self._durable >= target:
            if self._lost is not None:
                await self._stop(self._lost)
            self._check()
            await trio.lowlevel.checkpoint()
            return
        while self._durable < target:
            if self._lost is not None:
                await self._stop(self._lost)
            self._check()
            if self._committing:
                # One wait per flush: until the batch that holds our events is done,
                # or until we are picked to lead the next one.
                lot = self._in_batch if target <= self._inflight_end else self._after
                await lot.park()
            else:
                await self._lead(deadline)
        await trio.lowlevel.checkpoint_if_cancelled()

    async def _stop(self, lost: LeaseLostError) -> NoReturn:
        if self._on_lost is not None:
            self._on_lost(lost)
        await trio.lowlevel.checkpoint()  # Cancelled, inside the stopped run
        raise lost

    def _check(self) -> None:
        if self._broken is not None:
            raise RunStoreError(
                f"could not record run {self.run_id!r} in the run store: {self._broken!r}"
            ) from self._broken

    async def _lead(self, deadline: float) -> None:
        self._committing = True
        led = False
        batch: EventColumns | None = None
        limit = min(trio.current_time() + COMMIT_TIMEOUT, deadline)
        try:
            # Shielded, so a cancelled leader still commits what it took, but with a
            # deadline, so that no cleanup that awaits this is held past its bound.
            with trio.CancelScope(shield=True, deadline=limit) as scope:
                # Let the tasks woken in this tick emit their events into this batch
                # (their completions, and the starts of the dependents they release),
                # and yield again while that brings new events: a yield costs far less
                # than a commit.
                seen = self._emitted
                await trio.lowlevel.checkpoint()
                for _ in range(GATHER_YIELDS - 1):
                    if self._emitted == seen:
                        break
                    seen = self._emitted
                    await trio.lowlevel.checkpoint()
                batch = self._take()
                end = self._inflight_end
                # Whoever waited for "the next batch" waits for this one now.
                self._after.repark_all(self._in_batch)
                led = True
                if batch:
                    states = self._encode_states(batch)
                    reserved = None if self._reserve is None else self._reserve()
                    # Passed only when there are some: a store that keeps no
                    # reservations is never asked to.
                    extra = {"reserved": reserved} if reserved else {}
                    try:
                        await self.store.commit(
                            self.run_id,
                            batch,
                            self._results,
                            states=states,
                            definition=self._definition,
                            owner=self.owner,
                            **extra,
                        )
                    except LeaseLostError as exc:
                        self._lost = exc  # the loop in flush() stops the run
                        return
                    except Exception as exc:
                        self._broken = exc  # the loop in flush() raises it as RunStoreError
                        return
                    self._definition = None
                    self.commits += 1
                    if reserved and self._confirm is not None:
                        self._confirm()
                self._durable = end
            if scope.cancelled_caught:
                self._broken = TimeoutError(
                    f"a commit of {len(batch or ())} events did not finish within its deadline"
                )
        except BaseException as exc:
            self._broken = exc
            raise
        finally:
            self._committing = False
            if not led or self._broken is not None or self._lost is not None:
                self._after.repark_all(self._in_batch)  # they all raise, or retry
            self._in_batch.unpark_all()
            self._after.unpark(count=1)  # the next leader; the rest wait for its batch

    def _encode_states(self, batch: EventColumns) -> dict[str, tuple[str | None, bool]]:
        """The encoded ``ctx.state`` of each task with an event in ``batch`` that has one."""
        live = self._states
        encoded: dict[str, tuple[str | None, bool]] = {}
        if not live:
            return encoded
        for task_id in batch.task_ids():
            state = live.get(task_id)
            if state is not None:
                encoded[task_id] = encode_state(state)
        return encoded
