"""``trioforge run`` and ``resume``: one run of a workflow file, its signals, store and exit code.

Signals are counted for the whole run by ``_cli_signals.Interrupts`` (every
delivery, which ``trio.open_signal_receiver`` does not guarantee), never as a
``KeyboardInterrupt`` raised somewhere inside the executor:

* first SIGINT (or SIGTERM, SIGHUP): ``executor.cancel(reason)``. Running
  commands get SIGTERM through ``run_process``'s ``deliver_cancel`` (SIGKILL
  after their grace period), then the completed tasks are compensated, then
  the run ends with :class:`WorkflowCancelledError` and exit status 128+N
  (130 for Ctrl-C);
* second: every running process group gets SIGKILL now, and commands that
  have not started (pending compensations) are refused, so the run ends at
  once, with the same exit status;
* third: the process exits immediately (``os._exit``) after one more SIGKILL
  to every group, for the case where something still hangs.

Every run is recorded in the run store (``.trioforge/runs.db`` beside the
file, unless ``--store``, ``$TRIOFORGE_STORE`` or ``--no-store`` say
otherwise), with the file's path and text in its definition, so ``resume``
finds the file again and refuses it if it changed. The run id is printed at
the start; when a run does not succeed, the exact ``trioforge resume``
command is printed at the end. For a signal no process can catch (SIGKILL),
a watchdog process (see ``_watchdog``) kills the task processes, and
``resume`` kills whatever a dead driver left before it starts.

The executor's outcome maps to the exit status: 0 success, 1 a task failed,
124 the workflow's ``timeout`` ran out, 128+N interrupted by signal N, and 2
when ``resume`` is refused (unknown run, changed file, another live driver, or
the compensations before a ``--rerun`` failed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

import attrs
import trio

from .._core import (
    FailurePolicy,
    Schedule,
    Workflow,
)
from .._executor import WorkflowExecutor, WorkflowResult
from .._shell import display_path, kill_leftovers, process_watchdog
from .._shell._files import read_regular
from .._store import (
    SQLiteRunStore,
    StoredRun,
    default_store_path,
)
from . import _store_commands
from ._drive import (
    EXIT_OK,
    Outcome,
    drive_run,
    headline,
    silence_stdout,
)
from ._preflight import (
    check_paths,
    text_path,
    warn,
)
from ._progress import RunTracker, without_log_path
from ._prune import retain
from ._select import find_restorable, select
from ._signals import Interrupts
from ._store_commands import (
    UsageError,
    checked_store,
    existing_store,
    load_run,
    resume_command,
)
from ._summary import TAIL_LINES, print_failures, print_summary
from ._views import Views

if TYPE_CHECKING:
    from .._dask._shell_task import DaskLink
    from .._workflow_file import WorkflowFile

__all__ = ["RunOptions", "UsageError", "run_workflow_file"]

#: A workflow file larger than this is refused by the loader (as ``_nodes.MAX_BYTES``).
MAX_FILE_BYTES = 32 * 1024 * 1024


@attrs.frozen
class RunOptions:
    """The options of ``trioforge run`` and ``trioforge resume``.

    Attributes:
        file: the workflow file (``resume``: only to find the store and the
            file, when the stored path is not the one to use).
        resume: the run id to resume; None for a new run.
        force: resume even if the workflow file changed.
        rerun: tasks to re-run, with their dependents, on resume (``--rerun``).
        compensate: undo the ``rerun`` tasks' earlier completions first.
        store: the run store's path (``--store``).
        no_store: record nothing (``--no-store``; a new run only).
        tasks: run these tasks and what they need (``run FILE TASK...``);
            empty for all of them.
        only: run just ``tasks``; what they need is restored from the store.
        output: ``stream``, ``grouped`` or ``quiet`` (``--output``); None
            for the default: the live view on a terminal, else ``grouped``.
        tail: how many log lines of a failed task to show (``--tail``).
        inputs: the ``--input KEY=VALUE`` pairs; None if none was given (a
            resume then uses the inputs its run started with).
        dask: the Dask scheduler to run the shell commands on (``--dask``,
            over the file's ``dask: {address: ...}``); None: the file's, if any.
    """

    file: str | None
    max_parallel: int | None = None
    schedule: str = "dataflow"
    timeout: float | None = None
    keep_going: bool = False
    audit_log: str | None = None
    log_dir: str | None = None
    json: bool = False
    quiet: bool = False
    output: str | None = None
    tail: int = TAIL_LINES
    resume: str | None = None
    force: bool = False
    rerun: tuple[str, ...] = ()
    compensate: bool = True
    store: str | None = None
    no_store: bool = False
    resources: tuple[tuple[str, int], ...] = ()  # --resource NAME=N, over the file's
    tasks: tuple[str, ...] = ()
    only: bool = False
    inputs: tuple[tuple[str, str], ...] | None = None
    dask: str | None = None


def _load(file: str, log_dir: str | None, inputs: dict[str, str]) -> tuple[WorkflowFile, str]:
    """The loaded file and the exact text it was loaded from (for the stored definition)."""
    try:
        data: bytes | None = read_regular(file, MAX_FILE_BYTES + 1)
    except OSError:
        data = None  # the loader reads it again and says why it cannot
    if data is not None and len(data) > MAX_FILE_BYTES:
        data = None
    from .._workflow_file import load_workflow_file  # not imported by `trioforge nox`

    loaded = load_workflow_file(file, text=data, log_dir=log_dir, inputs=inputs)
    if data is None:  # pragma: no cover - the file appeared between the two reads
        data = read_regular(file, MAX_FILE_BYTES + 1)
    return loaded, data.decode("utf-8", errors="surrogateescape")


def _stored_file(stored: StoredRun) -> str:
    path = stored.record.definition.get("path")
    if not isinstance(path, str) or not path:
        raise UsageError(
            f"run {stored.id!r} was not started by `trioforge run`, so there is no workflow "
            "file to resume it from; resume it from Python with WorkflowExecutor.resume()"
        )
    if not Path(path).exists():
        raise UsageError(
            f"run {stored.id!r} was started from {path}, which no longer exists; pass "
            "--file FILE (and --force, since the path is part of the run's definition)"
        )
    return path


@attrs.frozen
class _Target:
    """What to run: the file (loaded), its text, the store, and the stored run to resume."""

    file: str
    loaded: WorkflowFile
    source: str
    store_path: Path | None
    stored: StoredRun | None

    @classmethod
    def find(cls, options: RunOptions, stored: StoredRun | None) -> _Target:
        """The target of ``options``; ``stored`` is the run to resume, already loaded."""
        store_path: Path | None = None
        file = options.file
        if stored is not None:
            store_path = _store_commands.store_to_resume(options.file, options.store)
            file = file if file is not None else _stored_file(stored)
        elif not options.no_store:
            store_path = checked_store(default_store_path(file, store=options.store))
        if file is None:
            raise UsageError("no workflow file given")
        inputs = dict(options.inputs or ())
        if options.inputs is None and stored is not None:
            # A resume runs with the inputs its run started with, unless told otherwise.
            earlier = stored.record.definition.get("inputs")
            if isinstance(earlier, dict):
                inputs = {str(key): str(value) for key, value in earlier.items()}
        loaded, source = _load(file, options.log_dir, inputs)
        return cls(file, loaded, source, store_path, stored)


def run_workflow_file(options: RunOptions) -> int:
    """Load and run (or resume) one workflow file, and report; return the exit status.

    Raises:
        WorkflowFileError: the file is not a valid workflow.
        UsageError: an option cannot work (an unwritable audit log, no store).
        RunNotFoundError: ``resume`` of a run the store does not have.
        RunStoreError: the run store cannot be opened.
    """
    stored = None
    if options.resume is not None:
        stored = load_run(existing_store(options.file, options.store), options.resume)
        if stored.record.status == "completed" and not options.rerun:
            if not options.quiet:
                sys.stderr.write(f"trioforge: run {stored.id} completed; nothing to resume\n")
            return EXIT_OK
    target = _Target.find(options, stored)
    loaded = target.loaded
    warn(loaded, quiet=options.quiet)
    workflow, selection = _selection(options, target)
    workflow, link = _on_dask(options.dask, loaded, workflow)
    check_paths(options.audit_log, loaded.log_dir, target.store_path)
    max_parallel = options.max_parallel or loaded.max_parallel or os.cpu_count() or 1
    tracker = RunTracker(workflow, loaded.log_dir)
    views = Views.choose(tracker, json=options.json, quiet=options.quiet, output=options.output)
    if target.stored is not None:
        _store_commands.check_rerun(options.rerun, loaded.workflow, target.file)
        killed = kill_leftovers(target.stored.id)
        if killed and not options.quiet:
            views.notice(f"killed {killed} leftover process(es) of this run from a dead trioforge")
    keep_going = options.keep_going or loaded.keep_going
    store = None if target.store_path is None else SQLiteRunStore(target.store_path)
    extra: dict[str, object] = {"path": text_path(target.file), "source": target.source}
    if selection:
        extra["selection"] = selection
    if loaded.inputs is not None:
        extra["inputs"] = loaded.inputs
    executor = WorkflowExecutor(
        workflow,
        compensation_timeout=loaded.compensation_timeout,
        max_concurrency=max_parallel,
        workflow_timeout=options.timeout or loaded.timeout,
        failure_policy=(
            FailurePolicy.CONTINUE_INDEPENDENT if keep_going else FailurePolicy.FAIL_FAST
        ),
        audit_path=options.audit_log,
        audit_sinks=views.sinks,
        store=store,
        definition_extra=extra,
        resources={**loaded.resources, **dict(options.resources)},
    )
    start = _starter(executor, options, tracker)
    groups = loaded.process_groups
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(process_watchdog(groups))
        except OSError as exc:
            views.notice(
                f"could not start the watchdog ({exc}): a SIGKILL may leave task processes"
            )
        views.start()
        try:
            interrupts = Interrupts(
                executor, groups, views.notice, started=lambda: tracker.run_id is not None
            )
            outcome = trio.run(drive_run, start, interrupts, store, options.audit_log, link)
        finally:
            views.stop()
            with contextlib.suppress(OSError):  # what it could not write was reported
                executor.audit_log.close()
    code = _report(outcome, views, tracker, target, options.schedule, max_parallel, options.tail)
    if target.store_path is not None and not outcome.refused:
        retain(target.store_path, target.loaded, views.err)
    return code


def _on_dask(
    address: str | None, loaded: WorkflowFile, workflow: Workflow
) -> tuple[Workflow, DaskLink | None]:
    """``workflow`` with its commands run on Dask (``--dask``, else the file's ``dask:``)."""
    from .._workflow_file import DaskSettings

    settings = loaded.dask or DaskSettings()
    address = address or settings.address
    if address is None:
        return workflow, None
    try:
        from .._dask._shell_task import DaskLink, on_dask
    except ImportError as exc:
        raise UsageError(
            f"running shell tasks on Dask needs the dask extra ({exc}): "
            "pip install 'trioforge[dask]'"
        ) from None
    link = DaskLink(address, connect_timeout=settings.connect_timeout)
    return on_dask(workflow, link), link


def _selection(options: RunOptions, target: _Target) -> tuple[Workflow, dict[str, object]]:
    """The part of the file's workflow to run, and the selection as stored in the definition.

    A resume runs the part its run ran (the stored ``selection``), whatever
    the command line says.
    """
    workflow = target.loaded.workflow
    names, only = list(options.tasks), options.only
    if target.stored is not None:
        stored = target.stored.record.definition.get("selection")
        names, only = [], False
        if isinstance(stored, dict):
            names = [str(name) for name in stored.get("tasks", [])]
            only = bool(stored.get("only", False))
    if not names:
        return workflow, {}
    restored: dict[str, object] = {}
    if only:
        _run_id, restored = find_restorable(
            target.store_path, workflow, names, file=display_path(Path(target.file))
        )
    part = select(workflow, names, only=only, restored=restored)
    return part, {"tasks": names, "only": only}


def _starter(
    executor: WorkflowExecutor, options: RunOptions, tracker: RunTracker
) -> Callable[[], Awaitable[WorkflowResult]]:
    if options.resume is None:
        return {
            "dataflow": executor.execute_dataflow,
            "layers": executor.execute_parallel,
            "sequential": executor.execute,
        }[options.schedule]
    return partial(
        executor.resume,
        options.resume,
        force=options.force,
        schedule=cast("Schedule", options.schedule),
        rerun=options.rerun,
        compensate=options.compensate,
        on_restore=partial(_store_commands.show_restored, tracker=tracker),
    )


def _report(
    outcome: Outcome,
    views: Views,
    tracker: RunTracker,
    target: _Target,
    schedule: str,
    max_parallel: int,
    tail_lines: int = TAIL_LINES,
) -> int:
    out, err = views.out, views.err
    if outcome.refused:
        err.print(f"trioforge: error: {_store_commands.refusal(outcome.error)}", markup=False)
        return outcome.code
    human = views.reporter is not None
    try:
        if human:
            print_summary(
                out,
                tracker,
                results=outcome.result.results if outcome.result is not None else None,
                schedule=schedule,
                max_parallel=max_parallel,
            )
        if outcome.code != EXIT_OK:
            print_failures(out if human else err, tracker, lines=tail_lines)
        elif human:
            out.print(f"✓ {target.loaded.name} succeeded", style="bold green")
    except OSError:
        # stdout was closed early (`trioforge run x.yaml | head -1`): the
        # headline on stderr and the exit status still tell what happened.
        silence_stdout()
    if outcome.code != EXIT_OK:
        line = without_log_path(headline(target.loaded.name, outcome))
        err.print(f"trioforge: {line}", markup=False)
        if target.store_path is not None and tracker.run_id is not None:
            command = resume_command(tracker.run_id, target.store_path)
            err.print(f"trioforge: to resume this run: {command}", markup=False)
    return outcome.code
