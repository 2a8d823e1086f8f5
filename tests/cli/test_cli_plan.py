"""`plan`: every duration in one format (issue 14.6), and the pools a run would use."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import cli


def test_plan_prints_timeouts_and_estimates_in_one_format(tmp_path: Path) -> None:
    """`timeout: 30s` shows as 30s (not 30.0s) beside `timeout: 1m` and an estimate of 1m30s."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n"
        "  a: {run: 'true', timeout: 30s, estimate: 30s}\n"
        "  b: {run: 'true', timeout: 1m, estimate: 1m, needs: [a]}\n"
    )
    result = cli("plan", "w.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[timeout 30s]" in result.stdout
    assert "timeout 1m]" in result.stdout
    assert "critical path (estimated 1m30s): a -> b" in result.stdout


def test_spec_duration_writes_what_a_file_would() -> None:
    """Whole seconds split into h, m and s; fractions stay decimal."""
    from trioforge._cli._plan import spec_duration

    cases = {0.25: "0.25s", 1.5: "1.5s", 30: "30s", 60: "1m", 90: "1m30s", 3600: "1h"}
    cases[3930] = "1h5m30s"
    assert {seconds: spec_duration(seconds) for seconds in cases} == cases


POOLS = """\
resources:
  docker: 2
tasks:
  a: {run: "true", resources: {docker: 1}}
  b: {run: "true", resources: {docker: 1}}
  c: {run: "true", resources: {docker: 2}, needs: [a]}
"""


def test_plan_resource_option_overrides_the_files_pool(tmp_path: Path) -> None:
    """`plan --resource docker=3` shows the pool with the capacity run would use."""
    (tmp_path / "w.yaml").write_text(POOLS)
    result = cli("plan", "w.yaml", "--resource", "docker=3", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert "pool docker (3): a, b (1 each), c (2)" in result.stdout


def test_plan_resource_option_adds_a_pool_no_task_uses(tmp_path: Path) -> None:
    """A pool only the command line names is listed, used by no task."""
    (tmp_path / "w.yaml").write_text(POOLS)
    result = cli("plan", "w.yaml", "--resource", "gpu=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pool gpu (1): no task" in result.stdout
    assert "pool docker (2): a, b (1 each), c (2)" in result.stdout


def test_plan_refuses_a_pool_too_small_as_run_does(tmp_path: Path) -> None:
    """`plan --resource docker=1` when c needs 2: exit 2 naming the task and the pool."""
    (tmp_path / "w.yaml").write_text(POOLS)
    result = cli("plan", "w.yaml", "--resource", "docker=1", cwd=tmp_path)
    assert result.returncode == 2
    assert "task 'c' needs 2 units of resource pool 'docker', which has only 1" in result.stderr
    bad = cli("plan", "w.yaml", "--resource", "docker", cwd=tmp_path)
    assert (bad.returncode, "expected NAME=N" in bad.stderr) == (2, True)
