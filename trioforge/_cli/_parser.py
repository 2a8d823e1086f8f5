"""The ``trioforge`` argument parser: one sub-command each, with examples in every ``--help``."""

from __future__ import annotations

import argparse

from .. import __version__
from .._core import SCHEDULES
from ._args import (
    add_inputs,
    add_selection,
    duration,
    positive_int,
    whole,
)
from ._follow import OUTPUT_MODES
from ._help import (
    DESCRIPTION,
    EXAMPLES,
    GRAPH_EXAMPLES,
    PLAN_EXAMPLES,
    PRUNE_EXAMPLES,
    REPORT_EXAMPLES,
    RUN_EXAMPLES,
    RUNS_EXAMPLES,
    VALIDATE_EXAMPLES,
)
from ._nox_command import add_nox_parser, resource_option
from ._summary import TAIL_LINES

__all__ = ["build_parser"]

_RESUME_EXAMPLES = """\
examples:
  trioforge resume ci-3f2a9c1b7d4e
  trioforge resume ci-3f2a9c1b7d4e --store examples/.trioforge/runs.db
  trioforge resume ci-3f2a9c1b7d4e --file examples/ci.yaml --max-parallel 2
  trioforge resume ci-3f2a9c1b7d4e --rerun deploy

Tasks whose completion was recorded do not run again; failed, interrupted
and pending tasks do, and TRIOFORGE_ATTEMPT keeps counting. The workflow file
is the one the run started from; if it changed since, resume refuses unless
--force, which runs the changed tasks and what depends on them again.
--rerun TASK... runs those tasks and what depends on them again, after
compensating what they did before (dependents first; --no-compensate skips
that). Processes left by a trioforge that was killed are killed first.

exit status: as for run; 2 if the run is unknown, its file changed, another
live process is driving it, or a compensation before --rerun failed.
"""

_SHOW_EXAMPLES = """\
examples:
  trioforge show ci-3f2a9c1b7d4e
  trioforge show ci-3f2a9c1b7d4e --json | jq '.tasks[] | select(.state == "running")'

Works while the run is live, from another terminal.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trioforge`` command."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="trioforge", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"trioforge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run a workflow file",
        description="Run a workflow file.",
        epilog=RUN_EXAMPLES,
        formatter_class=formatter,
    )
    run.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    add_selection(run)
    _add_run_options(run)
    recording = run.add_mutually_exclusive_group()
    recording.add_argument(
        "--store",
        metavar="PATH",
        help="record the run in this store (default: $TRIOFORGE_STORE, else "
        ".trioforge/runs.db beside FILE)",
    )
    recording.add_argument(
        "--no-store",
        action="store_true",
        help="record nothing: the run cannot be resumed, shown or reported",
    )
    _add_store_commands(commands, formatter)
    add_nox_parser(commands, formatter)

    prune = commands.add_parser(
        "prune",
        help="remove old runs and their logs from the run store",
        description="Remove old runs (with their tasks, events and logs) from the run store; "
        "never a run that is being driven now.",
        epilog=PRUNE_EXAMPLES,
        formatter_class=formatter,
    )
    _add_store_options(prune)
    prune.add_argument(
        "--keep", type=positive_int, metavar="N", help="keep the newest N runs (default 100)"
    )
    prune.add_argument(
        "--older-than",
        type=duration,
        metavar="DURATION",
        help="remove the runs started longer ago than DURATION, e.g. 30d or 12h",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; remove nothing"
    )

    validate = commands.add_parser(
        "validate",
        help="check workflow files and report every problem",
        description="Check workflow files and report every problem, each as FILE:LINE:COL.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=formatter,
    )
    validate.add_argument("files", metavar="FILE", nargs="+", help="workflow files (YAML)")
    add_inputs(validate)

    plan = commands.add_parser(
        "plan",
        help="show layers, critical path and parallelism; run nothing",
        description="Show the layers, the critical path and what would run in parallel.",
        epilog=PLAN_EXAMPLES,
        formatter_class=formatter,
    )
    plan.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    add_selection(plan)
    add_inputs(plan)
    _add_max_parallel(plan)
    _add_schedule(plan)
    plan.add_argument(
        "--resource",
        action="append",
        default=[],
        type=resource_option,
        metavar="NAME=N",
        help="a resource pool of N units (over the file's 'resources:'), as run takes it",
    )

    graph = commands.add_parser(
        "graph",
        help="print the dependency graph as DOT or Mermaid",
        description="Print the dependency graph on stdout; edges point from a task to "
        "the tasks that need it.",
        epilog=GRAPH_EXAMPLES,
        formatter_class=formatter,
    )
    graph.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    add_selection(graph)
    add_inputs(graph)
    graph.add_argument(
        "--format", choices=("dot", "mermaid"), default="dot", help="output format (default: dot)"
    )
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``resume`` share."""
    add_inputs(parser)
    _add_max_parallel(parser)
    _add_schedule(parser)
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="limit for the whole run, e.g. 30m (overrides the file's 'timeout')",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, still run every task that does not depend on it",
    )
    parser.add_argument(
        "--audit-log", metavar="PATH", help="also append the audit events to PATH as JSON Lines"
    )
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        help="write task logs under DIR (default: .trioforge/logs beside the workflow file)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the audit events as JSON Lines on stdout instead of the live view",
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing unless something fails"
    )
    parser.add_argument(
        "--resource",
        action="append",
        default=[],
        type=resource_option,
        metavar="NAME=N",
        help="a resource pool of N units (over the file's 'resources:'); repeatable",
    )
    parser.add_argument(
        "--output",
        choices=OUTPUT_MODES,
        help="the tasks' output on the console: stream (every line as it comes, prefixed "
        "with the task id), grouped (each task's output as one block when it ends) or quiet "
        "(none: only the progress lines); default: the live view on a terminal, else grouped",
    )
    parser.add_argument(
        "--tail",
        type=whole,
        default=TAIL_LINES,
        metavar="N",
        help=f"show the last N lines of a failed task's log (default {TAIL_LINES}; 0: none)",
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the shell commands on the workers of the Dask scheduler at ADDRESS, e.g. "
        "tcp://host:8786 (over the file's 'dask: {address: ...}'; needs trioforge[dask] and "
        "a file system the workers share)",
    )


def _add_store_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    formatter: type[argparse.HelpFormatter],
) -> None:
    """``resume``, ``runs``, ``show`` and ``report``: the commands that start from the store."""
    resume = commands.add_parser(
        "resume",
        help="resume a failed, interrupted or killed run",
        description="Resume a recorded run under the same id: tasks that completed do not "
        "run again.",
        epilog=_RESUME_EXAMPLES,
        formatter_class=formatter,
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="the run to resume")
    _add_store_options(resume, file_help="the workflow file, if not the one the run started from")
    resume.add_argument(
        "--force",
        action="store_true",
        help="resume even if the workflow file changed (changed tasks and dependents re-run)",
    )
    resume.add_argument(
        "--rerun",
        nargs="+",
        action="extend",
        default=[],
        metavar="TASK",
        help="run these tasks and everything downstream again, even if they completed "
        "(their earlier completions are compensated first, dependents first)",
    )
    resume.add_argument(
        "--no-compensate",
        action="store_true",
        help="with --rerun: do not compensate the earlier completions first",
    )
    _add_run_options(resume)

    runs = commands.add_parser(
        "runs",
        help="list recent runs, newest first",
        description="List the recent runs of the run store, newest first.",
        epilog=RUNS_EXAMPLES,
        formatter_class=formatter,
    )
    _add_store_options(runs)
    runs.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="show N runs (default 20)"
    )
    runs.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of {id, workflow, status, started_at, finished_at}",
    )

    show = commands.add_parser(
        "show",
        help="show every task of a run: state, attempts, time",
        description="Show every task of a run with its state, attempts and time; the tasks "
        "running now are marked. Works while the run is live.",
        epilog=_SHOW_EXAMPLES,
        formatter_class=formatter,
    )
    show.add_argument("run_id", metavar="RUN_ID", help="the run")
    _add_store_options(show)
    show.add_argument(
        "--json",
        action="store_true",
        help="print {id, workflow, status, tasks: [{id, state, attempts, started_at, "
        "finished_at}]}",
    )

    report = commands.add_parser(
        "report",
        help="write a run's HTML report: timeline, critical path, DAG",
        description="Write a self-contained HTML report of a run: a timeline with one bar "
        "per attempt, the critical path and the DAG.",
        epilog=REPORT_EXAMPLES,
        formatter_class=formatter,
    )
    report.add_argument("run_id", metavar="RUN_ID", help="the run")
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="write it to FILE ('-': stdout)"
    )
    report.add_argument(
        "--logs",
        action="store_true",
        help="embed the whole logs of failed and retried tasks (folded away) in the report",
    )
    _add_store_options(report)


def _add_store_options(
    parser: argparse.ArgumentParser,
    *,
    file_help: str = "find the store beside this workflow file",
) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the run store (default: $TRIOFORGE_STORE, else .trioforge/runs.db beside "
        "--file, else in the current folder)",
    )
    parser.add_argument("--file", metavar="FILE", help=file_help)


def _add_max_parallel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-parallel",
        type=positive_int,
        metavar="N",
        help="run at most N tasks at once (default: the file's max_parallel, else the CPUs)",
    )


def _add_schedule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="dataflow",
        help="dataflow: start each task as soon as its needs are done (default); "
        "layers: layer by layer; sequential: one at a time",
    )
