"""Running part of a workflow file: ``trioforge run FILE TASK...`` and ``--only TASK...``.

``run FILE build test`` runs the named tasks and everything they need, as
nox ``-s``, tox ``-e`` and Turborepo ``--filter`` do: the selection is closed
under ``needs``, so the subset is itself a valid workflow of the same tasks.

``--only test`` runs just the named tasks. What they need from outside the
selection is not run again but restored: each such task becomes a stand-in
that returns, at once, the result the task had in the newest *completed*
run of this workflow in the store that holds them all (so templates such as
``${{ tasks.build.outputs.wheel }}`` see the same outputs). With no such run
the command is refused before anything runs, and says what to run first.

The selection is part of the stored definition (``definition_extra``), so a
resume of a partial run runs the same part.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from .._core import Task, TaskContext, Workflow, WorkflowError
from .._shell import display_path
from .._store import SQLiteRunStore, StoredRun

__all__ = ["SelectionError", "find_restorable", "needed", "outside_needs", "select"]

#: How many of the newest runs ``--only`` looks through for restorable results.
RUNS_SEARCHED = 100


class SelectionError(WorkflowError, ValueError):
    """A task selection that cannot run: an unknown task, or ``--only`` with nothing to restore."""


def _check_names(workflow: Workflow, names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in workflow]
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(workflow), n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listed = ", ".join(list(workflow)[:20]) + (", ..." if len(workflow) > 20 else "")
    raise SelectionError(
        f"no task {', '.join(parts)} in workflow {workflow.name!r}; its tasks: {listed}"
    )


def needed(workflow: Workflow, names: Sequence[str]) -> list[str]:
    """``names`` and every task they need, directly or not, in the workflow's order.

    Raises:
        SelectionError: a name is not a task of ``workflow``.
    """
    _check_names(workflow, names)
    keep: set[str] = set()
    stack = list(names)
    while stack:
        task_id = stack.pop()
        if task_id not in keep:
            keep.add(task_id)
            stack.extend(workflow.dependencies_of(task_id))
    return [tid for tid in workflow if tid in keep]


def outside_needs(workflow: Workflow, names: Sequence[str]) -> list[str]:
    """The tasks ``names`` need directly that are not among them, in the workflow's order."""
    _check_names(workflow, names)
    chosen = set(names)
    outside = {dep for tid in chosen for dep in workflow.dependencies_of(tid)} - chosen
    return [tid for tid in workflow if tid in outside]


def _stand_in(task_id: str, value: Any) -> Task:
    async def restored(ctx: TaskContext) -> Any:
        await trio.lowlevel.checkpoint()
        return value

    return Task(task_id, restored)


def select(
    workflow: Workflow,
    names: Sequence[str],
    *,
    only: bool = False,
    restored: Mapping[str, Any] | None = None,
) -> Workflow:
    """The part of ``workflow`` that ``run FILE NAMES`` (or ``--only NAMES``) runs.

    Args:
        workflow: the whole workflow.
        names: the tasks asked for.
        only: run just ``names``; the tasks they need come from ``restored``.
        restored: for ``only``, the result of each task in :func:`outside_needs`.

    Raises:
        SelectionError: a name is not a task of ``workflow``, or a result is missing.
    """
    if not only:
        keep = set(needed(workflow, names))
        restored = {}
    else:
        keep = set(names)
        restored = dict(restored or {})
        missing = [tid for tid in outside_needs(workflow, names) if tid not in restored]
        if missing:
            raise SelectionError(f"no result to restore for {', '.join(missing)}")
    part = Workflow(workflow.name)
    for task_id, task in workflow.tasks.items():
        if task_id in keep:
            part.add_task(task)
        elif task_id in restored:
            part.add_task(_stand_in(task_id, restored[task_id]))
    return part


def _usable(run: StoredRun, wanted: Sequence[str]) -> bool:
    return all(
        tid in run.tasks
        and run.tasks[tid].state == "completed"
        and run.tasks[tid].result_restorable
        for tid in wanted
    )


def find_restorable(
    store: Path | None, workflow: Workflow, names: Sequence[str], *, file: str
) -> tuple[str | None, dict[str, Any]]:
    """For ``--only``: the newest completed run holding what ``names`` need, and those results.

    Returns ``(None, {})`` when the selected tasks need nothing from outside.

    Raises:
        SelectionError: there is no store, or no completed run in it has them all.
    """
    wanted = outside_needs(workflow, names)
    if not wanted:
        return None, {}
    first = f"run `trioforge run {file} {' '.join(names)}` first (without --only)"
    if store is None or not store.is_file():
        where = "there is no run store" if store is None else f"no run store at {store}"
        raise SelectionError(
            f"--only {' '.join(names)} needs the results of {', '.join(wanted)} from an "
            f"earlier run, but {where}; {first}"
        )

    async def search() -> StoredRun | None:
        async with SQLiteRunStore(store) as opened:
            for record in await opened.list_runs(RUNS_SEARCHED, workflow=workflow.name):
                if record.status != "completed":
                    continue
                run = await opened.load(record.id)
                if _usable(run, wanted):
                    return run
        return None

    found = trio.run(search)
    if found is None:
        raise SelectionError(
            f"--only {' '.join(names)} needs the results of {', '.join(wanted)}, and no "
            f"completed run of {workflow.name!r} in {display_path(store)} has them; {first}"
        )
    return found.id, {tid: found.tasks[tid].result() for tid in wanted}
