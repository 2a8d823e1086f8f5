"""The tasks' output on the console: --output stream|grouped|quiet and --tail (issue 14.2)."""

from __future__ import annotations

import time
from pathlib import Path

from cli_helpers import _reap, _start, cli

TWO = """\
name: two
tasks:
  a: {run: "echo a1; sleep 0.2; echo a2; sleep 0.2; echo a3"}
  b: {run: "sleep 0.1; echo b1; sleep 0.2; echo b2; sleep 0.2; echo b3"}
"""


def test_stream_prints_each_line_while_the_task_runs(tmp_path: Path) -> None:
    """`--output stream` shows `t | first` before the task has ended (it waits for a file)."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n  t: {run: 'echo first; while [ ! -f go ]; do sleep 0.05; done; echo second'}\n"
    )
    process = _start(["run", "w.yaml", "--output", "stream", "--no-store"], tmp_path)
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while "t | first" not in seen:
            assert time.monotonic() < deadline
            line = process.stdout.readline()
            assert line, f"the run ended before its first line was shown: {seen}"
            seen.append(line.rstrip("\n"))
        assert not any(line.startswith("[t] ok") for line in seen)
        (tmp_path / "go").touch()
        rest = process.stdout.read().splitlines()
        assert process.wait(timeout=30) == 0
    finally:
        _reap(process)
    assert rest.index("t | second") < rest.index(next(x for x in rest if x.startswith("[t] ok")))


def test_stream_prefixes_every_line_and_never_mixes_two_tasks(tmp_path: Path) -> None:
    """Every task line is `task | text`, whole, with both tasks' lines in their own order."""
    (tmp_path / "w.yaml").write_text(TWO)
    result = cli("run", "w.yaml", "--output", "stream", "--max-parallel", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for task in ("a", "b"):
        own = [line.split(" | ", 1)[1] for line in lines if line.startswith(f"{task} | ")]
        assert [f"{task}1", f"{task}2", f"{task}3"] == [
            x for x in own if x in {f"{task}{n}" for n in (1, 2, 3)}
        ]
    for line in lines:
        assert line.count(" | ") <= 1, line


def test_grouped_is_the_default_off_a_terminal_and_prints_one_block_per_task(
    tmp_path: Path,
) -> None:
    """Without --output and with stdout a pipe, each task's lines come together, once it ended."""
    (tmp_path / "w.yaml").write_text(TWO)
    result = cli("run", "w.yaml", "--max-parallel", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for task in ("a", "b"):
        start = lines.index(next(x for x in lines if x.startswith(f"── {task}: ok")))
        block = [x.strip() for x in lines[start + 1 : start + 5]]
        assert [f"{task}1", f"{task}2", f"{task}3"] == block[1:4]
        assert (
            lines[start + 5 :].index(
                next(x for x in lines[start:] if x.startswith(f"[{task}] ok"))
            )
            >= 0
        )


def test_quiet_output_shows_no_task_output(tmp_path: Path) -> None:
    """`--output quiet` prints the progress lines only, as before."""
    (tmp_path / "w.yaml").write_text(TWO)
    result = cli("run", "w.yaml", "--output", "quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = {line.strip() for line in result.stdout.splitlines()}
    assert not printed & {"a1", "a2", "a3", "b1", "b2", "b3"}  # (a run id may hold "a1")
    assert not any(" | " in line for line in printed)
    assert "[a] ok" in result.stdout


def test_tail_sets_the_failure_excerpt_and_the_log_path_is_printed_once(tmp_path: Path) -> None:
    """`--tail 3` shows the last 3 log lines; the log's path appears once in all the output."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n  t: {run: 'for i in 1 2 3 4 5 6; do echo line$i; done; exit 4'}\n"
    )
    result = cli("run", "w.yaml", "--tail", "3", "--output", "quiet", cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "last 3 lines of the log:" in out
    assert "line6" in out
    assert "line5" not in out
    assert (out + result.stderr).count("t.log") == 1
    none = cli("run", "w.yaml", "--tail", "0", "--output", "quiet", cwd=tmp_path)
    assert "last " not in none.stdout
