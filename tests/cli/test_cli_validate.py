"""`validate` warnings and clear endings for odd inputs (issues 11.12, 11.8)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cli_helpers import cli


def test_a_variable_as_the_cmd_program_gets_a_warning(tmp_path: Path) -> None:
    """`cmd: ["$TRIOFORGE_PYTHON", ...]` validates with a warning that suggests run: or env:."""
    (tmp_path / "w.yaml").write_text(
        'tasks:\n  t: {cmd: ["$TRIOFORGE_PYTHON", -c, "pass"]}\n  u: {cmd: [python3, -V]}\n'
    )
    result = cli("validate", "w.yaml", cwd=tmp_path)
    assert result.returncode == 0
    (warning,) = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warning.startswith("w.yaml:2:13: warning: item 1 of 'cmd' of task 't' is ")
    assert "'$TRIOFORGE_PYTHON'" in warning
    assert "run:" in warning
    assert "env:" in warning


def test_an_audit_log_on_a_full_disk_ends_the_run_normally(tmp_path: Path) -> None:
    """--audit-log /dev/full: a message naming the path, the summary and the resume command."""
    (tmp_path / "w.yaml").write_text("tasks:\n  t: {run: 'true'}\n")
    result = cli("run", "w.yaml", "--audit-log", "/dev/full", "--output", "quiet", cwd=tmp_path)
    assert "internal error" not in result.stderr
    assert "/dev/full" in result.stderr
    assert re.search(r"trioforge resume \S+", result.stderr) or result.returncode == 2


def test_a_workflow_file_name_that_is_not_utf8_runs_and_is_recorded(tmp_path: Path) -> None:
    """A file name with a byte that is not UTF-8 runs and is stored without an internal error."""
    name = os.fsdecode(b"ok\xff.yaml")
    (tmp_path / name).write_text("tasks:\n  t: {run: 'true'}\n")
    result = cli("run", name, "--output", "quiet", cwd=tmp_path)
    assert "internal error" not in result.stderr
    assert result.returncode == 0, result.stderr
