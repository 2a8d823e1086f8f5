"""``resources:`` in a workflow file, ``--resource NAME=N`` on ``trioforge run``, and ``plan``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import cli

from trioforge import WorkflowExecutor, WorkflowFileError, load_workflow_file

POOLS = """\
resources:
  docker: 2
tasks:
  a: {run: "sleep 1", resources: {docker: 1}}
  b: {run: "sleep 1", resources: {docker: 1}}
  c: {run: "sleep 1", resources: {docker: 1}}
  d: {run: "exit 1", fallback: "true", resources: {docker: 2}, needs: [a]}
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "w.yaml"
    path.write_text(text)
    return path


def test_file_pools_reach_tasks_and_executor_options(tmp_path: Path) -> None:
    """Top-level pools and per-task demands are read; executor_options carries the pools."""
    loaded = load_workflow_file(write(tmp_path, POOLS))
    demands = {tid: getattr(t, "resources", None) for tid, t in loaded.workflow.tasks.items()}
    assert demands == {
        "a": {"docker": 1},
        "b": {"docker": 1},
        "c": {"docker": 1},
        "d": {"docker": 2},
    }
    assert loaded.executor_options["resources"] == {"docker": 2}
    WorkflowExecutor(loaded.workflow, **loaded.executor_options)  # the pools fit


def test_bad_pools_are_problems_with_positions(tmp_path: Path) -> None:
    """An unknown pool, too many units and a zero capacity are problems at FILE:LINE:COL."""
    text = (
        "resources:\n  docker: 2\n  gpu: 0\ntasks:\n"
        '  a: {run: "true", resources: {docker: 3}}\n'
        '  b: {run: "true", resources: {cpu: 1}}\n'
    )
    with pytest.raises(WorkflowFileError) as info:
        load_workflow_file(write(tmp_path, text))
    found = [f"{p.line}:{p.column}: {p.message}" for p in info.value.problems]
    assert found == [
        "3:8: 'gpu' in the workflow's resources must be between 1 and 1000000, got 0",
        "5:32: task 'a' needs 3 units of resource pool 'docker', which has only 2",
        "6:32: task 'b' needs resource pool 'cpu', which the workflow's 'resources' does not "
        "define (defined: 'docker')",
    ]


def test_run_honours_file_pools_and_resource_option(tmp_path: Path) -> None:
    """`trioforge run`: three 1 s tasks on docker: 2 take 2 s; --resource docker=1 is 3 waves."""
    write(tmp_path, POOLS.replace("docker: 2}, needs", "docker: 1}, needs"))
    two = cli("run", "w.yaml", "--json", cwd=tmp_path)
    one = cli("run", "w.yaml", "--json", "--resource", "docker=1", cwd=tmp_path)
    assert (two.returncode, one.returncode) == (0, 0)

    def peak(stdout: str) -> int:
        running, best = 0, 0
        for line in stdout.splitlines():
            kind = json.loads(line)["type"]
            running += {"WorkflowTaskStarted": 1, "WorkflowTaskCompleted": -1}.get(kind, 0)
            best = max(best, running)
        return best

    assert (peak(two.stdout), peak(one.stdout)) == (2, 1)


def test_resource_option_that_does_not_fit_exits_2(tmp_path: Path) -> None:
    """--resource docker=1 when a task needs 2: exit 2 naming the task and the pool."""
    write(tmp_path, POOLS)
    result = cli("run", "w.yaml", "--resource", "docker=1", "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    assert "task 'd' needs 2 units of resource pool 'docker', which has only 1" in result.stderr
    bad = cli("run", "w.yaml", "--resource", "docker", cwd=tmp_path)
    assert (bad.returncode, "expected NAME=N" in bad.stderr) == (2, True)


def test_plan_shows_which_tasks_wait_on_which_pool(tmp_path: Path) -> None:
    """`trioforge plan` lists each pool with its capacity and the tasks that use it."""
    write(tmp_path, POOLS)
    result = cli("plan", "w.yaml", cwd=tmp_path)
    assert result.returncode == 0
    assert "pool docker (2): a, b, c (1 each), d (2)" in result.stdout
