"""Await a Dask future from trio without a thread per call, and cancel it.

A ``distributed.Client`` runs its own event loop in a thread of its own. The
naive way to await a future from trio is ``trio.to_thread.run_sync(future.result)``:
one OS thread blocked per pending call, so a workflow with 1,000 pending
remote tasks holds 1,000 threads. Here nothing blocks: the completion is
pushed to trio. The client's loop watches the future (``_batch.Watcher``:
no Dask done-callback, whose callback thread would cost two more thread
hops per call) and, when the value must be fetched, fetches it with the
other values that settled with it. The outcome goes to the trio thread with
:meth:`trio.lowlevel.TrioToken.run_sync_soon`, which sets a :class:`trio.Event`
the awaiting task waits on. Every hand-over between the threads is a
non-blocking "run this soon" (``IOLoop.add_callback`` one way,
``run_sync_soon`` the other), so the trio thread never waits on the client's
loop, even to cancel.

Cancellation: when the awaiting scope is cancelled, the call's cancel flag
(a Dask :class:`~distributed.Event` named after the call's key, see
:func:`cancel_event_name`) is set and the future is cancelled, both from the
client's loop, and ``trio.Cancelled`` propagates at once. Dask cannot
interrupt a Python call that is already running on a worker: the worker may
still finish it, unless the function checks :func:`cancelled` between steps.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import trio
from dask.utils import funcname
from distributed import Client, Future, get_worker

from .._core import leave_note
from ._batch import (
    Outcome,
    RemoteCancelledError,
    cancel_event_name,
    flag,
    seen_cancelled,
    submit,
    watcher,
)

__all__ = [
    "RemoteCancelledError",
    "await_future",
    "call_key",
    "cancel_event_name",
    "cancel_remote",
    "cancelled",
    "flag",
    "run",
    "submit_call",
]

T = TypeVar("T")


def call_key(fn: Callable[..., Any]) -> str:
    """A fresh Dask key for one call of ``fn``: its name, this process's random id, a count."""
    return f"{funcname(fn)}-{_process_id}-{next(_counter)}"


def _new_process_id() -> None:
    global _process_id, _counter  # noqa: PLW0603 - per process, renewed in a forked child
    _process_id = uuid.uuid4().hex
    _counter = itertools.count()


_process_id = ""
_counter = itertools.count()
_new_process_id()
os.register_at_fork(after_in_child=_new_process_id)


def _loop(client: Client) -> Any:
    """The client's event loop (an ``IOLoop``, whose methods are thread-safe to schedule on)."""
    loop = client.loop
    if loop is None:
        raise RuntimeError(f"the Dask client {client!r} has no event loop (is it closed?)")
    return loop


def cancel_remote(client: Client, future: Future[Any], reason: str) -> None:
    """Flag the call as cancelled and cancel its future, from the client's loop; never blocks."""
    with contextlib.suppress(RuntimeError):  # the client's loop is closed: nothing to cancel
        _loop(client).add_callback(_cancel_on_loop, client, future, reason)


async def _cancel_on_loop(client: Client, future: Future[Any], reason: str) -> None:  # noqa: ASYNC910
    # An asyncio coroutine on the client's loop: trio's checkpoint rules do not apply.
    # Flag first, so a cooperative function sees it even if the cancel races its end.
    # Best effort both: the cluster may be gone.
    untyped: Any = client
    with contextlib.suppress(Exception):
        await untyped.scheduler.event_set(name=cancel_event_name(str(future.key)))
    with contextlib.suppress(Exception):
        await untyped.cancel([future], asynchronous=True, reason=reason)


#: What a cancelled or timed-out task's event says of a remote call it leaves behind.
LEFT_RUNNING = "the remote call may still be running on its Dask worker (Dask cannot interrupt it)"


async def await_future(
    client: Client,
    future: Future[Any],
    *,
    fetch: bool,
    cancel: bool = True,
    reason: str = "the awaiting trio scope was cancelled",
) -> Any:
    """Wait for ``future`` from trio; return its value (``fetch``) or the future itself.

    A remote exception is raised as itself (same type and message). When the
    caller is cancelled, ``trio.Cancelled`` propagates at once and, with
    ``cancel``, the call is flagged and its future cancelled
    (:func:`cancel_remote`).

    Raises:
        RemoteCancelledError: Dask cancelled or lost the call on its own.
    """
    outcome = Outcome(trio.lowlevel.current_trio_token())
    watcher(client).watch(future, fetch, outcome)
    try:
        await outcome.done.wait()
    except BaseException:
        if cancel:
            cancel_remote(client, future, reason)
            # The task's cancelled or timed-out event says what stays behind.
            leave_note(LEFT_RUNNING)
        raise
    if outcome.error is not None:
        error = outcome.error
        outcome.error = None  # no reference cycle through the frame
        raise error
    return outcome.value


async def run(
    client: Client,
    fn: Callable[..., T],
    /,
    *args: Any,
    resources: Mapping[str, float] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` on the cluster and return its result.

    Futures among the arguments (also inside lists, tuples and dicts) are
    resolved on the worker, so their data never passes through this process.
    No thread waits for the call: the result reaches trio through a callback
    on the client's own event loop.

    When the calling scope is cancelled (a timeout, a failing sibling,
    Ctrl-C), the call is flagged as cancelled (see :func:`cancelled`), its
    future is cancelled, and ``trio.Cancelled`` propagates at once. Dask
    cannot interrupt a call that already runs: **the worker may still finish
    it**, unless ``fn`` checks :func:`cancelled` between steps and returns.

    Args:
        client: a connected ``distributed.Client``.
        fn: the function; it must be importable or picklable on the workers.
        *args: its positional arguments.
        resources: Dask worker resources the call needs, e.g. ``{"GPU": 1}``.
        **kwargs: its keyword arguments.

    Returns:
        What ``fn`` returned, fetched from the worker.

    Raises:
        Exception: whatever ``fn`` raised on the worker, with its original type
            and message.
        RemoteCancelledError: Dask cancelled or lost the call by itself.
    """
    future = await submit_call(client, fn, args, kwargs, resources=resources)
    return await await_future(client, future, fetch=True)  # type: ignore[no-any-return]


async def submit_call(
    client: Client,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    resources: Mapping[str, float] | None,
    key: str | None = None,
    reason: str = "the awaiting trio scope was cancelled",
) -> Future[Any]:
    """Submit ``fn(*args, **kwargs)`` (batched with the other calls of this trio tick)."""
    return await submit(
        client,
        fn,
        args,
        kwargs,
        key=call_key(fn) if key is None else key,
        resources=resources,
        on_abandon=lambda future: cancel_remote(client, future, reason),
    )


def cancelled() -> bool:
    """Whether the remote call running this function was cancelled by its orchestrator.

    Call it on a worker, inside a function run by :func:`run` or a
    :class:`DaskTask`, between steps of long work: once it returns True, stop
    and return (or raise), so the worker is free for other calls. Each call
    asks the scheduler (one round trip, about a millisecond), so check every
    few hundred milliseconds of work, not in a tight loop.

    Raises:
        RuntimeError: not called inside a task running on a Dask worker.
    """
    try:
        worker = get_worker()
    except ValueError:
        raise RuntimeError(
            "trioforge.dask.cancelled() must be called inside a task running on a Dask worker"
        ) from None
    key = worker.get_current_task()
    if key is None:
        raise RuntimeError("trioforge.dask.cancelled() found no current task on this worker")
    if flag(str(key)).is_set():
        seen_cancelled.add(str(key))  # the flag is deleted when the call ends
        return True
    return False
