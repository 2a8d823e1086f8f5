"""A real two-worker ``LocalCluster`` (worker processes) shared by the Dask tests.

Each test module gets its own cluster (starting one takes a few seconds),
closed when the module's tests are done, so no worker process outlives
them; its scratch files go to a pytest temporary folder. Every test must
leave it idle: the autouse ``idle_cluster`` fixture fails a test that leaves
a remote call running (a later test would find the workers busy and its
timings would lie).

Test modules are pickled *by value* for the workers (``cloudpickle``), since
the worker processes cannot import them under pytest's importlib mode.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import cloudpickle  # type: ignore[import-untyped]
import dask
import pytest
from distributed import Client, LocalCluster, Worker

#: Each worker has this many threads, and this many "slot" resources.
THREADS_PER_WORKER = 2
WORKERS = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let the workers unpickle the functions and classes of the Dask test modules."""
    for item in items:
        module = getattr(item, "module", None)
        in_here = "dask" in item.nodeid.split("::")[0]
        if module is not None and in_here and module.__name__ in sys.modules:
            cloudpickle.register_pickle_by_value(module)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two worker processes with two threads and one ``slot`` resource each."""
    scratch = str(tmp_path_factory.mktemp("dask-scratch"))
    with (
        dask.config.set({"temporary-directory": scratch}),
        LocalCluster(  # type: ignore[no-untyped-call]
            local_directory=scratch,
            n_workers=WORKERS,
            threads_per_worker=THREADS_PER_WORKER,
            processes=True,
            dashboard_address=":0",
            resources={"slot": 1},
        ) as local,
    ):
        yield local


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    """A synchronous client of the shared cluster (its own event loop thread)."""
    with Client(cluster) as connected:  # type: ignore[no-untyped-call]
        yield connected


@pytest.fixture(autouse=True)
def idle_cluster(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves a remote call running on the shared cluster."""
    yield
    if "client" not in request.fixturenames:
        return
    client: Client = request.getfixturevalue("client")
    deadline = time.monotonic() + 10.0
    busy = _busy(client)
    while busy and time.monotonic() < deadline:
        time.sleep(0.05)
        busy = _busy(client)
    assert busy == [], "the test left remote calls running on the shared cluster"


def _executing(dask_worker: Worker) -> list[str]:
    """On a worker: the keys its threads are running, cancelled ones included."""
    return [str(task.key) for task in dask_worker.state.executing]


def _busy(client: Client) -> list[str]:
    # The scheduler forgets a cancelled key at once; only the worker knows its
    # thread is still running it.
    running = client.run(_executing)
    return sorted(key for keys in running.values() for key in keys)


cloudpickle.register_pickle_by_value(sys.modules[__name__])
