"""The ``trioforge`` command line: ``run``, ``resume``, ``runs``, ``show``, ``report``, and more.

argparse, one sub-command each, with examples in every ``--help``. The rule
for errors is that a person never sees a traceback for anything they did: a
:class:`WorkflowFileError` prints its problems as ``FILE:LINE:COL: message``
and exits 2; an unknown run, a changed workflow file or a run driven by
another process (``resume``) print one line and exit 2; any other
:class:`WorkflowError`, ``OSError`` or SQLite error prints one line; a
``KeyboardInterrupt`` that arrives before a run has set up its own signal
handling (while a large file loads, say) exits 130. Only a bug in trioforge
itself gets a traceback, and then only with ``TRIOFORGE_TRACEBACK=1``.

Exit statuses: 0 success, 1 a task failed, 2 invalid workflow file or usage
(or a refused resume), 124 workflow timeout, 130 interrupted (128+N for
signal N).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from ._nox_args import early_probe

if TYPE_CHECKING:
    from .._nox import StartedProbe
    from .._workflow_file import WorkflowFileError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trioforge`` command; return its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `trioforge nox` starts nox's probe before the imports below (see _nox_args).
    with early_probe(arguments) as early:
        return _main(arguments, early)


def build_parser() -> argparse.ArgumentParser:
    """The ``trioforge`` argument parser."""
    from ._parser import build_parser

    return build_parser()


def _main(arguments: list[str], early: StartedProbe | None) -> int:
    import sqlite3

    from .._core import WorkflowError
    from ._drive import EXIT_USAGE, REFUSALS

    args = build_parser().parse_args(arguments)
    try:
        return _dispatch(args, early)
    except _file_errors() as exc:
        _print_problems(cast("WorkflowFileError", exc))
        return EXIT_USAGE
    except REFUSALS as exc:
        _error(str(exc))
        return EXIT_USAGE
    except sqlite3.Error as exc:
        _error(f"the run store failed: {exc}")
        return 1
    except BrokenPipeError:
        # stdout was closed early (`trioforge graph x | head -1`): not an error to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
        return 1
    except (WorkflowError, OSError) as exc:
        _error(str(exc) or type(exc).__name__)
        return EXIT_USAGE if isinstance(exc, ValueError) else 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("TRIOFORGE_TRACEBACK"):
            raise
        _error(
            f"internal error: {type(exc).__name__}: {exc} "
            "(please report it; TRIOFORGE_TRACEBACK=1 shows the traceback)"
        )
        return 1


def _file_errors() -> tuple[type[Exception], ...]:
    """``(WorkflowFileError,)`` once workflow files are in use; else nothing to catch.

    Not imported up front: ``trioforge nox`` (whose start-up time counts) reads no
    workflow file, and an error of a module never imported cannot be raised.
    """
    module = sys.modules.get("trioforge._workflow_file")
    return () if module is None else (cast("type[Exception]", module.WorkflowFileError),)


def _dispatch(args: argparse.Namespace, early: StartedProbe | None) -> int:
    # Each command imports what it uses (`nox` and `resume` first: no workflow file loader).
    command = args.command
    if command in ("nox", "resume"):
        from ._nox_command import nox_options, resume_nox_run, run_nox

        if command == "nox":
            return run_nox(nox_options(args), early=early)
        if (code := resume_nox_run(args)) is not None:
            return code
    from .._workflow_file import load_workflow_file
    from ._args import given_inputs, selected
    from ._plan import render_dot, render_mermaid, render_plan
    from ._prune import DEFAULT_KEEP, Retention, describe, prune_runs
    from ._run import RunOptions, run_workflow_file
    from ._select import outside_needs, select
    from ._store_commands import existing_store, list_runs, show_run, write_report

    if command in ("run", "resume"):
        tasks, only = selected(args) if command == "run" else ((), False)
        return run_workflow_file(
            RunOptions(
                file=args.file,
                max_parallel=args.max_parallel,
                schedule=args.schedule,
                timeout=args.timeout,
                keep_going=args.keep_going,
                audit_log=args.audit_log,
                log_dir=args.log_dir,
                json=args.json,
                quiet=args.quiet,
                output=args.output,
                tail=args.tail,
                resume=args.run_id if command == "resume" else None,
                force=command == "resume" and args.force,
                rerun=tuple(args.rerun) if command == "resume" else (),
                compensate=not (command == "resume" and args.no_compensate),
                store=args.store,
                no_store=command == "run" and args.no_store,
                resources=tuple(args.resource),
                tasks=tasks,
                only=only,
                inputs=tuple(args.inputs) if args.inputs else None,
                dask=args.dask,
            )
        )
    if command in ("runs", "show", "report"):
        store = existing_store(args.file, args.store)
        if command == "runs":
            return list_runs(store, limit=args.limit, as_json=args.json)
        if command == "show":
            return show_run(store, args.run_id, as_json=args.json)
        return write_report(store, args.run_id, args.output, embed_logs=args.logs)
    if command == "prune":
        store = existing_store(args.file, args.store)
        keep = args.keep
        if keep is None and args.older_than is None:
            keep = DEFAULT_KEEP
        pruned = prune_runs(store, Retention(keep, args.older_than), dry_run=args.dry_run)
        _out(describe(pruned, store, dry_run=args.dry_run) + "\n")
        if args.dry_run:
            for run in pruned.removed:
                _out(f"  {run.id}  {run.workflow}  {run.status}\n")
        return 0
    if command == "validate":
        return _validate(args.files, given_inputs(args))
    loaded = load_workflow_file(args.file, inputs=given_inputs(args))
    workflow = loaded.workflow
    tasks, only = selected(args)
    if tasks:
        # Without a store at hand, --only shows what it needs as tasks with nothing to run.
        outside = outside_needs(workflow, tasks) if only else []
        workflow = select(workflow, tasks, only=only, restored=dict.fromkeys(outside))
    if command == "plan":
        limit = args.max_parallel or loaded.max_parallel or os.cpu_count() or 1
        pools = {**loaded.resources, **dict(args.resource)}
        _out(render_plan(workflow, max_parallel=limit, schedule=args.schedule, resources=pools))
    else:
        _out(render_dot(workflow) if args.format == "dot" else render_mermaid(workflow))
    return 0


def _validate(files: Sequence[str], inputs: dict[str, str] | None) -> int:
    from .._workflow_file import WorkflowFileError, load_workflow_file
    from ._drive import EXIT_USAGE
    from ._plan import count

    status = 0
    for file in files:
        try:
            loaded = load_workflow_file(file, inputs=inputs)
        except WorkflowFileError as exc:
            _print_problems(exc)
            status = EXIT_USAGE
            continue
        for warning in loaded.warnings:
            sys.stderr.write(
                f"{warning.path}:{warning.line}:{warning.column}: warning: {warning.message}\n"
            )
        layers = len(loaded.workflow.execution_layers())
        _out(f"{file}: ok ({count(len(loaded.workflow), 'task')}, {count(layers, 'layer')})\n")
    return status


def _print_problems(exc: WorkflowFileError) -> None:
    total = len(exc.problems) + exc.omitted
    noun = "problem" if total == 1 else "problems"
    sys.stderr.write(f"{exc}\n{total} {noun} found\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"trioforge: error: {message}\n")
    sys.stderr.flush()
