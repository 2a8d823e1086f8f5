"""Dask shell tasks reuse the shell room: a local task's variables, log lines and refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from trioforge import ShellCommandError, ShellTask, TaskContext
from trioforge._dask._shell_task import DaskLink, DaskShellTask
from trioforge._shell import RESERVED_ENV, ProcessGroups

#: Writes the names of the command's TRIOFORGE_* variables, then its TRIOFORGE_DRIVER.
ENV_DUMP = (
    'env | grep "^TRIOFORGE_" | cut -d= -f1 | sort > names; echo "$TRIOFORGE_DRIVER" > driver'
)


def context() -> TaskContext:
    return TaskContext("t", "run-1", attempt=1)


async def test_remote_and_local_commands_get_the_same_trioforge_variables(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """A command on a worker gets exactly the reserved TRIOFORGE_* variables a local one gets."""
    local_dir, remote_dir = tmp_path / "local", tmp_path / "remote"
    local_dir.mkdir()
    remote_dir.mkdir()
    link = DaskLink(cluster.scheduler_address)
    remote = DaskShellTask("t", ENV_DUMP, cwd=remote_dir, log_dir=tmp_path / "logs", link=link)
    async with link.connected():
        await remote.run(context())
    await ShellTask("t", ENV_DUMP, cwd=local_dir, log_dir=tmp_path / "logs").run(context())
    inherited = {name for name in os.environ if name.startswith("TRIOFORGE_")}
    expected = sorted(RESERVED_ENV | inherited)
    assert expected == (local_dir / "names").read_text().split()
    assert expected == (remote_dir / "names").read_text().split()
    assert (local_dir / "driver").read_text() == (remote_dir / "driver").read_text()


async def test_a_forced_stop_starts_no_remote_command(
    cluster: LocalCluster, client: Client, tmp_path: Path
) -> None:
    """After a forced stop a remote command is refused as a local one is, and the log says so."""
    link = DaskLink(cluster.scheduler_address)
    task = DaskShellTask(
        "t",
        "touch ran",
        cwd=tmp_path,
        log_dir=tmp_path,
        process_groups=ProcessGroups(forced=True),
        link=link,
    )
    async with link.connected():
        with pytest.raises(ShellCommandError) as caught:
            await task.run(context())
    assert caught.value.returncode is None
    assert "task 't': not started: trioforge is stopping at once" in str(caught.value)
    assert not (tmp_path / "ran").exists()
    expected = [
        "[trioforge] run attempt 1 on dask: touch ran",
        "[trioforge] not started: trioforge is stopping at once",
    ]
    assert expected == (tmp_path / "run-1" / "t.log").read_text().splitlines()
