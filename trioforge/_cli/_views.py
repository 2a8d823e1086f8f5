"""Where a run's progress goes: the run id line, the live or plain view, the task output.

:meth:`Views.choose` picks, from ``--json``, ``--quiet`` and ``--output``,
the audit sinks a run feeds and the consoles its summary is printed on.
Every console prints text as it is (``markup=False``): a workflow called
``ci [/tmp]`` or a task's log line ``[bold]`` is never read as rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import attrs
from rich.console import Console

from .._core import AuditEvent, AuditSink, EventType
from ._follow import LogFollower
from ._output import JsonStreamSink
from ._progress import LiveReporter, PlainReporter, RunTracker

__all__ = ["RunIdLine", "SafeConsole", "Views"]


@attrs.define(eq=False)
class RunIdLine:
    """Prints ``run id: RUN_ID`` when the run starts (an audit sink)."""

    write: Callable[[str], None]

    def emit(self, event: AuditEvent) -> None:
        """Print the run id when the run starts."""
        if event.type == EventType.WORKFLOW_STARTED:
            self.write(f"run id: {event.workflow_id}")


class SafeConsole(Console):
    """A rich console whose closed pipe raises ``BrokenPipeError``.

    rich's own ``on_broken_pipe`` raises ``SystemExit(1)``, which would turn
    any outcome into exit status 1 (and, from the live view's writer thread,
    silently end the thread).
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError("the output was closed")


@attrs.define(eq=False)
class Views:
    """Where a run's progress goes: the sinks, and the reporter (None: no live view).

    ``outputs`` are the views that write from a thread of their own (see
    ``_progress``): started before the run, flushed after it.
    """

    sinks: list[AuditSink]
    reporter: LiveReporter | PlainReporter | None
    out: Console
    err: Console
    outputs: list[LiveReporter | PlainReporter | JsonStreamSink] = attrs.Factory(list)
    follower: LogFollower | None = None

    @classmethod
    def choose(cls, tracker: RunTracker, *, json: bool, quiet: bool, output: str | None) -> Views:
        """The views for ``--json``, ``--quiet`` and ``--output`` (see the module notes)."""
        out = SafeConsole(file=sys.stdout, highlight=False, soft_wrap=True, markup=False)
        err = SafeConsole(file=sys.stderr, highlight=False, soft_wrap=True, markup=False)
        if json and not quiet:
            line = RunIdLine(lambda text: err.print(text, markup=False))
            sink = JsonStreamSink(sys.stdout)
            return cls([line, tracker, sink], None, out, err, [sink])
        if quiet:
            return cls([tracker], None, out, err)
        reporter: LiveReporter | PlainReporter
        if out.is_terminal:
            reporter = LiveReporter(tracker, out)
        else:
            reporter = PlainReporter(tracker, sys.stdout)
        line = RunIdLine(reporter.line)
        mode = output or ("quiet" if out.is_terminal else "grouped")
        if mode == "quiet":
            return cls([line, reporter], reporter, out, err, [reporter])
        write = reporter.write_now
        if mode == "stream":

            def show(task_id: str, text: str) -> None:
                write(f"{task_id} | {text}\n")

        else:

            def show(task_id: str, text: str) -> None:
                write(f"  {text}\n")

        follower = LogFollower(
            tracker,
            reporter.writer,
            show,
            mode=mode,
            header=lambda task_id, what: write(f"── {task_id}: {what}\n"),
        )
        # The follower first: a task's last lines are queued before the line saying it ended.
        return cls([line, follower, reporter], reporter, out, err, [reporter], follower)

    def start(self) -> None:
        """Start the views' writer threads."""
        for output in self.outputs:
            output.start()
        if self.follower is not None:
            self.follower.start()

    def stop(self) -> None:
        """Flush the outputs (each for a bounded time); say if lines were dropped."""
        if self.follower is not None:
            self.follower.stop()
        for output in self.outputs:
            output.stop()
        dropped = sum(output.writer.dropped for output in self.outputs)
        if dropped:
            self.err.print(
                f"trioforge: {dropped} progress line(s) not written: stdout was not read "
                "fast enough (the audit log and the run store have every event)",
                markup=False,
            )

    def notice(self, text: str) -> None:
        """A line about the run, not about one task."""
        if self.reporter is not None:
            self.reporter.notice(text)
        else:
            self.err.print(f"trioforge: {text}", markup=False)
