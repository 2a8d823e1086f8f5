"""Submit and fetch in batches: one scheduler message for the calls of one trio tick.

Dask's per-task cost is mostly per *message*: ``client.submit`` sends one
``update-graph`` message per call, which the scheduler handles one by one,
while ``client.map`` sends one for a thousand calls; likewise one
``gather`` per result costs a round trip each. A workflow starts its ready
tasks in the same trio tick (a fan-out of 1,000 tasks starts 1,000 calls at
once), so batching what one tick asks for recovers most of ``map``'s
economy without changing what a call means.

Submitting (trio thread): the first call of a tick is the leader; it yields
once (a shielded checkpoint, so the other tasks of the tick join its batch),
then sends the whole batch with one ``client.map`` per distinct resource
demand and wakes the followers, whose futures are then set. A follower
whose cancellation is processed before the batch is sent is left out of it;
one whose call was sent is flagged and cancelled like any cancelled call
(the leader's too, by the caller's next await).

Settling (client's loop thread): the trio thread hands each submitted
future to the client's :class:`Watcher`, one loop callback for all the
futures handed over before the loop takes them (Dask's own
``add_done_callback`` costs a loop callback per future, a thread-pool hop
and a callback thread). The futures that settle in one loop iteration are
flushed together: their values are fetched in one ``gather`` (one at a
time: those that settle while a gather is in flight wait for it and go in
the next one), and their outcomes reach trio in one ``run_sync_soon``. If
a gather fails (a worker was lost meanwhile, say), each value is fetched
on its own so each call gets its own outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import attrs
import trio
from distributed import Client, Event, Future, get_worker
from distributed.client import FutureCancelledError
from distributed.protocol import pickle as dask_pickle

__all__ = [
    "Outcome",
    "RemoteCancelledError",
    "Watcher",
    "cancel_event_name",
    "deliver",
    "fetch_one",
    "flag",
    "seen_cancelled",
    "submit",
    "watcher",
]


class RemoteCancelledError(RuntimeError):
    """Raised when a remote call was cancelled or lost by Dask, not by the awaiting trio scope.

    For instance when another client cancelled the key, or the client closed
    while the call was pending.
    """


_CANCEL_PREFIX = "trioforge-cancel-"


def cancel_event_name(key: str) -> str:
    """The name of the Dask ``Event`` that flags the call ``key`` as cancelled."""
    return _CANCEL_PREFIX + key


def flag(key: str) -> Any:
    """The cancel flag of the call ``key``, for a worker (``distributed.Event`` is untyped)."""
    event: Any = Event
    return event(cancel_event_name(key))


#: On a worker: the calls whose cancel flag ``cancelled()`` saw set.
seen_cancelled: set[str] = set()


def _apply(fn: bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """On the worker: ``fn(*args, **kwargs)`` (futures inside the arguments are resolved).

    ``fn`` comes pickled by Dask's own ``dumps``, which pickles a function by
    value when its module is registered with ``cloudpickle.register_pickle_by_value``
    or is ``__main__``; Dask only applies that rule to a task's top-level
    function, which ``_apply`` is, so the user's function would otherwise be
    pickled by reference and fail to load on a worker that cannot import it.
    """
    try:
        return _load_function(fn)(*args, **kwargs)
    finally:
        _forget_flag()


def _forget_flag() -> None:
    """When a call ends on a worker: delete its cancel flag from the scheduler, if it has one.

    It has one if ``cancelled()`` saw it set, or if Dask released the call
    while it ran (the worker then marks its task ``cancelled``), since the
    orchestrator sets the flag before it cancels the future. Both are local
    checks, so a call that was not cancelled costs no round trip. A flag
    stays behind only for a call cancelled before it started on a worker,
    or one that ended before the worker heard of the cancel.
    """
    try:
        worker = get_worker()
    except ValueError:  # not on a worker: no flag to forget
        return
    key = worker.get_current_task()
    task = worker.state.tasks.get(key)
    if str(key) in seen_cancelled or (task is not None and task.state == "cancelled"):
        seen_cancelled.discard(str(key))
        with contextlib.suppress(Exception):  # best effort: the scheduler may be gone
            flag(str(key)).clear()  # a cleared event with no waiters is deleted


@functools.lru_cache(maxsize=256)
def _load_function(payload: bytes) -> Callable[..., Any]:
    """The function pickled in ``payload`` (cached, as Dask caches its task functions)."""
    fn: Callable[..., Any] = _PICKLE.loads(payload)
    return fn


#: Dask's own pickling (cloudpickle where needed); untyped.
_PICKLE: Any = dask_pickle


@attrs.define(eq=False)
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: str
    resources: tuple[tuple[str, float], ...]
    future: Future[Any] | None = None
    abandoned: bool = False


@attrs.define(eq=False)
class _Batch:
    calls: list[_Call]
    sent: trio.Event = attrs.Factory(trio.Event)
    error: Exception | None = None


#: The batch being gathered, per (client, trio run); present only during one tick.
_open: dict[tuple[str, trio.lowlevel.TrioToken], _Batch] = {}


def _send(client: Client, batch: _Batch) -> None:
    groups: dict[tuple[tuple[str, float], ...], list[_Call]] = {}
    for call in batch.calls:
        if not call.abandoned:
            groups.setdefault(call.resources, []).append(call)
    # One pickle per distinct function of the batch (a fan-out calls one function many times).
    payloads: dict[int, bytes] = {}
    try:
        for resources, calls in groups.items():
            futures = client.map(
                _apply,
                [_payload(payloads, call.fn) for call in calls],
                [call.args for call in calls],
                [call.kwargs for call in calls],
                key=[call.key for call in calls],
                resources=dict(resources),
                pure=False,
            )
            for call, future in zip(calls, futures, strict=True):
                call.future = future
    except Exception as exc:  # e.g. the client is closed
        batch.error = exc


def _payload(payloads: dict[int, bytes], fn: Callable[..., Any]) -> bytes:
    found = payloads.get(id(fn))  # the batch holds fn: its id is not reused meanwhile
    if found is None:
        found = payloads[id(fn)] = _PICKLE.dumps(fn)
    return found


async def submit(
    client: Client,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    key: str,
    resources: Mapping[str, float] | None,
    on_abandon: Callable[[Future[Any]], None],
) -> Future[Any]:
    """Submit ``fn(*args, **kwargs)`` under ``key`` with the other calls of this trio tick.

    ``on_abandon(future)`` is called for a call that was sent although its
    caller was cancelled while waiting for the batch to go.

    Raises:
        Exception: the batch could not be sent (the client is closed, say).
    """
    call = _Call(fn, args, dict(kwargs), key, tuple(sorted((resources or {}).items())))
    slot = (str(client.id), trio.lowlevel.current_trio_token())
    batch = _open.get(slot)
    if batch is None:
        batch = _open[slot] = _Batch([call])
        try:
            # Shielded: the leader sends the batch even if it is cancelled meanwhile.
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            del _open[slot]
            _send(client, batch)
            batch.sent.set()
        # A cancellation of the leader meanwhile reaches it in the caller's next await
        # (await_future), which cancels the call it has just sent.
    else:
        batch.calls.append(call)
        try:
            await batch.sent.wait()
        except BaseException:
            call.abandoned = True
            if call.future is not None:
                on_abandon(call.future)
            raise
    if batch.error is not None:
        raise batch.error
    assert call.future is not None
    return call.future


@attrs.define(eq=False)
class Outcome:
    """Where the client's loop leaves a call's outcome for the trio thread that awaits it."""

    token: trio.lowlevel.TrioToken
    done: trio.Event = attrs.Factory(trio.Event)
    value: Any = None
    error: BaseException | None = None

    def settle(self, value: Any, error: BaseException | None) -> None:
        """On the trio thread: keep the outcome and wake the waiting task."""
        self.value = value
        self.error = error
        self.done.set()


#: What the loop hands to trio: each outcome with its value or error.
Settled = list[tuple[Outcome, Any, BaseException | None]]


def _settle_all(settled: Settled) -> None:
    """On the trio thread: settle the outcomes of one hand-over."""
    for outcome, value, error in settled:
        outcome.settle(value, error)


def deliver(settled: Settled) -> None:
    """Hand outcomes to their trio threads: one ``run_sync_soon`` per trio run (any thread)."""
    by_token: dict[trio.lowlevel.TrioToken, Settled] = {}
    for item in settled:
        by_token.setdefault(item[0].token, []).append(item)
    for token, items in by_token.items():
        with contextlib.suppress(trio.RunFinishedError):  # nobody is waiting any more
            token.run_sync_soon(_settle_all, items)


class Watcher:
    """Watches a client's futures from its loop; settles their outcomes in batches.

    The trio thread hands futures over with :meth:`watch` (one loop callback
    for all those handed over before the loop takes them). On the loop, a
    waiter on each future's state notes when it settles; the futures that
    settle in one loop iteration are flushed together: the values to fetch
    in one ``gather`` (while a gather is in flight, the next batch waits for
    it, so a busy run makes few large gathers, not many small ones), and
    all their outcomes go to trio in one ``run_sync_soon``.
    """

    def __init__(self) -> None:
        # No reference to the client (the futures have theirs): a watcher is
        # the value of a weak dict keyed by its client.
        self._lock = threading.Lock()
        self._incoming: list[tuple[Future[Any], bool, Outcome]] = []
        # Loop-thread state only, from here on.
        self._finished: list[tuple[Future[Any], bool, Outcome]] = []
        self._flush_due = False
        self._gathering = False
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, future: Future[Any], fetch: bool, outcome: Outcome) -> None:
        """Settle ``outcome`` with the value (``fetch``) or future, or its error; any thread."""
        with self._lock:
            self._incoming.append((future, fetch, outcome))
            first = len(self._incoming) == 1
        if first:
            untyped: Any = future  # untyped API
            untyped.client.loop.add_callback(self._take)

    def _take(self) -> None:
        with self._lock:
            taken, self._incoming = self._incoming, []
        for item in taken:
            self._hook(item)

    def _hook(self, item: tuple[Future[Any], bool, Outcome]) -> None:
        """On the loop: settle ``item`` now if its future has settled, else once it does.

        The future's state holds an ``asyncio.Event`` (Dask's own
        done-callbacks await it). Awaiting it would take an asyncio task per
        future; a waiter added to the event is a plain ``asyncio.Future``
        whose callback runs when the event is set, for a fraction of the
        cost. Should those internals change, a task per future awaits the
        state instead.
        """
        future: Any = item[0]  # untyped API
        if future.status != "pending":
            self._settled(item)
            return
        try:
            event = future._state._get_event()
            waiters = event._waiters
        except AttributeError:  # the internals changed: the slower, public way
            self._spawn(self._wait(*item))
            return
        if event.is_set():  # not expected while pending; fetch_one sorts it out
            self._settled(item)
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        waiter.add_done_callback(functools.partial(self._woken, waiters, item))

    def _woken(
        self, waiters: Any, item: tuple[Future[Any], bool, Outcome], waiter: asyncio.Future[Any]
    ) -> None:
        with contextlib.suppress(ValueError):  # Event.wait() removes its waiters, so do we
            waiters.remove(waiter)
        self._hook(item)  # still pending if the future was lost and is being recomputed

    async def _wait(self, future: Future[Any], fetch: bool, outcome: Outcome) -> None:  # noqa: ASYNC910
        # An asyncio coroutine on the client's loop: trio's checkpoint rules do not apply.
        # ``_state.wait()`` is what Dask's own done-callbacks await.
        untyped: Any = future
        try:
            while untyped.status == "pending":
                await untyped._state.wait()
        except asyncio.CancelledError:
            # The loop itself is stopping (the client is closing): tell trio, then stop too.
            deliver([(outcome, None, _closed(future))])
            raise
        except Exception as exc:  # a Dask internal changed: fail the call, never hang it
            deliver([(outcome, None, exc)])
        else:
            self._settled((future, fetch, outcome))

    def _settled(self, item: tuple[Future[Any], bool, Outcome]) -> None:
        self._finished.append(item)
        if not self._flush_due and not self._gathering:
            self._flush_due = True
            # call_soon: after the other futures settled in this loop iteration.
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        batch, self._finished = self._finished, []
        ready: Settled = []
        values: list[tuple[Future[Any], Outcome]] = []
        for future, fetch, outcome in batch:
            if future.status != "finished":
                # An error (already on the client: no transfer), or cancelled or lost.
                self._spawn(fetch_one(future, outcome))
            elif fetch:
                values.append((future, outcome))
            else:
                ready.append((outcome, future, None))
        if ready:
            deliver(ready)
        if values:
            self._gathering = True
            self._spawn(self._gather(values))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _gather(self, batch: list[tuple[Future[Any], Outcome]]) -> None:  # noqa: ASYNC910
        try:
            try:
                futures = [future for future, _ in batch]
                client: Any = futures[0].client  # all of one client; untyped API
                values = await client.gather(futures, asynchronous=True)
            except asyncio.CancelledError:
                # The loop itself is stopping (the client is closing): tell trio, then stop too.
                deliver([(outcome, None, _closed(future)) for future, outcome in batch])
                raise
            except Exception:
                # A worker was lost meanwhile, say: each call gets its own outcome.
                for future, outcome in batch:
                    self._spawn(fetch_one(future, outcome))
            else:
                deliver(
                    [
                        (outcome, value, None)
                        for (_, outcome), value in zip(batch, values, strict=True)
                    ]
                )
        finally:
            self._gathering = False
            if self._finished and not self._flush_due:
                self._flush_due = True
                asyncio.get_running_loop().call_soon(self._flush)


async def fetch_one(future: Future[Any], outcome: Outcome) -> None:  # noqa: ASYNC910
    """On the client's loop: wait for ``future``, fetch its value or error, settle ``outcome``.

    An asyncio coroutine (the client's loop), so trio's checkpoint rules do not apply.
    """
    client: Any = future.client  # untyped API
    try:
        value = await client.gather(future, asynchronous=True)
    except FutureCancelledError as exc:
        error = RemoteCancelledError(f"remote call {future.key!r}: {exc}")
        deliver([(outcome, None, error)])
    except asyncio.CancelledError:
        # The loop itself is stopping (the client is closing): tell trio, then stop too.
        deliver([(outcome, None, _closed(future))])
        raise
    except Exception as exc:  # the remote function's own exception, or a Dask error
        deliver([(outcome, None, exc)])
    else:
        deliver([(outcome, value, None)])


def _closed(future: Future[Any]) -> RemoteCancelledError:
    return RemoteCancelledError(f"remote call {future.key!r}: client closed")


_watchers: weakref.WeakKeyDictionary[Client, Watcher] = weakref.WeakKeyDictionary()


def watcher(client: Client) -> Watcher:
    """The client's :class:`Watcher` (made on first use)."""
    found = _watchers.get(client)
    if found is None:
        found = _watchers.setdefault(client, Watcher())
    return found
