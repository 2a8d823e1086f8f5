"""A durable run of remote tasks, resumed after its orchestrator was SIGKILLed.

The orchestrator is a child process running a two-task workflow
(``extract`` -> ``load``) on the shared cluster with a run store; the test
SIGKILLs it once ``extract`` is recorded as completed and ``load`` is running
on a worker, then resumes the run in its own process: ``extract`` is restored
from the store (its remote function runs once in all), ``load`` runs again.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cloudpickle  # type: ignore[import-untyped]
import pytest
from distributed import Client, LocalCluster

import trioforge
import trioforge.store
from trioforge._store._database import SQLiteDatabase
from trioforge._store._records import RunStoreError

FLOW = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from distributed import Client

    import trioforge
    import trioforge.dask
    import trioforge.store

    FOLDER = Path(__file__).parent


    def extract(upstream):
        with open(FOLDER / "extract.log", "a") as log:
            log.write("ran\\n")
        return {"rows": 3}


    def load(upstream):
        (FOLDER / "load.started").touch()
        deadline = time.monotonic() + 30
        while not (FOLDER / "go").exists() and time.monotonic() < deadline:
            if trioforge.dask.cancelled():
                return -1
            time.sleep(0.05)
        return upstream["extract"]["rows"] * 2


    def workflow(client):
        wf = trioforge.Workflow("dask-durable")
        wf.add_task(trioforge.dask.DaskTask("extract", extract, client=client))
        wf.add_task(
            trioforge.dask.DaskTask("load", load, client=client, depends_on=["extract"])
        )
        return wf


    async def main(address, db):
        with Client(address) as client:
            async with trioforge.store.SQLiteRunStore(db) as store:
                executor = trioforge.WorkflowExecutor(workflow(client), store=store)
                await executor.execute_dataflow()
    """
)

#: The child: pickle the flow's functions by value (the workers cannot import it), run it.
CHILD = (
    "import sys, cloudpickle, trio, dask_flow; "
    "cloudpickle.register_pickle_by_value(dask_flow); "
    "trio.run(dask_flow.main, sys.argv[1], sys.argv[2])"
)


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The flow's module, written to ``tmp_path`` and imported from there."""
    (tmp_path / "dask_flow.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "dask_flow", raising=False)
    import dask_flow  # type: ignore[import-not-found]

    cloudpickle.register_pickle_by_value(dask_flow)
    yield dask_flow
    cloudpickle.unregister_pickle_by_value(dask_flow)
    sys.modules.pop("dask_flow", None)


def completed(db: Path) -> tuple[list[str], set[str]]:
    """The run ids and the completed tasks in the store, read on a new connection."""
    if not db.exists():
        return [], set()
    try:
        store = SQLiteDatabase(db, readonly=True)
    except (sqlite3.OperationalError, RunStoreError):  # the schema is not there yet
        return [], set()
    try:
        runs = [run.id for run in store.list_runs(1000, None, now=0.0)]
        done = {tid for run in runs for tid in store.load(run, now=0.0).in_state("completed")}
    finally:
        store.close()
    return runs, done


def crash(folder: Path, address: str) -> tuple[Path, str]:
    """Run the flow in a child; SIGKILL it once extract is durable and load runs remotely."""
    db = folder / "runs.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, address, str(db)], cwd=folder)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs, done = completed(db)
            if done == {"extract"} and (folder / "load.started").exists():
                break
            assert child.poll() is None, "the orchestrator ended before the crash"
            time.sleep(0.05)
        else:
            pytest.fail("extract never completed durably with load running")
    finally:
        child.kill()
        child.wait()
    assert len(runs) == 1
    return db, runs[0]


async def test_resume_after_sigkill_does_not_redo_completed_remote_tasks(
    flow: ModuleType, cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """After a SIGKILL, a resume restores the completed remote task and runs the other again."""
    db, run_id = crash(tmp_path, cluster.scheduler_address)
    (tmp_path / "go").touch()  # lets the orphaned remote load call end
    async with trioforge.store.SQLiteRunStore(db) as store:
        executor = trioforge.WorkflowExecutor(flow.workflow(client), store=store)
        result = await executor.resume(run_id)
    assert result.results == {"extract": {"rows": 3}, "load": 6}
    assert (tmp_path / "extract.log").read_text() == "ran\n"
    assert result.attempts["load"] == 2
