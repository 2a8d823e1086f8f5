"""Warm nox interpreters (``_nox._spares``, ``_warm``): used, faithful, never left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from cli_helpers import dead_soon

import trioforge as tf
from trioforge._nox import (
    NoxInterpreter,
    Spares,
    build_workflow,
    probe_graph,
    session_pools,
)
from trioforge._nox._warm import WarmShellTask

Project = Callable[[str], Path]

# Something idle until killed, leading its own group, whose stdin is a pipe.
_IDLE = "import sys; sys.stdin.read()"
# Something that closed its stdin (a spare that can no longer take an order).
_DEAF = "import os, time; os.close(0); time.sleep(60)"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts by hand; any still running at the end are killed and reaped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdin is not None:
            process.stdin.close()


def _start(code: str, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started.append(process)
    return process


def _nox_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "nox", *args]


def test_take_hands_out_a_live_spare_and_counts_every_session(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """A dead idle spare is reaped and skipped; the live one is handed out; each call counts."""
    spares = Spares(sys.executable, tmp_path)
    spares.plan(limit=4, sessions=3)
    dead = _start("pass", processes)
    dead.wait()
    live = _start(_IDLE, processes)
    spares.keep(dead)
    spares.keep(live)
    env = dict(os.environ)
    assert spares.take(_nox_argv("-s", "a"), env, tmp_path) is live
    assert (len(spares), spares.handed, spares.unlaunched) == (0, 1, 2)
    assert spares.take(_nox_argv("-s", "b"), env, tmp_path) is None  # none idle: start it anew
    assert (spares.handed, spares.unlaunched, spares.wanted()) == (1, 1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"argv": [sys.executable, "-m", "pytest"]},
        {"argv": ["/usr/bin/python3-other", "-m", "nox"]},
        {"env": {"PYTHONPATH": "/elsewhere"}},
        {"cwd": "/"},
    ],
)
def test_a_command_no_spare_fits_starts_fresh_and_closes_the_pool(
    change: dict[str, Any], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Another program, interpreter, environment or folder: no spare, and the idle ones die."""
    spares = Spares(sys.executable, tmp_path)
    spares.plan(limit=4, sessions=5)
    idle = _start(_IDLE, processes)
    spares.keep(idle)
    argv = change.get("argv", _nox_argv("-s", "a"))
    env = {**os.environ, "TRIOFORGE_RUN_ID": "r1", **change.get("env", {})}
    assert spares.take(argv, env, change.get("cwd", tmp_path)) is None
    assert (idle.returncode is not None, len(spares), spares.wanted()) == (True, 0, 0)


def test_trioforge_variables_alone_do_not_stop_a_spare_fitting(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """The per-task TRIOFORGE_* variables differ from the spare's: it still fits."""
    spares = Spares(sys.executable, tmp_path, env={**os.environ, "TRIOFORGE_DRIVER": "1:2"})
    idle = _start(_IDLE, processes)
    spares.keep(idle)
    env = {**os.environ, "TRIOFORGE_RUN_ID": "r1", "TRIOFORGE_TASK_ID": "a"}
    assert spares.take(_nox_argv(), env, tmp_path) is idle


def test_close_kills_and_reaps_idle_spares_and_starts_no_more(tmp_path: Path) -> None:
    """close(): the idle spares (real ones, nox imported or importing) are gone and reaped."""
    spares = Spares(sys.executable, tmp_path)
    spares.plan(limit=2, sessions=9)
    assert spares.fill() == 2
    idle = spares.idle
    spares.close()
    assert [process.returncode is not None for process in idle] == [True, True]
    assert (spares.wanted(), spares.fill(), len(spares)) == (0, 0, 0)
    spares.close()  # idempotent


def test_a_spare_ends_by_itself_when_its_pipe_closes(tmp_path: Path) -> None:
    """A spare whose trioforge is gone (its pipe closed) exits without running anything."""
    spares = Spares(sys.executable, tmp_path)
    process = spares.spawn()
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    spares.close()


def _alone(task: WarmShellTask) -> tf.Workflow:
    workflow = tf.Workflow("w")
    workflow.add_task(task)
    return workflow


def _seen(out: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    return data


async def _run_seen(
    folder: Path, interpreter: NoxInterpreter, out: Path, spares: Spares | None
) -> tf.WorkflowResult:
    graph = await probe_graph(sessions=["second"], cwd=folder, interpreter=interpreter)
    workflow = build_workflow(
        graph,
        report_dir=out / "reports",
        log_dir=out / "logs",
        env={"NOX_TEST_OUT": str(out)},
        spares=spares,
    )
    return await tf.WorkflowExecutor(workflow, resources=session_pools(graph)).execute_dataflow()


async def test_a_session_in_a_spare_sees_what_a_fresh_nox_sees(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """Arguments, __main__, sys.path[0], folder, environment, streams, group: all the same."""
    folder = project("seen")
    out = tmp_path / "out"
    out.mkdir()
    spares = Spares(sys.executable, folder, env={**os.environ, "NOX_TEST_OUT": str(out)})
    spares.plan(limit=2, sessions=2)
    spares.fill()
    try:
        warm_result = await _run_seen(folder, interpreter, out, spares)
    finally:
        spares.close()
    warm = {name: _seen(out, name) for name in ("first", "second")}
    fresh_result = await _run_seen(folder, interpreter, out, None)
    fresh = {name: _seen(out, name) for name in ("first", "second")}
    assert spares.handed == 2
    assert [warm[n]["warm"] for n in warm] + [fresh[n]["warm"] for n in fresh] == [
        True,
        True,
        False,
        False,
    ]
    for name in ("first", "second"):
        a, b = warm[name], fresh[name]
        # Only the run id differs (it is in the --report path).
        for seen in (a, b):
            run_id = seen.pop("run_id")
            seen["argv"] = [arg.replace(run_id, "RUN") for arg in seen["argv"]]
        a.pop("warm"), b.pop("warm")
        assert a == b
        assert (a["stdin_is_null"], a["stdout_is_a_file"], a["stderr_is_stdout"]) == (
            True,
            True,
            True,
        )
        assert (a["own_group"], a["main_name"]) == (True, "__main__")
    for result in (warm_result, fresh_result):
        log = result.results["first"].log_path.read_text()
        assert "hello from first" in log


async def test_a_spare_that_cannot_take_the_order_is_killed_and_the_command_starts_fresh(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """A spare whose pipe is broken: reaped; `python -m nox --version` runs as a new process."""
    spares = Spares(sys.executable, tmp_path)
    spares.plan(limit=1, sessions=1)
    deaf = _start(_DEAF, processes)
    spares.keep(deaf)
    await trio.sleep(0.5)  # let it close its stdin
    task = WarmShellTask(
        "version", _nox_argv("--version"), cwd=tmp_path, log_dir=tmp_path / "logs", spares=spares
    )
    result = await tf.WorkflowExecutor(_alone(task)).execute_dataflow()
    assert result.results["version"].returncode == 0
    assert (deaf.returncode is not None, spares.handed) == (True, 1)
    log = result.results["version"].log_path.read_text()
    assert "2026." in log  # nox's version, from the fresh process


async def test_cancelling_a_session_in_a_spare_kills_its_group(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """A cancelled task whose command runs in a spare: SIGTERM, then the group is gone."""
    spares = Spares(sys.executable, tmp_path)
    spares.plan(limit=1, sessions=1)
    spares.fill()
    script = tmp_path / "noxfile.py"
    pids = tmp_path / "pids"
    script.write_text(
        "import os, subprocess, time\n"
        "import nox\n"
        "@nox.session(venv_backend='none')\n"
        "def hang(session):\n"
        "    child = subprocess.Popen(['sleep', '60'])\n"
        f"    open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "    time.sleep(60)\n"
    )
    task = WarmShellTask(
        "hang",
        _nox_argv("-f", str(script), "-s", "hang"),
        cwd=tmp_path,
        log_dir=tmp_path / "logs",
        grace_period=0.5,
        spares=spares,
    )
    started = time.monotonic()
    with trio.move_on_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tf.WorkflowExecutor(_alone(task)).execute_dataflow)
            while not pids.exists() or len(pids.read_text().split()) < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel(reason="like Ctrl-C")
    spares.close()
    nox_pid, child_pid = map(int, pids.read_text().split())
    assert spares.handed == 1
    assert time.monotonic() - started < 15
    assert [dead_soon(pid) for pid in (nox_pid, child_pid)] == [True, True]
