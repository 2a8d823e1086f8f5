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

Fetching (client's loop thread): a finished future's value is fetched with
the other values that finished in the same loop iteration, in one
``gather``. If that gather fails (a worker was lost meanwhile, say), each
value is fetched on its own so each call gets its own outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio
from distributed import Client, Event, Future, get_worker
from distributed.client import FutureCancelledError
from distributed.protocol import pickle as dask_pickle

__all__ = [
    "Fetcher",
    "RemoteCancelledError",
    "cancel_event_name",
    "fetch_one",
    "fetcher",
    "flag",
    "seen_cancelled",
    "submit",
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


#: On a worker: the calls whose cancel flag ``cancelled()`` saw set. When such a
#: call ends, ``_apply`` clears its flag, which deletes it from the scheduler.
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
        if seen_cancelled:
            _forget_flag()


def _forget_flag() -> None:
    key = str(get_worker().get_current_task())
    if key in seen_cancelled:
        seen_cancelled.discard(key)
        with contextlib.suppress(Exception):  # best effort: the scheduler may be gone
            flag(key).clear()


@functools.lru_cache(maxsize=256)
def _load_function(payload: bytes) -> Callable[..., Any]:
    """The function pickled in ``payload`` (cached, as Dask caches its task functions)."""
    fn: Callable[..., Any] = _PICKLE.loads(payload)
    return fn


#: Dask's own pickling (cloudpickle where needed); untyped.
_PICKLE: Any = dask_pickle

#: ``report(value, error)``: where a fetched outcome goes.
Report = Callable[[Any, BaseException | None], None]


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
    try:
        for resources, calls in groups.items():
            futures = client.map(
                _apply,
                [_PICKLE.dumps(call.fn) for call in calls],
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


class Fetcher:
    """Fetches finished futures' values in one ``gather`` per loop iteration, per client.

    Used only on the client's loop thread.
    """

    def __init__(self, client: Client) -> None:
        self._client: Any = client  # untyped API below
        self._pending: list[tuple[Future[Any], Report]] = []

    def add(self, future: Future[Any], report: Report) -> None:
        """Fetch ``future`` (finished) and ``report(value, None)``, or report its error."""
        self._pending.append((future, report))
        if len(self._pending) == 1:
            self._client.loop.add_callback(self._flush)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            values = await self._client.gather([f for f, _ in batch], asynchronous=True)
        except Exception:
            for future, report in batch:
                self._client.loop.add_callback(fetch_one, self._client, future, report)
            return  # noqa: ASYNC910 - on the client's asyncio loop, where trio rules do not apply
        for (_, report), value in zip(batch, values, strict=True):
            report(value, None)


async def fetch_one(client: Any, future: Future[Any], report: Report) -> None:  # noqa: ASYNC910
    """On the client's loop: wait for ``future``, fetch its value or error, ``report`` it.

    An asyncio coroutine (the client's loop), so trio's checkpoint rules do not apply.
    """
    try:
        value = await client.gather(future, asynchronous=True)
    except FutureCancelledError as exc:
        report(None, RemoteCancelledError(f"remote call {future.key!r}: {exc}"))
    except asyncio.CancelledError:
        # The loop itself is stopping (the client is closing): tell trio, then stop too.
        report(None, RemoteCancelledError(f"remote call {future.key!r}: client closed"))
        raise
    except Exception as exc:  # the remote function's own exception, or a Dask error
        report(None, exc)
    else:
        report(value, None)


_fetchers: weakref.WeakKeyDictionary[Client, Fetcher] = weakref.WeakKeyDictionary()


def fetcher(client: Client) -> Fetcher:
    """The client's :class:`Fetcher` (made on first use)."""
    found = _fetchers.get(client)
    if found is None:
        found = _fetchers.setdefault(client, Fetcher(client))
    return found
