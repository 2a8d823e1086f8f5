"""Session-wide checks: no test may leave a process behind.

Every process a test starts, directly or through ``trioforge`` (a command's
shell, its background children, a subprocess running the CLI), inherits
:data:`MARKER` from this process's environment, so when the session ends a
scan of ``/proc`` finds whatever is left: this process's children and every
process carrying the marker, even one reparented to init. Each is named,
killed (so one broken test does not leave a ``sleep 1000`` for the next CI
job), and the session fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

#: The environment variable every process this test session starts inherits.
MARKER = "TRIOFORGE_TEST_SESSION"
#: Seconds a process that is ending anyway (a watchdog, a killed group) may take.
SETTLE = 5.0
#: multiprocessing's resource tracker (started for Dask's worker processes) is
#: the standard library's helper of this very process: it ends when pytest
#: does (its pipe closes), and stopping it early races later spawns.
_RESOURCE_TRACKER = "from multiprocessing.resource_tracker import main"


def pytest_configure(config: pytest.Config) -> None:
    """Mark this session's environment, so its descendants can be found later."""
    if not os.environ.get(MARKER):
        os.environ[MARKER] = uuid.uuid4().hex


def _leftovers() -> dict[int, str]:
    """The live processes this session started (its children or marked ones), with argv."""
    if not sys.platform.startswith("linux"):
        return {}
    me = os.getpid()
    needle = f"{MARKER}={os.environ[MARKER]}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] in ("Z", "X"):
                continue
            child = int(stat[1]) == me
            marked = needle in (entry / "environ").read_bytes().split(b"\0")
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
        if (child or marked) and _RESOURCE_TRACKER not in argv:
            found[int(entry.name)] = argv.strip()
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session (and kill them) if processes it started are still running."""
    deadline = time.monotonic() + SETTLE
    left = _leftovers()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _leftovers()
    if not left:
        return
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    listing = "\n".join(f"  pid {pid}: {argv}" for pid, argv in sorted(left.items()))
    sys.stderr.write(
        f"\nERROR: the tests left {len(left)} process(es) running (now killed):\n{listing}\n"
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
