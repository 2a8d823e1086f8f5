"""`inputs:`, `--input KEY=VALUE` and `${{ inputs.KEY }}` (issue 14.3)."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import cli

GREET = """\
inputs:
  who: {description: "who to greet", default: world}
  version: {description: "the version to release"}
tasks:
  greet:
    env: {WHO: "${{ inputs.who }}"}
    cmd:
      - sh
      - -c
      - 'printf "%s %s\\n" "$WHO" "$1" > out.txt; test -f ok'
      - sh
      - "v${{ inputs.version }}"
"""


def test_defaults_and_given_values_reach_env_and_argv(tmp_path: Path) -> None:
    """The default fills `who`; `--input version=1.2` fills the argv item."""
    (tmp_path / "w.yaml").write_text(GREET)
    (tmp_path / "ok").touch()
    result = cli("run", "w.yaml", "--input", "version=1.2", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == "world v1.2\n"
    other = cli(
        "run", "w.yaml", "--input", "version=2", "--input", "who=you", "--quiet", cwd=tmp_path
    )
    assert other.returncode == 0, other.stderr
    assert (tmp_path / "out.txt").read_text() == "you v2\n"


def test_a_missing_input_is_a_problem_at_its_declaration(tmp_path: Path) -> None:
    """`run` without a value for an input with no default exits 2 with FILE:LINE:COL."""
    (tmp_path / "w.yaml").write_text(GREET)
    result = cli("run", "w.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "w.yaml:3:3: input 'version' has no default and no value: pass --input version=VALUE"
        in result.stderr
    )
    assert not (tmp_path / "out.txt").exists()
    assert cli("validate", "w.yaml", cwd=tmp_path).returncode == 0  # checking needs no values


def test_an_unknown_input_is_a_problem_where_it_is_named(tmp_path: Path) -> None:
    """A template naming an undeclared input, and --input of one, are problems with positions."""
    (tmp_path / "w.yaml").write_text(
        "inputs:\n  who: {default: x}\ntasks:\n  t: {cmd: [echo, '${{ inputs.whom }}']}\n"
    )
    result = cli("validate", "w.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "w.yaml:4:20: item 2 of 'cmd' of task 't': unknown input 'whom'" in result.stderr
    (tmp_path / "w.yaml").write_text("inputs:\n  who: {default: x}\ntasks:\n  t: {run: 'true'}\n")
    given = cli("run", "w.yaml", "--input", "whom=1", cwd=tmp_path)
    assert given.returncode == 2
    assert "w.yaml:1:1: --input whom: the file declares no input 'whom'" in given.stderr


def test_input_templates_are_refused_where_output_templates_are(tmp_path: Path) -> None:
    """In shell text and in an argv item read as code an input is refused, with the template."""
    (tmp_path / "w.yaml").write_text(
        "inputs:\n  x: {default: 'true'}\ntasks:\n"
        "  a: {run: 'echo ${{ inputs.x }}'}\n"
        "  b: {cmd: [sh, -c, '${{ inputs.x }}']}\n"
    )
    result = cli("validate", "w.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(
        r"w\.yaml:4:\d+: templates are not expanded in 'run' of task 'a'", result.stderr
    )
    assert re.search(
        r"w\.yaml:5:\d+: item 3 of 'cmd' of task 'b' is the script sh runs", result.stderr
    )


def test_a_value_holding_a_template_is_refused(tmp_path: Path) -> None:
    """`--input x=${{ tasks.a.outputs.k }}` cannot smuggle a template into an argv item."""
    (tmp_path / "w.yaml").write_text(
        "inputs:\n  x: {default: a}\ntasks:\n  t: {cmd: [echo, '${{ inputs.x }}']}\n"
    )
    result = cli("run", "w.yaml", "--input", "x=${{ tasks.t.outputs.k }}", cwd=tmp_path)
    assert result.returncode == 2
    assert "w.yaml:2:3: the value of input 'x' holds '${{'" in result.stderr


def test_a_resume_with_other_inputs_is_refused_like_a_changed_file(tmp_path: Path) -> None:
    """The inputs are part of the stored run: other values are refused; none reuses the run's."""
    (tmp_path / "w.yaml").write_text(GREET)
    first = cli("run", "w.yaml", "--input", "version=1", "--output", "quiet", cwd=tmp_path)
    assert first.returncode == 1
    (run_id,) = re.findall(r"trioforge resume (\S+)", first.stderr)
    (tmp_path / "ok").touch()
    other = cli("resume", run_id, "--input", "version=2", cwd=tmp_path)
    assert other.returncode == 2
    assert "changed" in other.stderr
    same = cli("resume", run_id, "--quiet", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert (tmp_path / "out.txt").read_text() == "world v1\n"
