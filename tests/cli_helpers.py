"""Helpers for tests that run the real ``trioforge`` command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trioforge ARGS`` in ``cwd`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "trioforge", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    env.pop("FORCE_COLOR", None)
    return env


def fixture(name: str, folder: Path) -> Path:
    """Copy a fixture into ``folder`` (so logs and files land there) and return the copy."""
    return Path(shutil.copy(FIXTURES / name, folder / name))


def events(stdout: str) -> list[dict[str, Any]]:
    """The JSON Lines audit events a ``--json`` run printed."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def outputs(folder: Path, task: str) -> dict[str, str]:
    """What ``task`` wrote to $TRIOFORGE_OUTPUT in the (only) run under ``folder``."""
    (path,) = folder.glob(f".trioforge/logs/*/{task}.outputs")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line)
    return {key: value for key, value in pairs}


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def dead_soon(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` is gone, allowing the kernel ``within`` seconds to finish a SIGKILL."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for(path: Path, within: float = 15.0) -> None:
    """Wait until ``path`` exists."""
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trioforge", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reap(process: subprocess.Popen[str]) -> None:
    """Make sure the process is gone and its pipes closed, whatever the test did."""
    if process.poll() is None:
        process.kill()
    process.communicate()
