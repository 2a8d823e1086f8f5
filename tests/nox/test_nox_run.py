"""Running nox sessions as a workflow with a real nox: order, failures, timeouts, envdirs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from cli_helpers import alive

import trioforge as tf
from trioforge._nox import (
    NoxInterpreter,
    NoxSessionError,
    NoxSessionResult,
    NoxSessionTask,
    Spares,
    build_workflow,
    parse_retries,
    parse_timeouts,
    probe_graph,
    session_pools,
)

Project = Callable[[str], Path]

FIXTURES = Path(__file__).parent / "fixtures"


def times(out: Path, name: str) -> dict[str, float]:
    data: dict[str, float] = json.loads((out / f"{name}.json").read_text())
    return data


async def run(
    folder: Path,
    sessions: Sequence[str],
    interpreter: NoxInterpreter,
    out: Path,
    **options: Any,
) -> tuple[tf.WorkflowExecutor, tf.WorkflowResult | tf.TaskFailedError]:
    """Probe ``sessions``, build the workflow, run it like trioforge nox (continue-independent)."""
    await trio.Path(out).mkdir(exist_ok=True)
    graph = await probe_graph(sessions=sessions, cwd=folder, interpreter=interpreter)
    workflow = build_workflow(
        graph,
        report_dir=out / "reports",
        log_dir=out / "logs",
        env={"NOX_TEST_OUT": str(out)},
        **options,
    )
    executor = tf.WorkflowExecutor(
        workflow,
        failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT,
        resources=session_pools(graph),
    )
    try:
        return executor, await executor.execute_dataflow()
    except tf.TaskFailedError as exc:
        return executor, exc


async def test_diamond_runs_left_and_right_together_after_prep(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """-s join: left and right overlap, both after prep, and join after both (1 s each)."""
    _executor, result = await run(project("diamond"), ["join"], interpreter, tmp_path / "out")
    assert isinstance(result, tf.WorkflowResult)
    prep, left, right, join = (
        times(tmp_path / "out", name) for name in ("prep", "left", "right", "join")
    )
    assert (left["start"] >= prep["end"], right["start"] >= prep["end"]) == (True, True)
    assert (left["start"] < right["end"], right["start"] < left["end"]) == (True, True)
    assert join["start"] >= max(left["end"], right["end"])
    assert {name: r.status for name, r in result.results.items()} == dict.fromkeys(
        ("prep", "left", "right", "join"), "success"
    )


async def test_failure_aborts_only_what_requires_it(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """A failed bad: other still runs, after_bad never starts, and bad's log has nox's error."""
    out = tmp_path / "out"
    _executor, result = await run(project("diamond"), ["after_bad", "other"], interpreter, out)
    assert isinstance(result, tf.TaskFailedError)
    error = result.failures["bad"]
    assert isinstance(error, NoxSessionError)
    assert (list(result.failures), result.skipped, result.completed) == (
        ["bad"],
        ["after_bad"],
        ["other"],
    )
    assert (error.status, error.returncode) == ("failed", 1)
    assert (out / "other.json").exists()
    assert not (out / "after_bad.json").exists()
    assert "bad is broken" in error.log_path.read_text()


async def test_retries_rerun_a_failed_session(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """--retries bad=1: bad runs twice, each attempt with its own report, one log."""
    out = tmp_path / "out"
    executor, result = await run(
        project("diamond"), ["bad"], interpreter, out, retries=parse_retries(["b*=1"])
    )
    assert isinstance(result, tf.TaskFailedError)
    failed = executor.audit_log.of_type(tf.EventType.TASK_FAILED)
    assert [event.attempt for event in failed] == [1, 2]
    reports = sorted(path.name for path in (out / "reports").rglob("*.json"))
    assert reports == ["bad.1.json", "bad.2.json"]
    log = next((out / "logs").rglob("bad.log")).read_text()
    assert log.count("[trioforge] run attempt") == 2


def spares_for(folder: Path, out: Path, warm: bool) -> Spares | None:
    """One warm nox interpreter for ``run`` in ``folder`` (env as ``run`` sets it), if ``warm``."""
    if not warm:
        return None
    spares = Spares(sys.executable, folder, env={**os.environ, "NOX_TEST_OUT": str(out)})
    spares.plan(limit=1, sessions=1)
    spares.fill()
    return spares


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
async def test_hanging_session_and_its_children_die_at_the_timeout(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path, warm: bool
) -> None:
    """--timeout 1: a session whose shell and background child ignore SIGTERM are all killed."""
    out = tmp_path / "out"
    folder = project("diamond")
    spares = spares_for(folder, out, warm)
    started = trio.current_time()
    try:
        _executor, result = await run(
            folder,
            ["hang"],
            interpreter,
            out,
            timeouts=parse_timeouts(["1"]),
            grace_period=0.5,
            spares=spares,
        )
    finally:
        if spares is not None:
            spares.close()
    assert spares is None or spares.handed == 1
    elapsed = trio.current_time() - started
    assert isinstance(result, tf.TaskFailedError)
    assert isinstance(result.failures["hang"], tf.TaskTimeoutError)
    pids = [int(line) for line in (out / "pids").read_text().split()]
    # SIGKILL was sent when the run ended; a killed process may take a moment to go.
    with trio.move_on_after(2):
        while any(map(alive, pids)):  # noqa: ASYNC110 - nothing to wait on but /proc
            await trio.sleep(0.02)
    assert (len(pids), [pid for pid in pids if alive(pid)]) == (3, [])
    assert elapsed < 6


async def test_sessions_sharing_an_envdir_never_overlap(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """The sessions same and Same share nox's envdir: they run one after the other."""
    out = tmp_path / "out"
    _executor, result = await run(project("diamond"), ["same", "Same"], interpreter, out)
    assert isinstance(result, tf.WorkflowResult)
    first, second = sorted(
        (times(out, "same"), times(out, "Same-upper")), key=lambda t: t["start"]
    )
    assert second["start"] >= first["end"]


async def test_skipped_session_is_a_result_and_its_dependents_run(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """A skip by nox (exit status 0) is recorded as skipped, and what requires it runs."""
    _executor, result = await run(project("graph"), ["after_skip"], interpreter, tmp_path / "out")
    assert isinstance(result, tf.WorkflowResult)
    skipper: NoxSessionResult = result.results["skipper"]
    assert (skipper.status, skipper.reason, result.results["after_skip"].status) == (
        "skipped",
        "nothing to do here",
        "success",
    )


async def test_real_venv_session(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path
) -> None:
    """A venv-backend session runs its commands with the virtualenv nox made in its envdir."""
    folder = project("venv")
    out = tmp_path / "out"
    _executor, result = await run(folder, ["real"], interpreter, out)
    assert isinstance(result, tf.WorkflowResult)
    assert (out / "real.txt").read_text() == str(folder / ".nox" / "real")


@pytest.mark.parametrize("respect", [True, False])
async def test_respect_allow_parallel_marks_exclusive_sessions(
    project: Project, interpreter: NoxInterpreter, respect: bool
) -> None:
    """With respect_allow_parallel, sessions without allow_parallel run alone; otherwise none."""
    graph = await probe_graph(sessions=["docs"], cwd=project("graph"), interpreter=interpreter)
    workflow = build_workflow(graph, report_dir="r", log_dir="l", respect_allow_parallel=respect)
    alone = {
        tid: task.alone for tid, task in workflow.tasks.items() if isinstance(task, NoxSessionTask)
    }
    expected = {"lint": respect, "build(x=2)": respect, "docs": False}
    assert alone == expected


async def _wait_for_lines(path: trio.Path, count: int) -> None:
    """Return once the file ``path`` has ``count`` lines (the session writes it)."""
    while not await path.exists() or len((await path.read_text()).split()) < count:  # noqa: ASYNC110
        await trio.sleep(0.02)


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
async def test_cancelled_run_leaves_no_process(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path, warm: bool
) -> None:
    """Cancelling the run from outside (what Ctrl-C does) kills the session's whole group."""
    out = tmp_path / "out"
    await trio.Path(out).mkdir()
    folder = project("diamond")
    spares = spares_for(folder, out, warm)
    graph = await probe_graph(sessions=["hang"], cwd=folder, interpreter=interpreter)
    workflow = build_workflow(
        graph,
        report_dir=out / "reports",
        log_dir=out / "logs",
        env={"NOX_TEST_OUT": str(out)},
        grace_period=0.5,
        spares=spares,
    )
    pids_file = trio.Path(out / "pids")
    with trio.move_on_after(10) as scope:
        async with trio.open_nursery() as nursery:
            executor = tf.WorkflowExecutor(workflow, resources=session_pools(graph))
            nursery.start_soon(executor.execute_dataflow)
            await _wait_for_lines(pids_file, 3)
            nursery.cancel_scope.cancel(reason="like Ctrl-C")
    pids = [int(line) for line in (await pids_file.read_text()).split()]
    with trio.move_on_after(2):
        while any(map(alive, pids)):  # noqa: ASYNC110 - nothing to wait on but /proc
            await trio.sleep(0.02)
    if spares is not None:
        spares.close()
        assert spares.handed == 1
    assert (scope.cancelled_caught, [pid for pid in pids if alive(pid)]) == (False, [])
