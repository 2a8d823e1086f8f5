"""What a DaskTask's events say about a remote call that a cancel or timeout leaves running."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio
from distributed import Client

import trioforge
import trioforge.dask

NOTE = trioforge.dask.DaskTask.cancel_note


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


async def file_appears(path: Path, limit: float = 10.0) -> bool:
    """Whether ``path`` appears within ``limit`` seconds (a file written on a worker)."""
    with trio.move_on_after(limit):
        while not await trio.Path(path).exists():  # noqa: ASYNC110 - another process writes it
            await trio.sleep(0.05)
        return True
    return False


def details(
    executor: trioforge.WorkflowExecutor, kind: trioforge.EventType
) -> dict[str | None, Any]:
    """The ``detail`` of the run's events of ``kind``, by task id."""
    return {e.task_id: e.detail for e in executor.audit_log.events if e.type == kind}


def slow_task(
    kind: str, client: Client, marker: Path, timeout: float | None = None
) -> trioforge.WorkflowTask:
    """Task ``slow``: a DaskTask, or a plain Task whose body awaits ``trioforge.dask.run``."""
    if kind == "DaskTask":
        return trioforge.dask.DaskTask("slow", cooperative(marker), client=client, timeout=timeout)

    async def body(ctx: trioforge.TaskContext) -> Any:
        return await trioforge.dask.run(client, cooperative(marker), {})

    return trioforge.Task("slow", body, timeout=timeout)


KINDS = pytest.mark.parametrize("kind", ["DaskTask", "Task awaiting dask.run"])


@KINDS
async def test_a_timed_out_dask_task_says_its_remote_call_may_still_run(
    client: Client, tmp_path: Path, kind: str
) -> None:
    """The timed-out event of a DaskTask (or Task awaiting dask.run): the call may still run."""
    marker = tmp_path / "seen"
    wf = trioforge.Workflow("notes")
    wf.add_task(slow_task(kind, client, marker, timeout=0.5))
    executor = trioforge.WorkflowExecutor(wf)
    with pytest.raises(trioforge.TaskFailedError):
        await executor.execute_dataflow()
    expected = {"slow": NOTE}
    assert expected == details(executor, trioforge.EventType.TASK_TIMED_OUT)
    assert "may still be running on its Dask worker" in NOTE
    assert await file_appears(marker)  # the call ended: the cluster is idle again


@KINDS
async def test_a_cancelled_dask_task_says_its_remote_call_may_still_run(
    client: Client, tmp_path: Path, kind: str
) -> None:
    """The cancelled event of a DaskTask (or Task awaiting dask.run): the reason, then the note."""
    marker = tmp_path / "seen"

    async def cancel_soon(ctx: trioforge.TaskContext) -> None:
        await trio.sleep(0.5)
        executor.cancel("stopped by the test")

    async def local(ctx: trioforge.TaskContext) -> None:
        await trio.sleep_forever()

    wf = trioforge.Workflow("notes")
    wf.add_task(slow_task(kind, client, marker))
    wf.add_task(trioforge.Task("local", local))
    wf.add_task(trioforge.Task("canceller", cancel_soon))
    executor = trioforge.WorkflowExecutor(wf)
    with pytest.raises(trioforge.WorkflowCancelledError):
        await executor.execute_dataflow()
    expected = {"slow": f"stopped by the test; {NOTE}", "local": "stopped by the test"}
    assert expected == details(executor, trioforge.EventType.TASK_CANCELLED)
    assert await file_appears(marker)
