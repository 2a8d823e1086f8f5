"""``trioforge run``: one run of a workflow file, its signals, its reporting and its exit code.

Signals are received with ``trio.open_signal_receiver`` for the whole run,
never as a ``KeyboardInterrupt`` raised somewhere inside the executor:

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

The executor's outcome maps to the exit status: 0 success, 1 a task failed,
124 the workflow's ``timeout`` ran out, 128+N interrupted by signal N.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import attrs
import trio
from rich.console import Console

from ._audit import AuditSink
from ._errors import TaskFailedError, WorkflowCancelledError, WorkflowError, WorkflowTimeoutError
from ._executor import WorkflowExecutor, WorkflowResult
from ._process_group import ProcessGroups
from ._progress import JsonStreamSink, LiveReporter, PlainReporter, RunTracker
from ._schedulers import FailurePolicy
from ._summary import print_failures, print_summary
from ._yaml_loader import load_workflow_file

__all__ = ["RunOptions", "run_workflow_file"]

SCHEDULES = ("dataflow", "layers", "sequential")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124


class UsageError(WorkflowError, ValueError):
    """A command-line option that cannot work (exit status 2)."""


@attrs.frozen
class RunOptions:
    """The options of ``trioforge run``."""

    file: str
    max_parallel: int | None = None
    schedule: str = "dataflow"
    timeout: float | None = None
    keep_going: bool = False
    audit_log: str | None = None
    log_dir: str | None = None
    json: bool = False
    quiet: bool = False


@attrs.frozen
class _Outcome:
    code: int
    error: WorkflowError | None = None
    result: WorkflowResult | None = None


@attrs.define(eq=False)
class _Interrupts:
    executor: WorkflowExecutor
    groups: ProcessGroups
    notice: Callable[[str], None]
    count: int = 0
    signum: int | None = None

    async def watch(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                self.count += 1
                name = signal.Signals(signum).name
                if self.count == 1:
                    self.signum = signum
                    self.notice(
                        f"{name}: stopping running tasks, then rolling back completed ones "
                        "(interrupt again to kill everything at once)"
                    )
                    self.executor.cancel(f"interrupted by {name}")
                elif self.count == 2:
                    killed = self.groups.kill_all()
                    self.notice(
                        f"{name} again: killed {killed} running process group(s); "
                        "remaining compensations will not run"
                    )
                    self.executor.cancel(f"interrupted by {name}")
                else:
                    self.groups.kill_all()
                    sys.stderr.write("\x1b[?25h" if sys.stderr.isatty() else "")
                    sys.stderr.write(f"trioforge: {name} a third time: exiting now\n")
                    sys.stderr.flush()
                    os._exit(128 + (self.signum or signum))


def _check_audit_log(path: str) -> None:
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write the audit log {path!r}: {exc.strerror or exc}") from None


def run_workflow_file(options: RunOptions) -> int:
    """Load, run and report one workflow file; return the exit status.

    Raises:
        WorkflowFileError: the file is not a valid workflow.
        UsageError: an option cannot work (an unwritable audit log).
    """
    loaded = load_workflow_file(options.file, log_dir=options.log_dir)
    if options.audit_log is not None:
        _check_audit_log(options.audit_log)
    max_parallel = options.max_parallel or loaded.max_parallel or os.cpu_count() or 1
    tracker = RunTracker(loaded.workflow, loaded.log_dir)
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    sinks: list[AuditSink] = [tracker]
    reporter: LiveReporter | PlainReporter | None = None
    if options.json:
        sinks.append(JsonStreamSink(sys.stdout))
    elif not options.quiet:
        reporter = (
            LiveReporter(tracker, out) if out.is_terminal else PlainReporter(tracker, sys.stdout)
        )
        sinks = [reporter]
    keep_going = options.keep_going or loaded.keep_going
    executor = loaded.executor(
        max_concurrency=max_parallel,
        workflow_timeout=options.timeout or loaded.timeout,
        failure_policy=(
            FailurePolicy.CONTINUE_INDEPENDENT if keep_going else FailurePolicy.FAIL_FAST
        ),
        audit_path=options.audit_log,
        audit_sinks=sinks,
    )

    def notice(text: str) -> None:
        if reporter is not None:
            reporter.notice(text)
        else:
            err.print(f"trioforge: {text}", markup=False)

    if reporter is not None:
        reporter.start()
    try:
        outcome = trio.run(_run, executor, options.schedule, loaded.process_groups, notice)
    finally:
        if reporter is not None:
            reporter.stop()
        executor.audit_log.close()
    human = reporter is not None
    report = out if human else err
    if human:
        print_summary(
            out,
            tracker,
            results=outcome.result.results if outcome.result is not None else None,
            schedule=options.schedule,
            max_parallel=max_parallel,
        )
    if outcome.code != EXIT_OK:
        print_failures(report, tracker)
        err.print(f"trioforge: {_headline(loaded.name, outcome)}", markup=False)
    elif human:
        out.print(f"✓ {loaded.name} succeeded", style="bold green")
    return outcome.code


def _headline(name: str, outcome: _Outcome) -> str:
    error = outcome.error
    if isinstance(error, WorkflowTimeoutError):
        return f"{name} timed out: {error}"
    if isinstance(error, WorkflowCancelledError):
        extra = ""
        if error.compensation_failures:
            extra = "; compensation failed for " + ", ".join(
                map(repr, error.compensation_failures)
            )
        return f"{name} interrupted: {error.reason}; rolled back{extra}"
    return f"{name} failed: {error}"


async def _run(
    executor: WorkflowExecutor,
    schedule: str,
    groups: ProcessGroups,
    notice: Callable[[str], None],
) -> _Outcome:
    interrupts = _Interrupts(executor, groups, notice)
    methods: dict[str, Callable[[], Any]] = {
        "dataflow": executor.execute_dataflow,
        "layers": executor.execute_parallel,
        "sequential": executor.execute,
    }
    outcome: _Outcome
    async with trio.open_nursery() as nursery:
        await nursery.start(interrupts.watch)
        try:
            result = await methods[schedule]()
        except TaskFailedError as exc:
            outcome = _Outcome(EXIT_FAILED, exc)
        except WorkflowTimeoutError as exc:
            outcome = _Outcome(EXIT_TIMEOUT, exc)
        except WorkflowCancelledError as exc:
            outcome = _Outcome(128 + (interrupts.signum or signal.SIGINT), exc)
        else:
            outcome = _Outcome(EXIT_OK, result=result)
        nursery.cancel_scope.cancel(reason="the run is over")
    return outcome
