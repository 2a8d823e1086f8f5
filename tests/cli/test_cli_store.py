"""Durable runs from the command line: run ids, resume, refusals, runs, show and report.

Every test runs the real ``trioforge`` command in subprocesses, in a fresh
folder, so the store is the default ``.trioforge/runs.db`` unless it says
otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent.parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"
RESUME_HINT = re.compile(r"^trioforge: to resume this run: (.+)$", re.MULTILINE)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    env.pop("FORCE_COLOR", None)
    env.pop("TRIOFORGE_STORE", None)
    env.update(extra)
    return env


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trioforge ARGS`` in ``cwd`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "trioforge", *args],
        cwd=cwd,
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m trioforge ARGS`` in ``cwd``; its output goes to files in ``cwd``."""
    with (cwd / "started.out").open("w") as out, (cwd / "started.err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "trioforge", *args],
            cwd=cwd,
            env=_env(),
            stdout=out,
            stderr=err,
            text=True,
        )


def finish(process: subprocess.Popen[str], timeout: float = 30) -> int:
    """Wait for ``process`` to exit (killing it if it does not) and return its status."""
    try:
        return process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def fixture(name: str, folder: Path) -> Path:
    """Copy a fixture into ``folder`` and return the copy."""
    return Path(shutil.copy(FIXTURES / name, folder / name))


def run_id_in(text: str) -> str:
    """The id of the ``run id: ID`` line in a command's output."""
    match = re.search(r"^run id: (\S+)$", text, re.MULTILINE)
    assert match is not None, text
    return match.group(1)


def show(run_id: str, cwd: Path, *extra: str) -> dict[str, Any]:
    """``trioforge show RUN_ID --json``, parsed."""
    result = cli("show", run_id, "--json", *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def states(run: dict[str, Any]) -> dict[str, str]:
    return {task["id"]: task["state"] for task in run["tasks"]}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_until(condition: Any, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_run_prints_its_id_and_runs_lists_it_newest_first(tmp_path: Path) -> None:
    """`run` prints `run id: ID` (on stderr with --json); `runs --json` lists runs newest first."""
    (tmp_path / "w.yaml").write_text("name: tiny\ntasks:\n  only: {run: 'true'}\n")
    first = cli("run", "w.yaml", cwd=tmp_path)
    second = cli("run", "w.yaml", "--json", cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    first_id = run_id_in(first.stdout)
    second_id = run_id_in(second.stderr)
    assert all(json.loads(line) for line in second.stdout.splitlines())  # stdout: JSON only
    listed = cli("runs", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["id"] for r in runs] == [second_id, first_id]
    assert set(runs[0]) == {"id", "workflow", "status", "started_at", "finished_at"}
    assert (runs[0]["workflow"], runs[0]["status"]) == ("tiny", "completed")
    assert runs[0]["finished_at"] >= runs[0]["started_at"]
    assert [
        r["id"] for r in json.loads(cli("runs", "--json", "--limit", "1", cwd=tmp_path).stdout)
    ] == [second_id]
    table = cli("runs", cwd=tmp_path).stdout
    assert first_id in table
    assert "completed" in table
    assert (tmp_path / ".trioforge" / "runs.db").is_file()


def test_resume_after_a_fix_runs_only_the_failed_task_and_its_dependents(tmp_path: Path) -> None:
    """The printed resume command, after the script is fixed, runs `build` and what needs it."""
    project = tmp_path / "project"
    project.mkdir()
    fixture("fixable.yaml", project)
    (project / "build.sh").write_text("echo 'error: broken build' >&2\nexit 1\n")
    failed = cli("run", "project/fixable.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    assert lines(project / "ran.txt") == ["setup 1", "lint 1", "build 1"]
    hint = RESUME_HINT.search(failed.stderr)
    assert hint is not None, failed.stderr
    run_id = run_id_in(failed.stdout)
    # The store is beside the file, not in the current folder, so the command says where.
    assert shlex.split(hint.group(1)) == [
        "trioforge",
        "resume",
        run_id,
        "--store",
        os.path.join("project", ".trioforge", "runs.db"),
    ]
    (project / "build.sh").write_text("exit 0\n")
    resumed = cli(*shlex.split(hint.group(1))[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lines(project / "ran.txt")[3:] == ["build 2", "package 1", "publish 1"]
    assert "ok (before the resume)" in resumed.stdout
    run = show(run_id, tmp_path, "--file", "project/fixable.yaml")
    assert run["status"] == "completed"
    assert {t["id"]: t["attempts"] for t in run["tasks"]} == {
        "setup": 1,
        "lint": 1,
        "build": 2,
        "package": 1,
        "publish": 1,
    }
    again = cli(*shlex.split(hint.group(1))[1:], cwd=tmp_path)
    assert again.returncode == 0
    assert again.stderr == f"trioforge: run {run_id} completed; nothing to resume\n"
    assert len(lines(project / "ran.txt")) == 6


def test_resume_when_the_workflow_file_moved(tmp_path: Path) -> None:
    """A run whose file is gone names it; --file FILE with --force resumes from the new place."""
    fixture("fixable.yaml", tmp_path)
    (tmp_path / "build.sh").write_text("exit 1\n")
    failed = cli("run", "fixable.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    run_id = run_id_in(failed.stdout)
    (tmp_path / "fixable.yaml").rename(tmp_path / "renamed.yaml")
    gone = cli("resume", run_id, cwd=tmp_path)
    assert gone.returncode == 2
    (message,) = gone.stderr.splitlines()
    assert f"was started from {tmp_path / 'fixable.yaml'}, which no longer exists" in message
    (tmp_path / "build.sh").write_text("exit 0\n")
    moved = cli("resume", run_id, "--file", "renamed.yaml", cwd=tmp_path)
    assert moved.returncode == 2
    assert "the workflow's settings or source changed" in moved.stderr
    forced = cli("resume", run_id, "--file", "renamed.yaml", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert lines(tmp_path / "ran.txt")[3:] == ["build 2", "package 1", "publish 1"]


def test_resumed_tasks_get_the_outputs_of_tasks_that_do_not_run_again(tmp_path: Path) -> None:
    """A restored shell task's outputs reach the tasks that run on resume."""
    fixture("outputs_resume.yaml", tmp_path)
    (tmp_path / "broken").touch()
    failed = cli("run", "outputs_resume.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    (tmp_path / "broken").unlink()
    resumed = cli("resume", run_id_in(failed.stdout), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lines(tmp_path / "ran.txt") == ["version 1", "build 1.2.3"]


def test_resume_refuses_a_changed_workflow_file_unless_forced(tmp_path: Path) -> None:
    """Editing the file after the run refuses `resume` (exit 2, one line); --force runs it."""
    fixture("fixable.yaml", tmp_path)
    (tmp_path / "build.sh").write_text("exit 1\n")
    failed = cli("run", "fixable.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    run_id = run_id_in(failed.stdout)
    text = (tmp_path / "fixable.yaml").read_text()
    (tmp_path / "fixable.yaml").write_text(text.replace('"package $', '"package changed $'))
    (tmp_path / "build.sh").write_text("exit 0\n")
    before = lines(tmp_path / "ran.txt")
    refused = cli("resume", run_id, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == ""
    (message,) = refused.stderr.splitlines()
    assert message.startswith(f"trioforge: error: the workflow changed since run '{run_id}'")
    assert "changed: package" in message
    assert "--force" in message
    assert lines(tmp_path / "ran.txt") == before
    forced = cli("resume", run_id, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert lines(tmp_path / "ran.txt")[len(before) :] == [
        "build 2",
        "package changed 1",
        "publish 1",
    ]


def test_after_resume_force_a_plain_resume_of_the_same_file_works(tmp_path: Path) -> None:
    """`resume --force` makes the edited file the run's, so the next `resume` needs no --force."""
    fixture("fixable.yaml", tmp_path)
    (tmp_path / "build.sh").write_text("exit 1\n")
    failed = cli("run", "fixable.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    run_id = run_id_in(failed.stdout)
    text = (tmp_path / "fixable.yaml").read_text()
    (tmp_path / "fixable.yaml").write_text(text.replace('"package $', '"package changed $'))
    forced = cli("resume", run_id, "--force", cwd=tmp_path)
    assert forced.returncode == 1, forced.stderr  # build is still broken
    (tmp_path / "build.sh").write_text("exit 0\n")
    resumed = cli("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert lines(tmp_path / "ran.txt")[-3:] == ["build 3", "package changed 1", "publish 1"]
    assert show(run_id, tmp_path)["status"] == "completed"


def test_a_second_resumer_is_refused_while_the_first_drives(tmp_path: Path) -> None:
    """Two `resume`s of one run: the second exits 2 naming the driver; the first is unharmed."""
    fixture("gate.yaml", tmp_path)
    (tmp_path / "broken").touch()
    failed = cli("run", "gate.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    run_id = run_id_in(failed.stdout)
    (tmp_path / "broken").unlink()
    first = start("resume", run_id, cwd=tmp_path)
    try:
        wait_until((tmp_path / "started").exists, "the first resume to start the gate")
        second = cli("resume", run_id, cwd=tmp_path)
        assert second.returncode == 2
        (message,) = second.stderr.splitlines()
        assert f"trioforge: error: run '{run_id}' is being driven by" in message
        assert "only one process may drive a run" in message
        assert first.poll() is None
        (tmp_path / "go").touch()
        assert finish(first) == 0
    finally:
        finish(first, timeout=0)
    assert lines(tmp_path / "ran.txt") == ["first 1", "gate 2"]


def test_show_during_a_run_lists_the_running_tasks(tmp_path: Path) -> None:
    """From another process, `show` sees the live run: what runs now, what is done, pending."""
    fixture("live.yaml", tmp_path)
    process = start("run", "live.yaml", "--json", cwd=tmp_path)
    try:
        wait_until(lambda: "run id:" in (tmp_path / "started.err").read_text(), "the run id")
        run_id = run_id_in((tmp_path / "started.err").read_text())

        def both_running() -> bool:
            return states(show(run_id, tmp_path)) == {
                "quick": "completed",
                "slow-a": "running",
                "slow-b": "running",
                "after": "pending",
            }

        wait_until(both_running, "show to list slow-a and slow-b as running")
        run = show(run_id, tmp_path)
        assert run["status"] == "running"
        assert set(run) == {"id", "workflow", "status", "tasks"}
        assert set(run["tasks"][0]) == {
            "id",
            "state",
            "attempts",
            "started_at",
            "finished_at",
            "compensated",
        }
        table = cli("show", run_id, cwd=tmp_path)
        assert table.returncode == 0, table.stderr
        assert "2 running now, 1 done, 1 pending" in table.stdout
        assert re.search(r"slow-a\s+… running now\s+1\s+[\d.]+s so far", table.stdout)
        assert "running now: slow-a, slow-b" in table.stdout
        (tmp_path / "go").touch()
        assert finish(process) == 0
    finally:
        finish(process, timeout=0)
    done = cli("show", run_id, cwd=tmp_path).stdout
    assert "4 done, 0 pending" in done
    assert "running now" not in done


def test_report_has_one_bar_per_attempt_and_marks_the_critical_path(tmp_path: Path) -> None:
    """`report -o` writes well-formed HTML: a bar per attempt, the longest chain marked."""
    fixture("report.yaml", tmp_path)
    ran = cli("run", "report.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run_id = run_id_in(ran.stdout)
    written = cli("report", run_id, "-o", "out/report.html", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert f"run {run_id}, 5 tasks, 6 attempts" in written.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    root = ET.fromstring(html)  # well-formed: it parses as XML
    bars = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    attempts = {t["id"]: t["attempts"] for t in show(run_id, tmp_path)["tasks"]}
    assert attempts == {"fetch": 1, "flaky": 2, "long": 1, "short": 1, "finish": 1}
    assert sorted((b.get("data-task"), b.get("data-attempt")) for b in bars) == sorted(
        (task, str(n)) for task, count in attempts.items() for n in range(1, count + 1)
    )
    outcomes = {
        (b.get("data-task"), b.get("data-attempt")): b.get("class", "").split()[1] for b in bars
    }
    assert outcomes[("flaky", "1")] == "failed"
    assert outcomes[("flaky", "2")] == "completed"
    critical = {b.get("data-task") for b in bars if "critical" in b.get("class", "").split()}
    assert critical == {"fetch", "long", "finish"}
    (chain,) = [p for p in root.iter("p") if p.get("class") == "critical-path"]
    assert [c.text for c in chain.iter("code")] == ["fetch", "long", "finish"]
    to_stdout = cli("report", run_id, "-o", "-", cwd=tmp_path)
    # The same page, but for the log links: relative to the current folder, not to out/.
    assert to_stdout.stdout == html.replace("../.trioforge/logs/", ".trioforge/logs/")


def test_an_interrupted_run_prints_its_resume_command_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C: exit 130 with the resume command; resuming runs the interrupted task, attempt 2."""
    fixture("gate.yaml", tmp_path)
    process = start("run", "gate.yaml", cwd=tmp_path)
    try:
        wait_until((tmp_path / "started").exists, "the gate to start")
        process.send_signal(signal.SIGINT)
        assert finish(process) == 130
    finally:
        finish(process, timeout=0)
    stderr = (tmp_path / "started.err").read_text()
    run_id = run_id_in((tmp_path / "started.out").read_text())
    hint = RESUME_HINT.search(stderr)
    assert hint is not None, stderr
    assert hint.group(1) == f"trioforge resume {run_id}"
    (tmp_path / "go").touch()
    resumed = cli("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert lines(tmp_path / "ran.txt") == ["first 1", "gate 1", "gate 2"]


def test_store_location_options_and_no_store(tmp_path: Path) -> None:
    """--store and TRIOFORGE_STORE choose the store of every command; --no-store records none."""
    (tmp_path / "w.yaml").write_text("tasks:\n  only: {run: 'true'}\n")
    explicit = cli("run", "w.yaml", "--store", "custom/store.db", cwd=tmp_path)
    assert explicit.returncode == 0, explicit.stderr
    assert (tmp_path / "custom" / "store.db").is_file()
    assert not (tmp_path / ".trioforge" / "runs.db").exists()
    run_id = run_id_in(explicit.stdout)
    assert show(run_id, tmp_path, "--store", "custom/store.db")["status"] == "completed"
    env = _env(TRIOFORGE_STORE=str(tmp_path / "env.db"))
    from_env = cli("run", "w.yaml", cwd=tmp_path, env=env)
    assert from_env.returncode == 0, from_env.stderr
    listed = json.loads(cli("runs", "--json", cwd=tmp_path, env=env).stdout)
    assert [r["id"] for r in listed] == [run_id_in(from_env.stdout)]
    nothing = cli("run", "w.yaml", "--no-store", cwd=tmp_path)
    assert nothing.returncode == 0, nothing.stderr
    assert not (tmp_path / ".trioforge" / "runs.db").exists()


def test_store_problems_are_one_clear_line(tmp_path: Path) -> None:
    """No store, unknown run, run without a file, corrupt store: one line each, no traceback."""
    (tmp_path / "w.yaml").write_text("tasks:\n  only: {run: 'true'}\n")
    for args in (
        ["runs"],
        ["show", "nope"],
        ["report", "nope", "-o", "r.html"],
        ["resume", "nope"],
    ):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        (message,) = result.stderr.splitlines()
        assert message.startswith("trioforge: error: no run store at .trioforge/runs.db"), message
        assert "--store PATH" in message
    assert not (tmp_path / ".trioforge").exists()  # reading never creates a store
    assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    for args in (["show", "nope"], ["report", "nope", "-o", "r.html"], ["resume", "nope"]):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        db = tmp_path / ".trioforge" / "runs.db"
        assert result.stderr.splitlines() == [
            f"trioforge: error: no run 'nope' in the run store {db}"
        ]
    # A run recorded by the library has no workflow file to resume from.
    definition = json.dumps({"name": "lib", "tasks": []})
    with sqlite3.connect(tmp_path / ".trioforge" / "runs.db") as conn:
        conn.execute(
            "INSERT INTO runs (id, workflow, definition_hash, definition, status, started_at) "
            "VALUES ('lib-1', 'lib', 'sha256:x', '', 'failed', 1)",
        )
        conn.execute("INSERT INTO definitions VALUES ('lib-1', ?)", (definition,))
    conn.close()
    result = cli("resume", "lib-1", cwd=tmp_path)
    assert result.returncode == 2
    assert "was not started by `trioforge run`" in result.stderr
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 100)
    result = cli("run", "w.yaml", "--store", "bad.db", cwd=tmp_path)
    assert result.returncode == 1
    (message,) = result.stderr.splitlines()
    assert message.startswith("trioforge: error: cannot open the run store bad.db: ")
    assert "--no-store" in message
    result = cli("runs", "--store", "bad.db", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "trioforge: error: cannot read the run store bad.db: file is not a database"
    ]


def test_help_of_the_store_commands(tmp_path: Path) -> None:
    """resume, runs, show and report have --help with examples; report needs -o."""
    for command in ("resume", "runs", "show", "report"):
        result = cli(command, "--help", cwd=tmp_path)
        assert result.returncode == 0
        assert "examples:" in result.stdout
    missing = cli("report", "some-run", cwd=tmp_path)
    assert missing.returncode == 2
    assert "-o/--output" in missing.stderr
    both = cli("run", "w.yaml", "--store", "x.db", "--no-store", cwd=tmp_path)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
