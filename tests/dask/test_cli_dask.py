"""``trioforge run FILE --dask ADDRESS``: a workflow file's shell commands on a real LocalCluster.

The command line runs in a subprocess (as in the other CLI tests) and
reaches the module's cluster by its scheduler's address. A command proves
where it ran by writing its parent's pid: on the cluster, that is a worker
process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import _env, _reap, _start, cli, dead_soon, outputs
from distributed import Client, LocalCluster

from trioforge._workflow_file import DaskSettings, WorkflowFileError, load_workflow_file

#: Records the command's pid and its background child's, then waits for the child.
SLEEPER = "echo $$ > pids; sleep 30 & echo $! >> pids; echo $PPID > sleeper.parent; wait"
#: An address where nothing listens (port 1 refuses connections).
NOWHERE = "tcp://127.0.0.1:1"


def worker_pids(client: Client) -> set[int]:
    """The pids of the cluster's worker processes."""
    return set(client.run(os.getpid).values())


def log_of(folder: Path, task: str) -> str:
    """The log of ``task`` in the only run under ``folder``."""
    (path,) = folder.glob(f".trioforge/logs/*/{task}.log")
    return path.read_text()


def pids_in(path: Path, count: int, within: float = 20.0) -> list[int]:
    """The ``count`` pids a command writes to ``path``, once it has written them all."""
    deadline = time.monotonic() + within
    while True:
        pids = [int(line) for line in path.read_text().split()] if path.exists() else []
        if len(pids) == count:
            return pids
        assert time.monotonic() < deadline, f"{path} never held {count} pids"
        time.sleep(0.05)


def write(folder: Path, text: str, name: str = "wf.yaml") -> str:
    """Write a workflow file into ``folder``; return its name."""
    (folder / name).write_text(text)
    return name


def test_commands_run_on_workers_with_outputs_and_logs(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """Each command runs on a worker in the task's cwd and env; outputs, templates, logs work."""
    (tmp_path / "sub").mkdir()
    name = write(
        tmp_path,
        "tasks:\n"
        "  make:\n"
        "    cwd: sub\n"
        "    env: {GREETING: hello}\n"
        "    run: |\n"
        "      echo $PPID > ../make.parent\n"
        '      echo "$GREETING from $(pwd)"\n'
        '      echo "version=1.2" >> "$TRIOFORGE_OUTPUT"\n'
        "  use:\n"
        "    needs: [make]\n"
        "    env: {VERSION: '${{ tasks.make.outputs.version }}'}\n"
        "    cmd: [sh, -c, 'echo $PPID > use.parent; echo \"got $VERSION and $1\"', sh,\n"
        "          '${{ tasks.make.outputs.version }}']\n",
    )
    done = cli("run", name, "--dask", cluster.scheduler_address, "--output", "quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workers = worker_pids(client)
    assert int((tmp_path / "make.parent").read_text()) in workers
    assert int((tmp_path / "use.parent").read_text()) in workers
    assert outputs(tmp_path, "make") == {"version": "1.2"}
    assert f"hello from {tmp_path / 'sub'}\n" in log_of(tmp_path, "make")
    assert "got 1.2 and 1.2\n" in log_of(tmp_path, "use")
    assert "[trioforge] exited with status 0" in log_of(tmp_path, "use")


def test_fallbacks_compensations_and_pooled_tasks_run_on_workers_too(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """A fallback, a rollback's compensation and a task holding a pool all run on workers."""
    name = write(
        tmp_path,
        "resources: {lock: 1}\n"
        "tasks:\n"
        "  pooled:\n"
        "    resources: {lock: 1}\n"
        "    run: echo $PPID > pooled.parent\n"
        "    compensate: echo $PPID > undo.parent\n"
        "  flaky:\n"
        "    run: exit 1\n"
        "    fallback: echo $PPID > fallback.parent\n"
        "  last:\n"
        "    needs: [pooled, flaky]\n"
        "    run: exit 4\n",
    )
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "task 'last' exited with status 4" in done.stderr
    workers = worker_pids(client)
    for what in ("pooled", "fallback", "undo"):
        assert int((tmp_path / f"{what}.parent").read_text()) in workers, what


def test_a_failing_remote_command_exits_1_naming_the_task(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """A non-zero exit on the worker fails the run (exit 1) with the local error message."""
    name = write(tmp_path, "tasks:\n  broken:\n    run: 'echo oops; exit 3'\n")
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "task 'broken' exited with status 3" in done.stderr
    assert "Traceback" not in done.stderr
    assert "oops\n" in log_of(tmp_path, "broken")


def test_a_missing_program_is_a_task_error(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """A program the worker cannot find fails its task with the local 'command not found'."""
    name = write(tmp_path, "tasks:\n  ghost:\n    cmd: [no-such-program-here]\n")
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "command not found: 'no-such-program-here' (on a Dask worker)" in done.stderr


def test_a_timeout_kills_the_remote_process_group(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """A task that times out loses its whole process group on the worker within seconds."""
    name = write(tmp_path, f"tasks:\n  sleeper:\n    timeout: 1s\n    run: '{SLEEPER}'\n")
    started = time.monotonic()
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "timed out" in done.stderr
    assert elapsed < 20
    assert int((tmp_path / "sleeper.parent").read_text()) in worker_pids(client)
    assert all(dead_soon(pid, within=5.0) for pid in pids_in(tmp_path / "pids", 2))
    assert "cancelled: the worker stops the command" in log_of(tmp_path, "sleeper")


def test_fail_fast_kills_a_running_remote_command_before_the_run_ends(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """When a sibling fails, the running remote command is killed, even though the run ends."""
    name = write(
        tmp_path,
        "tasks:\n"
        f"  sleeper:\n    run: '{SLEEPER}'\n"
        "  bad:\n    run: 'while [ ! -s sleeper.parent ]; do sleep 0.05; done; exit 1'\n",
    )
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "task 'bad' exited with status 1" in done.stderr
    assert all(dead_soon(pid, within=5.0) for pid in pids_in(tmp_path / "pids", 2))


def test_ctrl_c_kills_the_remote_process_group(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """Ctrl-C stops the run (exit 130) and the command running on the worker."""
    name = write(tmp_path, f"tasks:\n  sleeper:\n    run: '{SLEEPER}'\n")
    process = _start(["run", name, "--dask", cluster.scheduler_address], tmp_path)
    try:
        pids = pids_in(tmp_path / "pids", 2)
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=30)
    finally:
        _reap(process)
    assert process.returncode == 130, stderr
    assert all(dead_soon(pid, within=5.0) for pid in pids)


def test_a_killed_trioforge_leaves_no_command_on_a_local_cluster(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """SIGKILL to trioforge: its watchdog kills the command on a same-machine worker."""
    name = write(tmp_path, f"tasks:\n  sleeper:\n    run: '{SLEEPER}'\n")
    process = _start(["run", name, "--dask", cluster.scheduler_address], tmp_path)
    try:
        pids = pids_in(tmp_path / "pids", 2)
        assert pids_in(tmp_path / "sleeper.parent", 1)[0] in worker_pids(client)
        process.kill()
        process.communicate(timeout=30)
    finally:
        _reap(process)
    assert all(dead_soon(pid, within=5.0) for pid in pids)


def test_the_dask_key_of_the_file_runs_the_commands_on_the_cluster(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """``dask: {address: ...}`` in the file alone sends the commands to the workers."""
    name = write(
        tmp_path,
        f"dask:\n  address: {cluster.scheduler_address}\n  connect_timeout: 20s\n"
        "tasks:\n  where:\n    run: echo $PPID > where.parent\n",
    )
    done = cli("run", name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert int((tmp_path / "where.parent").read_text()) in worker_pids(client)


def test_the_option_overrides_the_address_in_the_file(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """``--dask ADDRESS`` wins over the file's ``dask: {address: ...}``."""
    name = write(
        tmp_path,
        f"dask: {{address: '{NOWHERE}', connect_timeout: 1s}}\n"
        "tasks:\n  where:\n    run: echo $PPID > where.parent\n",
    )
    done = cli("run", name, "--dask", cluster.scheduler_address, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert int((tmp_path / "where.parent").read_text()) in worker_pids(client)


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A scheduler that does not answer fails the command at once: one line, exit 2, no run."""
    name = write(tmp_path, "dask: {connect_timeout: 1s}\ntasks:\n  never:\n    run: touch ran\n")
    started = time.monotonic()
    done = cli("run", name, "--dask", NOWHERE, cwd=tmp_path)
    assert done.returncode == 2
    assert time.monotonic() - started < 15
    lines = done.stderr.strip().splitlines()
    assert [f"trioforge: error: cannot connect to the Dask scheduler at {NOWHERE!r}"] == [
        line.split(": Timed out")[0] for line in lines
    ]
    assert not (tmp_path / "ran").exists()


def test_a_malformed_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """An address Dask cannot parse is the same one-line error."""
    name = write(tmp_path, "tasks:\n  never:\n    run: touch ran\n")
    done = cli("run", name, "--dask", "no-port-here", cwd=tmp_path)
    assert done.returncode == 2
    assert "trioforge: error: cannot connect to the Dask scheduler at 'no-port-here'" in (
        done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1


def test_dask_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    """Without ``distributed`` installed, ``--dask`` says to install ``trioforge[dask]``."""
    name = write(tmp_path, "tasks:\n  never:\n    run: touch ran\n")
    hide = (
        "import sys; sys.modules['distributed'] = None; "
        "from trioforge._cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide, "run", name, "--dask", NOWHERE],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "pip install 'trioforge[dask]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("dask", "expected"),
    [
        ("{adress: x}", ["1:8: unknown key 'adress' in dask (did you mean 'address'?)"]),
        ("{address: ''}", ["1:17: dask address must not be empty"]),
        ("{address: 'a b'}", ["1:17: dask address 'a b' must not hold spaces"]),
        ("{address: [x]}", ["1:17: dask address must be a single value, not a list"]),
        ("{connect_timeout: soon}", ["1:25: dask connect_timeout: 'soon' is not a duration"]),
        ("tcp://x:1", ["1:7: dask must be a mapping of keys to values, not a string"]),
    ],
)
def test_schema_errors_in_the_dask_key_name_the_place(
    tmp_path: Path, dask: str, expected: list[str]
) -> None:
    """Unknown keys and wrong types under ``dask:`` are FILE:LINE:COL problems."""
    text = f"dask: {dask}\ntasks:\n  t:\n    run: 'true'\n"
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow_file(tmp_path / "wf.yaml", text=text)
    found = [f"{p.line}:{p.column}: {p.message}" for p in caught.value.problems]
    assert len(expected) == len(found), found
    for want, got in zip(expected, found, strict=True):
        assert got.startswith(want), found


def test_the_dask_key_is_plain_settings(tmp_path: Path) -> None:
    """A valid ``dask:`` mapping loads as its settings, and a file without one has none."""
    text = "dask: {address: 'tcp://h:8786', connect_timeout: 2m}\ntasks:\n  t: {run: 'true'}\n"
    loaded = load_workflow_file(tmp_path / "wf.yaml", text=text)
    assert DaskSettings("tcp://h:8786", 120.0) == loaded.dask
    plain = load_workflow_file(tmp_path / "wf.yaml", text="tasks:\n  t: {run: 'true'}\n")
    assert plain.dask is None


def test_validate_reports_dask_schema_errors(tmp_path: Path) -> None:
    """``trioforge validate`` prints a bad ``dask:`` key as FILE:LINE:COL and exits 2."""
    name = write(tmp_path, "dask:\n  address: x\n  workers: 3\ntasks:\n  t: {run: 'true'}\n")
    done = cli("validate", name, cwd=tmp_path)
    assert done.returncode == 2
    assert "wf.yaml:3:3: unknown key 'workers' in dask" in done.stderr


def test_a_durable_run_resumes_on_the_cluster_without_redoing_completed_tasks(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """Resume restores the completed remote task's result and runs only what failed."""
    name = write(
        tmp_path,
        "tasks:\n"
        "  first:\n"
        "    run: |\n"
        "      echo run >> first.count\n"
        '      echo "token=abc" >> "$TRIOFORGE_OUTPUT"\n'
        "  second:\n"
        "    needs: [first]\n"
        "    env: {TOKEN: '${{ tasks.first.outputs.token }}'}\n"
        "    run: |\n"
        "      echo $PPID > second.parent\n"
        '      [ -e fixed ] && echo "$TOKEN" > second.out\n',
    )
    address = cluster.scheduler_address
    failed = cli("run", name, "--dask", address, cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    resume = [line for line in failed.stderr.splitlines() if "trioforge resume" in line]
    assert len(resume) == 1, failed.stderr
    run_id = resume[0].split("trioforge resume ")[1].split()[0]
    (tmp_path / "fixed").touch()
    (tmp_path / "second.parent").unlink()
    resumed = cli("resume", run_id, "--dask", address, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "first.count").read_text() == "run\n"
    assert (tmp_path / "second.out").read_text() == "abc\n"
    assert int((tmp_path / "second.parent").read_text()) in worker_pids(client)


def test_without_dask_the_commands_run_here(tmp_path: Path) -> None:
    """No ``--dask`` and no ``dask:``: the command's parent is this run's own process tree."""
    name = write(tmp_path, "tasks:\n  where:\n    run: echo $PPID > where.parent\n")
    process = _start(["run", name], tmp_path)
    try:
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        _reap(process)
    assert process.returncode == 0, stderr
    assert process.pid == int((tmp_path / "where.parent").read_text())
