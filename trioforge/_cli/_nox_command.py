"""``trioforge nox``: a project's nox sessions as a durable, parallel trioforge run.

The nox engine (``trioforge._nox``) asks the user's own nox for the selected
sessions and what each requires, and turns them into a workflow of
``nox -s SIGNATURE --no-dependencies --report FILE`` tasks. This module is
the command around it, and it reuses ``trioforge run``'s machinery rather
than copying it: the same views (live, plain, ``--json``, ``--quiet``), the
same signal handling (:class:`Interrupts`: Ctrl-C cancels, a second one
kills every process group), the same watchdog, the same store driver and the
same summary and exit codes (0, 1 a session failed, 2 a broken noxfile,
unknown session or bad option, 124, 130).

Durable like ``trioforge run``: the run is recorded in ``.trioforge/runs.db``
beside the noxfile, and its stored definition holds ``{"nox": {...}}``: the
session graph (with the noxfile's hash and nox's version) and the options
that made it. ``trioforge resume RUN_ID`` sees that key and comes here: it
probes the noxfile again with the stored options, and the executor refuses
the resume (exit 2) if the graph or the noxfile changed, unless ``--force``.

Defaults per project come from ``[tool.trioforge.nox]`` in the
``pyproject.toml`` beside the noxfile: ``timeout`` and ``retries`` (a value or
a list of ``VALUE``/``PATTERN=VALUE`` strings, before the command line's own)
and ``max-parallel``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from .._core import FailurePolicy
from .._executor import WorkflowExecutor
from .._nox import (
    NoxError,
    NoxGraph,
    Spares,
    StartedProbe,
    build_workflow,
    parse_retries,
    parse_timeouts,
    probe_graph,
    session_pools,
)
from .._shell import ProcessGroups, display_path, kill_leftovers, process_watchdog
from .._store import SQLiteRunStore, StoredRun, default_store_path
from . import _store_commands
from ._drive import EXIT_OK, EXIT_USAGE, Outcome, drive_run, headline, silence_stdout
from ._nox_args import add_nox_parser
from ._nox_config import project_defaults, resource_option
from ._nox_output import SessionBlocks
from ._progress import RunTracker
from ._signals import Interrupts
from ._store_commands import UsageError, existing_store, load_run, resume_command
from ._summary import TAIL_LINES, print_failures, print_summary
from ._views import Views

__all__ = [
    "NoxOptions",
    "add_nox_parser",
    "nox_options",
    "project_defaults",
    "resource_option",
    "resume_nox_run",
    "run_nox",
]

_NAME = "nox"


@attrs.frozen
class NoxOptions:
    """The options of ``trioforge nox`` (and of a resumed nox run)."""

    sessions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    noxfile: str | None = None
    nox_args: tuple[str, ...] = ()
    max_parallel: int | None = None
    respect_allow_parallel: bool = False
    timeouts: tuple[str, ...] = ()
    retries: tuple[str, ...] = ()
    stop_on_first_error: bool = False
    grace_period: float = 5.0
    store: str | None = None
    no_store: bool = False
    log_dir: str | None = None
    json: bool = False
    quiet: bool = False
    show_output: bool = True
    resume: str | None = None
    force: bool = False
    rerun: tuple[str, ...] = ()
    compensate: bool = True
    keep_going: bool = False  # resume --keep-going: lifts the run's -x (kept in its record)

    def selection(self) -> dict[str, Any]:
        """What the stored definition keeps to probe the same sessions again on resume."""
        return {
            "sessions": list(self.sessions),
            "tags": list(self.tags),
            "noxfile": self.noxfile,
            "nox_args": list(self.nox_args),
            "timeouts": list(self.timeouts),
            "retries": list(self.retries),
            "respect_allow_parallel": self.respect_allow_parallel,
            "stop_on_first_error": self.stop_on_first_error,
        }


def nox_options(args: argparse.Namespace) -> NoxOptions:
    """The :class:`NoxOptions` of a parsed ``trioforge nox`` command line."""
    return NoxOptions(
        sessions=tuple(args.sessions),
        tags=tuple(args.tags),
        noxfile=args.noxfile,
        nox_args=tuple(args.nox_args),
        max_parallel=args.max_parallel,
        respect_allow_parallel=args.respect_allow_parallel,
        timeouts=tuple(args.timeout),
        retries=tuple(args.retries),
        stop_on_first_error=args.stop_on_first_error,
        store=args.store,
        no_store=args.no_store,
        log_dir=args.log_dir,
        json=args.json,
        quiet=args.quiet,
        show_output=not args.hide_output,
    )


def _noxfile(options: NoxOptions) -> Path:
    path = Path(options.noxfile or "noxfile.py").absolute()
    if not path.is_file():
        raise UsageError(f"{display_path(path)}: no such noxfile (use -f FILE)")
    return path


def run_nox(
    options: NoxOptions, stored: StoredRun | None = None, *, early: StartedProbe | None = None
) -> int:
    """Run (or, with ``stored``, resume) nox sessions; return the exit status.

    ``early`` is the probe :func:`early_probe` started for this command line
    (collected here instead of starting another).

    Raises:
        UsageError: a missing noxfile or a bad option or project default.
        RunStoreError: the run store cannot be opened.
    """
    try:
        return _run_nox(options, stored, early)
    except NoxError as exc:
        sys.stderr.write(f"trioforge: error: {exc}\n")
        sys.stderr.flush()
        return EXIT_USAGE


def _run_nox(options: NoxOptions, stored: StoredRun | None, early: StartedProbe | None) -> int:
    noxfile = _noxfile(options)
    folder = noxfile.parent
    timeouts, retries, limit = project_defaults(folder)
    timeout_limits = parse_timeouts([*timeouts, *options.timeouts])
    retry_limits = parse_retries([*retries, *options.retries])
    graph: NoxGraph = trio.run(
        lambda: probe_graph(
            sessions=options.sessions,
            tags=options.tags,
            noxfile=noxfile,
            nox_args=options.nox_args,
            cwd=folder,
            started=early,
        )
    )
    log_dir = Path(options.log_dir) if options.log_dir else folder / ".trioforge" / "logs"
    store_path: Path | None = None
    if stored is not None:
        store_path = existing_store(str(noxfile), options.store)
    elif not options.no_store:
        store_path = default_store_path(noxfile, store=options.store)
    groups = ProcessGroups()
    max_parallel = options.max_parallel or limit or os.cpu_count() or 1
    spares = early.spares if early is not None and early.spares is not None else None
    if spares is None:
        spares = Spares(graph.python, folder)
    spares.plan(limit=max_parallel, sessions=len(graph.sessions))
    workflow = build_workflow(
        graph,
        nox_args=options.nox_args,
        report_dir=folder / ".trioforge" / "nox-reports",
        log_dir=log_dir,
        timeouts=timeout_limits,
        retries=retry_limits,
        respect_allow_parallel=options.respect_allow_parallel,
        grace_period=options.grace_period,
        process_groups=groups,
        name=_NAME,
        spares=spares,
    )
    tracker = RunTracker(workflow, log_dir)
    views = Views.choose(tracker, json=options.json, quiet=options.quiet, output="quiet")
    if options.show_output and views.reporter is not None:
        views.sinks.append(SessionBlocks(tracker, views.reporter))
    if stored is not None:
        killed = kill_leftovers(stored.id)
        if killed and not options.quiet:
            views.notice(f"killed {killed} leftover process(es) of this run from a dead trioforge")
    store = None if store_path is None else SQLiteRunStore(store_path)
    selection = options.selection() | {"noxfile": str(noxfile)}
    executor = WorkflowExecutor(
        workflow,
        max_concurrency=max_parallel,
        failure_policy=(
            FailurePolicy.FAIL_FAST
            if options.stop_on_first_error and not options.keep_going
            else FailurePolicy.CONTINUE_INDEPENDENT
        ),
        audit_sinks=views.sinks,
        store=store,
        resources=session_pools(graph),
        definition_extra={"nox": {"graph": graph.to_json(), "options": selection}},
    )
    if stored is None:
        start = executor.execute_dataflow
    else:
        run_id, force, rerun, compensate = (
            stored.id,
            options.force,
            options.rerun,
            options.compensate,
        )

        def start() -> Any:
            # The progress view learns what was restored from the store's one
            # restore rule, under the lease (not from a read before it).
            return executor.resume(
                run_id,
                force=force,
                rerun=rerun,
                compensate=compensate,
                on_restore=partial(_store_commands.show_restored, tracker=tracker),
            )

    with contextlib.ExitStack() as stack:
        stack.callback(spares.close)
        spares.fill()  # the first wave's interpreters start while the run sets up
        try:
            stack.enter_context(process_watchdog(groups))
        except OSError as exc:
            views.notice(
                f"could not start the watchdog ({exc}): a SIGKILL may leave session processes"
            )
        views.start()
        try:
            interrupts = Interrupts(
                executor, groups, views.notice, started=lambda: tracker.run_id is not None
            )
            outcome = trio.run(drive_run, start, interrupts, store)
        finally:
            views.stop()
            executor.audit_log.close()
    return _report(outcome, views, tracker, store_path, max_parallel)


def _report(
    outcome: Outcome,
    views: Views,
    tracker: RunTracker,
    store_path: Path | None,
    max_parallel: int,
) -> int:
    out, err = views.out, views.err
    if outcome.refused:
        err.print(f"trioforge: error: {outcome.error}", markup=False)
        return outcome.code
    human = views.reporter is not None
    try:
        if human:
            results = outcome.result.results if outcome.result is not None else None
            print_summary(
                out, tracker, results=results, schedule="dataflow", max_parallel=max_parallel
            )
        if outcome.code != EXIT_OK:
            print_failures(out if human else err, tracker)
        elif human:
            out.print("✓ nox sessions succeeded", style="bold green")
    except OSError:
        silence_stdout()
    if outcome.code != EXIT_OK:
        err.print(f"trioforge: {headline(_NAME, outcome)}", markup=False)
        if store_path is not None and tracker.run_id is not None:
            command = resume_command(tracker.run_id, store_path)
            err.print(f"trioforge: to resume this run: {command}", markup=False)
    return outcome.code


# ``trioforge resume`` options that a nox run cannot take, with their defaults:
# a session's limits, retries and -x belong to the run (probed again with
# the stored options), and nox runs have no workflow-level timeout, pools of
# the user's, schedule, audit file, output modes or inputs.
_NOT_FOR_NOX: tuple[tuple[str, object, str], ...] = (
    ("timeout", None, "--timeout"),
    ("resource", [], "--resource"),
    ("schedule", "dataflow", "--schedule"),
    ("audit_log", None, "--audit-log"),
    ("output", None, "--output"),
    ("tail", TAIL_LINES, "--tail"),
    ("inputs", None, "--input"),
    ("dask", None, "--dask"),
)


def resume_nox_run(args: argparse.Namespace) -> int | None:
    """``trioforge resume RUN_ID`` of a run ``trioforge nox`` started; None for any other run.

    The sessions are probed again with the options the run was started with
    (``--file`` names the noxfile when it moved). ``--max-parallel``,
    ``--keep-going`` (which lifts the run's ``-x``), ``--rerun``,
    ``--no-compensate``, ``--log-dir``, ``--json``, ``--quiet``, ``--force``
    and ``--store`` apply; any other option of ``resume`` is refused.

    Raises:
        RunNotFoundError: the store has no such run.
        UsageError: an option a nox run cannot take; it names them.
    """
    store_path = existing_store(args.file, args.store)
    stored = load_run(store_path, args.run_id)
    data = stored.record.definition.get("nox")
    if not isinstance(data, dict):
        return None
    refused = [flag for dest, default, flag in _NOT_FOR_NOX if getattr(args, dest) != default]
    if refused:
        raise UsageError(
            f"run {stored.id} is a `trioforge nox` run: resume does not take "
            f"{', '.join(refused)} for it (its session timeouts, retries and -x are the "
            "run's own: start a new `trioforge nox` run to change them)"
        )
    if stored.record.status == "completed" and not args.rerun:
        if not args.quiet:
            sys.stderr.write(f"trioforge: run {stored.id} completed; nothing to resume\n")
        return EXIT_OK
    saved = data.get("options")
    if not isinstance(saved, dict):
        raise UsageError(f"run {stored.id!r} has no nox options recorded; cannot resume it")
    noxfile = args.file or saved.get("noxfile")
    options = NoxOptions(
        sessions=tuple(saved.get("sessions", ())),
        tags=tuple(saved.get("tags", ())),
        noxfile=noxfile,
        nox_args=tuple(saved.get("nox_args", ())),
        max_parallel=args.max_parallel,
        respect_allow_parallel=bool(saved.get("respect_allow_parallel")),
        timeouts=tuple(saved.get("timeouts", ())),
        retries=tuple(saved.get("retries", ())),
        stop_on_first_error=bool(saved.get("stop_on_first_error")),
        keep_going=args.keep_going,
        store=str(store_path),
        log_dir=args.log_dir,
        json=args.json,
        quiet=args.quiet,
        resume=stored.id,
        force=args.force,
        rerun=tuple(args.rerun),
        compensate=not args.no_compensate,
    )
    return run_nox(options, stored)
