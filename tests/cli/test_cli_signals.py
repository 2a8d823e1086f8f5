"""``trioforge run`` under signals and a slow stdout, run for real in subprocesses."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import trio
from cli_helpers import _env, _reap, _start, dead_soon, fixture, wait_for

from trioforge._cli._signals import Interrupts
from trioforge._shell._process_group import ProcessGroups

AUDIT = ("--audit-log", "audit.jsonl", "--no-store")


def test_a_stalled_stdout_reader_does_not_delay_a_task_timeout(tmp_path: Path) -> None:
    """With stdout a full pipe nobody reads, a 0.5 s task timeout still fires on time."""
    chatty = "".join(f"  t{i}: {{run: 'true'}}\n" for i in range(300))
    (tmp_path / "pipe.yaml").write_text(
        "name: pipe\nmax_parallel: 20\ntasks:\n"
        "  slow:\n    run: exec sleep 30\n    timeout: 0.5s\n" + chatty
    )
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # full after a few dozen events
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "trioforge", "run", "pipe.yaml", "--json", *AUDIT],
            cwd=tmp_path,
            env=_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(write_end)
        write_end = -1
        time.sleep(6)  # the reader stalls: nothing reads the pipe for 6 s
        with os.fdopen(read_end, "rb") as reader:
            read_end = -1
            reader.read()  # until trioforge exits and closes its end
        _stdout, stderr = process.communicate(timeout=30)
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    assert process.returncode == 1, stderr
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    (timed_out,) = [
        e for e in audit if e["task_id"] == "slow" and e["type"] == "WorkflowTaskTimedOut"
    ]
    assert timed_out["duration"] < 3  # 6 s or more when the trio thread blocks on stdout


class _Executor:
    """Stands in for a WorkflowExecutor with a run in progress."""

    def __init__(self) -> None:
        self.running = True
        self.reasons: list[str] = []

    def cancel(self, reason: str) -> None:
        self.reasons.append(reason)


async def test_two_interrupts_delivered_together_both_count() -> None:
    """Two SIGINTs that arrive before the first is handled are two: the second kills at once."""
    executor = _Executor()
    groups = ProcessGroups()
    notices: list[str] = []
    both = trio.Event()

    def notice(text: str) -> None:
        notices.append(text)
        if len(notices) == 2:
            both.set()

    interrupts = Interrupts(cast("Any", executor), groups, notice)
    before = signal.getsignal(signal.SIGINT)
    async with trio.open_nursery() as nursery:
        await nursery.start(interrupts.watch)
        os.kill(os.getpid(), signal.SIGINT)  # both delivered now, with no checkpoint between
        os.kill(os.getpid(), signal.SIGINT)
        with trio.move_on_after(5):
            await both.wait()
        nursery.cancel_scope.cancel()
    assert interrupts.count == 2
    assert groups.forced  # the second one killed everything
    assert executor.reasons == ["interrupted by SIGINT", "interrupted by SIGINT"]
    assert "SIGINT again" in notices[1]
    assert signal.getsignal(signal.SIGINT) is before


def test_interrupts_during_the_rollback_after_a_failure(tmp_path: Path) -> None:
    """Ctrl-C while a failure is rolled back says so; a second one kills the rollback; exit 1."""
    fixture("interrupt_rollback.yaml", tmp_path)
    process = _start(["run", "interrupt_rollback.yaml"], tmp_path)
    try:
        wait_for(tmp_path / "rollback.txt")
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None  # the compensation is still running
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=40)
        after_second = time.monotonic() - interrupted
    finally:
        _reap(process)
    assert process.returncode == 1, stderr
    assert after_second < 15
    assert "SIGINT: rollback in progress; interrupt again to kill it" in stdout
    assert "stopping running tasks" not in stdout
    leader = (tmp_path / "rollback.pid").read_text().split("=")[1]
    assert dead_soon(int(leader))
