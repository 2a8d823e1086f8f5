"""process_watchdog(): a library user's shell commands die with the process that started them.

Linux only, like the guarantee it checks (it reads ``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import trioforge as tf
from trioforge._shell._watchdog import driver_marker

#: Seconds a process may take to die after its driver was SIGKILLed.
DEATH_WITHIN = 5.0

DRIVER = textwrap.dedent(
    """
    import sys, trio, trioforge as tf

    folder = sys.argv[1]
    groups = tf.ProcessGroups()
    wf = tf.Workflow("lib")
    wf.add_task(tf.ShellTask(
        "work",
        "sleep 1000 & echo $! > bg.pid; echo $$ > leader.pid; sleep 1000",
        cwd=folder, log_dir=folder + "/logs", process_groups=groups,
    ))

    async def main():
        await tf.WorkflowExecutor(wf).execute_dataflow()

    if sys.argv[2] == "watched":
        with tf.process_watchdog(groups):
            trio.run(main)
    else:
        trio.run(main)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], what: str, within: float = DEATH_WITHIN) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g}s for {what}")
        time.sleep(0.02)


def _start_and_kill(tmp_path: Path, mode: str) -> tuple[int, int]:
    """Run the driver, wait for its command to start, SIGKILL it; return the command's pids."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), mode],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (tmp_path / "bg.pid").exists() and (tmp_path / "leader.pid").exists(),
            "the command to start",
            within=30.0,
        )
        time.sleep(0.1)  # the pid files are written before the shell goes on
        background = int((tmp_path / "bg.pid").read_text())
        leader = int((tmp_path / "leader.pid").read_text())
        assert alive(background)
        assert alive(leader)
    finally:
        process.kill()
        process.wait()
    return background, leader


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_watchdog_kills_commands_of_a_sigkilled_library_user(tmp_path: Path) -> None:
    """With process_watchdog, SIGKILL of the program kills its command and its background child."""
    background, leader = _start_and_kill(tmp_path, "watched")
    wait_until(lambda: not alive(background) and not alive(leader), "the command to die")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_without_the_watchdog_the_commands_survive(tmp_path: Path) -> None:
    """The control: without process_watchdog the same commands outlive a SIGKILLed program."""
    background, leader = _start_and_kill(tmp_path, "bare")
    try:
        time.sleep(1.0)
        assert alive(background)
        assert alive(leader)
    finally:
        # The leader's group holds the shell's foreground `sleep 1000` too: kill it all.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGKILL)
        for pid in (background, leader):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(background) and not alive(leader), "the commands to die")


def test_process_watchdog_follows_groups_and_restores_the_callback() -> None:
    """Groups running before and started inside the block are watched; on_change is restored."""
    seen: list[tuple[int, bool]] = []
    groups = tf.ProcessGroups()
    groups.on_change = lambda pgid, started: seen.append((pgid, started))
    previous = groups.on_change
    groups.add(999_991)
    with tf.process_watchdog(groups):
        assert groups.on_change is not previous
        groups.add(999_992)
        groups.discard(999_991)
    assert groups.on_change is previous
    # The callback that was there keeps hearing of every change.
    assert seen == [(999_991, True), (999_992, True), (999_991, False)]
    assert sorted(groups) == [999_992]


def _watchdogs_of_this_process() -> list[int]:
    """Live watchdog processes started for this process (by their command line)."""
    marker = driver_marker().encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        watchdog = marker in argv and any(a.endswith(b"_watchdog.py") for a in argv)
        if watchdog and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_process_watchdog_inside_trio_runs_while_the_block_runs(tmp_path: Path) -> None:
    """Entered inside a trio program, the watchdog lives during the block and is gone after."""
    groups = tf.ProcessGroups()
    wf = tf.Workflow("inside")
    wf.add_task(tf.ShellTask("quick", ["true"], log_dir=tmp_path, process_groups=groups))
    assert _watchdogs_of_this_process() == []
    with tf.process_watchdog(groups):
        # Popen returns before the child has exec'd the watchdog script.
        wait_until(lambda: len(_watchdogs_of_this_process()) == 1, "the watchdog to start")
        result = await tf.WorkflowExecutor(wf).execute_dataflow()
    assert result.completed == ["quick"]
    assert _watchdogs_of_this_process() == []
