"""Running part of a workflow: `run FILE TASK...`, `--only TASK...`, and `plan`/`graph` (14.1)."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import cli, events, fixture


def _ran(folder: Path) -> list[str]:
    path = folder / "order.txt"
    return path.read_text().split() if path.exists() else []


def test_run_with_task_names_runs_them_and_what_they_need(tmp_path: Path) -> None:
    """`run order.yaml test` runs fetch, build and test, and neither docs nor release."""
    fixture("order.yaml", tmp_path)
    result = cli("run", "order.yaml", "test", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _ran(tmp_path) == ["fetch", "build", "test"]
    started = {e["task_id"] for e in events(result.stdout) if e["type"] == "WorkflowTaskStarted"}
    assert {"fetch", "build", "test"} == started


def test_an_unknown_task_name_is_refused_with_a_hint(tmp_path: Path) -> None:
    """A misspelt task exits 2, names it, suggests the close one, and runs nothing."""
    fixture("order.yaml", tmp_path)
    result = cli("run", "order.yaml", "tset", cwd=tmp_path)
    assert result.returncode == 2
    assert "no task 'tset' (did you mean 'test'?) in workflow 'order'" in result.stderr
    assert _ran(tmp_path) == []


def test_only_restores_what_the_tasks_need_from_the_latest_completed_run(tmp_path: Path) -> None:
    """`--only consume-env` runs that task alone, with produce's outputs from the last run."""
    fixture("outputs.yaml", tmp_path)
    assert cli("run", "outputs.yaml", "--quiet", cwd=tmp_path).returncode == 0
    (tmp_path / "version.txt").unlink()
    result = cli("run", "outputs.yaml", "--only", "consume-env", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "version.txt").read_text() == "v1.2.3\n"
    log = events(result.stdout)
    started = {e["task_id"] for e in log if e["type"] == "WorkflowTaskStarted"}
    assert {"produce", "consume-env"} == started  # produce only as its restored result
    # produce's command ran once, in the first run: the stand-in writes no log.
    assert len(list(tmp_path.glob(".trioforge/logs/*/produce.log"))) == 1


def test_only_without_an_earlier_run_is_refused(tmp_path: Path) -> None:
    """`--only` with nothing to restore exits 2 and says what to run first."""
    fixture("order.yaml", tmp_path)
    result = cli("run", "order.yaml", "--only", "test", cwd=tmp_path)
    assert result.returncode == 2
    assert "--only test needs the results of build" in result.stderr
    assert "run `trioforge run order.yaml test` first" in result.stderr
    assert _ran(tmp_path) == []


def test_only_of_a_task_that_needs_nothing_runs_without_a_store(tmp_path: Path) -> None:
    """`--only fetch` needs no earlier run."""
    fixture("order.yaml", tmp_path)
    result = cli("run", "order.yaml", "--only", "fetch", "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _ran(tmp_path) == ["fetch"]


def test_plan_and_graph_accept_the_same_selection(tmp_path: Path) -> None:
    """`plan FILE docs` shows docs and what it needs; `graph --only` shows just the tasks."""
    fixture("order.yaml", tmp_path)
    plan = cli("plan", "order.yaml", "docs", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "order: 3 tasks in 3 layers" in plan.stdout
    assert "release" not in plan.stdout
    graph = cli("graph", "order.yaml", "release", "--format", "mermaid", cwd=tmp_path)
    assert graph.returncode == 0, graph.stderr
    assert graph.stdout.count('["') == 5
    only = cli("graph", "order.yaml", "--only", "fetch", cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert '"fetch";' in only.stdout
    assert '"build"' not in only.stdout
    both = cli("plan", "order.yaml", "test", "--only", "docs", cwd=tmp_path)
    assert both.returncode == 2
