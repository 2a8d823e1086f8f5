"""Progress reporting for ``trioforge run``: audit sinks that show a run as it happens.

Every reporter is an audit sink: the executor hands it each
:class:`AuditEvent` through ``emit`` (synchronously, on the trio thread), so
the live view shows exactly what the audit log records, and nothing in the
executor knows a terminal exists. A :class:`RunTracker` folds the events into
one record per task (status, attempts, time spent); the views format what
changed:

* :class:`PlainReporter`, off a terminal (CI logs, pipes): one line per
  event, prefixed with the task id, flushed at once;
* :class:`LiveReporter`, on a terminal: a rich ``Live`` area with a spinner
  and elapsed time per running task and an overall bar, and finished tasks
  printed above it. rich redraws from its own thread; its ``Progress`` objects
  lock their state, so updating them from the trio thread is safe. With more
  than :data:`LIVE_LINE_LIMIT` tasks only problems get a line of their own;
* :class:`JsonStreamSink` (``--json``): the events as JSON Lines on stdout.

A reporter must never break a run: writing to a closed pipe or terminal
disables it instead of raising into the executor. Nor may it slow the run
down: ``emit`` runs on the trio thread, and a blocking ``write`` to a pipe
whose reader is slow (``trioforge run --json | slow-consumer``) would stop
every timeout and signal with it. So no view writes from the trio thread:
each hands its lines (or, for the live view, its drawing) to a
:class:`LineWriter`, a bounded queue drained by one writer thread. When the
queue is full the line is dropped and counted, and the count is reported
when the run ends: a progress line is worth less than a timeout that fires.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any

import attrs
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .._core import AuditEvent, EventType, Workflow, format_duration
from .._shell import display_path, run_folder, task_log_path
from ._output import FLUSH_LIMIT, LineWriter

__all__ = [
    "LiveReporter",
    "PlainReporter",
    "RunTracker",
    "TaskRecord",
]

LIVE_LINE_LIMIT = 500
#: Running tasks the live view draws a row for; the others are one "... and N more" row.
#: Every line printed above the live area redraws it: 200 rows made each line cost
#: milliseconds of the writer thread (and of the GIL the trio thread needs).
LIVE_ROWS = 20
#: Lines printed above the live area in one ``print`` at most (one redraw each).
PRINT_BATCH = 200
FINAL_STATUSES = frozenset({"ok", "failed", "timed out", "cancelled", "skipped"})


@attrs.define(eq=False)
class TaskRecord:
    """What happened to one task so far.

    Attributes:
        task_id: the task.
        status: ``not run``, ``running``, ``retrying``, ``ok``, ``failed``,
            ``timed out``, ``cancelled`` or ``skipped``.
        attempts: attempts started.
        busy: seconds spent in all attempts.
        error: the last failure, ``"Type: message"``.
        rollback: ``compensated`` or ``compensation failed``, after a rollback.
        earlier: completed by an earlier process of a resumed run (it does
            not run again; ``busy`` counts only this process's time).
    """

    task_id: str
    status: str = "not run"
    attempts: int = 0
    busy: float = 0.0
    error: str | None = None
    rollback: str | None = None
    earlier: bool = False


class RunTracker:
    """Folds a run's audit events into per-task records and the run's outcome.

    Args:
        workflow: the workflow being run (for task order and retry counts).
        log_dir: where the tasks' logs go (see :func:`task_log_path`).
        default_retries: retries of tasks that do not set their own.
    """

    def __init__(self, workflow: Workflow, log_dir: Path, *, default_retries: int = 0) -> None:
        self.name = workflow.name
        self.log_dir = log_dir
        self.records = {tid: TaskRecord(tid) for tid in workflow}
        self.retries = {
            tid: _retries(task, default_retries) for tid, task in workflow.tasks.items()
        }
        self.run_id: str | None = None
        self.duration: float | None = None
        self.outcome: EventType | None = None
        self.finished = 0
        #: Seconds spent in compensations (the rollback), part of ``duration``.
        self.rollback = 0.0

    @property
    def restored(self) -> int:
        """How many tasks an earlier process of this (resumed) run completed."""
        return sum(record.earlier for record in self.records.values())

    def restore(self, task_id: str, attempts: int) -> None:
        """Mark a task completed by an earlier process of a resumed run (before it starts)."""
        record = self.records[task_id]
        if record.status not in FINAL_STATUSES:
            self.finished += 1
        record.status = "ok"
        record.attempts = attempts
        record.earlier = True

    def log_path(self, task_id: str) -> Path | None:
        """The task's log file in this run (None before the run started)."""
        if self.run_id is None:
            return None
        return task_log_path(self.log_dir, self.run_id, task_id)

    def emit(self, event: AuditEvent) -> None:
        """Record one event (an :class:`AuditSink` method)."""
        self.update(event)

    def update(self, event: AuditEvent) -> TaskRecord | None:
        """Record one event; return the task record it changed, if any."""
        kind = event.type
        if event.task_id is None:
            if kind == EventType.WORKFLOW_STARTED:
                self.run_id = event.workflow_id
            elif kind in _OUTCOMES:
                self.outcome = kind
                self.duration = event.duration
            return None
        record = self.records.get(event.task_id)
        if record is None:
            return None
        if kind == EventType.TASK_STARTED:
            record.status = "running"
            record.attempts = event.attempt or record.attempts + 1
            record.rollback = None  # undone before it ran again (a --rerun's rewind)
            return record
        if event.duration is not None and kind in _ATTEMPT_ENDS:
            record.busy += event.duration
        status = _STATUS.get(kind)
        if status is not None:
            if status in FINAL_STATUSES and record.status not in FINAL_STATUSES:
                self.finished += 1
            record.status = status
            if event.error is not None:
                record.error = event.error
        elif kind == EventType.TASK_RETRYING:
            if record.status in FINAL_STATUSES:
                self.finished -= 1
            record.status = "retrying"
        if kind in _COMPENSATION_ENDS and event.duration is not None:
            self.rollback += event.duration
        if event.attempt is not None and kind in _COMPENSATION_ENDS:
            return record  # a failed attempt's steps, undone before its retry: no rollback
        if kind == EventType.TASK_COMPENSATED:
            record.rollback = "compensated"
        elif kind == EventType.TASK_COMPENSATION_FAILED:
            record.rollback = "compensation failed"
            record.error = record.error or event.error
        return record

    def message(self, event: AuditEvent, record: TaskRecord) -> str | None:
        """One line about what ``event`` did to ``record``, for a person."""
        kind = event.type
        duration = f" in {format_duration(event.duration)}" if event.duration is not None else ""
        error = short_error(event.error)
        total = self.retries.get(record.task_id, 0) + 1
        if kind == EventType.TASK_STARTED:
            return "started" + (f" (attempt {event.attempt} of {total})" if total > 1 else "")
        if kind == EventType.TASK_COMPLETED:
            return f"ok{duration}"
        if kind in (EventType.TASK_FAILED, EventType.TASK_TIMED_OUT):
            what = "timed out" if kind == EventType.TASK_TIMED_OUT else "failed"
            attempt = event.attempt or 1
            if total > 1:
                what = f"attempt {attempt} of {total} {what}"
            return f"{what}{duration}: {error}"
        if kind == EventType.TASK_RETRYING:
            return event.detail or "retrying"
        if kind == EventType.TASK_CANCELLED:
            return f"cancelled{duration}"
        if kind == EventType.TASK_SKIPPED:
            return f"skipped: {event.detail}" if event.detail else "skipped"
        if kind == EventType.TASK_COMPENSATED:
            return f"rolled back (compensate ok{duration})"
        if kind == EventType.TASK_COMPENSATION_FAILED:
            return f"compensate failed: {error}"
        return None


def _retries(task: object, default: int) -> int:
    retries = getattr(task, "retries", None)
    return default if retries is None else int(retries)


def short_error(error: str | None) -> str:
    """An audit event's ``"Type: message"`` without the type, for trioforge's own errors.

    The ``(log: PATH)`` a shell task's error carries is left out too: the
    failure excerpt prints each log's path, once.
    """
    if not error:
        return "unknown error"
    error = without_log_path(error)
    for prefix in ("ShellCommandError: ", "TaskTimeoutError: ", "MissingOutputError: "):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error


_LOG_NOTE = re.compile(r" \(log: [^\n]*?\.log\)")


def without_log_path(message: str) -> str:
    """``message`` without the ``(log: PATH)`` notes of shell task errors."""
    return _LOG_NOTE.sub("", message)


_OUTCOMES = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_TIMED_OUT,
    }
)
_ATTEMPT_ENDS = frozenset(
    {
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TASK_TIMED_OUT,
        EventType.TASK_CANCELLED,
    }
)
_COMPENSATION_ENDS = frozenset({EventType.TASK_COMPENSATED, EventType.TASK_COMPENSATION_FAILED})
_STATUS = {
    EventType.TASK_COMPLETED: "ok",
    EventType.TASK_FAILED: "failed",
    EventType.TASK_TIMED_OUT: "timed out",
    EventType.TASK_CANCELLED: "cancelled",
    EventType.TASK_SKIPPED: "skipped",
}
STYLES = {
    "ok": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "timed out": ("⏱", "bold red"),
    "cancelled": ("⊘", "yellow"),
    "skipped": ("↷", "yellow"),
    "retrying": ("↻", "yellow"),
    "running": ("…", "cyan"),
    "not run": ("·", "dim"),
}


class PlainReporter:
    """One plain line per event, ``[task] message``, for logs and pipes.

    Args:
        tracker: the run's tracker (this reporter feeds it).
        stream: where lines go.
    """

    def __init__(self, tracker: RunTracker, stream: IO[str]) -> None:
        self.tracker = tracker
        self.writer = LineWriter(stream)

    def emit(self, event: AuditEvent) -> None:
        """Record the event and print a line about it."""
        record = self.tracker.update(event)
        if event.type == EventType.WORKFLOW_STARTED:
            count = len(self.tracker.records)
            done = self.tracker.restored
            earlier = f", {done} done before the resume" if done else ""
            self.notice(
                f"run {event.workflow_id}: {count} task{'' if count == 1 else 's'}{earlier} "
                f"(logs in {display_path(run_folder(self.tracker.log_dir, event.workflow_id))})"
            )
            return
        if record is None:
            return
        message = self.tracker.message(event, record)
        if message is not None:
            self._write(f"[{record.task_id}] {message}\n")

    def notice(self, text: str) -> None:
        """Print a line that is not about one task."""
        self._write(f"[trioforge] {text}\n")

    def line(self, text: str) -> None:
        """Print a line as it is."""
        self._write(text + "\n")

    def start(self) -> None:
        """Start the writer thread."""
        self.writer.start()

    def stop(self, timeout: float = FLUSH_LIMIT) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds)."""
        self.writer.close(timeout)

    def _write(self, text: str) -> None:
        self.writer.put(text)

    def write_now(self, text: str) -> None:
        """Write ``text`` at once: for actions already running on the writer thread."""
        stream = self.writer.stream
        if stream is not None:
            stream.write(text)
            stream.flush()


class LiveReporter:
    """A live terminal view: running tasks with spinners, an overall bar, finished tasks above.

    Args:
        tracker: the run's tracker (this reporter feeds it).
        console: the rich console to draw on.
    """

    def __init__(self, tracker: RunTracker, console: Console) -> None:
        self.tracker = tracker
        self.console = console
        self.running = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.total = self.overall.add_task(tracker.name, total=len(tracker.records))
        self.rows: dict[str, TaskID] = {}
        #: Running tasks beyond the first LIVE_ROWS: counted in one row, not drawn.
        self.waiting: dict[str, str] = {}
        self.more: TaskID | None = None
        self.quiet_lines = len(tracker.records) > LIVE_LINE_LIMIT
        self.pad = min(max((len(tid) for tid in tracker.records), default=0), 24)
        self.failed = 0
        self.live = Live(
            Group(self.running, self.overall),
            console=console,
            refresh_per_second=10,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.broken = False
        self._pending: list[Text] = []
        self.writer = LineWriter(None)
        self.writer.on_idle = lambda: self._guard(self._flush)

    def start(self) -> None:
        """Start drawing (the writer thread does all drawing)."""
        self.writer.start()
        self.writer.put(lambda: self._guard(self.live.start))

    def stop(self, timeout: float = FLUSH_LIMIT) -> None:
        """Stop drawing and clear the live area (finished lines stay); wait at most ``timeout``."""
        self.writer.put(lambda: self._guard(self._flush))
        self.writer.put(lambda: self._guard(self.live.stop))
        self.writer.close(timeout)

    def notice(self, text: str) -> None:
        """Print a line above the live area."""
        self.writer.put(lambda: self._print(Text(text, style="bold yellow")))

    def line(self, text: str, style: str = "dim") -> None:
        """Print a line above the live area, as it is."""
        self.writer.put(lambda: self._print(Text(text, style=style)))

    def _print(self, line: Text) -> None:
        """Queue a line above the live area (writer thread); a burst is drawn in one go.

        Each ``print`` redraws the live area, so lines are collected and
        printed together when the writer's queue runs dry (``on_idle``), or
        every :data:`PRINT_BATCH` lines.
        """
        self._pending.append(line)
        if len(self._pending) >= PRINT_BATCH:
            self._guard(self._flush)

    def _flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self.console.print(Group(*lines), highlight=False)

    def emit(self, event: AuditEvent) -> None:
        """Record the event and queue the update of the view."""
        record = self.tracker.update(event)
        if record is None or self.broken:
            return
        snapshot = attrs.evolve(record)  # the trio thread goes on updating the record
        finished = self.tracker.finished
        self.writer.put(lambda: self._guard(lambda: self._show(event, snapshot, finished)))

    def _show(self, event: AuditEvent, record: TaskRecord, finished: int) -> None:
        task_id = record.task_id
        if event.type == EventType.TASK_STARTED:
            label = task_id if record.attempts <= 1 else f"{task_id} (attempt {record.attempts})"
            if len(self.rows) < LIVE_ROWS:
                self.rows[task_id] = self.running.add_task(label, total=None)
            else:
                self.waiting[task_id] = label
                self._count_waiting()
            return
        if event.type in _ATTEMPT_ENDS:
            row = self.rows.pop(task_id, None)
            if row is not None:
                self.running.remove_task(row)
                if self.waiting:  # the longest waiting takes the free row
                    promoted = next(iter(self.waiting))
                    label = self.waiting.pop(promoted)
                    self.rows[promoted] = self.running.add_task(label, total=None)
            else:
                self.waiting.pop(task_id, None)
            self._count_waiting()
        final_attempt = (event.attempt or 1) > self.tracker.retries.get(task_id, 0)
        if event.type in (EventType.TASK_FAILED, EventType.TASK_TIMED_OUT) and final_attempt:
            self.failed += 1
            description = f"{self.tracker.name} ({self.failed} failed)"
            self.overall.update(self.total, description=description)
        self.overall.update(self.total, completed=finished)
        message = self.tracker.message(event, record)
        if message is None:
            return
        status = record.status if event.type in _STATUS else "retrying"
        if event.type in (EventType.TASK_COMPENSATED, EventType.TASK_COMPENSATION_FAILED):
            status = "ok" if event.type == EventType.TASK_COMPENSATED else "failed"
        if self.quiet_lines and status in ("ok", "skipped"):
            return
        symbol, style = STYLES.get(status, ("•", ""))
        line = Text.assemble(
            (f"{symbol} ", style), (f"{task_id:<{self.pad}}", "bold"), f"  {message}"
        )
        self._print(line)

    def write_now(self, text: str) -> None:
        """Print ``text`` (one line): for actions already on the writer thread."""
        self._print(Text(text.removesuffix("\n")))

    def _count_waiting(self) -> None:
        """Keep the "... and N more running" row in step with the tasks not shown."""
        if self.waiting:
            text = f"... and {len(self.waiting)} more running"
            if self.more is None:
                self.more = self.running.add_task(text, total=None)
            else:
                self.running.update(self.more, description=text)
        elif self.more is not None:
            self.running.remove_task(self.more)
            self.more = None

    def _guard(self, action: Any) -> None:
        if self.broken:
            return
        try:
            action()
        except (OSError, ValueError):
            self.broken = True
