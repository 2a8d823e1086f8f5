"""``DaskTask`` in workflows, on a real LocalCluster with worker processes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from distributed import Client

import trioforge
import trioforge.dask
import trioforge.store

ORCHESTRATOR_PID = os.getpid()

#: The environment variable naming the file where Tattle notes unpickling in the orchestrator.
TATTLE_FILE = "TRIOFORGE_TEST_TATTLE_FILE"


class Tattle:
    """A value that notes it when it is unpickled in the orchestrator process."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __getstate__(self) -> dict[str, int]:
        return {"value": self.value}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.value = state["value"]
        if os.getpid() == ORCHESTRATOR_PID:
            # A file, not a global: the class may come back here as a copy with its own globals.
            with Path(os.environ[TATTLE_FILE]).open("a") as out:
                out.write(f"{self.value}\n")


class QuotaError(RuntimeError):
    """A user exception type raised on a worker."""


def make_tattle(upstream: dict[str, Any]) -> Tattle:
    """On a worker: a Tattle of 21."""
    assert upstream == {}
    return Tattle(21)


def double_tattle(upstream: dict[str, Any]) -> dict[str, Any]:
    """On a worker: what upstream["a"] is there, and twice its value."""
    got = upstream["a"]
    return {"type": type(got).__name__, "value": got.value * 2, "pid": os.getpid()}


def constant(value: Any) -> Any:
    """A task body returning ``value`` whatever its upstream."""

    def body(upstream: dict[str, Any]) -> Any:
        return value

    return body


def sum_upstream(upstream: dict[str, Any]) -> int:
    """On a worker: the sum of the upstream values."""
    return sum(upstream.values())


def interval(seconds: float) -> Any:
    """A task body that sleeps and returns its (start, end) wall-clock interval."""

    def body(upstream: dict[str, Any]) -> tuple[float, float]:
        start = time.time()
        time.sleep(seconds)
        return (start, time.time())

    return body


def raise_quota(upstream: dict[str, Any]) -> None:
    """On a worker: raise QuotaError."""
    raise QuotaError("quota of 3 exceeded")


def cooperative(marker: Path, limit: float = 30.0) -> Any:
    """A task body that waits until its call is cancelled, then writes ``marker``."""

    def body(upstream: dict[str, Any]) -> str:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if trioforge.dask.cancelled():
                marker.write_text("cancelled")
                return "cancelled"
            time.sleep(0.05)
        return "never cancelled"

    return body


def fail_first_time(counter: Path) -> Any:
    """A task body that fails on its first call and returns the call count after."""

    def body(upstream: dict[str, Any]) -> int:
        calls = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(calls))
        if calls == 1:
            raise QuotaError("first call fails")
        return calls

    return body


def workflow(*tasks: Any) -> trioforge.Workflow:
    """A workflow of ``tasks``."""
    wf = trioforge.Workflow("dask")
    for task in tasks:
        wf.add_task(task)
    return wf


async def file_appears(path: Path, limit: float = 10.0) -> bool:
    """Whether ``path`` appears within ``limit`` seconds (a file written on a worker)."""
    with trio.move_on_after(limit):
        while not await trio.Path(path).exists():  # noqa: ASYNC110 - another process writes it
            await trio.sleep(0.05)
        return True
    return False


async def test_results_flow_to_dependents(client: Client) -> None:
    """A DaskTask's upstream holds its dependencies' results, local and remote."""

    async def local(ctx: trioforge.TaskContext) -> int:
        return 5

    wf = workflow(
        trioforge.Task("local", local),
        trioforge.dask.DaskTask("remote", constant(7), client=client),
        trioforge.dask.DaskTask(
            "total", sum_upstream, client=client, depends_on=("local", "remote")
        ),
    )
    result = await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert result.results == {"local": 5, "remote": 7, "total": 12}


async def test_data_moves_worker_to_worker_not_through_the_orchestrator(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetch=False result reaches its DaskTask dependent as the value, never unpickled here."""
    tattles = tmp_path / "unpickled-here"
    tattles.touch()
    monkeypatch.setenv(TATTLE_FILE, str(tattles))
    wf = workflow(
        trioforge.dask.DaskTask("a", make_tattle, client=client, fetch=False),
        trioforge.dask.DaskTask("b", double_tattle, client=client, depends_on=("a",)),
    )
    result = await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert {k: v for k, v in result.results["b"].items() if k != "pid"} == {
        "type": "Tattle",
        "value": 42,
    }
    assert result.results["b"]["pid"] != ORCHESTRATOR_PID
    assert tattles.read_text() == ""
    remote = result.results["a"]
    assert isinstance(remote, trioforge.dask.RemoteResult)
    # The detector works: fetching the value unpickles it here.
    assert (await remote.fetch()).value == 21
    assert tattles.read_text() == "21\n"


async def test_independent_remote_tasks_overlap(client: Client) -> None:
    """Two independent 1 s remote tasks run at the same time on the cluster."""
    wf = workflow(
        trioforge.dask.DaskTask("one", interval(1.0), client=client),
        trioforge.dask.DaskTask("two", interval(1.0), client=client),
    )
    result = await trioforge.WorkflowExecutor(wf).execute_dataflow()
    (start1, end1), (start2, end2) = result.results["one"], result.results["two"]
    assert max(start1, start2) < min(end1, end2)
    assert result.duration < 1.9


async def test_remote_timeout_returns_promptly_and_frees_the_worker(
    client: Client, tmp_path: Path
) -> None:
    """A remote task times out on the orchestrator at its limit; the cooperative call stops."""
    marker = tmp_path / "seen"
    wf = workflow(trioforge.dask.DaskTask("slow", cooperative(marker), client=client, timeout=0.5))
    started = trio.current_time()
    with pytest.raises(trioforge.TaskFailedError) as caught:
        await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert trio.current_time() - started < 0.5 + 1.0
    assert trioforge.TaskTimeoutError is type(caught.value.__cause__)
    assert await file_appears(marker)


async def test_remote_exception_is_the_cause_of_the_failure(client: Client) -> None:
    """A remote exception fails the task as itself: same type, same message."""
    wf = workflow(trioforge.dask.DaskTask("quota", raise_quota, client=client))
    with pytest.raises(trioforge.TaskFailedError) as caught:
        await trioforge.WorkflowExecutor(wf).execute_dataflow()
    cause = caught.value.__cause__
    assert QuotaError is type(cause)
    assert str(cause) == "quota of 3 exceeded"
    assert cause is caught.value.failures["quota"]


async def test_cancelling_the_run_stops_remote_tasks(client: Client, tmp_path: Path) -> None:
    """executor.cancel() ends the run at once and flags its running remote call."""
    marker = tmp_path / "seen"

    async def cancel_soon(ctx: trioforge.TaskContext) -> None:
        await trio.sleep(0.5)
        executor.cancel("stopped by the test")

    wf = workflow(
        trioforge.dask.DaskTask("slow", cooperative(marker), client=client),
        trioforge.Task("canceller", cancel_soon),
    )
    executor = trioforge.WorkflowExecutor(wf)
    started = trio.current_time()
    with pytest.raises(trioforge.WorkflowCancelledError, match="stopped by the test"):
        await executor.execute_dataflow()
    assert trio.current_time() - started < 0.5 + 1.0
    assert await file_appears(marker)
    events = executor.audit_log.events
    cancelled = [e.task_id for e in events if e.type == trioforge.EventType.TASK_CANCELLED]
    assert cancelled == ["slow"]


async def test_fail_fast_cancels_a_running_remote_sibling(client: Client, tmp_path: Path) -> None:
    """A failing task stops its running remote sibling, whose call sees cancelled()."""
    marker = tmp_path / "seen"
    wf = workflow(
        trioforge.dask.DaskTask("slow", cooperative(marker), client=client),
        trioforge.dask.DaskTask("quota", raise_quota, client=client),
    )
    with pytest.raises(trioforge.TaskFailedError) as caught:
        await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert QuotaError is type(caught.value.__cause__)
    assert await file_appears(marker)


async def test_rollback_runs_local_compensations_of_remote_tasks(client: Client) -> None:
    """When a later task fails, completed remote tasks are compensated locally, newest first."""
    undone: list[tuple[str, Any]] = []

    def undo(task_id: str) -> Any:
        async def compensate(ctx: trioforge.TaskContext) -> None:
            undone.append((task_id, ctx.result_of(task_id)))

        return compensate

    wf = workflow(
        trioforge.dask.DaskTask(
            "create", constant("bucket-1"), client=client, compensate=undo("create")
        ),
        trioforge.dask.DaskTask(
            "fill", constant(3), client=client, depends_on=("create",), compensate=undo("fill")
        ),
        trioforge.dask.DaskTask("check", raise_quota, client=client, depends_on=("fill",)),
    )
    with pytest.raises(trioforge.TaskFailedError):
        await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert undone == [("fill", 3), ("create", "bucket-1")]


async def test_retries_make_a_new_remote_call(client: Client, tmp_path: Path) -> None:
    """A remote task that fails once succeeds on its retry, a second remote call."""
    wf = workflow(
        trioforge.dask.DaskTask(
            "flaky", fail_first_time(tmp_path / "calls"), client=client, retries=1
        )
    )
    executor = trioforge.WorkflowExecutor(wf, backoff=trioforge.Backoff(initial=0.01))
    result = await executor.execute_dataflow()
    assert result.results == {"flaky": 2}
    assert result.attempts == {"flaky": 2}


async def test_resources_limit_where_remote_tasks_run(client: Client) -> None:
    """Tasks needing the workers' single ``slot`` never run more than two at once."""
    wf = workflow(
        *(
            trioforge.dask.DaskTask(f"t{i}", interval(0.4), client=client, resources={"slot": 1})
            for i in range(4)
        )
    )
    result = await trioforge.WorkflowExecutor(wf).execute_dataflow()
    intervals = list(result.results.values())
    most = max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)
    assert most == 2


async def test_store_records_encodable_remote_results_only(client: Client, tmp_path: Path) -> None:
    """A fetched JSON result is stored restorable; a result left on the cluster is not."""
    store = trioforge.store.SQLiteRunStore(tmp_path / "runs.db")
    try:
        wf = workflow(
            trioforge.dask.DaskTask("fetched", constant({"rows": 3}), client=client),
            trioforge.dask.DaskTask("kept", constant([1, 2]), client=client, fetch=False),
        )
        result = await trioforge.WorkflowExecutor(wf, store=store).execute_dataflow()
        stored = await store.load(result.workflow_id)
    finally:
        await store.aclose()
    assert stored.tasks["fetched"].result() == {"rows": 3}
    assert stored.unrestorable() == ["kept"]


async def test_no_thread_per_pending_task(client: Client) -> None:
    """A 200-task remote workflow adds no thread per pending task (sampled every 10 ms)."""
    wf = workflow(
        *(trioforge.dask.DaskTask(f"t{i}", constant(i), client=client) for i in range(200))
    )
    await trioforge.dask.run(client, int)  # Dask's own threads exist from here on
    baseline = threading.active_count()
    peak = baseline
    done = trio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threading.active_count())
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        result = await trioforge.WorkflowExecutor(wf).execute_dataflow()
        done.set()
    assert list(range(200)) == [result.results[f"t{i}"] for i in range(200)]
    assert peak - baseline <= 2


def test_repr_names_the_function_not_the_client(client: Client) -> None:
    """The repr (a durable run's task spec) has no address that changes between clusters."""
    task = trioforge.dask.DaskTask(
        "x", sum_upstream, client=client, depends_on=["a"], resources={"slot": 1}
    )
    expected = f"DaskTask('x', {__name__}.sum_upstream, depends_on=['a'], resources={{'slot': 1}})"
    assert expected == repr(task)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, "timeout must be > 0"),
        ({"retries": -1}, "retries must be >= 0"),
        ({"resources": {"slot": -1}}, "resources\\['slot'\\] must be a number >= 0"),
        ({"depends_on": [""]}, "depends_on must hold non-empty str ids"),
    ],
)
def test_bad_arguments_are_named(client: Client, kwargs: dict[str, Any], error: str) -> None:
    """A bad argument is refused with a message naming it."""
    with pytest.raises((TypeError, ValueError), match=error):
        trioforge.dask.DaskTask("x", sum_upstream, client=client, **kwargs)


def test_client_must_be_a_client() -> None:
    """A client that is not a distributed.Client is refused by name."""
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client"):
        trioforge.dask.DaskTask("x", sum_upstream, client="tcp://127.0.0.1:8786")  # type: ignore[arg-type]
