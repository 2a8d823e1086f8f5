"""No task process outlives a trioforge that was killed: the watchdog and the leftover sweep.

The problem
-----------
A process killed with SIGKILL (or by the OOM killer) runs no cleanup, so the
"kill the process group when the command ends" of ``_process_group`` never
happens: the task commands, and whatever they started in the background,
keep running, writing to their logs and holding ports, and a ``resume``
would start the same work a second time beside them.

The naive fix, and why it is not used
-------------------------------------
Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, called in the child before
``exec``, has the kernel kill the child when its parent dies. But the
"parent" is the *thread* that forked, and ``trio.run_process`` forks from a
worker thread that exits after 10 idle seconds: every task would be
SIGKILLed 10 s after the last process start (we measured exactly that). It
would also cover only the direct child, never ``sleep 1000 &`` in a script,
and a ``preexec_fn`` is unsafe in a process with threads and turns off
``subprocess``'s ``posix_spawn``/``vfork`` fast path.

What we do
----------
Every process trioforge starts carries, in its environment, ``TRIOFORGE_RUN_ID``
and ``TRIOFORGE_DRIVER=PID:START``: the pid and start time of the trioforge
process driving the run, which together never name another process, even
after the pid is reused. Children inherit both. When trioforge runs inside a
task of another trioforge (a CI workflow whose tests run workflows), the
markers chain, ``OUTER,INNER``, so the outer one's sweep reaches the inner
one's tasks too.

:class:`Watchdog` is one small Python process per driving trioforge (this
file run as a script with ``-I -S``: standard library only, about 20 ms to
start), in a session of its own, whose stdin is the read end of a pipe that
only the driver holds open. The driver writes ``+PGID`` and ``-PGID`` lines
as task process groups start and end. However the driver dies, the kernel
closes its end of the pipe; the watchdog reads end-of-file and SIGKILLs

* every process group still registered, and
* on Linux, every process whose ``/proc/PID/environ`` carries the driver's
  marker (this also catches processes that left their group, and any started
  in the instant between a fork and its registration),

scanning again until nothing is left, then exits. When the driver ends
normally every group is already gone, and the watchdog simply exits.

If the watchdog is killed as well (``kill -9 -1``, or the OOM killer taking
both), ``trioforge resume`` is the backstop: before it starts a run again it
calls :func:`kill_leftovers`, which SIGKILLs every process that carries the
run's id and whose driver is no longer alive. Processes of a live driver are
never touched, so a second ``resume`` that is refused cannot hurt the run in
progress.

A process escapes only if it clears its environment *and* leaves its process
group, or (outside Linux, where there is no ``/proc`` to scan) if it leaves
its group. Signals go through a pidfd where the system has them, so a pid
reused between the scan and the kill is never hit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "DRIVER_ENV",
    "RUN_ENV",
    "Watchdog",
    "driver_alive",
    "driver_chain",
    "driver_marker",
    "kill_leftovers",
    "kill_marked",
    "marked_processes",
]

#: The environment variable naming the trioforge process that started a task process.
DRIVER_ENV = "TRIOFORGE_DRIVER"
#: The environment variable naming the run a task process belongs to.
RUN_ENV = "TRIOFORGE_RUN_ID"
#: Longest wait for the watchdog to exit once the driver closes its pipe normally.
CLOSE_TIMEOUT = 2.0

_PROC = Path("/proc")
_KEYS = (DRIVER_ENV.encode(), RUN_ENV.encode())
_SWEEP_ROUNDS = 50
_SWEEP_PAUSE = 0.01


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        data = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return data.rsplit(b")", 1)[-1].decode("ascii", "replace").split()


def driver_marker() -> str:
    """This process's ``PID:START`` (START is ``?`` where no ``/proc`` tells it)."""
    return _marker_of(os.getpid())


@functools.cache
def _marker_of(pid: int) -> str:
    fields = _stat(pid)
    start = fields[19] if fields is not None and len(fields) > 19 else "?"
    return f"{pid}:{start}"


def driver_chain(inherited: str | None) -> str:
    """The ``TRIOFORGE_DRIVER`` value for a process this one starts.

    ``inherited`` is the value in this process's own environment (set when
    this trioforge itself runs inside another one's task), or None.
    """
    own = driver_marker()
    if not inherited or inherited.rsplit(",", 1)[-1] == own:
        return own
    return f"{inherited},{own}"


def _drivers(found: Mapping[str, str]) -> list[str]:
    return found.get(DRIVER_ENV, "").split(",")


def driver_alive(marker: str) -> bool:
    """Whether the process that ``marker`` names is still running (not a zombie).

    With a start time, a pid now used by another process counts as dead.
    Without one (not Linux), a pid that exists counts as alive.
    """
    pid_text, _, start = marker.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    if start and start != "?":
        fields = _stat(pid)
        if fields is None or len(fields) <= 19:
            return False
        return fields[0] not in ("Z", "X") and fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True


def _markers(pid: int) -> dict[str, str] | None:
    """The trioforge variables in the environment ``pid`` started with, or None."""
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, another user's, or a kernel thread
        return None
    if _KEYS[0] not in data and _KEYS[1] not in data:
        return None
    found: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in _KEYS:
            found[key.decode()] = value.decode("utf-8", "replace")
    return found or None


def marked_processes() -> Iterator[tuple[int, dict[str, str]]]:
    """``(pid, {variable: value})`` of every readable process carrying a trioforge marker.

    Linux only (``/proc``); elsewhere nothing. This process is left out.
    """
    try:
        names = os.listdir(_PROC)
    except OSError:
        return
    me = os.getpid()
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        found = _markers(int(name))
        if found is not None:
            yield int(name), found


def _kill(pid: int, match: Callable[[Mapping[str, str]], bool]) -> bool:
    """SIGKILL ``pid`` (its whole group, if it leads one) if it still matches."""
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        # With the pid pinned by the pidfd, check again that it is the process we mean.
        found = _markers(pid)
        if found is None or not match(found):
            return False
        fields = _stat(pid)
        if fields is not None and len(fields) > 2 and fields[2] == str(pid):
            # It leads a group (a task's command does): the group goes too, with
            # members that may have cleared their environment.
            os.killpg(pid, signal.SIGKILL)
        elif pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return True


def kill_marked(match: Callable[[Mapping[str, str]], bool]) -> int:
    """SIGKILL every marked process ``match`` accepts, until none is left; return how many.

    Scans again after each round (a process may fork while it is being
    killed), up to 50 rounds. The count is of the distinct processes found.
    """
    seen: set[int] = set()
    for _ in range(_SWEEP_ROUNDS):
        victims = [pid for pid, found in marked_processes() if match(found)]
        if not victims:
            break
        seen.update(victims)
        for pid in victims:
            _kill(pid, match)
        time.sleep(_SWEEP_PAUSE)
    return len(seen)


def kill_leftovers(run_id: str) -> int:
    """SIGKILL the processes of run ``run_id`` whose driver has died; return how many.

    A process whose driver is alive belongs to a run in progress and is left
    alone. Linux only; elsewhere returns 0.
    """

    def leftover(found: Mapping[str, str]) -> bool:
        return found.get(RUN_ENV) == run_id and not driver_alive(_drivers(found)[-1])

    return kill_marked(leftover)


class Watchdog:
    """The driver's side of a watchdog process (see the module docs).

    Start one with :meth:`start` before any task starts; tell it about process
    groups with :meth:`group_changed` (a ``ProcessGroups.on_change``
    callback); :meth:`close` it when the run is over. Telling it never blocks
    and never raises: a watchdog that cannot be reached only means the
    ``/proc`` scan alone covers that group.

    Attributes:
        pid: the watchdog process.
    """

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self._process = process
        self._pipe: int | None = pipe
        self.pid = process.pid

    def __repr__(self) -> str:
        return f"Watchdog(pid={self.pid})"

    @classmethod
    def start(cls) -> Watchdog:
        """Start the watchdog process for this process.

        Raises:
            OSError: it could not be started.
        """
        if not sys.executable:
            raise OSError("no Python interpreter to run the watchdog with (sys.executable)")
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), driver_marker()],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        os.set_blocking(write_end, False)
        return cls(process, write_end)

    def group_changed(self, pgid: int, started: bool) -> None:
        """Register a process group that started, or forget one that was cleaned up."""
        if self._pipe is None:
            return
        line = f"{'+' if started else '-'}{pgid}\n"
        # Full (it is not reading) or gone: the /proc scan still covers the group.
        with contextlib.suppress(OSError):
            os.write(self._pipe, line.encode("ascii"))

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close the pipe (the watchdog sweeps and exits) and reap it within ``timeout``."""
        if self._pipe is None:
            return
        os.close(self._pipe)
        self._pipe = None
        # If it is still sweeping, it is in its own session and exits by itself.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)


def _watch(marker: str) -> None:
    """The watchdog process: wait for the driver's end of the pipe to close, then sweep."""
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        sign, text = line[:1], line[1:].strip()
        if not text.isdigit():
            continue
        if sign == b"+":
            groups.add(int(text))
        elif sign == b"-":
            groups.discard(int(text))
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    kill_marked(lambda found: marker in _drivers(found))


if __name__ == "__main__":
    # Ctrl-C and a closed terminal are the driver's business; it cleans up itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _watch(sys.argv[1])
