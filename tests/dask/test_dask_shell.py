"""Shell commands on a Dask worker: output, status, and the kill when cancelled."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from distributed import Client, Event

import trioforge
import trioforge.dask

#: A command that records its pid and a child's pid, then waits for the child.
SLEEPER = 'echo started; echo $$ > "$1"; sleep 30 & echo $! >> "$1"; wait'


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def pids_written(path: Path, count: int, limit: float = 10.0) -> list[int]:
    """The ``count`` pids a command writes to ``path``, once it has written them all."""
    with trio.fail_after(limit):
        while True:
            text = await trio.Path(path).read_text() if await trio.Path(path).exists() else ""
            pids = [int(line) for line in text.split()]
            if len(pids) == count:
                return pids
            await trio.sleep(0.05)


async def all_gone(pids: list[int], limit: float) -> bool:
    """Whether every process in ``pids`` is gone within ``limit`` seconds."""
    with trio.move_on_after(limit):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110 - processes on another worker
            await trio.sleep(0.05)
        return True
    return False


def flag_and_wait(client: Client, key: str, future: Any) -> Any:
    """Set the cancel flag of call ``key`` (as the orchestrator would) and wait for its result."""
    event: Any = Event
    event(trioforge.dask.cancel_event_name(key), client=client).set()
    return future.result(timeout=10)


async def test_run_shell_returns_the_status_and_logs_the_output(
    client: Client, tmp_path: Path
) -> None:
    """The exit status comes back; stdout and stderr are appended to the log file."""
    log = tmp_path / "task.log"
    status = await trioforge.dask.run_shell(
        client, ["sh", "-c", "echo out; echo err >&2; exit 3"], log_path=log
    )
    assert status == 3
    assert log.read_text() == "out\nerr\n"


async def test_run_shell_uses_cwd_and_env(client: Client, tmp_path: Path) -> None:
    """The command runs in ``cwd`` with exactly ``env``."""
    log = tmp_path / "task.log"
    env = {"PATH": os.environ["PATH"], "GREETING": "hi"}
    status = await trioforge.dask.run_shell(
        client,
        ["sh", "-c", 'pwd; echo "$GREETING"; echo "${HOME:-no home}"'],
        log_path=log,
        cwd=tmp_path,
        env=env,
    )
    assert status == 0
    assert log.read_text() == f"{tmp_path}\nhi\nno home\n"


async def test_shell_task_is_killed_on_the_worker_at_its_timeout(
    client: Client, tmp_path: Path
) -> None:
    """A remote command whose task times out loses its whole process group within seconds."""
    pid_file = tmp_path / "pids"
    log = tmp_path / "task.log"

    async def body(ctx: trioforge.TaskContext) -> int:
        return await trioforge.dask.run_shell(
            client, ["sh", "-c", SLEEPER, "sh", str(pid_file)], log_path=log
        )

    wf = trioforge.Workflow("shell")
    wf.add_task(trioforge.Task("sleeper", body, timeout=1.5))
    started = trio.current_time()
    with pytest.raises(trioforge.TaskFailedError) as caught:
        await trioforge.WorkflowExecutor(wf).execute_dataflow()
    assert trio.current_time() - started < 1.5 + 1.0
    assert type(caught.value.__cause__) is trioforge.TaskTimeoutError
    pids = await pids_written(pid_file, 2)
    assert await all_gone(pids, limit=5.0)
    assert log.read_text() == "started\n"


async def test_worker_side_kills_the_group_when_its_flag_is_set(
    client: Client, tmp_path: Path
) -> None:
    """run_shell_on_worker, run directly, stops its command with SIGTERM once its flag is set."""
    pid_file = tmp_path / "pids"
    key = uuid.uuid4().hex
    future = client.submit(
        trioforge.dask.run_shell_on_worker,
        ["sh", "-c", SLEEPER, "sh", str(pid_file)],
        None,
        None,
        str(tmp_path / "task.log"),
        key,
        pure=False,
    )
    pids = await pids_written(pid_file, 2)
    assert await trio.to_thread.run_sync(flag_and_wait, client, key, future) == -15
    assert await all_gone(pids, limit=2.0)


async def test_worker_side_kills_a_command_ignoring_sigterm(
    client: Client, tmp_path: Path
) -> None:
    """A command that ignores SIGTERM gets SIGKILL after the grace period."""
    pid_file = tmp_path / "pids"
    key = uuid.uuid4().hex
    script = 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.1; done'
    future = client.submit(
        trioforge.dask.run_shell_on_worker,
        ["sh", "-c", script, "sh", str(pid_file)],
        None,
        None,
        str(tmp_path / "task.log"),
        key,
        grace=0.5,
        pure=False,
    )
    pids = await pids_written(pid_file, 1)
    assert await trio.to_thread.run_sync(flag_and_wait, client, key, future) == -9
    assert await all_gone(pids, limit=2.0)
