"""`plan` prints every duration in one format (issue 14.6)."""

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
