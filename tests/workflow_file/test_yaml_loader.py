"""The YAML loader: what a valid file becomes, and every problem an invalid one reports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from trio.testing import MockClock

import trioforge._shell._env as _shell
import trioforge._workflow_file._schema as _yaml_schema
from trioforge import (
    FailurePolicy,
    Problem,
    ShellTask,
    Task,
    TaskContext,
    TaskFailedError,
    Workflow,
    WorkflowError,
    WorkflowExecutor,
    WorkflowFileError,
    load_workflow,
    load_workflow_file,
)
from trioforge._cli._main import main as cli_main
from trioforge._core._dag import Dag
from trioforge._core._durations import DurationError, format_duration, parse_duration
from trioforge._shell._argv_code import code_items
from trioforge._workflow_file._file import MAX_PROBLEMS
from trioforge._workflow_file._schema import Checker
from trioforge.combinators import FallbackTask

FIXTURES = Path(__file__).parent.parent / "fixtures"


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
    options = loaded.executor_options
    assert options["max_concurrency"] == 4
    assert options["failure_policy"] is FailurePolicy.FAIL_FAST
    executor = WorkflowExecutor(loaded.workflow, **options)
    assert executor.max_concurrency == 4


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
    cases: dict[str | bytes, str] = {
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
    started = time.process_time()
    found = problems("\n".join(lines))
    assert time.process_time() - started < 2
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
    # CPU time of this process, not wall time: a loaded machine does not fail
    # the test, and a quadratic step (50,000 squared) would still take minutes.
    started = time.process_time()
    wf = load_workflow("big.yaml", text=text)
    elapsed = time.process_time() - started
    assert len(wf) == 50_000
    assert elapsed < 10, elapsed


def test_a_missing_file_is_a_workflow_file_error(tmp_path: Path) -> None:
    """A file that cannot be read is reported like any other problem."""
    with pytest.raises(WorkflowFileError) as info:
        load_workflow(tmp_path / "nope.yaml")
    (problem,) = info.value.problems
    assert problem.message == "cannot read the file: No such file or directory"
    assert (problem.line, problem.column) == (1, 1)


# -- templates in items a program reads as code --------------------------------

PRODUCE = """\
tasks:
  produce:
    run: echo 'msg=hi; touch PWNED' >> "$TRIOFORGE_OUTPUT"
  consume:
    needs: [produce]
    cmd: {cmd}
"""
MSG = "${{ tasks.produce.outputs.msg }}"


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (
            f'[sh, -c, "echo {MSG}"]',
            "6:25: item 3 of 'cmd' of task 'consume' is the script sh runs (after -c): "
            "a task's output there would be read as code. Pass it as an argument",
        ),
        (f'[bash, -c, "echo {MSG}"]', "6:27: item 3 of 'cmd' of task 'consume' is the script"),
        (f'[bash, -lc, "echo {MSG}"]', "6:28: item 3 of 'cmd' of task 'consume' is the script"),
        (f'[/bin/dash, -ec, "{MSG}"]', "6:28: item 3 of 'cmd' of task 'consume' is the script"),
        (
            f"[python3.12, -c, 'print(\"{MSG}\")']",
            "6:35: item 3 of 'cmd' of task 'consume' is the code python3.12 runs (after -c)",
        ),
        (f'[python, "-c{MSG}"]', "6:22: item 2 of 'cmd' of task 'consume' is the code python"),
        (f'[node, -e, "{MSG}"]', "6:22: item 3 of 'cmd' of task 'consume' is the code node runs"),
        (f'[perl, -ne, "{MSG}"]', "6:23: item 3 of 'cmd' of task 'consume' is the code perl"),
        (f'[ruby, -e, "{MSG}"]', "6:22: item 3 of 'cmd' of task 'consume' is the code ruby"),
        (f'[php, -r, "{MSG}"]', "6:21: item 3 of 'cmd' of task 'consume' is the code php"),
        (f'[env, A=1, sh, -c, "{MSG}"]', "6:30: item 5 of 'cmd' of task 'consume' is the script"),
        (
            f'[env, A-B=1, sh, -c, "{MSG}"]',
            "6:32: item 5 of 'cmd' of task 'consume' is the script",
        ),
        (f'[sudo, LANG=C, sh, -c, "{MSG}"]', "6:34: item 5 of 'cmd' of task 'consume' is the"),
        (f'[timeout, 5, zsh, -c, "{MSG}"]', "6:33: item 5 of 'cmd' of task 'consume'"),
        (
            f'["{MSG}", --version]',
            "6:12: item 1 of 'cmd' of task 'consume' is the program to run: a task's output "
            "there would choose what runs",
        ),
        (
            f'[env, "{MSG}"]',
            "6:17: item 2 of 'cmd' of task 'consume' is where env reads its options and operands",
        ),
        (f'[python, -m, "{MSG}"]', "6:24: item 3 of 'cmd' of task 'consume' is the code python"),
        (f'[bash, "{MSG}"]', "6:18: item 2 of 'cmd' of task 'consume' is the script file bash"),
        (
            f'[pwsh, -Command, echo, "{MSG}"]',
            "6:34: item 4 of 'cmd' of task 'consume' is the command pwsh runs (after -Command)",
        ),
        (
            f'[ssh, host, deploy, "{MSG}"]',
            "6:31: item 4 of 'cmd' of task 'consume' is part of the command ssh runs on the "
            "remote host: the program joins its arguments into a command line for a shell",
        ),
    ],
)
def test_templates_in_items_read_as_code_are_refused(cmd: str, expected: str) -> None:
    """A template where a shell or an interpreter reads code, or in the program, is a problem."""
    found = problems(PRODUCE.format(cmd=cmd))
    assert any(p.startswith(expected) for p in found), found


def test_the_reviewed_injection_is_refused_with_a_way_out() -> None:
    """The reviewer's file (output `hi; touch PWNED` into `sh -c`) no longer validates."""
    found = problems(PRODUCE.format(cmd=f'[sh, -c, "echo {MSG}"]'))
    assert found == [
        "6:25: item 3 of 'cmd' of task 'consume' is the script sh runs (after -c): a task's "
        "output there would be read as code. Pass it as an argument after the code instead and "
        'read it there as "$1" (e.g. [sh, -c, \'echo "$1"\', sh, '
        f'"{MSG}"]), or through env: {{VALUE: "{MSG}"}} and read $VALUE'
    ]


@pytest.mark.parametrize(
    "cmd",
    [
        f'[sh, -c, \'echo "$1"\', sh, "{MSG}"]',
        f"[python, -c, 'import sys; print(sys.argv[1])', \"{MSG}\"]",
        f'[echo, "{MSG}"]',
        f'[grep, -c, "{MSG}", file.txt]',
        f'[apt-get, install, -y, python3, "{MSG}"]',
        f'[python, tool.py, -c, "{MSG}"]',
        f'[bash, -s, "{MSG}"]',
        f'[env, "A={MSG}", sh, -c, "echo $A"]',
        f'[node, -e, "console.log(process.argv[1])", "{MSG}"]',
        f'[git, commit, -m, "release {MSG}"]',
    ],
)
def test_templates_as_plain_arguments_stay_allowed(cmd: str) -> None:
    """A template that is only data for the program (an argument, an env value) loads."""
    wf = load_workflow("w.yaml", text=PRODUCE.format(cmd=cmd))
    assert list(wf) == ["produce", "consume"]


@pytest.mark.parametrize("cmd", ["[python, -c]", "[env, -S]", "[sh, -c]", "[ssh]"])
def test_an_option_without_its_argument_is_left_to_the_program(cmd: str) -> None:
    """`[python, -c]` loads (the program will complain); it names no item past the end."""
    wf = load_workflow("w.yaml", text=PRODUCE.format(cmd=cmd))
    assert list(wf) == ["produce", "consume"]


def test_compensate_and_fallback_argv_are_checked_too() -> None:
    """The same rule holds for the argv form of 'compensate' and 'fallback'."""
    text = f"""\
tasks:
  produce: {{run: x}}
  consume:
    needs: [produce]
    run: x
    compensate: [sh, -c, "undo {MSG}"]
    fallback: [bash, -c, "echo {MSG}"]
"""
    found = problems(text)
    assert [p.split(" is ")[0] for p in found] == [
        "6:32: item 3 of 'compensate' of task 'consume'",
        "7:32: item 3 of 'fallback' of task 'consume'",
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sh", "-c", "s", "sh", "v"], [(0, "program"), (2, "code")]),
        (["bash", "-euo", "pipefail", "-c", "s"], [(0, "program"), (4, "code")]),
        (["bash", "-o", "pipefail", "script.sh", "v"], [(0, "program"), (3, "program")]),
        (["python", "-W", "ignore", "-c", "s", "-c", "v"], [(0, "program"), (4, "code")]),
        (["python", "-Bc", "s"], [(0, "program"), (2, "code")]),
        (["node", "-pe", "s", "v"], [(0, "program"), (2, "code")]),
        (["node", "--eval=s", "v"], [(0, "program"), (1, "code")]),
        (["perl", "-l0ne", "s", "v"], [(0, "program"), (2, "code")]),
        (["ruby", "-rjson", "-e", "s"], [(0, "program"), (1, "program"), (3, "code")]),
        (
            ["/usr/bin/env", "-i", "-u", "X", "A=1", "python3", "-c", "s"],
            [(0, "program"), (5, "program"), (7, "code")],
        ),
        (["env", "-S", "sh -c s"], [(0, "program"), (2, "code")]),
        (["env", "A-B=1", "=x", "sh", "-c", "s"], [(0, "program"), (3, "program"), (5, "code")]),
        (["sudo", "LANG=C", "bash", "-c", "s"], [(0, "program"), (2, "program"), (4, "code")]),
        (["nice", "A=1", "sh", "-c", "s"], [(0, "program"), (1, "program")]),
        (["sudo", "-u", "bob", "bash", "-c", "s"], [(0, "program"), (3, "program"), (5, "code")]),
        (["sudo", "-s", "echo", "v"], [(0, "program"), (2, "joined"), (3, "joined")]),
        (["xargs", "-I{}", "sh", "-c", "s"], [(0, "program"), (2, "program"), (4, "code")]),
        (["pwsh", "-NoProfile", "-File", "a.ps1", "v"], [(0, "program"), (3, "program")]),
        (["powershell", "echo", "v"], [(0, "program"), (1, "joined"), (2, "joined")]),
        (
            ["ssh", "-p", "22", "host", "ls", "v"],
            [(0, "program"), (3, "program"), (4, "joined"), (5, "joined")],
        ),
        (["C:\\Python\\PYTHON.EXE", "-c", "s"], [(0, "program"), (2, "code")]),
        (["grep", "-c", "v"], [(0, "program")]),
        (["make", "python", "v"], [(0, "program")]),
    ],
)
def test_code_items_read_argv_as_the_program_would(
    argv: list[str], expected: list[tuple[int, str]]
) -> None:
    """The code items are the program positions and what shells and interpreters run."""
    assert [(item.index, item.kind) for item in code_items(argv)] == expected


# -- aliases, problem counts and sizes -------------------------------------------


def test_problems_of_an_aliased_value_are_reported_once_where_it_is_written() -> None:
    """300 tasks sharing a mapping with 300 unknown keys: 300 problems, not 90,000."""
    keys = ", ".join(f"k{i}: 1" for i in range(300))
    uses = "".join(f"  t{i}: *m\n" for i in range(300))
    started = time.process_time()
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("w.yaml", text=f"x-m: &m {{run: 'true', {keys}}}\ntasks:\n{uses}")
    elapsed = time.process_time() - started
    found = info.value.problems
    assert len(found) == 300
    assert info.value.omitted == 0
    assert {p.line for p in found} == {1}
    assert found[0].message == "unknown key 'k0' in task 't0'"
    assert elapsed < 1, elapsed


def test_every_kind_of_shared_problem_is_reported_once() -> None:
    """Shared bodies, merges, env, needs, cwd and argv: one problem each, however many uses."""
    text = f"""\
x-body: &body {{run: x, timeout: soon}}
x-base: &base {{neds: [a]}}
x-env: &env {{1A: b}}
x-needs: &needs [nope]
x-cwd: &cwd "{MSG}"
x-cmd: &cmd [sh, -c, "{MSG}"]
tasks:
  produce: {{run: x}}
  a1: *body
  a2: *body
  b1: {{<<: *base, run: x}}
  b2: {{<<: *base, run: x}}
  c1: {{run: x, env: *env}}
  c2: {{run: x, env: {{<<: *env}}}}
  d1: {{run: x, needs: *needs}}
  d2: {{run: x, needs: *needs}}
  e1: {{run: x, cwd: *cwd}}
  e2: {{run: x, cwd: *cwd}}
  f1: {{cmd: *cmd, needs: [produce]}}
  f2: {{cmd: *cmd, needs: [produce]}}
"""
    found = problems(text)
    assert [p.split(":")[0] for p in found] == ["1", "2", "3", "4", "5", "6"], found
    assert found[0].startswith("1:33: timeout in task 'a1': 'soon' is not a duration")
    assert found[1].startswith("2:16: unknown key 'neds' in task 'b1' (did you mean 'needs'?)")


def test_a_64_kb_file_of_shared_problems_validates_in_well_under_a_second() -> None:
    """The reviewer's 64 KB file (3,000 unknown keys used by 3,000 tasks) is fast and capped."""
    keys = ", ".join(f"k{i}: 1" for i in range(3000))
    uses = "".join(f"  t{i}: *m\n" for i in range(3000))
    text = f"x-m: &m {{run: 'true', {keys}}}\ntasks:\n{uses}"
    assert 60_000 < len(text) < 70_000
    started = time.process_time()
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("w.yaml", text=text)
    elapsed = time.process_time() - started
    error = info.value
    assert len(error.problems) == MAX_PROBLEMS == 500
    assert error.omitted == 2500
    assert str(error).splitlines()[-1] == "... and 2500 more problems"
    assert str(error).splitlines()[-2] == str(error.problems[-1])
    assert error.problems[-1].message == "unknown key 'k499' in task 't0'"
    assert elapsed < 1, elapsed


def test_the_error_keeps_the_first_problems_in_file_order() -> None:
    """More than MAX_PROBLEMS problems: the first ones by position are kept, the rest counted."""
    found = [Problem("w.yaml", line, 1, "bad") for line in range(700, 0, -1)]
    error = WorkflowFileError(found)
    assert [p.line for p in error.problems] == list(range(1, 501))
    assert error.omitted == 200
    assert str(WorkflowFileError(found[:2])).count("\n") == 1


def test_validate_prints_at_most_max_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trioforge validate` on the 64 KB file prints the kept problems only, quickly."""
    keys = ", ".join(f"k{i}: 1" for i in range(3000))
    uses = "".join(f"  t{i}: *m\n" for i in range(3000))
    path = tmp_path / "big.yaml"
    path.write_text(f"x-m: &m {{run: 'true', {keys}}}\ntasks:\n{uses}")
    started = time.process_time()
    status = cli_main(["validate", str(path)])
    elapsed = time.process_time() - started
    lines = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len([line for line in lines if line.startswith(f"{path}:")]) == MAX_PROBLEMS
    assert elapsed < 1, elapsed


def test_locating_many_templates_in_one_item_is_linear() -> None:
    """20,000 malformed templates in one 120 KB argv item are located in well under a second."""
    text = 'tasks:\n  a:\n    cmd: [echo, "' + "${{x}}" * 20_000 + '"]\n'
    assert len(text) > 120_000
    started = time.process_time()
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("w.yaml", text=text)
    elapsed = time.process_time() - started
    error = info.value
    assert error.omitted == 20_000 - 500
    assert [(p.line, p.column) for p in error.problems[:2]] == [(3, 18), (3, 24)]
    assert error.problems[499].column == 18 + 6 * 499
    assert elapsed < 1, elapsed


def test_template_positions_follow_the_source_text() -> None:
    """A template in a folded block scalar is reported on its own line and column."""
    text = f"tasks:\n  a:\n    cmd:\n      - echo\n      - >-\n        one\n        two {MSG}\n"
    assert problems(text) == [
        f"7:13: {MSG} names task 'produce', which is not a task in this file"
    ]


def test_a_merged_mapping_brings_its_own_merges_first() -> None:
    """`<<: [*a, *c]`: everything `a` stands for (its own merges too) wins over `c`."""
    text = """\
x-b: &b {timeout: 1s}
x-a: &a {<<: *b}
x-c: &c {timeout: 2s, retries: 3}
tasks:
  t: {<<: [*a, *c], run: x}
"""
    task = load_workflow("w.yaml", text=text)["t"]
    assert isinstance(task, ShellTask)
    assert (task.timeout, task.retries) == (1, 3)


def test_a_long_chain_of_merges_is_read_once_per_link() -> None:
    """2,000 tasks each merging the previous one load in well under a second."""
    lines = ["tasks:", "  t0: &a0 {run: x}"]
    lines += [f"  t{i}: &a{i} {{<<: *a{i - 1}, timeout: {i}s}}" for i in range(1, 2000)]
    started = time.process_time()
    wf = load_workflow("w.yaml", text="\n".join(lines))
    elapsed = time.process_time() - started
    assert len(wf) == 2000
    assert wf["t1999"].timeout == 1999
    assert elapsed < 1, elapsed


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[object]:
    """Record the first argument of every call of ``owner.name`` from now on."""
    calls: list[object] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_an_aliased_env_is_checked_once_and_shared_by_its_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 tasks using one 300-variable env check each value once and hold one tuple."""
    checked = _count_calls(monkeypatch, _shell, "_check_templates")
    env = ", ".join(f"V{i}: 'value {i}'" for i in range(300))
    tasks = "".join(f"  t{i}: {{run: 'true', env: *env}}\n" for i in range(300))
    wf = load_workflow("w.yaml", text=f"x-env: &env {{{env}}}\ntasks:\n{tasks}")
    assert len(checked) == 300  # not 90,000: once per value, not once per task
    first = wf["t0"]
    assert isinstance(first, ShellTask)
    assert dict(first.env) == {f"V{i}": f"value {i}" for i in range(300)}
    assert all(wf[f"t{i}"].env is first.env for i in range(300))  # type: ignore[attr-defined]


def test_aliased_commands_and_argv_items_are_checked_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aliased argv, argv item or script is checked once, however many tasks use it."""
    items = _count_calls(monkeypatch, _shell, "_check_templates")
    scripts = _count_calls(monkeypatch, _shell, "contains_template")
    argv = ", ".join(f"a{i}" for i in range(200))
    lines = [
        f"x-argv: &argv [echo, {argv}]",
        f"x-item: &item '{'x' * 1000}'",
        "x-script: &script 'echo one; echo two'",
        "tasks:",
    ]
    for i in range(200):
        lines.append(f"  a{i}: {{cmd: *argv}}")
        lines.append(f"  b{i}: {{cmd: [printf, *item]}}")
        lines.append(f"  c{i}: {{run: *script, compensate: *script}}")
    wf = load_workflow("w.yaml", text="\n".join(lines))
    assert len(wf) == 600
    # Each written scalar once: the 201 items of argv, the 200 `printf` and *item.
    assert len(items) == 201 + 200 + 1
    assert scripts.count("echo one; echo two") == 1
    assert wf["a199"].run_command is wf["a0"].run_command  # type: ignore[attr-defined]


def test_a_merged_env_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 tasks with `env: {<<: *common, OWN: x}` check the 300 variables of common once."""
    values = _count_calls(monkeypatch, Checker, "_env_value")
    checked = _count_calls(monkeypatch, _shell, "_check_templates")
    env = ", ".join(f"V{i}: 'value {i}'" for i in range(300))
    tasks = "".join(f"  t{i}: {{run: x, env: {{<<: *env, OWN: t{i}}}}}\n" for i in range(300))
    wf = load_workflow("w.yaml", text=f"x-env: &env {{{env}}}\ntasks:\n{tasks}")
    assert len(values) == 300  # each task's own OWN; the merged ones were checked once
    assert len(checked) == 300 + 300
    last = wf["t299"]
    assert isinstance(last, ShellTask)
    assert dict(last.env) == {"OWN": "t299"} | {f"V{i}": f"value {i}" for i in range(300)}


def test_a_merged_env_reports_only_the_problems_a_task_uses() -> None:
    """A bad merged variable that every task sets itself is no problem, as without merges."""
    text = """\
x-env: &env {A: , B: '${{ tasks.late.outputs.k }}', C: ok}
tasks:
  early: {run: x, env: {<<: *env, A: a, B: b}}
  late: {run: x, needs: [early], env: {<<: *env, A: a}}
"""
    assert problems(text) == [
        "1:23: ${{ tasks.late.outputs.k }}: task 'late' cannot read its own outputs before "
        "it has run (only its 'compensate' argv can)"
    ]
    early = load_workflow("w.yaml", text=text.replace("A: a}", "A: a, B: b}"))["early"]
    assert isinstance(early, ShellTask)
    assert dict(early.env) == {"A": "a", "B": "b", "C": "ok"}


def test_a_tasks_own_env_wins_over_what_it_merges_and_over_the_workflow_env() -> None:
    """Precedence, kept by the layered env: own keys, then merged ones, then the workflow's."""
    text = """\
env: {A: top, B: top, D: top}
x-m: &m {A: merged, B: merged, C: merged}
tasks:
  t: {run: x, env: {<<: *m, A: own}}
  u: {run: x}
"""
    wf = load_workflow("w.yaml", text=text)
    assert dict(wf["t"].env) == {"A": "own", "B": "merged", "C": "merged", "D": "top"}  # type: ignore[attr-defined]
    assert dict(wf["u"].env) == {"A": "top", "B": "top", "D": "top"}  # type: ignore[attr-defined]


def test_the_loader_checks_env_names_with_the_rule_shell_task_uses() -> None:
    """One definition of an environment variable name serves the loader and ShellTask."""
    assert _yaml_schema.ENV_NAME is _shell.ENV_NAME  # type: ignore[attr-defined]

    def accepted(name: str) -> tuple[bool, bool]:
        verdicts = []
        for make in (
            lambda: ShellTask("t", "true", env={name: "v"}),
            lambda: load_workflow(
                "w.yaml", text=f"tasks: {{t: {{run: x, env: {{'{name}': v}}}}}}"
            ),
        ):
            try:
                make()
            except ValueError:  # WorkflowFileError is one too
                verdicts.append(False)
            else:
                verdicts.append(True)
        return verdicts[0], verdicts[1]

    for name in ("A", "_a1", "1A", "A-B", "A.B", "\u00e9", "A B"):
        valid = _shell.ENV_NAME.fullmatch(name) is not None
        assert accepted(name) == (valid, valid), name


def test_shared_script_and_cwd_templates_are_looked_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A script or cwd with 200 templates, used by 200 tasks: 400 problems, 400 checks."""
    asked = _count_calls(monkeypatch, Checker, "first")
    many = " ".join(["${{ tasks.t0.outputs.k }}"] * 200)
    tasks = "".join(f"  t{i}: {{run: *s, cwd: *c}}\n" for i in range(200))
    found = problems(f'x-s: &s "echo {many}"\nx-c: &c "{many}"\ntasks:\n{tasks}')
    assert len(found) == 400
    assert len(asked) <= 2 * 200  # not 80,000: one question per task and node


def test_a_template_read_by_a_chain_of_tasks_walks_the_graph_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 chained tasks reading the first one's output: two graph walks, not one per task."""
    walks = _count_calls(monkeypatch, Dag, "ancestors")
    lines = ["tasks:", "  t0: {run: x}", "  t1: {run: x, needs: [t0]}"]
    lines += [
        f"  t{i}: {{cmd: [echo, '${{{{ tasks.t0.outputs.k }}}}'], needs: [t{i - 1}]}}"
        for i in range(2, 300)
    ]
    assert len(load_workflow("w.yaml", text="\n".join(lines))) == 300
    assert len(walks) <= 2
    lines.append("  stray: {cmd: [echo, '${{ tasks.t5.outputs.k }}'], needs: [t1]}")
    assert problems("\n".join(lines)) == [
        "302:24: ${{ tasks.t5.outputs.k }}: task 'stray' reads an output of 't5', which is "
        "not upstream of it; add 't5' to its 'needs'"
    ]


def test_3000_tasks_sharing_an_env_of_3000_templates_validate_in_well_under_2s() -> None:
    """The quadratic case of the aliased env, templates included, at a size it would show."""
    env = ", ".join(f"V{i}: '${{{{ tasks.p.outputs.k{i} }}}}'" for i in range(3000))
    lines = [f"x-env: &env {{{env}}}", "tasks:", "  p: {run: x}"]
    lines += [f"  t{i}: {{run: x, needs: [p], env: *env}}" for i in range(3000)]
    lines += [f"  m{i}: {{run: x, needs: [p], env: {{<<: *env, V0: x}}}}" for i in range(300)]
    text = "\n".join(lines)
    started = time.process_time()
    wf = load_workflow("w.yaml", text=text)
    elapsed = time.process_time() - started
    assert len(wf) == 3301
    # Checking the env once per task took over 20 s here; it now takes about 0.4 s.
    assert elapsed < 2, elapsed


# -- numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "max_parallel: " + "9" * 5000 + "\ntasks: {a: {run: x}}\n",
            "1:15: max_parallel must be between 1 and 100000, got a number of 5000 digits",
        ),
        (
            "tasks: {a: {run: x, retries: " + "1" * 5000 + "}}\n",
            "1:30: retries in task 'a' must be between 0 and 100, got a number of 5000 digits",
        ),
        (
            "defaults: {retries: 1_000_000_000_000_000_000_000}\ntasks: {a: {run: x}}\n",
            "1:21: retries in defaults must be between 0 and 100, got 1000000000000000000000",
        ),
        (
            "timeout: " + "9" * 5000 + "\ntasks: {a: {run: x}}\n",
            "1:10: timeout: '99999999999999999999999999999999999'... (5000 characters) is not a "
            "duration: it is longer than 64 characters",
        ),
        (
            "tasks: {a: {run: x, estimate: 1" + "0" * 50 + "s}}\n",
            "1:31: estimate in task 'a': a duration must be at most a year",
        ),
    ],
)
def test_huge_numbers_are_problems_not_crashes(text: str, expected: str) -> None:
    """Numbers past Python's 4300-digit limit, or past any sane range, are reported."""
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_leading_zeros_do_not_make_a_number_large() -> None:
    """`max_parallel: 0000...0004` is 4, however many zeros come first."""
    loaded = load_workflow_file(
        "w.yaml", text="max_parallel: " + "0" * 5000 + "4\ntasks: {a: {run: x}}"
    )
    assert loaded.max_parallel == 4


def test_durations_refuse_long_text_and_huge_values() -> None:
    """parse_duration refuses text longer than 64 characters and values past a year."""
    with pytest.raises(DurationError, match="longer than 64 characters"):
        parse_duration("1" * 65)
    with pytest.raises(DurationError, match="at most a year"):
        parse_duration("9" * 60)


# -- FallbackTask ----------------------------------------------------------------


def fallback_pair(calls: list[tuple[str, int]], *, fallback_fails: bool) -> tuple[Task, Task]:
    """A main task that always fails and a fallback, both recording their calls."""

    async def main(ctx: TaskContext) -> None:
        calls.append(("main", ctx.attempt))
        raise RuntimeError("main failed")

    async def fallback(ctx: TaskContext) -> str:
        calls.append(("fallback", ctx.attempt))
        if fallback_fails:
            raise RuntimeError("fallback failed")
        return "fell back"

    return Task("main", main), Task("fallback", fallback)


async def test_the_executor_default_retries_do_not_apply_to_a_fallback_task(
    autojump_clock: MockClock,
) -> None:
    """WorkflowExecutor(retries=2) does not retry a FallbackTask: one try, one fallback."""
    calls: list[tuple[str, int]] = []
    wf = Workflow("w")
    wf.add_task(FallbackTask("p", *fallback_pair(calls, fallback_fails=True)))
    with pytest.raises(TaskFailedError):
        await WorkflowExecutor(wf, retries=2).execute_dataflow()
    assert calls == [("main", 1), ("fallback", 1)]


async def test_a_fallback_task_runs_its_fallback_after_its_own_last_retry(
    autojump_clock: MockClock,
) -> None:
    """FallbackTask(retries=2) under WorkflowExecutor(retries=5): three tries, one fallback."""
    calls: list[tuple[str, int]] = []
    wf = Workflow("w")
    wf.add_task(FallbackTask("p", *fallback_pair(calls, fallback_fails=False), retries=2))
    result = await WorkflowExecutor(wf, retries=5).execute_dataflow()
    assert calls == [("main", 1), ("main", 2), ("main", 3), ("fallback", 3)]
    assert result.results["p"] == "fell back"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("retries", None, TypeError),
        ("retries", True, TypeError),
        ("retries", -1, ValueError),
        ("estimate", "1s", TypeError),
        ("estimate", -1.0, ValueError),
        ("estimate", float("nan"), ValueError),
        ("compensation_timeout", None, TypeError),
        ("compensation_timeout", 0, ValueError),
        ("compensation_timeout", float("inf"), ValueError),
    ],
)
def test_fallback_task_fields_are_validated(
    field: str, value: object, error: type[Exception]
) -> None:
    """Bad retries, estimate or compensation_timeout raise, naming the field."""
    main, fallback = fallback_pair([], fallback_fails=False)
    options: dict[str, Any] = {field: value}
    with pytest.raises(error, match=field):
        FallbackTask("p", main, fallback, **options)


def test_a_loaded_fallback_task_always_carries_its_retries() -> None:
    """The loader gives a FallbackTask an int: the file's retries, the defaults', or 0."""
    text = """\
defaults: {retries: 1}
tasks:
  a: {run: x, fallback: y}
  b: {run: x, fallback: y, retries: 0}
"""
    wf = load_workflow("w.yaml", text=text)
    assert [getattr(wf[t], "retries", None) for t in "ab"] == [1, 0]
    no_defaults = load_workflow("w.yaml", text="tasks: {a: {run: x, fallback: y}}")
    assert getattr(no_defaults["a"], "retries", None) == 0
