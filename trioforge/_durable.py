"""Durable runs: record a run in a :class:`RunStore` and rebuild a run to resume it.

The executor's lifecycle stays the same with or without a store; this module
wraps it. :func:`recording` creates nothing by itself: the caller has created
(or loaded) the run record. While the block runs it

* holds the run's lease (a heartbeat renews it; a second driver is refused);
* adds a :class:`RunRecorder` to the audit sinks, so every event is buffered
  for the store, and installs ``run.checkpoint``: :func:`run_task` awaits it
  after a task's completion event and before anything that depends on the
  task may start, so a completion is durable before it is acted on. Tasks
  that complete in the same scheduler tick share one commit;
* flushes the buffer every :data:`FLUSH_INTERVAL` seconds, so that another
  process (``trioforge show``) sees which tasks are running;
* flushes once more at the end, shielded and bounded, after the terminal
  event, so the run's final status is recorded however the block ends.

:func:`restore` turns a stored run into the state a resumed :class:`Run`
starts from: the tasks that completed (and were not rolled back) keep their
results and are not run again; every other task runs, and a task that had
started before keeps counting its attempts.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._errors import WorkflowError
from ._runner import Run
from ._store import RunStore
from ._store_lease import hold_lease
from ._store_records import RunStoreError, StoredRun, definition_hash, definition_snapshot
from ._store_writer import RunRecorder
from ._task import Task
from ._workflow import Workflow

__all__ = ["DefinitionChangedError", "definition_of", "recording", "restore"]

#: Seconds between background flushes of buffered events (task starts, say).
FLUSH_INTERVAL = 0.5
#: Seconds the final flush may take before the run gives up on it.
FINAL_FLUSH_TIMEOUT = 30.0

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class DefinitionChangedError(WorkflowError):
    """Raised by ``resume`` when the workflow's definition changed since the run started.

    Attributes:
        run_id: the run that was to be resumed.
        changed: task ids whose definition differs, was added or was removed.
    """

    def __init__(self, run_id: str, changed: list[str], detail: str) -> None:
        self.run_id = run_id
        self.changed = changed
        super().__init__(
            f"the workflow changed since run {run_id!r} started ({detail}); "
            "resume it with force=True (trioforge resume --force) to run it anyway"
        )


def definition_of(workflow: Workflow, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able definition snapshot of ``workflow``, with each task's spec.

    A task's spec is its ``repr`` (a :class:`Task` names its function, a shell
    task its command), without memory addresses, which differ per process.
    """
    snapshot = definition_snapshot(workflow, **extra)
    tasks = workflow.tasks
    for entry in snapshot["tasks"]:
        task = tasks[entry["id"]]
        if type(task) is Task:
            fn = task.fn
            entry["spec"] = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        else:
            entry["spec"] = _ADDRESS.sub("", repr(task))
    return snapshot


def check_unchanged(stored: StoredRun, definition: dict[str, Any]) -> None:
    """Raise :class:`DefinitionChangedError` unless ``definition`` is the stored one."""
    if definition_hash(definition) == stored.record.definition_hash:
        return
    old = {t["id"]: t for t in stored.record.definition.get("tasks", [])}
    new = {t["id"]: t for t in definition.get("tasks", [])}
    changed = [tid for tid in new if tid in old and old[tid] != new[tid]]
    added = [tid for tid in new if tid not in old]
    removed = [tid for tid in old if tid not in new]
    parts = []
    if changed:
        parts.append("changed: " + ", ".join(changed))
    if added:
        parts.append("added: " + ", ".join(added))
    if removed:
        parts.append("removed: " + ", ".join(removed))
    if not parts:
        parts.append("the workflow's settings or source changed, not its tasks")
    raise DefinitionChangedError(stored.id, changed + added + removed, "; ".join(parts))


def restore(run: Run, stored: StoredRun) -> list[str]:
    """Load what ``stored`` finished into the fresh ``run``; return the tasks that will re-run.

    Completed tasks whose results were stored faithfully (and that were not
    compensated) are restored; they count as completed in this run too, so
    a later failure rolls them back like the rest.
    """
    index = run.dag.index
    restored: set[int] = set()
    for task_id, record in stored.tasks.items():
        node = index.get(task_id)
        if node is None:
            continue
        if record.attempts:
            run.attempt_base[task_id] = record.attempts
        if record.state == "completed" and record.result_restorable and not record.compensated:
            run.results[task_id] = record.result()
            restored.add(node)
    run.restored = restored
    # Completion order must stay a valid reverse-rollback order: use the graph's.
    run.completed.extend(run.dag.ids[n] for n in run.dag.topological_order() if n in restored)
    return [tid for tid in run.dag.ids if index[tid] not in restored]


@asynccontextmanager
async def recording(store: RunStore, run: Run) -> AsyncIterator[RunRecorder]:
    """Hold the run's lease and record every event of ``run`` while the block runs."""
    recorder = RunRecorder(store, run.workflow_id, run.results)
    async with hold_lease(store, run.workflow_id):
        run.audit.sinks.append(recorder)
        run.checkpoint = recorder.flush
        try:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_flush_every, recorder, FLUSH_INTERVAL)
                    try:
                        yield recorder
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The block's own exception, not wrapped in the flusher's nursery group.
                if len(group.exceptions) == 1:
                    raise group.exceptions[0]  # noqa: B904 - the group stays as __context__
                raise
        except BaseException:
            # Record the end of the run if we can, but never hide why it ended.
            with trio.move_on_after(FINAL_FLUSH_TIMEOUT, shield=True):
                with contextlib.suppress(RunStoreError):
                    await recorder.flush()
            raise
        else:
            with trio.move_on_after(FINAL_FLUSH_TIMEOUT, shield=True) as scope:
                await recorder.flush()
            if scope.cancelled_caught:
                raise RunStoreError(
                    f"could not record the end of run {run.workflow_id!r} "
                    f"within {FINAL_FLUSH_TIMEOUT:g}s"
                )
        finally:
            run.checkpoint = None
            run.audit.sinks.remove(recorder)


async def _flush_every(recorder: RunRecorder, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        if recorder.unflushed:
            await recorder.flush()
