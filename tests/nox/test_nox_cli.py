"""``trioforge nox`` end to end with a real nox: the issue's "done when", resume, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import alive, dead_soon, wait_for

import trioforge as trioforge_package

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding the diamond fixture as its noxfile.py, and an out/ folder for the times."""
    shutil.copyfile(FIXTURES / "diamond.py", tmp_path / "noxfile.py")
    (tmp_path / "out").mkdir()
    return tmp_path


def env(folder: Path) -> dict[str, str]:
    """The environment of a run: this trioforge; the tests' nox first on PATH; out/ for times."""
    here = str(Path(trioforge_package.__file__).parent.parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    bin_path = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    return {
        **os.environ,
        "PATH": bin_path,
        "PYTHONPATH": path,
        "NOX_TEST_OUT": str(folder / "out"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def trioforge(folder: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trioforge ARGS`` in ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "trioforge", *args],
        cwd=folder,
        env=env(folder),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def times(folder: Path, name: str) -> dict[str, float]:
    data: dict[str, float] = json.loads((folder / "out" / f"{name}.json").read_text())
    return data


def run_id(stdout: str) -> str:
    match = re.search(r"^run id: (\S+)$", stdout, re.MULTILINE)
    assert match is not None, stdout
    return match.group(1)


def test_diamond_overlaps_left_and_right_and_keeps_pace_with_nox_j(project: Path) -> None:
    """-s join: left and right overlap after prep, join after both; nox -j's pace bar imports."""
    started = time.monotonic()
    result = trioforge(project, "nox", "-s", "join", "-j", "4")
    ours = time.monotonic() - started
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("run id: nox-")
    prep, left, right, join = (times(project, s) for s in ("prep", "left", "right", "join"))
    assert min(left["start"], right["start"]) >= prep["end"]
    assert (left["start"] < right["end"], right["start"] < left["end"]) == (True, True)
    assert join["start"] >= max(left["end"], right["end"])
    started = time.monotonic()
    nox = subprocess.run(
        [sys.executable, "-m", "nox", "-j", "auto", "--allow-parallel", "-s", "join"],
        cwd=project,
        env=env(project),
        capture_output=True,
        check=False,
        timeout=90,
    )
    theirs = time.monotonic() - started
    assert nox.returncode == 0
    # The same three waves. On an idle machine trioforge nox is as fast or
    # faster (warm interpreters; benchmarks/nox_bench.py measures it, speed
    # belongs there); the slack is for a loaded CI machine, where the first
    # wave waits on trioforge's own imports (up to 1.1 s seen; docs/nox.rst).
    assert ours <= theirs + 1.5


def test_the_noxfile_is_probed_once_then_loaded_by_each_session(project: Path) -> None:
    """The probe started before the imports is the one used: two loads for one session."""
    loads = project / "loads.txt"
    result = subprocess.run(
        [sys.executable, "-m", "trioforge", "nox", "-s", "prep", "--no-store"],
        cwd=project,
        env={**env(project), "NOX_TEST_LOADS": str(loads)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert len(loads.read_text().split()) == 2


def test_failure_aborts_dependents_then_resume_runs_only_what_must(project: Path) -> None:
    """-s after_bad other exits 1 (other done, after_bad never ran); resume runs bad, after_bad."""
    first = trioforge(project, "nox", "-s", "after_bad", "other")
    assert first.returncode == 1
    out = project / "out"
    assert sorted(p.name for p in out.iterdir()) == ["bad.json", "other.json"]
    rid = run_id(first.stdout)
    assert f"trioforge resume {rid}" in first.stderr
    (out / "fixed").touch()
    (out / "bad.json").unlink()
    (out / "other.json").unlink()
    resumed = trioforge(project, "resume", rid)
    assert (resumed.returncode, resumed.stderr) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == ["after_bad.json", "bad.json", "fixed"]
    shown = trioforge(project, "show", rid, "--json")
    states = {t["id"]: t["state"] for t in json.loads(shown.stdout)["tasks"]}
    assert states == dict.fromkeys(("bad", "after_bad", "other"), "completed")
    report = trioforge(project, "report", rid, "-o", "report.html")
    assert report.returncode == 0
    assert "after_bad" in (project / "report.html").read_text()
    listed = trioforge(project, "runs", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [rid]


def test_resume_refuses_a_changed_noxfile_unless_forced(project: Path) -> None:
    """A noxfile edited after the run: resume exits 2 naming the change; --force resumes."""
    first = trioforge(project, "nox", "-s", "after_bad")
    assert first.returncode == 1
    (project / "out" / "fixed").touch()
    noxfile = project / "noxfile.py"
    noxfile.write_text(noxfile.read_text() + "\n# edited\n")
    refused = trioforge(project, "resume", run_id(first.stdout))
    assert refused.returncode == 2
    assert "changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    forced = trioforge(project, "resume", run_id(first.stdout), "--force")
    assert forced.returncode == 0


def test_timeout_kills_the_session_and_its_children(project: Path) -> None:
    """-s hang --timeout 2: exit 1 within seconds; no process the session started lives on."""
    started = time.monotonic()
    result = trioforge(project, "nox", "-s", "hang", "--timeout", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 15  # 2 s, then SIGTERM and SIGKILL after the 5 s grace (ignored TERM)
    assert "timed out" in result.stdout + result.stderr
    pids = [int(line) for line in (project / "out" / "pids").read_text().split()]
    assert (len(pids), [pid for pid in pids if not dead_soon(pid)]) == (3, [])


def test_ctrl_c_exits_130_with_nothing_left(project: Path) -> None:
    """Ctrl-C during a hanging session: exit 130, and every process it started is gone."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trioforge", "nox", "-s", "hang", "other"],
        cwd=project,
        env=env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = project / "out" / "pids"
    try:
        wait_for(pids_file, within=30)
        deadline = time.monotonic() + 30
        while len(pids_file.read_text().split()) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _out, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    pids = [int(line) for line in pids_file.read_text().split()]
    assert [pid for pid in pids if not dead_soon(pid)] == []
    assert not any(alive(pid) for pid in pids)


def test_broken_noxfile_exits_2_naming_the_file(tmp_path: Path) -> None:
    """A noxfile that raises on import: exit 2, one line naming the file, no traceback."""
    shutil.copyfile(FIXTURES / "broken.py", tmp_path / "noxfile.py")
    result = trioforge(tmp_path, "nox")
    assert result.returncode == 2
    assert "noxfile.py" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".trioforge" / "runs.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nosuch"], "nosuch"),
        (["--timeout", "soon"], "--timeout"),
        (["-s", "other", "--", "--report", "x"], "--report"),
        (["-f", "missing.py"], "missing.py: no such noxfile"),
    ],
)
def test_usage_errors_exit_2(project: Path, args: list[str], message: str) -> None:
    """An unknown session, a bad option, an option trioforge sets, a missing noxfile: exit 2."""
    result = trioforge(project, "nox", *args)
    assert (result.returncode, message in result.stderr) == (2, True), result.stderr
    assert "Traceback" not in result.stderr


def test_pyproject_defaults_and_no_store(project: Path) -> None:
    """[tool.trioforge.nox] timeout applies (the hang dies at 1 s); --no-store records nothing."""
    (project / "pyproject.toml").write_text('[tool.trioforge.nox]\ntimeout = ["hang=1"]\n')
    started = time.monotonic()
    result = trioforge(project, "nox", "-s", "hang", "--no-store", "--retries", "0")
    assert result.returncode == 1
    assert time.monotonic() - started < 12
    assert not (project / ".trioforge" / "runs.db").exists()
    (project / "pyproject.toml").write_text("[tool.trioforge.nox]\nmax-parallel = 0\n")
    bad = trioforge(project, "nox", "-s", "other")
    assert (bad.returncode, "pyproject.toml" in bad.stderr) == (2, True)


def test_stop_on_first_error_stops_the_running_session(project: Path) -> None:
    """-x: bad fails, the hanging session is stopped at once (no timeout given), exit 1."""
    (project / "out" / "bad-after-hang").touch()  # bad fails once hang's command runs
    started = time.monotonic()
    result = trioforge(project, "nox", "-x", "-s", "hang", "bad")
    assert result.returncode == 1
    assert time.monotonic() - started < 30  # hang would run 300 s; its SIGTERM grace is 5 s
    pids = [int(line) for line in (project / "out" / "pids").read_text().split()]
    assert [pid for pid in pids if not dead_soon(pid)] == []


def test_priority_uses_durations_of_earlier_runs(project: Path) -> None:
    """-j 1: the first run goes in nox's order; the next starts the longer session first."""
    first = trioforge(project, "nox", "-s", "other", "prep", "-j", "1")
    assert first.returncode == 0
    assert times(project, "other")["start"] < times(project, "prep")["start"]
    second = trioforge(project, "nox", "-s", "other", "prep", "-j", "1")
    assert second.returncode == 0
    assert times(project, "prep")["start"] < times(project, "other")["start"]


def test_each_session_output_is_one_block(project: Path) -> None:
    """Each finished session's output follows its title as one block; --hide-output omits it."""
    shown = trioforge(project, "nox", "-s", "left", "right", "--no-store")
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    for name in ("left", "right"):
        start = lines.index(f"── {name} (attempt 1) ──")
        assert lines[start + 1] == f"nox > Running session {name}"
        assert any(f"Session {name} was successful" in line for line in lines[start : start + 6])
    hidden = trioforge(project, "nox", "-s", "left", "--no-store", "--hide-output")
    assert (hidden.returncode, "── left" in hidden.stdout) == (0, False)


def test_resume_of_a_nox_run_refuses_options_it_cannot_take(project: Path) -> None:
    """Resume --timeout / --resource / --tail of a nox run: exit 2 naming them; nothing runs."""
    first = trioforge(project, "nox", "-s", "after_bad", "other")
    assert first.returncode == 1
    rid = run_id(first.stdout)
    (project / "out" / "fixed").touch()
    refused = trioforge(project, "resume", rid, "--timeout", "5m")
    assert (refused.returncode, "does not take --timeout for it" in refused.stderr) == (2, True)
    several = trioforge(project, "resume", rid, "--resource", "x=1", "--tail", "3")
    assert (several.returncode, "--resource, --tail" in several.stderr) == (2, True)
    remote = trioforge(project, "resume", rid, "--dask", "tcp://127.0.0.1:1")
    assert (remote.returncode, "does not take --dask for it" in remote.stderr) == (2, True)
    assert not (project / "out" / "after_bad.json").exists()
    resumed = trioforge(project, "resume", rid, "--keep-going", "--max-parallel", "1")
    assert (resumed.returncode, (project / "out" / "after_bad.json").exists()) == (0, True)


def test_resume_rerun_runs_a_completed_session_again(project: Path) -> None:
    """A completed nox run: resume --rerun other runs other again; plain resume runs nothing."""
    first = trioforge(project, "nox", "-s", "other", "prep")
    assert first.returncode == 0
    rid = run_id(first.stdout)
    for name in ("other", "prep"):
        (project / "out" / f"{name}.json").unlink()
    nothing = trioforge(project, "resume", rid)
    assert (nothing.returncode, sorted(p.name for p in (project / "out").iterdir())) == (0, [])
    again = trioforge(project, "resume", rid, "--rerun", "other")
    assert (again.returncode, again.stderr) == (0, "")
    assert sorted(p.name for p in (project / "out").iterdir()) == ["other.json"]


def test_the_command_starts_sessions_in_warm_interpreters(tmp_path: Path) -> None:
    """`trioforge nox` hands each session to a warm nox (its process runs `python -c`).

    A guard for the speed-up: if the command line changed its environment
    between starting the spares and the sessions, no spare would fit and
    every session would silently start as a new process again.
    """
    shutil.copyfile(FIXTURES / "seen.py", tmp_path / "noxfile.py")
    (tmp_path / "out").mkdir()
    result = trioforge(tmp_path, "nox", "-s", "second", "--no-store")
    assert (result.returncode, result.stderr) == (0, "")
    seen = {
        name: json.loads((tmp_path / "out" / f"{name}.json").read_text())
        for name in ("first", "second")
    }
    assert {name: data["warm"] for name, data in seen.items()} == {"first": True, "second": True}
    assert seen["second"]["argv"][1:4] == ["-f", str(tmp_path / "noxfile.py"), "-s"]
