"""Running one command in its own process group, and making sure the whole group dies.

A shell command is rarely one process: ``sh -c 'a | b & c'`` is four. Killing
only the process we started (what ``trio.run_process`` does by default)
leaves the rest running, still writing to the log and holding ports. So each
command starts in a new session (``start_new_session=True``: it becomes the
leader of a new process group whose id is its pid, and the terminal's Ctrl-C
no longer reaches it directly), and every signal we send goes to the group
with ``os.killpg``:

* cancelled (task timeout, workflow cancel, Ctrl-C): ``run_process`` calls our
  ``deliver_cancel``, which sends SIGTERM to the group, waits the grace
  period, then sends SIGKILL. trio cancels ``deliver_cancel`` as soon as the
  leader exits, so a well-behaved command costs no waiting;
* however the leader ended (exit, crash, cancel), SIGKILL goes to the group
  right after, so ``sleep 1000 &`` in a script never outlives its task. Linux
  does not reuse a process group id while any member is alive, so this
  reaches exactly the stragglers. (A process that calls ``setsid`` itself
  leaves the group and cannot be tracked this way.)

:class:`ProcessGroups` is the registry of groups running now, so that a second
Ctrl-C can SIGKILL all of them at once; after that it refuses to start new
commands, which makes pending compensations fail fast instead of starting.
Its ``on_change`` callback (the command line's watchdog, see ``_watchdog``)
hears of every group that starts and ends.

All of that needs trioforge alive. For when it is not (SIGKILL, the OOM
killer), every command also gets ``TRIOFORGE_DRIVER`` in its environment,
naming the trioforge process that started it; ``_watchdog`` uses it to find
and kill what a dead trioforge left behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from ._watchdog import DRIVER_ENV, Watchdog, driver_chain

__all__ = [
    "ProcessGroups",
    "ProcessStartError",
    "group_stopper",
    "may_start",
    "process_watchdog",
    "run_in_group",
    "signal_group",
    "start_failure",
    "with_driver",
]


class ProcessStartError(Exception):
    """The command could not be run: a missing program, a bad cwd, a forced stop.

    A shell task turns it into a :class:`~trioforge.ShellCommandError` with no
    exit status (a task whose commands run elsewhere raises it too, when the
    command could not be run there).
    """


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid``; return False if no such group is left."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@attrs.define(eq=False)
class ProcessGroups:
    """The process groups of the commands running now.

    Attributes:
        forced: set by :meth:`kill_all`; from then on no command starts.
        on_change: called with ``(pgid, True)`` when a group starts and
            ``(pgid, False)`` once it is cleaned up, on the trio thread; it
            must not block or raise (the command line's watchdog uses it).
    """

    _groups: set[int] = attrs.field(factory=set, alias="groups")
    forced: bool = False
    on_change: Callable[[int, bool], None] | None = None

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[int]:
        """The ids of the groups running now (a snapshot)."""
        return iter(list(self._groups))

    def add(self, pgid: int) -> None:
        """Register a running group."""
        self._groups.add(pgid)
        if self.on_change is not None:
            self.on_change(pgid, True)

    def discard(self, pgid: int) -> None:
        """Forget a group whose leader has exited."""
        self._groups.discard(pgid)
        if self.on_change is not None:
            self.on_change(pgid, False)

    def kill_all(self) -> int:
        """SIGKILL every registered group, refuse new commands; return how many were signalled."""
        self.forced = True
        return sum(signal_group(pgid, signal.SIGKILL) for pgid in list(self._groups))


@contextlib.contextmanager
def process_watchdog(groups: ProcessGroups | None = None) -> Iterator[None]:
    """Kill the commands this process started if it dies, even by SIGKILL.

    Starts a small watchdog process (about 20 ms) that waits for this process
    to end. If the block is left normally, the watchdog just exits. If this
    process dies without cleaning up (SIGKILL, the OOM killer), the watchdog
    SIGKILLs every process group registered in ``groups`` and, on Linux,
    every process that carries this process's ``TRIOFORGE_DRIVER`` marker
    (every command a :class:`~trioforge.ShellTask` starts, and what those
    commands start, unless they clear their environment). The ``trioforge``
    command line does this for every run; wrap your own ``trio.run`` (or
    the part of your program that runs shell tasks) in it to get the same.

    Args:
        groups: the registry your shell tasks use (their
            ``process_groups``); its groups running now and every group that
            starts inside the block are watched. Without it the watchdog
            relies on the environment marker alone.

    Raises:
        OSError: the watchdog process could not be started.
    """
    dog = Watchdog.start()
    previous = None
    try:
        if groups is not None:
            previous = groups.on_change
            for pgid in groups:
                dog.group_changed(pgid, True)

            def changed(pgid: int, started: bool) -> None:
                dog.group_changed(pgid, started)
                if previous is not None:
                    previous(pgid, started)

            groups.on_change = changed
        yield
    finally:
        if groups is not None:
            groups.on_change = previous
        dog.close()


def with_driver(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``TRIOFORGE_DRIVER`` naming this process added (see the module notes)."""
    return {**env, DRIVER_ENV: driver_chain(env.get(DRIVER_ENV))}


async def may_start(groups: ProcessGroups | None) -> None:
    """Check, just before a command starts, that it may.

    Raises:
        trio.Cancelled: the caller is cancelled already (a cancelled task ends
            as cancelled, not as a command that failed to start).
        ProcessStartError: ``groups`` refuses new commands (a forced stop).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    if groups is not None and groups.forced:
        raise ProcessStartError("not started: trioforge is stopping at once")


class _HasPid(Protocol):
    @property
    def pid(self) -> int: ...


def group_stopper(
    *,
    grace_period: float,
    groups: ProcessGroups | None,
    note: Callable[[str], object],
) -> Callable[[_HasPid], Awaitable[None]]:
    """How a cancelled command's group is stopped: ``trio.run_process``'s ``deliver_cancel``.

    SIGTERM to the group, ``grace_period`` seconds, then SIGKILL; at once
    SIGKILL when ``groups`` is stopping at once (a second Ctrl-C). The caller
    cancels it as soon as the group's leader has exited.
    """

    async def deliver_cancel(process: _HasPid) -> None:
        pgid = process.pid
        if groups is not None and groups.forced:
            note(f"stopping at once: SIGKILL to process group {pgid}")
            signal_group(pgid, signal.SIGKILL)
            return  # noqa: ASYNC910 - a forced stop (second Ctrl-C) waits for nothing
        note(f"cancelled: SIGTERM to process group {pgid}")
        signal_group(pgid, signal.SIGTERM)
        await trio.sleep(grace_period)
        note(f"still running {grace_period:g}s after SIGTERM: SIGKILL to process group {pgid}")
        signal_group(pgid, signal.SIGKILL)

    return deliver_cancel


async def run_in_group(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    output: int,
    grace_period: float,
    groups: ProcessGroups | None = None,
    note: Callable[[str], object] = lambda _text: None,
) -> int:
    """Run ``argv`` as the leader of a new process group; return its exit status.

    stdin is ``/dev/null``; stdout and stderr both go to the file descriptor
    ``output``. A negative status ``-N`` means the leader was killed by signal N.
    ``TRIOFORGE_DRIVER`` is added to ``env`` (see the module docs).

    Args:
        argv: the program and its arguments.
        cwd: the working directory.
        env: the complete environment.
        output: an open file descriptor for stdout and stderr.
        grace_period: seconds between SIGTERM and SIGKILL when cancelled.
        groups: registry of running groups (see :class:`ProcessGroups`).
        note: called with a line of text whenever a signal is sent.

    Raises:
        ProcessStartError: the command could not be started.
    """
    await may_start(groups)
    deliver_cancel = group_stopper(grace_period=grace_period, groups=groups, note=note)
    start: Any = functools.partial(
        trio.run_process,
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=with_driver(env),
        start_new_session=True,
        check=False,
        deliver_cancel=deliver_cancel,
    )
    process: trio.Process | None = None
    start_error: OSError | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                process = await nursery.start(start)
            except OSError as exc:
                start_error = exc
            else:
                assert process is not None
                if groups is not None:
                    groups.add(process.pid)
                    if groups.forced:
                        # kill_all ran while Popen was starting it (in a worker
                        # thread): the group was not registered yet, so it was missed.
                        note(f"stopping at once: SIGKILL to process group {process.pid}")
                        signal_group(process.pid, signal.SIGKILL)
    finally:
        if process is not None:
            # Whatever happened to the leader, nothing of its group may survive it.
            signal_group(process.pid, signal.SIGKILL)
            if groups is not None:
                groups.discard(process.pid)
    if start_error is not None:
        raise ProcessStartError(start_failure(argv, cwd, start_error)) from start_error
    assert process is not None
    assert process.returncode is not None
    return process.returncode


def start_failure(argv: Sequence[str], cwd: str | os.PathLike[str] | None, exc: OSError) -> str:
    """Why ``argv`` did not start in ``cwd``, from the error that starting it raised."""
    reason = exc.strerror or str(exc)
    if cwd is not None and not os.path.isdir(cwd):
        return f"cannot start: the working directory {os.fspath(cwd)!r} does not exist"
    if isinstance(exc, FileNotFoundError):
        return f"cannot start: command not found: {argv[0]!r}"
    return f"cannot start {argv[0]!r}: {reason}"
