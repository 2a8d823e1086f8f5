"""Names, ids, paths and messages are printed as they are, never read as rich markup (11.2)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from cli_helpers import cli
from rich.console import Console

import trioforge as tf
from trioforge import AuditEvent, EventType
from trioforge._cli._progress import LiveReporter, RunTracker
from trioforge._cli._summary import print_failures, print_summary

NAMES = ("ci [/tmp]", "deploy [prod]", "[link=https://example.com]x", "[blink]")


def _file(folder: Path, name: str, run: str = "true") -> None:
    command = run.replace('"', '\\"')
    (folder / "w.yaml").write_text(
        f'name: "{name}"\ntasks:\n  build: {{run: "{command}"}}\n  test: {{run: "true", '
        "needs: [build]}\n"
    )


def test_a_run_named_with_brackets_succeeds_and_prints_its_name(tmp_path: Path) -> None:
    """`ci [/tmp]` and the other bracketed names succeed with exit 0, printed verbatim."""
    for name in NAMES:
        _file(tmp_path, name)
        result = cli("run", "w.yaml", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"{name} succeeded" in result.stdout


def test_a_failing_run_prints_bracketed_names_and_log_lines_verbatim(tmp_path: Path) -> None:
    """The failure excerpt, the headline and the live lines keep `[prod]` and `[bold]`."""
    folder = tmp_path / "[blink]"
    folder.mkdir()
    _file(folder, "deploy [prod]", run="echo '[bold]x[/bold]'; exit 3")
    result = cli("run", "w.yaml", cwd=folder)
    assert result.returncode == 1
    assert "[bold]x[/bold]" in result.stdout
    assert "deploy [prod] failed" in result.stderr
    assert "deploy [prod]" in result.stdout  # the summary's progress header


def test_plan_and_runs_print_bracketed_names(tmp_path: Path) -> None:
    """`plan` prints a `[link=...]` name and a `[blink]` command; `runs` a `ci [/tmp]` workflow."""
    _file(tmp_path, "ci [/tmp]", run="echo [blink]")
    plan = cli("plan", "w.yaml", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "ci [/tmp]" in plan.stdout
    assert "echo [blink]" in plan.stdout
    assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    runs = cli("runs", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    assert "ci [/tmp]" in runs.stdout


def _event(kind: EventType, task: str | None = None, **fields: object) -> AuditEvent:
    return AuditEvent(kind, "w-1", 0.0, 0.0, task, **fields)  # type: ignore[arg-type]


def _workflow() -> tf.Workflow:
    workflow = tf.Workflow("ci [/tmp]")
    for task_id in NAMES[1:]:

        async def body(ctx: tf.TaskContext) -> None:
            return None

        workflow.task(id=task_id)(body)
    return workflow


def test_the_live_view_and_summary_print_bracketed_ids_as_text(tmp_path: Path) -> None:
    """On a terminal, the live rows, finished lines, summary and failures keep every bracket."""
    tracker = RunTracker(_workflow(), tmp_path)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, no_color=True, width=200)
    reporter = LiveReporter(tracker, console)
    reporter.start()
    reporter.emit(_event(EventType.WORKFLOW_STARTED, detail="w"))
    ids = NAMES[1:]
    for task_id in ids:
        reporter.emit(_event(EventType.TASK_STARTED, task_id, attempt=1))
    rows: list[str] = []
    reporter.writer.put(
        lambda: rows.extend(str(task.description) for task in reporter.running.tasks)
    )
    for task_id in ids[:-1]:
        reporter.emit(_event(EventType.TASK_COMPLETED, task_id, attempt=1, duration=1.0))
    reporter.emit(_event(EventType.TASK_FAILED, ids[-1], attempt=1, duration=1.0, error="E: [x]"))
    reporter.stop()
    assert set(ids) == set(rows)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    for task_id in ids:
        assert task_id in text
    assert "E: [x]" in text
    rendered = io.StringIO()
    live = Console(file=rendered, force_terminal=True, no_color=True, width=200)
    live.print(reporter.running, reporter.overall)
    assert "ci [/tmp]" in rendered.getvalue()
    summary = io.StringIO()
    plain = Console(file=summary, width=200)
    print_summary(plain, tracker, schedule="dataflow", max_parallel=2)
    print_failures(plain, tracker)
    for task_id in ids:
        assert task_id in summary.getvalue()
