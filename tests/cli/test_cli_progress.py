"""The progress reporters and the summary, fed audit events in-process."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from rich.console import Console

from trioforge import AuditEvent, EventType, Workflow, load_workflow
from trioforge._cli._progress import LiveReporter, PlainReporter, RunTracker
from trioforge._cli._summary import print_failures, print_summary, tail

TEXT = """
tasks:
  build: {run: "true", retries: 1}
  test: {run: "true", needs: [build]}
  docs: {run: "true"}
"""


def workflow() -> Workflow:
    return load_workflow("w.yaml", text=TEXT)


def event(kind: EventType, task: str | None = None, **fields: object) -> AuditEvent:
    return AuditEvent(kind, "w-1", 0.0, 0.0, task, **fields)  # type: ignore[arg-type]


RUN = [
    event(EventType.WORKFLOW_STARTED, detail="w"),
    event(EventType.TASK_STARTED, "build", attempt=1),
    event(EventType.TASK_STARTED, "docs", attempt=1),
    event(EventType.TASK_FAILED, "build", attempt=1, duration=0.5, error="ShellCommandError: x"),
    event(EventType.TASK_RETRYING, "build", attempt=2, detail="retrying in 0.100s"),
    event(EventType.TASK_COMPLETED, "docs", attempt=1, duration=1.0),
    event(EventType.TASK_STARTED, "build", attempt=2),
    event(EventType.TASK_FAILED, "build", attempt=2, duration=0.5, error="ShellCommandError: y"),
    event(EventType.TASK_COMPENSATED, "docs", duration=0.1),
    event(EventType.WORKFLOW_FAILED, duration=1.25, error="ShellCommandError: y"),
]


def test_tracker_folds_events_into_task_records(tmp_path: Path) -> None:
    """Status, attempts, busy time and rollback per task; the run's outcome and duration."""
    tracker = RunTracker(workflow(), tmp_path)
    for item in RUN:
        tracker.emit(item)
    build, test, docs = tracker.records.values()
    assert (build.status, build.attempts, build.busy, build.error) == (
        "failed",
        2,
        1.0,
        "ShellCommandError: y",
    )
    assert (test.status, test.attempts) == ("not run", 0)
    assert (docs.status, docs.rollback) == ("ok", "compensated")
    assert tracker.outcome == EventType.WORKFLOW_FAILED
    assert tracker.duration == 1.25
    assert tracker.finished == 2
    assert tracker.log_path("build") == tmp_path / "w-1" / "build.log"


def test_a_task_undone_before_it_runs_again_is_not_shown_rolled_back(tmp_path: Path) -> None:
    """An undo before the task runs again (rewind, retry) leaves no "rolled back" mark."""
    tracker = RunTracker(workflow(), tmp_path)
    for item in [
        event(EventType.TASK_COMPENSATED, "docs", duration=0.1),  # resume --rerun docs
        event(EventType.WORKFLOW_STARTED, detail="w"),
        event(EventType.TASK_STARTED, "docs", attempt=1),
        event(EventType.TASK_COMPLETED, "docs", attempt=1, duration=1.0),
        event(EventType.TASK_STARTED, "build", attempt=1),
        event(EventType.TASK_FAILED, "build", attempt=1, duration=0.5, error="E: x"),
        event(EventType.TASK_COMPENSATED, "build", attempt=1, duration=0.1, detail="step 1: undo"),
        event(EventType.TASK_RETRYING, "build", attempt=2, detail="retrying in 0.100s"),
        event(EventType.TASK_STARTED, "build", attempt=2),
        event(EventType.TASK_COMPLETED, "build", attempt=2, duration=0.5),
    ]:
        tracker.emit(item)
    assert tracker.records["docs"].rollback is None
    assert tracker.records["build"].rollback is None


def test_plain_reporter_prints_one_line_per_event_prefixed_with_the_task(tmp_path: Path) -> None:
    """Off a terminal every task event is one plain line: `[task] message`."""
    stream = io.StringIO()
    reporter = PlainReporter(RunTracker(workflow(), tmp_path), stream)
    reporter.start()
    for item in RUN:
        reporter.emit(item)
    reporter.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[trioforge] run w-1: 3 tasks")
    assert lines[1:] == [
        "[build] started (attempt 1 of 2)",
        "[docs] started",
        "[build] attempt 1 of 2 failed in 0.50s: x",
        "[build] retrying in 0.100s",
        "[docs] ok in 1.00s",
        "[build] started (attempt 2 of 2)",
        "[build] attempt 2 of 2 failed in 0.50s: y",
        "[docs] rolled back (compensate ok in 0.10s)",
    ]


def test_plain_reporter_goes_quiet_when_its_stream_breaks(tmp_path: Path) -> None:
    """A closed output never raises into the run."""
    stream = io.StringIO()
    stream.close()
    reporter = PlainReporter(RunTracker(workflow(), tmp_path), stream)
    reporter.start()
    for item in RUN:
        reporter.emit(item)
    reporter.stop()
    assert reporter.writer.broken


def test_live_view_draws_running_tasks_and_respects_no_color(tmp_path: Path) -> None:
    """On a terminal: finished tasks above a live area; with no_color, no colour codes."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, no_color=True, width=100)
    tracker = RunTracker(workflow(), tmp_path)
    reporter = LiveReporter(tracker, console)
    reporter.start()
    for item in RUN[:3]:
        reporter.emit(item)
    running: set[str] = set()
    reporter.writer.put(lambda: running.update(reporter.rows))  # drawing is on the writer thread
    for item in RUN[3:]:
        reporter.emit(item)
    reporter.stop()
    assert running == {"build", "docs"}
    raw = out.getvalue()
    assert "\x1b[3" not in raw  # no foreground colours
    assert "\x1b[9" not in raw
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "✓ docs " in text
    assert "✗ build" in text
    assert "attempt 2 of 2 failed" in text
    assert reporter.rows == {}


def test_summary_shows_each_task_and_the_speedup(tmp_path: Path) -> None:
    """The table has a row per task; the last line compares wall and task time."""
    tracker = RunTracker(workflow(), tmp_path)
    for item in RUN:
        tracker.emit(item)
    out = io.StringIO()
    print_summary(Console(file=out, width=120), tracker, schedule="dataflow", max_parallel=2)
    text = out.getvalue()
    assert "build" in text
    assert "✗ failed" in text
    assert "· not run" in text
    assert "✓ ok, rolled back" in text
    # The 0.10 s rollback is in the wall time, not in the time the tasks had to run.
    assert (
        "wall time 1.25s (rollback 0.10s), task time 2.00s (dataflow, max_parallel 2)\n"
        "speed-up 1.7x = task time 2.00s / wall time without the rollback 1.15s\n"
    ) in text


def test_failures_show_the_end_of_the_log(tmp_path: Path) -> None:
    """A failed task's last 20 log lines are shown under its name."""
    tracker = RunTracker(workflow(), tmp_path)
    for item in RUN:
        tracker.emit(item)
    log = tracker.log_path("build")
    assert log is not None
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {n}\n" for n in range(1, 31)))
    out = io.StringIO()
    print_failures(Console(file=out, width=200), tracker)
    text = out.getvalue()
    assert "── build failed (log: " in text
    assert "line 11" in text
    assert "line 30" in text
    assert "line 10\n" not in text
    assert tail(log, 3) == ["line 28", "line 29", "line 30"]
    assert tail(tmp_path / "missing.log") == []


def test_log_tails_carry_no_control_characters(tmp_path: Path) -> None:
    """Escape sequences and other control characters in a log never reach the terminal."""
    log = tmp_path / "t.log"
    log.write_bytes(b"plain\tline\n\x1b[2J\x1b]0;title\x07red \x1b[31mtext\r\nnel\xc2\x85end\n")
    assert tail(log) == ["plain\tline", "]0;titlered text", "nelend"]


def test_live_view_with_200_running_tasks_draws_a_burst_fast_and_loses_no_line(
    tmp_path: Path,
) -> None:
    """200 tasks cancelled at once: every line printed, none dropped, in well under a second."""
    many = Workflow("many")
    for number in range(200):

        async def body(ctx: object) -> None:
            return None

        many.task(id=f"t{number}")(body)
    out = io.StringIO()
    reporter = LiveReporter(
        RunTracker(many, tmp_path), Console(file=out, force_terminal=True, width=120)
    )
    reporter.start()
    reporter.emit(event(EventType.WORKFLOW_STARTED, detail="many"))
    for number in range(200):
        reporter.emit(event(EventType.TASK_STARTED, f"t{number}", attempt=1))
    rows: list[int] = []
    reporter.writer.put(lambda: rows.append(len(reporter.running.tasks)))
    started = time.monotonic()
    for number in range(200):
        reporter.emit(event(EventType.TASK_CANCELLED, f"t{number}", attempt=1, duration=1.0))
    reporter.stop(timeout=60)
    elapsed = time.monotonic() - started
    assert reporter.writer.dropped == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert {f"t{n}" for n in range(200)} == set(re.findall(r"⊘ (t\d+) +cancelled", text))
    assert rows == [21]  # 20 rows and "... and 180 more running"
    assert elapsed < 1.5  # was 4.7 s when each line redrew 200 rows
