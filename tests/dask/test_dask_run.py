"""``trioforge.dask.run`` and ``cancelled()`` on a real LocalCluster with worker processes."""

from __future__ import annotations

import gc
import operator
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
import trio
from distributed import Client, LocalCluster
from distributed.client import FutureState

import trioforge.dask

ORCHESTRATOR_PID = os.getpid()


class BadInputError(ValueError):
    """A user exception type raised on a worker."""


def add(a: int, b: int, *, key: int = 0, workers: int = 0) -> int:
    """On a worker: a + b (+ keyword arguments named like ``submit``'s own)."""
    return a + b + key + workers


def worker_pid() -> int:
    """On a worker: its process id."""
    return os.getpid()


def fail(message: str) -> None:
    """On a worker: raise BadInputError(message)."""
    raise BadInputError(message)


def nap(seconds: float) -> float:
    """On a worker: sleep, then return the seconds slept."""
    time.sleep(seconds)
    return seconds


def wait_for_cancel(marker: str, limit: float = 30.0) -> str:
    """On a worker: wait in 50 ms steps until the call is cancelled, then write ``marker``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if trioforge.dask.cancelled():
            Path(marker).write_text("cancelled")
            return "cancelled"
        time.sleep(0.05)
    return "never cancelled"


async def file_appears(path: Path, limit: float = 10.0) -> bool:
    """Whether ``path`` appears within ``limit`` seconds (a file written on a worker)."""
    with trio.move_on_after(limit):
        while not await trio.Path(path).exists():  # noqa: ASYNC110 - another process writes it
            await trio.sleep(0.05)
        return True
    return False


async def test_run_returns_the_remote_result(client: Client) -> None:
    """run() returns what the function returned, keyword arguments named like submit's included."""
    assert await trioforge.dask.run(client, add, 1, 2, key=10, workers=100) == 3 + 10 + 100


async def test_run_runs_on_a_worker_process(client: Client) -> None:
    """The function runs in a worker process, not in the orchestrator."""
    assert await trioforge.dask.run(client, worker_pid) != ORCHESTRATOR_PID


async def test_run_reraises_the_remote_exception_as_itself(client: Client) -> None:
    """A remote exception is raised with its original type and message."""
    with pytest.raises(BadInputError) as caught:
        await trioforge.dask.run(client, fail, "row 7 is empty")
    assert BadInputError is type(caught.value)
    assert str(caught.value) == "row 7 is empty"


async def test_run_resolves_futures_in_arguments_on_the_worker(client: Client) -> None:
    """A future among the arguments (inside a list) is replaced by its value on the worker."""
    # operator.add, not this module's add: client.submit pickles the whole task,
    # so a function of a test module would be pickled by name, which workers cannot import.
    future = client.submit(operator.add, 20, 22, pure=False)
    try:
        assert await trioforge.dask.run(client, sum, [future]) == 42
    finally:
        future.release()  # type: ignore[no-untyped-call]


async def test_cancelling_run_returns_at_once_and_flags_the_call(
    client: Client, tmp_path: Path
) -> None:
    """A cancelled await returns within a second; the cooperative function sees cancelled()."""
    marker = tmp_path / "seen"
    started = trio.current_time()
    with trio.move_on_after(1.0) as scope:
        await trioforge.dask.run(client, wait_for_cancel, str(marker))
    elapsed = trio.current_time() - started
    assert scope.cancelled_caught
    assert elapsed < 1.0 + 0.5
    assert await file_appears(marker)


def cancel_flags(client: Client) -> set[str]:
    """The names of the cancel flags the scheduler holds."""
    untyped: Any = client
    names = untyped.run_on_scheduler(
        lambda dask_scheduler: [str(name) for name in dask_scheduler.extensions["events"]._events]
    )
    return {name for name in names if name.startswith("trioforge-cancel-")}


async def test_a_cooperative_call_leaves_no_cancel_flag_behind(
    client: Client, tmp_path: Path
) -> None:
    """The flag a cancelled call saw is deleted from the scheduler when the call ends."""
    before = await trio.to_thread.run_sync(cancel_flags, client)
    marker = tmp_path / "seen"
    with trio.move_on_after(1.0):
        await trioforge.dask.run(client, wait_for_cancel, str(marker))
    assert await file_appears(marker)
    with trio.fail_after(5):
        while await trio.to_thread.run_sync(cancel_flags, client) - before:  # noqa: ASYNC110
            await trio.sleep(0.05)


def start_then_sleep(marker: str, seconds: float) -> None:
    """On a worker: write ``marker``, then sleep without ever checking cancelled()."""
    Path(marker).write_text("started")
    time.sleep(seconds)


async def test_a_call_that_never_checks_leaves_no_cancel_flag_behind(
    client: Client, tmp_path: Path
) -> None:
    """A call cancelled while running has a flag; it is deleted when the call ends unchecked."""
    before = await trio.to_thread.run_sync(cancel_flags, client)
    marker = tmp_path / "started"
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trioforge.dask.run, client, start_then_sleep, str(marker), 3.0)
            assert await file_appears(marker)
            scope.cancel()
    with trio.fail_after(2):  # the flag is set (the call is still sleeping) ...
        while not await trio.to_thread.run_sync(cancel_flags, client) - before:  # noqa: ASYNC110
            await trio.sleep(0.02)
    with trio.fail_after(10):  # ... and deleted when the call ends
        while await trio.to_thread.run_sync(cancel_flags, client) - before:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_cooperative_cancellation_frees_the_workers(client: Client, tmp_path: Path) -> None:
    """After cancelling calls that fill every worker thread, a new call runs within seconds."""
    slots = len(client.scheduler_info()["workers"]) * 2
    markers = [tmp_path / f"seen-{i}" for i in range(slots)]
    with trio.move_on_after(1.5):
        async with trio.open_nursery() as nursery:
            for marker in markers:
                nursery.start_soon(trioforge.dask.run, client, wait_for_cancel, str(marker))
    started = trio.current_time()
    with trio.fail_after(10):
        assert await trioforge.dask.run(client, add, 1, 1) == 2
    assert trio.current_time() - started < 5.0
    assert all([await file_appears(marker) for marker in markers])


def test_cancelled_outside_a_worker_is_an_error() -> None:
    """cancelled() called outside a Dask task says where it must be called."""
    with pytest.raises(RuntimeError, match="inside a task running on a Dask worker"):
        trioforge.dask.cancelled()


async def test_no_thread_per_pending_call(client: Client) -> None:
    """200 pending calls add no thread per call to the orchestrator (sampled every 10 ms)."""
    await trioforge.dask.run(client, nap, 0.0)  # Dask's own threads exist from here on
    baseline = threading.active_count()
    peak = baseline
    results: list[float] = []

    async def one() -> None:
        results.append(await trioforge.dask.run(client, nap, 0.01))

    async def sample(done: trio.Event) -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threading.active_count())
            await trio.sleep(0.01)

    done = trio.Event()
    async with trio.open_nursery() as outer:
        outer.start_soon(sample, done)
        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(one)
        done.set()
    assert len(results) == 200
    assert peak - baseline <= 2


async def test_calls_cancelled_in_the_tick_they_start_leave_nothing_running(
    client: Client, tmp_path: Path
) -> None:
    """Calls cancelled before their batch is sent are never sent, or are flagged and stop."""
    markers = [tmp_path / f"seen-{i}" for i in range(4)]
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            for marker in markers:
                nursery.start_soon(trioforge.dask.run, client, wait_for_cancel, str(marker))
            scope.cancel()
    with trio.fail_after(10):
        while await trio.to_thread.run_sync(busy_keys, client):  # noqa: ASYNC110 - workers
            await trio.sleep(0.05)


def busy_keys(client: Client) -> list[str]:
    """The keys the workers' threads are running, cancelled ones included."""
    running = client.run(lambda dask_worker: [str(t.key) for t in dask_worker.state.executing])
    return [key for keys in running.values() for key in keys]


async def test_a_closed_client_is_not_kept_alive(cluster: LocalCluster) -> None:
    """After a call, closing and dropping a client frees it: trioforge keeps no reference."""
    other = await trio.to_thread.run_sync(Client, cluster)
    expected = 3
    try:
        assert expected == await trioforge.dask.run(other, add, 1, 2)
    finally:
        await trio.to_thread.run_sync(other.close)
    ref = weakref.ref(other)
    del other
    gc.collect()
    assert ref() is None


async def test_closing_the_client_fails_a_pending_call_at_once(
    cluster: LocalCluster, client: Client
) -> None:
    """A call pending when its client closes raises RemoteCancelledError as the client closes."""
    other = await trio.to_thread.run_sync(Client, cluster)
    try:
        async with trio.open_nursery() as nursery:

            async def close_soon() -> None:
                await trio.sleep(0.3)
                await trio.to_thread.run_sync(other.close)

            nursery.start_soon(close_soon)
            started = trio.current_time()
            with pytest.raises(trioforge.dask.RemoteCancelledError):
                await trioforge.dask.run(other, nap, 1.0)
            assert trio.current_time() - started < 0.3 + 0.5
    finally:
        await trio.to_thread.run_sync(other.close)


class OpaqueEvent:
    """A future state's event without the waiter list trioforge hooks into."""

    def __init__(self, event: Any) -> None:
        self._event = event

    def __getattr__(self, name: str) -> Any:
        if name == "_waiters":
            raise AttributeError(name)
        return getattr(self._event, name)


async def test_calls_complete_without_the_event_internals(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a future's event has no waiter list, each call is awaited the public way."""
    real: Any = FutureState._get_event  # untyped
    monkeypatch.setattr(FutureState, "_get_event", lambda state: OpaqueEvent(real(state)))
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        results[i] = await trioforge.dask.run(client, add, i, 1)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, i)
    expected = {i: i + 1 for i in range(20)}
    assert expected == results
