"""``trioforge runs``, ``show`` and ``report``: the run store, read from the command line.

These commands only read, through their own read-only connection, so they
work from another terminal while a run is live (SQLite's WAL mode lets readers
in beside the writer, and the driver flushes task starts every half second),
and without write access to the store (nothing is migrated or switched to
WAL). ``resume`` writes, and says so up front when it cannot.

Which store: ``--store PATH``, else ``$TRIOFORGE_STORE``, else
``.trioforge/runs.db`` beside ``--file FILE`` when given, else in the current
folder (:func:`~trioforge.default_store_path`). A store that does not exist
is never created by a reading command: that is almost always the wrong
folder, and the error says how to point at the right one.

The JSON forms are exactly :meth:`RunRecord.to_json` (``runs --json``, an
array, newest first) and :meth:`StoredRun.to_json` (``show --json``).

``show`` ends with a ``ctx.state not restorable:`` line when a run that can
still be resumed has completed tasks whose ``ctx.state`` could not be stored
(:meth:`StoredRun.unrestorable_states`): a resume would compensate them
without it, and a ``result not recorded:`` line for each completed task whose
result the codec could not encode faithfully (:meth:`StoredRun.unrestorable`;
a ``DaskTask(..., fetch=False)`` result left on the cluster, say).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import trio
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._core import AuditEvent, Workflow, WorkflowError, format_duration
from .._shell import display_path
from .._shell._files import check_regular
from .._store import (
    DefinitionChangedError,
    Resumption,
    RunRecord,
    RunStoreError,
    SQLiteRunStore,
    StoreContentError,
    StoredRun,
    TaskRecord,
    default_store_path,
)
from ._progress import RunTracker, short_error

__all__ = [
    "UsageError",
    "check_rerun",
    "existing_store",
    "list_runs",
    "load_run",
    "refusal",
    "resume_command",
    "show_restored",
    "show_run",
    "store_to_resume",
    "write_report",
]

T = TypeVar("T")

#: How each task state is drawn in ``show`` (symbol, style).
STATE_STYLES = {
    "completed": ("✓", "green"),
    "rolled back": ("↺", "yellow"),
    "failed": ("✗", "bold red"),
    "running": ("…", "bold cyan"),
    "pending": ("·", "dim"),
    "skipped": ("↷", "yellow"),
    "cancelled": ("⊘", "yellow"),
    "interrupted": ("?", "magenta"),
}
#: How each run status is drawn in ``runs`` and ``show``.
STATUS_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "cancelled": "yellow",
    "interrupted": "magenta",
    "running": "bold cyan",
}


class UsageError(WorkflowError, ValueError):
    """A command line that cannot work, e.g. a store that does not exist (exit status 2)."""


def checked_store(path: Path) -> Path:
    """``path``, if it is a regular file or does not exist yet (SQLite would block on a FIFO).

    Raises:
        UsageError: ``path`` is a FIFO, device, socket or folder.
    """
    try:
        check_regular(path)
    except OSError as exc:
        raise UsageError(f"cannot use the run store: {exc.strerror}") from None
    return path


def existing_store(file: str | None, store: str | None) -> Path:
    """The store a reading command uses; it must exist.

    Raises:
        UsageError: there is no store file there.
    """
    path = default_store_path(file, store=store)
    checked_store(path)
    if not path.is_file():
        raise UsageError(
            f"no run store at {display_path(path)}: runs are recorded in .trioforge/runs.db "
            "beside the workflow file; pass --file FILE or --store PATH, or set TRIOFORGE_STORE"
        )
    return path


def store_to_resume(file: str | None, store: str | None) -> Path:
    """The store ``resume`` writes to: it must exist, and be writable.

    Raises:
        UsageError: there is no store there, or no write access to it.
    """
    path = existing_store(file, store)
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise UsageError(
            f"resume needs write access to the run store {display_path(path)} and its "
            "folder (SQLite writes its journal beside it); runs, show and report only read"
        )
    return path


def resume_command(run_id: str, store: Path) -> str:
    """The exact command that resumes ``run_id`` from the current folder and environment."""
    words = ["trioforge", "resume", run_id]
    if store != default_store_path():
        words += ["--store", display_path(store)]
    return shlex.join(words)


def show_restored(resumed: Resumption, tracker: RunTracker) -> None:
    """Show the tasks a resume does not run again as done (the store decided, under the lease)."""
    for task_id in resumed.restored:
        if task_id in tracker.records:
            tracker.restore(task_id, resumed.attempts.get(task_id, 1))


def check_rerun(rerun: Sequence[str], workflow: Workflow, file: str) -> None:
    """Refuse ``--rerun`` of a task the workflow file does not have.

    Raises:
        UsageError: naming the unknown tasks.
    """
    unknown = [task_id for task_id in rerun if task_id not in workflow.tasks]
    if unknown:
        raise UsageError(f"--rerun: no task {', '.join(map(repr, unknown))} in {file}")


def refusal(error: Exception | None) -> str:
    """The one line that says why a resume was refused, in command-line words."""
    if isinstance(error, DefinitionChangedError):
        return (
            f"the workflow changed since run {error.run_id!r} started ({error.detail}); "
            "resume it with --force to run it anyway (the changed tasks and everything "
            "downstream of them run again)"
        )
    return str(error)


def _read(path: Path, action: Callable[[SQLiteRunStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with SQLiteRunStore(path, readonly=True) as store:
            return await action(store)

    try:
        return trio.run(main)
    except sqlite3.Error as exc:
        raise RunStoreError(f"cannot read the run store {display_path(path)}: {exc}") from exc
    except StoreContentError as exc:
        raise UsageError(str(exc)) from None  # input this trioforge cannot read


def load_run(path: Path, run_id: str) -> StoredRun:
    """The run ``run_id`` of the store at ``path``.

    Raises:
        RunNotFoundError: the store has no such run.
    """
    return _read(path, lambda store: store.load(run_id))


def _local(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return _dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _elapsed(record: RunRecord, now: float) -> str:
    if record.finished_at is not None:
        return format_duration(max(record.finished_at - record.started_at, 0.0))
    if record.status == "running":
        return f"{format_duration(max(now - record.started_at, 0.0))} so far"
    return "-"


def _took(record: RunRecord, now: float) -> str:
    if record.finished_at is not None:
        return f"took {_elapsed(record, now)}"
    if record.status == "running":
        return f"running for {format_duration(max(now - record.started_at, 0.0))}"
    return "not finished"


def list_runs(path: Path, *, limit: int, as_json: bool) -> int:
    """Print the newest runs of the store, newest first; return the exit status."""
    runs = _read(path, lambda store: store.list_runs(limit))
    if as_json:
        _out(json.dumps([run.to_json() for run in runs], indent=2) + "\n")
        return 0
    console = _console()
    if not runs:
        console.print(f"no runs in {display_path(path)}", highlight=False)
        return 0
    now = time.time()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in ("run", "workflow", "status", "started", "duration"):
        table.add_column(name, no_wrap=True)
    for run in runs:
        table.add_row(
            run.id,
            run.workflow,
            Text(run.status, style=STATUS_STYLES.get(run.status, "")),
            _local(run.started_at),
            _elapsed(run, now),
        )
    console.print(table)
    return 0


def _state(task: TaskRecord, run_status: str) -> str:
    if task.state == "running" and run_status != "running":
        return "interrupted"  # its driver is gone; it is not running now
    if task.state == "completed" and task.compensated:
        return "rolled back"  # it completed, then its compensation undid it
    return task.state


def _task_time(task: TaskRecord, state: str, now: float) -> str:
    if state == "running" and task.started_at is not None:
        return f"{format_duration(max(now - task.started_at, 0.0))} so far"
    if task.duration is not None:
        return format_duration(task.duration)
    if task.started_at is not None and task.finished_at is not None:
        return format_duration(max(task.finished_at - task.started_at, 0.0))
    return "-"


def show_run(path: Path, run_id: str, *, as_json: bool) -> int:
    """Print every task of the run with its state, attempts and time; return the exit status."""
    run = load_run(path, run_id)
    if as_json:
        _out(json.dumps(run.to_json(), indent=2) + "\n")
        return 0
    record = run.record
    now = time.time()
    states = {tid: _state(task, record.status) for tid, task in run.tasks.items()}
    console = _console()
    console.print(
        Text.assemble(
            ("run ", "bold"),
            (record.id, "bold"),
            f" of {record.workflow}: ",
            (record.status, STATUS_STYLES.get(record.status, "")),
            f", started {_local(record.started_at)}, {_took(record, now)}",
        ),
        highlight=False,
    )
    running = [tid for tid, state in states.items() if state == "running"]
    counts = {
        "running now": len(running),
        "done": sum(state == "completed" for state in states.values()),
        "pending": sum(state == "pending" for state in states.values()),
    }
    for state in ("rolled back", "failed", "skipped", "cancelled", "interrupted"):
        counts[state] = sum(s == state for s in states.values())
    always = (
        ("running now", "done", "pending") if record.status == "running" else ("done", "pending")
    )
    console.print(
        ", ".join(f"{n} {what}" for what, n in counts.items() if n or what in always),
        highlight=False,
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("task", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("time", justify="right", no_wrap=True)
    errors = any(task.error and states[tid] == "failed" for tid, task in run.tasks.items())
    if errors:
        table.add_column("error", no_wrap=True, overflow="ellipsis", max_width=100)
    for tid, task in run.tasks.items():
        state = states[tid]
        symbol, style = STATE_STYLES.get(state, ("•", ""))
        label = f"{symbol} {state}" + (" now" if state == "running" else "")
        row: list[str | Text] = [
            Text(tid, style="bold" if state == "running" else ""),
            Text(label, style=style),
            str(task.attempts),
            _task_time(task, state, now),
        ]
        if errors:
            failed = state == "failed" and task.error
            row.append(Text(short_error(task.error) if failed else "", style="red"))
        table.add_row(*row)
    console.print(table)
    if running:
        console.print(f"running now: {', '.join(running)}", highlight=False)
    lost = run.unrestorable_states() if record.status != "completed" else []
    if lost:
        console.print(
            Text.assemble(
                ("ctx.state not restorable: ", "magenta"),
                ", ".join(lost),
                " (a resume restores these tasks with an empty ctx.state, so a rollback "
                "compensates them without what they recorded there)",
            ),
            highlight=False,
        )
    for tid in run.unrestorable():  # e.g. a DaskTask's result left on the cluster
        console.print(
            Text.assemble(
                ("result not recorded: ", "magenta"),
                tid,
                " (the store's codec could not encode it faithfully, so a resume runs it again)",
            ),
            highlight=False,
        )
    return 0


def write_report(path: Path, run_id: str, output: str, *, embed_logs: bool = False) -> int:
    """Write the HTML report of the run to ``output`` (``-``: stdout); return the exit status.

    Failed and retried tasks get their error, log excerpt, outputs and a link
    to their log relative to ``output``; ``embed_logs`` puts whole logs in.

    Raises:
        UsageError: the store holds events this version of trioforge does not know.
    """

    async def gather(store: SQLiteRunStore) -> tuple[StoredRun, list[AuditEvent]]:
        return await store.load(run_id), await store.load_events(run_id)

    try:
        run, events = _read(path, gather)
    except ValueError as exc:
        if isinstance(exc, WorkflowError):
            raise
        raise UsageError(
            f"cannot report run {run_id!r}: the store holds an event this version of "
            f"trioforge does not know ({exc}); report it with the trioforge that ran it"
        ) from None
    live = run.record.status == "running"
    folder = Path.cwd() if output == "-" else Path(output).parent
    from .._report import render_page  # only `report` draws pages
    from ._report_files import task_details

    details = task_details(run, path, folder, embed_logs=embed_logs)
    html = render_page(run, events, now=time.time() if live else None, details=details)
    if output == "-":
        _out(html)
        return 0
    target = Path(output)
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    attempts = sum(task.attempts for task in run.tasks.values())
    sys.stderr.write(
        f"wrote {display_path(target.absolute())}: run {run_id}, {len(run.tasks)} tasks, "
        f"{attempts} attempts\n"
    )
    return 0


def _console() -> Console:
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # no terminal to fit (a pipe, a log): keep ids and names whole
    return console


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
