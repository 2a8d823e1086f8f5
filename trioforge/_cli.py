"""The ``trioforge`` command line: ``run``, ``validate``, ``plan`` and ``graph``.

argparse, one sub-command each, with examples in every ``--help``. The rule
for errors is that a person never sees a traceback for anything they did: a
:class:`WorkflowFileError` prints its problems as ``FILE:LINE:COL: message``
and exits 2; any other :class:`WorkflowError` or ``OSError`` prints one line;
a ``KeyboardInterrupt`` that arrives before a run has set up its own signal
handling (while a large file loads, say) exits 130. Only a bug in trioforge
itself gets a traceback, and then only with ``TRIOFORGE_TRACEBACK=1``.

Exit statuses: 0 success, 1 a task failed, 2 invalid workflow file or usage,
124 workflow timeout, 130 interrupted (128+N for signal N).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from ._cli_run import EXIT_USAGE, SCHEDULES, RunOptions, run_workflow_file
from ._durations import DurationError, parse_duration
from ._errors import WorkflowError
from ._plan import count, render_dot, render_mermaid, render_plan
from ._yaml_loader import WorkflowFileError, load_workflow_file

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Run workflows of shell commands described in YAML: tasks run in parallel as
far as their `needs` allow, with timeouts, retries, rollback and a live view.
"""

_EXAMPLES = """\
examples:
  trioforge validate ci.yaml               report every problem in the file
  trioforge plan ci.yaml                   show what would run in parallel
  trioforge run ci.yaml                    run it, with a live view
  trioforge run ci.yaml --json > run.jsonl audit events as JSON Lines
  trioforge graph ci.yaml --format mermaid the DAG, for a README

exit status: 0 success, 1 a task failed, 2 invalid file or usage,
124 workflow timeout, 130 interrupted (Ctrl-C).
"""

_RUN_EXAMPLES = """\
examples:
  trioforge run ci.yaml
  trioforge run ci.yaml --max-parallel 2 --schedule layers
  trioforge run deploy.yaml --timeout 30m --audit-log audit/deploy.jsonl
  trioforge run ci.yaml --keep-going --quiet

Ctrl-C once stops running tasks (SIGTERM, then SIGKILL after their grace
period) and runs the compensations of completed tasks; twice kills
everything at once. Task logs go to .trioforge/logs/RUN_ID/TASK.log beside
the workflow file.

exit status: 0 success, 1 a task failed, 2 invalid file or usage,
124 workflow timeout, 130 interrupted (Ctrl-C).
"""

_VALIDATE_EXAMPLES = """\
examples:
  trioforge validate ci.yaml
  trioforge validate workflows/*.yaml

Every problem is printed as FILE:LINE:COL: message; exit status 2 if any.
"""

_PLAN_EXAMPLES = """\
examples:
  trioforge plan ci.yaml
  trioforge plan ci.yaml --max-parallel 1
"""

_GRAPH_EXAMPLES = """\
examples:
  trioforge graph ci.yaml | dot -Tsvg > ci.svg
  trioforge graph ci.yaml --format mermaid
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trioforge`` command."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="trioforge", description=_DESCRIPTION, epilog=_EXAMPLES, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"trioforge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run a workflow file",
        description="Run a workflow file.",
        epilog=_RUN_EXAMPLES,
        formatter_class=formatter,
    )
    run.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    _add_max_parallel(run)
    _add_schedule(run)
    run.add_argument(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="limit for the whole run, e.g. 30m (overrides the file's 'timeout')",
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, still run every task that does not depend on it",
    )
    run.add_argument(
        "--audit-log", metavar="PATH", help="also append the audit events to PATH as JSON Lines"
    )
    run.add_argument(
        "--log-dir",
        metavar="DIR",
        help="write task logs under DIR (default: .trioforge/logs beside FILE)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the audit events as JSON Lines on stdout instead of the live view",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing unless something fails"
    )

    validate = commands.add_parser(
        "validate",
        help="check workflow files and report every problem",
        description="Check workflow files and report every problem, each as FILE:LINE:COL.",
        epilog=_VALIDATE_EXAMPLES,
        formatter_class=formatter,
    )
    validate.add_argument("files", metavar="FILE", nargs="+", help="workflow files (YAML)")

    plan = commands.add_parser(
        "plan",
        help="show layers, critical path and parallelism; run nothing",
        description="Show the layers, the critical path and what would run in parallel.",
        epilog=_PLAN_EXAMPLES,
        formatter_class=formatter,
    )
    plan.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    _add_max_parallel(plan)
    _add_schedule(plan)

    graph = commands.add_parser(
        "graph",
        help="print the dependency graph as DOT or Mermaid",
        description="Print the dependency graph on stdout; edges point from a task to "
        "the tasks that need it.",
        epilog=_GRAPH_EXAMPLES,
        formatter_class=formatter,
    )
    graph.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    graph.add_argument(
        "--format", choices=("dot", "mermaid"), default="dot", help="output format (default: dot)"
    )
    return parser


def _add_max_parallel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-parallel",
        type=_positive_int,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trioforge`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except WorkflowFileError as exc:
        _print_problems(exc)
        return EXIT_USAGE
    except BrokenPipeError:
        # stdout was closed early (`trioforge graph x | head -1`): not an error to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
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


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "run":
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
            )
        )
    if command == "validate":
        return _validate(args.files)
    loaded = load_workflow_file(args.file)
    workflow = loaded.workflow
    if command == "plan":
        limit = args.max_parallel or loaded.max_parallel or os.cpu_count() or 1
        _out(render_plan(workflow, max_parallel=limit, schedule=args.schedule))
    else:
        _out(render_dot(workflow) if args.format == "dot" else render_mermaid(workflow))
    return 0


def _validate(files: Sequence[str]) -> int:
    status = 0
    for file in files:
        try:
            loaded = load_workflow_file(file)
        except WorkflowFileError as exc:
            _print_problems(exc)
            status = EXIT_USAGE
            continue
        layers = len(loaded.workflow.execution_layers())
        _out(f"{file}: ok ({count(len(loaded.workflow), 'task')}, {count(layers, 'layer')})\n")
    return status


def _print_problems(exc: WorkflowFileError) -> None:
    text = "\n".join(str(p) for p in exc.problems)
    count = len(exc.problems)
    noun = "problem" if count == 1 else "problems"
    sys.stderr.write(f"{text}\n{count} {noun} found\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"trioforge: error: {message}\n")
    sys.stderr.flush()
