"""The ``trioforge`` command, run for real in subprocesses on the files in tests/fixtures/."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from cli_helpers import (
    _reap,
    _start,
    cli,
    dead_soon,
    events,
    fixture,
    outputs,
    wait_for,
)


def test_independent_tasks_run_in_parallel(tmp_path: Path) -> None:
    """Two `sleep 0.3` tasks finish in well under the 0.6 s they would take one after another."""
    fixture("parallel.yaml", tmp_path)
    # The fixture sets no max_parallel; on one CPU the default would be 1 slot.
    result = cli("run", "parallel.yaml", "--json", "--max-parallel", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    (done,) = [e for e in log if e["type"] == "WorkflowCompleted"]
    assert done["duration"] < 0.5
    durations = {e["task_id"]: e["duration"] for e in log if e["type"] == "WorkflowTaskCompleted"}
    assert set(durations) == {"first", "second"}
    assert min(durations.values()) >= 0.29
    kinds = [e["type"] for e in log if e["task_id"] is not None]
    assert kinds[:2] == ["WorkflowTaskStarted", "WorkflowTaskStarted"]


def test_needs_decide_the_order(tmp_path: Path) -> None:
    """Each task starts only after everything it needs has completed."""
    fixture("order.yaml", tmp_path)
    result = cli("run", "order.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "order.txt").read_text().split()
    assert lines[:2] == ["fetch", "build"]
    assert set(lines[2:4]) == {"test", "docs"}
    assert lines[4:] == ["release"]
    log = events(result.stdout)
    completed_at = {e["task_id"]: e["clock"] for e in log if e["type"] == "WorkflowTaskCompleted"}
    started_at = {e["task_id"]: e["clock"] for e in log if e["type"] == "WorkflowTaskStarted"}
    needs = {"build": ["fetch"], "test": ["build"], "docs": ["build"], "release": ["test", "docs"]}
    for task, deps in needs.items():
        assert all(started_at[task] >= completed_at[dep] for dep in deps), task


def test_layers_and_sequential_schedules(tmp_path: Path) -> None:
    """--schedule layers runs layer by layer; --schedule sequential one task at a time."""
    fixture("order.yaml", tmp_path)
    layers = events(
        cli("run", "order.yaml", "--json", "--schedule", "layers", cwd=tmp_path).stdout
    )
    assert [e["layer"] for e in layers if e["type"] == "WorkflowTaskParallelStarted"] == [
        0,
        1,
        2,
        3,
    ]
    sequential = cli("run", "order.yaml", "--json", "--schedule", "sequential", cwd=tmp_path)
    assert sequential.returncode == 0
    running = 0
    for event in events(sequential.stdout):
        if event["type"] == "WorkflowTaskStarted":
            running += 1
            assert running == 1
        elif event["type"] == "WorkflowTaskCompleted":
            running -= 1


def test_failure_exits_1_and_rolls_back_in_reverse_order(tmp_path: Path) -> None:
    """A failed task stops the run, completed tasks are compensated newest first, exit 1."""
    fixture("rollback.yaml", tmp_path)
    result = cli("run", "rollback.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "done.txt").read_text().split() == ["create", "seed"]
    assert (tmp_path / "undone.txt").read_text().split() == ["seed", "create"]
    # The failure shows the end of the task's log, including its stderr.
    assert "error: column 'email' already exists" in result.stdout
    assert "[migrate] failed" in result.stdout
    assert "task 'migrate' exited with status 3" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_keep_going_skips_only_dependents(tmp_path: Path) -> None:
    """--keep-going: the failed task's dependents are skipped, the rest still runs."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n"
        "  bad: {run: exit 1}\n"
        "  after-bad: {run: echo no >> ran.txt, needs: [bad]}\n"
        "  slow-but-fine: {run: sleep 0.2; echo fine >> ran.txt}\n"
    )
    result = cli("run", "w.yaml", "--keep-going", "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "ran.txt").read_text() == "fine\n"
    skipped = [e["task_id"] for e in events(result.stdout) if e["type"] == "WorkflowTaskSkipped"]
    assert skipped == ["after-bad"]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A timed-out command that ignores SIGTERM is SIGKILLed with its background child."""
    fixture("timeout_group_ready.yaml", tmp_path)
    started = time.monotonic()
    result = cli("run", "timeout_group_ready.yaml", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "timed out" in result.stdout
    pids = outputs(tmp_path, "stubborn")
    assert pids.get("trapped") == "yes", "the timeout came before the trap was set"
    assert dead_soon(int(pids["leader"]))
    assert dead_soon(int(pids["child"]))
    (log,) = tmp_path.glob(".trioforge/logs/*/stubborn.log")
    text = log.read_text()
    assert "SIGTERM to process group" in text
    assert "SIGKILL to process group" in text
    assert elapsed < 20


def test_background_child_does_not_outlive_its_task(tmp_path: Path) -> None:
    """`sleep 1000 &` in a command that exits normally is killed with its group."""
    fixture("background.yaml", tmp_path)
    result = cli("run", "background.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert dead_soon(int(outputs(tmp_path, "leaves-a-child")["child"]))


def test_sigint_stops_tasks_runs_compensations_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C once: the running command is stopped, completed tasks compensated, exit 130."""
    fixture("interrupt.yaml", tmp_path)
    process = _start(["run", "interrupt.yaml"], tmp_path)
    try:
        wait_for(tmp_path / "started.txt")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        _reap(process)
    assert process.returncode == 130
    assert (tmp_path / "undone.txt").read_text().split() == ["prepare"]
    assert dead_soon(int(outputs(tmp_path, "wait")["child"]))
    assert "[wait] cancelled" in stdout
    assert "interrupted by SIGINT" in stderr
    assert "Traceback" not in stdout + stderr


def test_second_sigint_kills_at_once(tmp_path: Path) -> None:
    """Ctrl-C twice: a command ignoring SIGTERM is killed now, not after its 30 s grace."""
    fixture("interrupt_twice.yaml", tmp_path)
    process = _start(["run", "interrupt_twice.yaml"], tmp_path)
    try:
        wait_for(tmp_path / "started.txt")
        process.send_signal(signal.SIGINT)
        # Send the second only once the first has been handled (trio merges
        # signals that arrive before the first is read).
        deadline = time.monotonic() + 15
        while "SIGTERM to process group" not in _log(tmp_path, "stubborn"):
            assert time.monotonic() < deadline, "the first SIGINT was never handled"
            time.sleep(0.02)
        time.sleep(0.2)
        assert process.poll() is None  # still waiting out the 30 s grace period
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=15)
        after_second = time.monotonic() - interrupted
    finally:
        _reap(process)
    assert process.returncode == 130
    assert after_second < 10
    assert dead_soon(int(outputs(tmp_path, "stubborn")["leader"]))
    assert not (tmp_path / "undone.txt").exists()
    assert "compensation failed for 'prepare'" in stderr


def _log(folder: Path, task: str) -> str:
    logs = list(folder.glob(f".trioforge/logs/*/{task}.log"))
    return logs[0].read_text() if logs else ""


def test_workflow_timeout_exits_124(tmp_path: Path) -> None:
    """A run that outlasts the workflow's `timeout` exits 124."""
    fixture("workflow_timeout.yaml", tmp_path)
    result = cli("run", "workflow_timeout.yaml", cwd=tmp_path)
    assert result.returncode == 124
    assert "timed out after 0.5s" in result.stderr


def test_validate_reports_every_problem_with_line_and_column(tmp_path: Path) -> None:
    """Every problem of the file comes out at once, as FILE:LINE:COL: message, exit 2."""
    fixture("invalid.yaml", tmp_path)
    result = cli("validate", "invalid.yaml", cwd=tmp_path)
    assert result.returncode == 2
    expected = [
        ("2:1", "unknown key 'max_paralel' in the workflow (did you mean 'max_parallel'?)"),
        ("3:22", "timeout in defaults: '10 minutes' is not a duration"),
        ("6:21", "templates are not expanded in 'run' of task 'lint'"),
        ("10:14", "timeout in task 'build': '5x' is not a duration"),
        ("13:13", "dependency cycle: a -> b -> a"),
        ("18:13", "task 'deploy' needs 'biuld', which is not a task in this file "),
        ("21:11", "names task 'nowhere', which is not a task in this file"),
        ("22:11", "task 'deploy' reads an output of 'a', which is not upstream of it"),
        ("23:3", "duplicate task id 'lint'"),
    ]
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected) + 1
    for line, (where, message) in zip(lines, expected, strict=False):
        assert line.startswith(f"invalid.yaml:{where}: "), line
        assert message in line, line
    assert lines[-1] == "9 problems found"
    assert "(did you mean 'build'?)" in lines[5]


def test_graph_prints_dot_and_mermaid(tmp_path: Path) -> None:
    """`graph` prints the DAG in either format; edges go from a task to what needs it."""
    fixture("graph.yaml", tmp_path)
    dot = cli("graph", "graph.yaml", "--format", "dot", cwd=tmp_path)
    assert dot.returncode == 0
    assert dot.stdout == (
        'digraph "graph-demo" {\n'
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        '  "lint";\n'
        '  "test";\n'
        '  "end";\n'
        '  "lint" -> "end";\n'
        '  "test" -> "end";\n'
        "}\n"
    )
    mermaid = cli("graph", "graph.yaml", "--format", "mermaid", cwd=tmp_path)
    assert mermaid.stdout == (
        'flowchart LR\n  t1["lint"]\n  t2["test"]\n  t3["end"]\n  t1 --> t3\n  t2 --> t3\n'
    )


def test_outputs_reach_later_tasks_through_env_and_argv_only(tmp_path: Path) -> None:
    """An output arrives as a literal value; shell syntax inside it never runs."""
    fixture("outputs.yaml", tmp_path)
    result = cli("run", "outputs.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    evil = "$(touch pwned); touch pwned2"
    assert (tmp_path / "version.txt").read_text() == "v1.2.3\n"
    assert (tmp_path / "evil.txt").read_text() == evil + "\n"
    assert (tmp_path / "argv.txt").read_text() == f"1.2.3|{evil}\n"
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_json_and_audit_log_hold_the_same_events(tmp_path: Path) -> None:
    """--json prints only JSON Lines; --audit-log writes the same events to a file."""
    fixture("release.yaml", tmp_path)
    result = cli("run", "release.yaml", "--json", "--audit-log", "audit/run.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = events(result.stdout)
    written = events((tmp_path / "audit" / "run.jsonl").read_text())
    assert printed == written
    assert printed[0]["type"] == "WorkflowStarted"
    assert printed[-1]["type"] == "WorkflowCompleted"


def test_release_example_runs_with_live_summary(tmp_path: Path) -> None:
    """The documented example runs: plain progress lines, then the summary table."""
    fixture("release.yaml", tmp_path)
    result = cli("run", "release.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[package] ok" in out
    assert "speed-up" in out
    assert "✓ release-checks succeeded" in out
    assert "\x1b[" not in out  # off a terminal: no escape codes
    (log,) = tmp_path.glob(".trioforge/logs/*/package.log")
    assert "building 2.0.1" in log.read_text()


def test_plan_shows_layers_critical_path_and_parallelism(tmp_path: Path) -> None:
    """`plan` runs nothing and shows layers, what runs side by side, and the critical path."""
    fixture("order.yaml", tmp_path)
    result = cli("plan", "order.yaml", "--max-parallel", "8", cwd=tmp_path)
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("order: 5 tasks in 4 layers; up to 2 at once (max_parallel 8")
    assert "layer 3 (2 tasks can run in parallel)" in out
    assert "critical path (4 tasks): fetch -> build -> docs -> release" in out
    assert not (tmp_path / "order.txt").exists()


def _bad_inputs(folder: Path) -> dict[str, Path]:
    files = {
        "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "latin1": "name: caf\xe9\n".encode("latin-1"),
        "deep": b"tasks: " + b"[" * 5000 + b"]" * 5000,
        "bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode()
            for i in range(9)
        )
        + b"tasks: {t: {cmd: *j}}\n",
        "empty": b"",
        "list": b"- just\n- a list\n",
        "syntax": b"tasks:\n  a: {run: [unclosed\n",
    }
    paths = {}
    for name, data in files.items():
        path = folder / f"{name}.yaml"
        path.write_bytes(data)
        paths[name] = path
    paths["missing"] = folder / "missing.yaml"
    return paths


def test_bad_input_gives_a_clear_error_never_a_traceback(tmp_path: Path) -> None:
    """Garbage, bombs, deep nesting and missing files are each one clear error, exit 2."""
    paths = _bad_inputs(tmp_path)
    names = [p.name for p in paths.values()]
    result = cli("validate", *names, ".", cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    messages = {
        "binary": "binary.yaml:3:1: this is a binary file (it contains NUL bytes), not YAML",
        "latin1": "latin1.yaml:1:10: the file is not UTF-8 text (byte 0xe9)",
        "deep": "deep.yaml:1:",
        "bomb": "bomb.yaml:9:4: item 1 of 'cmd' of task 't' must be a single value, not a list",
        "empty": "empty.yaml:1:1: the file is empty",
        "list": "list.yaml:1:1: the workflow must be a mapping",
        "syntax": "syntax.yaml:",
        "missing": "missing.yaml:1:1: cannot read the file: No such file or directory",
        "folder": ".:1:1: cannot read the file: it is a folder, not a regular file",
    }
    for name, message in messages.items():
        assert message in result.stderr, name
    (deep,) = [line for line in result.stderr.splitlines() if line.startswith("deep.yaml")]
    assert "nesting depth" in deep or "nested more than 64 levels" in deep


def test_help_on_every_command_and_version(tmp_path: Path) -> None:
    """--help works on every command and shows examples; --version prints the version."""
    for args in ([], ["run"], ["validate"], ["plan"], ["graph"]):
        result = cli(*args, "--help", cwd=tmp_path)
        assert result.returncode == 0
        assert "examples:" in result.stdout
    version = cli("--version", cwd=tmp_path)
    assert version.stdout.strip() == "trioforge 0.1.0"


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "x.yaml", "--max-parallel", "0"],
        ["run", "x.yaml", "--schedule", "fastest"],
        ["run", "x.yaml", "--timeout", "soon"],
        ["graph", "x.yaml", "--format", "png"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    """A wrong command line exits 2 with a usage message."""
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_stdout_closed_early_keeps_the_exit_status_and_the_headline(tmp_path: Path) -> None:
    """`trioforge run x.yaml | head -1`: still exit 124 and the headline on stderr."""
    fixture("workflow_timeout.yaml", tmp_path)
    process = _start(["run", "workflow_timeout.yaml"], tmp_path)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("run id: ")
        process.stdout.close()  # the reader is gone before the summary is written
        stderr = process.stderr.read() if process.stderr is not None else ""
        process.wait(timeout=30)
    finally:
        _reap(process)
    assert process.returncode == 124, stderr
    assert "timed out after 0.5s" in stderr
    assert "Traceback" not in stderr


def test_an_unwritable_log_folder_is_a_usage_error(tmp_path: Path) -> None:
    """--log-dir where no folder can be made: exit 2 with one line, before any task runs."""
    fixture("parallel.yaml", tmp_path)
    (tmp_path / "a-file").write_text("")
    result = cli("run", "parallel.yaml", "--log-dir", "a-file/logs", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("trioforge: error: cannot write task logs in ")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_json_with_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    """`--json --quiet`: --quiet wins, stdout stays empty."""
    fixture("parallel.yaml", tmp_path)
    result = cli("run", "parallel.yaml", "--json", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
