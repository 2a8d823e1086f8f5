"""The YAML loader: what a valid file becomes, and every problem an invalid one reports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trioforge import (
    FailurePolicy,
    Problem,
    ShellTask,
    WorkflowError,
    WorkflowFileError,
    load_workflow,
    load_workflow_file,
)
from trioforge._durations import DurationError, format_duration, parse_duration
from trioforge._fallback import FallbackTask

FIXTURES = Path(__file__).parent / "fixtures"


def problems(text: str) -> list[str]:
    """``LINE:COL: message`` of every problem in ``text``."""
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("w.yaml", text=text)
    return [f"{p.line}:{p.column}: {p.message}" for p in info.value.problems]


def test_the_documented_example_loads() -> None:
    """Every key of the example in docs/yaml.rst ends up where it belongs."""
    loaded = load_workflow_file(FIXTURES / "release.yaml")
    wf = loaded.workflow
    assert loaded.name == wf.name == "release-checks"
    assert loaded.max_parallel == 4
    assert list(wf) == ["lint", "types", "tests", "package"]
    lint = wf["lint"]
    assert isinstance(lint, ShellTask)
    assert lint.timeout == 600
    assert lint.retries == 0
    assert lint.cwd == FIXTURES
    assert dict(lint.env) == {"PYTHONUNBUFFERED": "1"}
    tests = wf["tests"]
    assert isinstance(tests, ShellTask)
    assert tests.timeout == 900
    assert tests.run_command[0] == "sh"
    package = wf["package"]
    assert isinstance(package, FallbackTask)
    assert package.depends_on == ("lint", "types", "tests")
    assert package.retries == 2
    assert isinstance(package.task, ShellTask)
    assert package.task.compensate_command == "rm -rf dist"
    assert dict(package.task.env)["VERSION"] == "${{ tasks.tests.outputs.version }}"
    assert loaded.log_dir == FIXTURES / ".trioforge" / "logs"
    executor = loaded.executor()
    assert executor.max_concurrency == 4
    assert executor.failure_policy is FailurePolicy.FAIL_FAST


def test_cwd_is_relative_to_the_file_and_defaults_apply() -> None:
    """A relative cwd is resolved from the file's folder; defaults fill what a task leaves out."""
    text = """
defaults: {timeout: 1h30m, retries: 3, grace_period: 2s}
keep_going: yes
timeout: 2h
tasks:
  a: {run: "true", cwd: sub/dir}
  b: {run: "true", timeout: none, retries: 0}
"""
    loaded = load_workflow_file("/work/flows/ci.yaml", text=text)
    a, b = loaded.workflow["a"], loaded.workflow["b"]
    assert isinstance(a, ShellTask)
    assert isinstance(b, ShellTask)
    assert a.cwd == Path("/work/flows/sub/dir")
    assert (a.timeout, a.retries, a.grace_period) == (5400, 3, 2)
    assert (b.timeout, b.retries) == (None, 0)
    assert loaded.name == "ci"
    assert loaded.keep_going
    assert loaded.timeout == 7200


def test_anchors_and_merge_keys_work() -> None:
    """Anchors in `x-` keys, aliases and `<<` merges work; explicit keys win over merged ones."""
    text = """
x-common: &common {timeout: 5s, retries: 1}
tasks:
  a: {<<: *common, run: "true"}
  b: {<<: [*common], run: "true", retries: 4}
  c: &c {run: "true", needs: [a]}
  d: *c
"""
    wf = load_workflow("w.yaml", text=text)
    assert (wf["a"].timeout, getattr(wf["a"], "retries", None)) == (5, 1)
    assert (wf["b"].timeout, getattr(wf["b"], "retries", None)) == (5, 4)
    assert wf["d"].depends_on == ("a",)
    assert problems("x: 1\ntasks: {a: {run: x}}") == ["1:1: unknown key 'x' in the workflow"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("45", 45),
        (" 0.5 ", 0.5),
        ("1m30s", 90),
    ],
)
def test_durations(text: str, expected: float) -> None:
    """Durations are parsed as documented."""
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "10 minutes", "30m1h", "-5s", "0", "0s", "inf", "1.5.3s", "400d"]
)
def test_bad_durations(text: str) -> None:
    """Anything else is a DurationError."""
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_duration() -> None:
    """Durations print short."""
    assert [format_duration(s) for s in (0.314, 12.44, 185, 600, 3720, 7200)] == [
        "0.31s",
        "12.4s",
        "3m05s",
        "10m",
        "1h02m",
        "2h",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tasks:\n  a: {run: x, neds: [b]}\n",
            "2:15: unknown key 'neds' in task 'a' (did you mean 'needs'?)",
        ),
        (
            "tasks:\n  a: {run: x, depends_on: [b]}\n",
            "2:15: unknown key 'depends_on' in task 'a' (did you mean 'needs'?)",
        ),
        (
            "tasks:\n  a: {run: x, needs: [b]}\n",
            "2:23: task 'a' needs 'b', which is not a task in this file",
        ),
        (
            "tasks:\n  a: {run: x}\n  a: {run: y}\n",
            "3:3: duplicate task id 'a' in tasks (first at line 2)",
        ),
        (
            "tasks:\n  a: {run: x, timeout: 10 min}\n",
            "2:24: timeout in task 'a': '10 min' is not a duration",
        ),
        ("tasks:\n  a: {run: x, needs: [a]}\n", "2:23: dependency cycle: a -> a"),
        (
            "tasks:\n  a:\n    run: |\n      echo one\n"
            "      echo ${{ tasks.b.outputs.c }}\n  b: {run: y}\n",
            "5:12: templates are not expanded in 'run' of task 'a'",
        ),
        (
            "tasks:\n  a: {cmd: [echo, '${{ tasks.b.outputs.c }}']}\n  b: {run: y}\n",
            "2:20: ${{ tasks.b.outputs.c }}: task 'a' reads an output of 'b', "
            "which is not upstream of it; add 'b' to its 'needs'",
        ),
        (
            "tasks:\n  a: {cmd: [echo, '${{ tasks.zz.outputs.c }}']}\n",
            "2:20: ${{ tasks.zz.outputs.c }} names task 'zz', which is not a task in this file",
        ),
        (
            "tasks:\n  a: {cmd: [echo, '${{ tasks.a.outputs.c }}']}\n",
            "2:20: ${{ tasks.a.outputs.c }}: task 'a' cannot read its own outputs",
        ),
        (
            "tasks:\n  a: {cmd: [echo, '${{ env.HOME }}']}\n",
            "2:20: item 2 of 'cmd' of task 'a': unknown template expression 'env.HOME'",
        ),
        (
            "tasks:\n  a: {cmd: [echo, '${{ tasks.a.outputs.c']}\n",
            "2:20: item 2 of 'cmd' of task 'a': unclosed template",
        ),
        (
            "env: {V: '${{ tasks.a.outputs.c }}'}\ntasks:\n  a: {run: x}\n",
            "1:11: templates cannot be used in the workflow's env",
        ),
        (
            "tasks:\n  a: {run: x, cwd: '${{ tasks.b.outputs.c }}'}\n",
            "2:21: templates are expanded only in 'env' values and 'cmd' items",
        ),
        ("tasks:\n  a: {run: x, cmd: [y]}\n", "2:15: task 'a' has both 'run' and 'cmd'; keep one"),
        (
            "tasks:\n  a: {needs: []}\n",
            "2:3: task 'a' needs 'run' (a script for sh -c) or 'cmd' (an argv list)",
        ),
        ("tasks:\n  a:\n", "2:5: task 'a' is empty"),
        ("tasks:\n  a b: {run: x}\n", "2:3: task id 'a b' may use only letters, digits"),
        ("tasks:\n  a: {cmd: echo hi}\n", "2:12: 'cmd' of task 'a' must be a list of arguments"),
        (
            "tasks:\n  a: {cmd: []}\n",
            "2:12: 'cmd' of task 'a' must be a non-empty list of arguments",
        ),
        (
            "tasks:\n  a: {run: x, retries: -1}\n",
            "2:24: retries in task 'a' must be a whole number, got '-1'",
        ),
        (
            "tasks:\n  a: {run: x, retries: 1000}\n",
            "2:24: retries in task 'a' must be between 0 and 100, got 1000",
        ),
        (
            "max_parallel: 0\ntasks: {a: {run: x}}\n",
            "1:15: max_parallel must be between 1 and 100000, got 0",
        ),
        (
            "keep_going: maybe\ntasks: {a: {run: x}}\n",
            "1:13: keep_going must be true or false, got 'maybe'",
        ),
        (
            "tasks:\n  a: {run: x, env: {1A: b}}\n",
            "2:21: '1A' in env of task 'a' is not a valid environment variable name",
        ),
        (
            "tasks:\n  a: {run: x, env: {TRIOFORGE_TASK_ID: b}}\n",
            "2:21: TRIOFORGE_TASK_ID is set by trioforge",
        ),
        (
            "tasks:\n  a: {run: x, env: {A: }}\n",
            "2:24: the value of A in env of task 'a' is empty",
        ),
        (
            "tasks:\n  a: {run: !!binary aGk=}\n",
            "2:12: YAML tag 'tag:yaml.org,2002:binary' is not supported here",
        ),
        ("tasks: []\n", "1:8: 'tasks' must be a mapping of task ids to tasks, not a list"),
        ("tasks: {}\n", "1:8: 'tasks' is empty"),
        ("name: x\n", "1:1: the workflow has no 'tasks' mapping"),
        (
            "tasks:\n  a: {run: x}\n---\ntasks: {}\n",
            "3:1: a workflow file holds one YAML document",
        ),
        ("tasks:\n  a: {run: *nothing}\n", "2:12: alias *nothing names no anchor"),
        (
            "tasks: " + "[" * 70 + "]" * 70 + "\n",
            "1:71: the YAML is nested more than 64 levels deep",
        ),
    ],
)
def test_each_problem_is_reported_at_its_position(text: str, expected: str) -> None:
    """Each kind of problem comes out with its line, column and a helpful message."""
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_independent_cycles_are_all_reported() -> None:
    """Two separate cycles give two problems, each with its path."""
    text = """\
tasks:
  a: {run: x, needs: [b]}
  b: {run: x, needs: [a]}
  c: {run: x, needs: [d]}
  d: {run: x, needs: [e]}
  e: {run: x, needs: [c]}
"""
    found = problems(text)
    cycles = [p for p in found if "dependency cycle" in p]
    assert len(cycles) == 2
    assert any("a -> b -> a" in p or "b -> a -> b" in p for p in cycles)
    assert any(
        "c -> d -> e -> c" in p or "d -> e -> c -> d" in p or "e -> c -> d -> e" in p
        for p in cycles
    )


def test_the_error_lists_every_problem_in_file_order() -> None:
    """str() of the error is every problem as FILE:LINE:COL: message, sorted by position."""
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("flows/x.yaml", text="tasks:\n  b: {run: x, neds: 1}\n  a: {rn: x}\n")
    error = info.value
    assert isinstance(error, WorkflowError)
    assert isinstance(error, ValueError)
    assert str(error).splitlines() == [str(p) for p in error.problems]
    assert error.problems[0] == Problem("flows/x.yaml", 2, 15, error.problems[0].message)
    assert [(p.line, p.column) for p in error.problems] == sorted(
        (p.line, p.column) for p in error.problems
    )
    assert str(error.problems[0]).startswith("flows/x.yaml:2:15: unknown key 'neds'")


def test_bytes_and_odd_text_are_clear_errors() -> None:
    """Binary data, other encodings, lone surrogates and control characters are reported."""
    cases = {
        b"\x00\x01\x02": "1:1: this is a binary file",
        b"tasks: caf\xe9": "1:11: the file is not UTF-8 text",
        "tasks: \ud800": "1:8: the file is not UTF-8 text",
        "tasks: a\x07": "1:9: YAML syntax error: control characters are not allowed",
        "": "1:1: the file is empty",
    }
    for text, expected in cases.items():
        with pytest.raises(WorkflowFileError) as info:
            load_workflow("w.yaml", text=text)
        (problem,) = info.value.problems
        assert f"{problem.line}:{problem.column}: {problem.message}".startswith(expected), text


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    """A file saved with a BOM loads like any other."""
    wf = load_workflow("w.yaml", text="\ufefftasks: {a: {run: x}}".encode())
    assert list(wf) == ["a"]


def test_an_alias_bomb_costs_what_its_text_costs() -> None:
    """Nested aliases are never expanded: a billion-laughs file is rejected at once."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append("tasks: {t: {cmd: *i, env: *i, needs: *i}}")
    started = time.monotonic()
    found = problems("\n".join(lines))
    assert time.monotonic() - started < 2
    assert any("'cmd' of task 't'" in p for p in found)


def test_fifty_thousand_tasks_load_in_a_few_seconds() -> None:
    """A 50,000-task file with 100,000 needs validates in well under ten seconds."""
    lines = ["name: big", "tasks:"]
    for i in range(50_000):
        lines.append(f"  t{i}:")
        lines.append(f"    run: echo {i}")
        if i:
            lines.append(f"    needs: [t{i // 2}, t{i - 1}]")
    text = "\n".join(lines)
    started = time.monotonic()
    wf = load_workflow("big.yaml", text=text)
    elapsed = time.monotonic() - started
    assert len(wf) == 50_000
    assert elapsed < 10, elapsed


def test_a_missing_file_is_a_workflow_file_error(tmp_path: Path) -> None:
    """A file that cannot be read is reported like any other problem."""
    with pytest.raises(WorkflowFileError) as info:
        load_workflow(tmp_path / "nope.yaml")
    (problem,) = info.value.problems
    assert problem.message == "cannot read the file: No such file or directory"
    assert (problem.line, problem.column) == (1, 1)
