"""``trioforge show`` names the remote results that the run store could not record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from cli_helpers import cli
from distributed import Client

import trioforge
import trioforge.dask
import trioforge.store


def rows(upstream: dict[str, Any]) -> dict[str, int]:
    """On a worker: a JSON result."""
    return {"rows": 3}


def pair(upstream: dict[str, Any]) -> list[int]:
    """On a worker: a result that stays on the cluster (``fetch=False``)."""
    return [1, 2]


async def test_show_names_each_result_not_recorded(client: Client, tmp_path: Path) -> None:
    """``show`` has one line for the remote result kept on the cluster, none for the stored one."""
    path = tmp_path / "runs.db"
    store = trioforge.store.SQLiteRunStore(path)
    try:
        wf = trioforge.Workflow("show")
        wf.add_task(trioforge.dask.DaskTask("fetched", rows, client=client))
        wf.add_task(trioforge.dask.DaskTask("kept", pair, client=client, fetch=False))
        result = await trioforge.WorkflowExecutor(wf, store=store).execute_dataflow()
    finally:
        await store.aclose()
    shown = await trio.to_thread.run_sync(
        lambda: cli("show", result.workflow_id, "--store", str(path), cwd=tmp_path)
    )
    assert shown.returncode == 0, shown.stderr
    notes = [line for line in shown.stdout.splitlines() if "not recorded" in line]
    expected = [
        "result not recorded: kept (the store's codec could not encode it faithfully, "
        "so a resume runs it again)"
    ]
    assert expected == notes
