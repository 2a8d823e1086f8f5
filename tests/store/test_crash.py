"""SIGKILL at any moment: nothing acknowledged is lost, nothing completed runs twice, no strays.

The real command runs a 32-task DAG; the test SIGKILLs it at random
moments, again and again, resuming each time until the run completes, and
after each kill reads the store through its own connection. Every task
appends ``start ID ATTEMPT`` and ``end ID ATTEMPT`` to ``marker.txt``; some
leave a ``sleep 1000 &`` behind, which must die with trioforge.

The saga tests SIGKILL a Python workflow once its first tasks completed and
resume it in the test's own process: a restored task's compensation sees the
``ctx.state`` it had (or the resume says it cannot).

Linux only, like the guarantee it checks (it reads ``/proc``).
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType

import attrs
import pytest
import trio

import trioforge as tf
import trioforge.store
from trioforge._store._database import SQLiteDatabase

TASKS = 32
SEED = 20240611
MAX_KILLS = 12
PARALLEL = 2
#: Seconds a process may take to die after its trioforge was SIGKILLed.
DEATH_WITHIN = 5.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TRIOFORGE_STORE", None)
    env["NO_COLOR"] = "1"
    return env


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m trioforge ARGS`` with its output (stdout and stderr) in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "trioforge", *args],
            cwd=cwd,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _environ(pid: int) -> list[bytes]:
    try:
        return (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours; a zombie's environment reads as empty
        return []


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def processes_of_run(run_id: str) -> list[int]:
    """Live processes whose environment says they belong to run ``run_id``."""
    marker = f"TRIOFORGE_RUN_ID={run_id}".encode()
    return [pid for pid in _pids() if marker in _environ(pid)]


def watchdog_of(pid: int) -> int | None:
    """The watchdog process of the trioforge process ``pid``, if it is running."""
    for other in _pids():
        try:
            argv = (Path("/proc") / str(other) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            len(argv) > 2
            and argv[-3].endswith(b"_watchdog.py")
            and argv[-2].startswith(f"{pid}:".encode())
        ):
            return other if alive(other) else None
    return None


def processes_of_driver(pid: int) -> list[int]:
    """Live processes started, directly or not, by trioforge process ``pid``, and its watchdog."""
    prefix = f"{pid}:".encode()
    found = [
        other
        for other in _pids()
        for item in _environ(other)
        if item.startswith(b"TRIOFORGE_DRIVER=")
        and any(part.startswith(prefix) for part in item[17:].split(b","))
    ]
    watchdog = watchdog_of(pid)
    return found if watchdog is None else [*found, watchdog]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not reaped, is not)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(condition: Callable[[], object], what: str, within: float = DEATH_WITHIN) -> None:
    """Poll ``condition`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def crash_workflow(folder: Path) -> dict[str, list[str]]:
    """Write ``crash.yaml``: 32 tasks of 50-400 ms, random needs (fixed seed); return the needs.

    At most 2 run at once, so that a run lasts a few seconds and most kills
    land in the middle of it.
    """
    rng = random.Random(SEED)
    needs: dict[str, list[str]] = {}
    text = ["name: crash", f"max_parallel: {PARALLEL}", "tasks:"]
    for i in range(TASKS):
        task = f"t{i:02d}"
        needs[task] = [
            f"t{j:02d}" for j in sorted(rng.sample(range(i), min(i, rng.randint(0, 3))))
        ]
        script = ['echo "start $TRIOFORGE_TASK_ID $TRIOFORGE_ATTEMPT" >> marker.txt']
        if i % 4 == 1:
            script.append("sleep 1000 &")
        script.append(f"sleep {rng.randint(50, 400) / 1000}")
        script.append('echo "end $TRIOFORGE_TASK_ID $TRIOFORGE_ATTEMPT" >> marker.txt')
        text += [f"  {task}:", f"    needs: [{', '.join(needs[task])}]", "    run: |"]
        text += [f"      {line}" for line in script]
    (folder / "crash.yaml").write_text("\n".join(text) + "\n")
    return needs


@attrs.frozen
class Kill:
    """What the store and the marker file held right after one SIGKILL."""

    completed: frozenset[str]
    marker_lines: int
    in_flight: frozenset[str]


def read_store(db: Path) -> tuple[list[str], set[str], str]:
    """The run ids, the completed tasks and ``PRAGMA integrity_check``, on a new connection."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        runs = [row[0] for row in conn.execute("SELECT id FROM runs")]
    finally:
        conn.close()
    store = SQLiteDatabase(db, readonly=True)
    try:
        done = {tid for run in runs for tid in store.load(run, now=0.0).in_state("completed")}
    finally:
        store.close()
    return runs, done, integrity


def marker(folder: Path) -> list[tuple[str, str, int]]:
    """``(start|end, task, attempt)`` for each line of marker.txt."""
    path = folder / "marker.txt"
    text = path.read_text() if path.exists() else ""
    out = []
    for line in text.splitlines():
        kind, task, attempt = line.split()
        out.append((kind, task, int(attempt)))
    return out


def _all_gone(driver: int) -> bool:
    return not processes_of_driver(driver)


def test_sigkill_again_and_again_until_the_run_completes(tmp_path: Path) -> None:
    """Random SIGKILLs, each followed by resume: all ran, nothing recorded ran again, no strays."""
    needs = crash_workflow(tmp_path)
    db = tmp_path / ".trioforge" / "runs.db"
    rng = random.Random(SEED + 1)
    began = time.monotonic()
    run_id: str | None = None
    kills: list[Kill] = []
    invocations = 0
    while True:
        invocations += 1
        args = ["run", "crash.yaml", "--json"] if run_id is None else ["resume", run_id, "--json"]
        process = start(args, tmp_path, tmp_path / "trioforge.log")
        delay = rng.uniform(0.2, 1.2) if len(kills) < MAX_KILLS else 60.0
        try:
            status = process.wait(delay)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        else:
            assert status == 0, (tmp_path / "trioforge.log").read_text()
            break
        # Whatever it had started dies with it, background children included.
        wait_until(partial(_all_gone, process.pid), "the killed run's processes")
        runs, completed, integrity = read_store(db) if db.exists() else ([], set(), "ok")
        assert integrity == "ok"
        assert len(runs) <= 1
        run_id = runs[0] if runs else None
        if run_id is not None:
            assert not processes_of_run(run_id)
        lines = marker(tmp_path)
        started = {task for kind, task, _ in lines if kind == "start"}
        # Acknowledged completions are durable: a task only starts once its needs are stored.
        for task in started:
            assert set(needs[task]) <= completed, (task, needs[task], completed)
        kills.append(Kill(frozenset(completed), len(lines), frozenset(started - completed)))
    elapsed = time.monotonic() - began
    lines = marker(tmp_path)
    assert run_id is not None
    # Every task ran to its end.
    assert {task for kind, task, _ in lines if kind == "end"} == set(needs)
    # No task recorded as completed before a kill started again after it.
    for kill in kills:
        again = {task for kind, task, _ in lines[kill.marker_lines :] if kind == "start"}
        assert not (again & kill.completed), again & kill.completed
    # A task that runs again sees a higher TRIOFORGE_ATTEMPT every time.
    attempts: dict[str, list[int]] = {}
    for kind, task, attempt in lines:
        if kind == "start":
            attempts.setdefault(task, []).append(attempt)
    for task, seen in attempts.items():
        assert seen == sorted(set(seen)), (task, seen)
    runs, completed, integrity = read_store(db)
    assert (runs, completed, integrity) == ([run_id], set(needs), "ok")
    assert not processes_of_run(run_id)
    # The kills landed at meaningful moments: some with work done, some with tasks in flight.
    assert len(kills) >= 3
    assert any(kill.completed for kill in kills)
    assert any(kill.in_flight for kill in kills)
    print(
        f"\ncrash test: {len(kills)} kills, {invocations} invocations, "
        f"{sum(kind == 'start' for kind, _, _ in lines)} task starts for {TASKS} tasks, "
        f"{elapsed:.1f}s; completed/in flight at each kill: "
        + ", ".join(f"{len(k.completed)}/{len(k.in_flight)}" for k in kills)
    )


BACKGROUND = """\
name: background
tasks:
  lingers:
    run: |
      sleep 1000 &
      echo "$! $$" > pids.txt
      sleep 1000
"""


def _pids_of_task(folder: Path) -> list[int]:
    wait_until(
        lambda: (folder / "pids.txt").exists() and (folder / "pids.txt").read_text(), "pids"
    )
    return [int(p) for p in (folder / "pids.txt").read_text().split()]


def test_sigkill_of_trioforge_kills_its_task_processes(tmp_path: Path) -> None:
    """SIGKILL of trioforge: the task's command and its background child die too, at once."""
    (tmp_path / "background.yaml").write_text(BACKGROUND)
    process = start(["run", "background.yaml"], tmp_path, tmp_path / "trioforge.log")
    try:
        child, leader = _pids_of_task(tmp_path)
        assert alive(child)
        assert alive(leader)
        process.kill()
        process.wait()
        wait_until(lambda: not alive(child) and not alive(leader), "the task's processes to die")
        wait_until(lambda: not processes_of_driver(process.pid), "the watchdog to exit")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _marker_of_this_process() -> str:
    stat = Path("/proc/self/stat").read_text()
    return f"{os.getpid()}:{stat.rsplit(')', 1)[1].split()[19]}"


def test_resume_kills_what_a_dead_trioforge_left_and_nothing_else(tmp_path: Path) -> None:
    """With its watchdog killed too, a run's processes survive it; resume kills them, only them."""
    (tmp_path / "background.yaml").write_text(BACKGROUND)
    process = start(["run", "background.yaml"], tmp_path, tmp_path / "trioforge.log")
    bystanders: list[subprocess.Popen[bytes]] = []
    try:
        child, leader = _pids_of_task(tmp_path)
        watchdog = watchdog_of(process.pid)
        assert watchdog is not None
        os.kill(watchdog, 9)
        wait_until(lambda: not alive(watchdog), "the watchdog to die")
        process.kill()
        process.wait()
        time.sleep(0.3)
        assert alive(child)  # nothing was left to clean up after trioforge
        assert alive(leader)
        (run_id,) = read_store(tmp_path / ".trioforge" / "runs.db")[0]
        assert set(processes_of_run(run_id)) >= {child, leader}
        # Never touched: another run's process, and this run's process under a live driver.
        for claimed_run, driver in (("another-run", "1:1"), (run_id, _marker_of_this_process())):
            env = {**_env(), "TRIOFORGE_RUN_ID": claimed_run, "TRIOFORGE_DRIVER": driver}
            bystanders.append(subprocess.Popen(["sleep", "1000"], env=env))
        resumed = start(["resume", run_id], tmp_path, tmp_path / "resume.log")
        try:
            wait_until(lambda: not alive(child) and not alive(leader), "the leftovers to die")
            # The script's shell, its background sleep and its foreground sleep.
            wait_until(
                lambda: "killed 3 leftover process(es)" in (tmp_path / "resume.log").read_text(),
                "the resume to say what it killed",
            )
            assert all(alive(b.pid) for b in bystanders)
        finally:
            resumed.kill()
            resumed.wait()
    finally:
        for proc in (process, *bystanders):
            if proc.poll() is None:
                proc.kill()
            proc.wait()


SAGA = textwrap.dedent(
    """
    import os
    import sys

    import trio

    import trioforge as tf
    import trioforge.store
    from trioforge.combinators import FallbackTask

    CALLS = []
    UNDONE = []


    class PrimaryDown(Exception):
        pass


    async def primary(ctx):
        CALLS.append("primary")
        raise PrimaryDown("primary is down", ctx.attempt)


    async def undo_primary(ctx):
        UNDONE.append(("primary", ctx.attempt, dict(ctx.state)))


    async def backup(ctx):
        CALLS.append("backup")
        ctx.state["vm"] = f"backup-vm-{ctx.attempt}"
        return "on backup"


    async def undo_backup(ctx):
        UNDONE.append(("backup", ctx.attempt, ctx.state["vm"]))


    async def ledger(ctx):
        CALLS.append("ledger")
        ctx.state["entry"] = 42
        ctx.state["handle"] = object()  # not JSON: this state cannot be stored
        return "booked"


    async def undo_ledger(ctx):
        UNDONE.append(("ledger", ctx.attempt, dict(ctx.state)))


    async def notify(ctx):
        if os.environ.get("SAGA_PHASE") == "crash":
            print("ready", flush=True)  # deploy and ledger are durable: kill me now
            await trio.sleep_forever()
        raise RuntimeError("notify failed")


    def workflow():
        wf = tf.Workflow("saga")
        deploy = FallbackTask(
            "deploy",
            tf.Task("primary", primary, compensate=undo_primary),
            tf.Task("backup", backup, compensate=undo_backup),
            retries=1,
        )
        wf.add_task(deploy)
        wf.add_task(tf.Task("ledger", ledger, compensate=undo_ledger))
        wf.add_task(tf.Task("notify", notify, depends_on=["deploy", "ledger"]))
        return wf


    async def main(path):
        async with tf.store.SQLiteRunStore(path) as store:
            await tf.WorkflowExecutor(workflow(), store=store).execute_dataflow()
    """
)


@pytest.fixture
def saga(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The saga workflow's module, written to ``tmp_path`` and imported from there."""
    (tmp_path / "saga_flow.py").write_text(SAGA)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "saga_flow", raising=False)
    import saga_flow  # type: ignore[import-not-found]

    yield saga_flow
    sys.modules.pop("saga_flow", None)


#: The child's program: run the saga, recording to the store named by its argument.
_RUN_SAGA = "import sys, trio, saga_flow; trio.run(saga_flow.main, sys.argv[1])"


def crash_saga(folder: Path) -> tuple[Path, str]:
    """Run the saga in a child process and SIGKILL it once deploy and ledger completed.

    Returns the store and the run id.
    """
    db = folder / "runs.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _RUN_SAGA, str(db)],
        cwd=folder,
        env={**_env(), "SAGA_PHASE": "crash"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    runs, completed, integrity = read_store(db)
    assert (len(runs), completed, integrity) == (1, {"deploy", "ledger"}, "ok")
    return db, runs[0]


async def resume_saga(saga: ModuleType, db: Path, run_id: str) -> list[tf.AuditEvent]:
    """Resume the saga in this process (notify fails now, so it rolls back); return its events."""
    async with tf.store.SQLiteRunStore(db) as store:
        executor = tf.WorkflowExecutor(saga.workflow(), store=store)
        with pytest.raises(tf.TaskFailedError, match="notify"):
            await executor.resume(run_id)
        assert await store.load_events(run_id) != []
    return executor.audit_log.events


def test_sigkill_then_resume_compensates_the_fallback_branch_that_ran(
    saga: ModuleType, tmp_path: Path
) -> None:
    """A FallbackTask restored after a crash is rolled back by compensating its fallback, only."""
    db, run_id = crash_saga(tmp_path)
    trio.run(resume_saga, saga, db, run_id)
    # deploy is not run again: its result and state come from the store.
    assert saga.CALLS == []
    # The fallback ran on the last attempt (2), so it is what gets compensated.
    assert ("backup", 2, "backup-vm-2") in saga.UNDONE
    assert [u for u in saga.UNDONE if u[0] == "primary"] == []


def test_a_state_that_could_not_be_stored_is_named_by_show_and_resume(
    saga: ModuleType, tmp_path: Path
) -> None:
    """A restored task whose ctx.state was not JSON: `show` and the resumed run both say so."""
    db, run_id = crash_saga(tmp_path)
    shown = subprocess.run(
        [sys.executable, "-m", "trioforge", "show", run_id, "--store", str(db)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "ctx.state not restorable: ledger (" in shown.stdout
    events = trio.run(resume_saga, saga, db, run_id)
    started = [e for e in events if e.type == tf.EventType.WORKFLOW_STARTED]
    assert [e.detail for e in started] == [
        "saga (resumed; 2 tasks restored; ctx.state not restorable for ledger: "
        "a rollback compensates them with an empty state)"
    ]
    # What the task remembered is gone: its compensation gets an empty state.
    assert ("ledger", 1, {}) in saga.UNDONE
