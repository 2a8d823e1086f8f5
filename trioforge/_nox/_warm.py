"""WarmShellTask: a session's nox command handed to a warm spare when one fits.

Everything but the launch is :class:`trioforge.ShellTask`'s: the log and its
header lines, the argv and environment, the result and the errors. The launch
(``ShellTask._launch``) takes an idle spare from the run's
:class:`~._spares.Spares` when one fits the command (see that module), sends
it the command's arguments, environment and log, starts a replacement in a
worker thread, and waits for the spare to exit; with no spare that fits, it
starts the command as a fresh process, as a plain ``ShellTask`` does.

The spare leads its own process group, like a fresh command, and is handled
the same way: registered with the run's :class:`trioforge.ProcessGroups`
(the watchdog and a second Ctrl-C see it), stopped on cancellation with
SIGTERM, the grace period, then SIGKILL to the whole group, and the group
SIGKILLed after its leader exits however it ended. A spare that died before
it was handed the command (its pipe is broken) is reaped and the command
starts fresh instead: nothing of the session ran in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from .._shell import (
    ProcessGroups,
    ShellTask,
    group_stopper,
    may_start,
    signal_group,
    with_driver,
)
from ._spares import Spares

__all__ = ["WarmShellTask"]


@attrs.frozen(repr=False)
class WarmShellTask(ShellTask):
    """A :class:`trioforge.ShellTask` whose ``nox`` command may run in a warm spare.

    Attributes:
        spares: the run's idle spares (None: always a fresh process).
    """

    spares: Spares | None = attrs.field(default=None, kw_only=True, eq=False, hash=False)

    async def _launch(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        log_fd: int,
        note: Callable[[str], object],
    ) -> int:
        """Run ``argv`` in an idle spare that fits it, else as a fresh process."""
        spares = self.spares
        if spares is not None:
            spare = spares.take(argv, env, self.cwd)
            if spare is not None:
                returncode = await _run_in_spare(
                    spare,
                    Spares.order(argv, with_driver(env), log_path),
                    spares=spares,
                    grace_period=self.grace_period,
                    groups=self.process_groups,
                    note=note,
                )
                if returncode is not None:
                    return returncode
            elif spares.wanted():
                await trio.to_thread.run_sync(spares.fill)
        return await super()._launch(argv, env=env, log_path=log_path, log_fd=log_fd, note=note)


async def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` to exit and reap it; return its exit status."""
    if process.returncode is None and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            pidfd = None  # not ours to watch this way; the thread below waits instead
        if pidfd is not None:
            try:
                await trio.lowlevel.wait_readable(pidfd)
            finally:
                os.close(pidfd)
            return process.wait()  # it has exited: this only reaps it
    returncode: int = await trio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
    return returncode


async def _send(process: subprocess.Popen[bytes], data: bytes) -> bool:
    """Write ``data`` to the spare's stdin and close it; False if the spare is gone."""
    assert process.stdin is not None
    stream = trio.lowlevel.FdStream(os.dup(process.stdin.fileno()))
    process.stdin.close()
    try:
        async with stream:
            await stream.send_all(data)
    except trio.BrokenResourceError:
        await trio.lowlevel.checkpoint()
        return False
    return True


async def _run_in_spare(
    spare: subprocess.Popen[bytes],
    order: bytes,
    *,
    spares: Spares,
    grace_period: float,
    groups: ProcessGroups | None,
    note: Callable[[str], object],
) -> int | None:
    """Hand ``order`` to ``spare`` and wait for it; its exit status, or None if it was gone.

    Raises:
        ProcessStartError: ``groups`` refuses new commands (a forced stop).
    """
    pgid = spare.pid
    registered = False
    try:
        await may_start(groups)
        if groups is not None:
            groups.add(pgid)
            registered = True
        if not await _send(spare, order):
            return None
        try:
            if spares.wanted():  # the next session's spare, while this one runs
                await trio.to_thread.run_sync(spares.fill)
            return await _wait(spare)
        except BaseException:
            # Cancelled (or worse): stop the group as trio.run_process would,
            # and wait, shielded, for its leader to exit before going on.
            deliver_cancel = group_stopper(grace_period=grace_period, groups=groups, note=note)
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(deliver_cancel, spare)
                    await _wait(spare)
                    nursery.cancel_scope.cancel(reason="the session's nox exited")
            raise
    finally:
        # Whatever happened to the leader, nothing of its group may survive it.
        signal_group(pgid, signal.SIGKILL)
        if spare.returncode is None:
            with trio.CancelScope(shield=True):
                await _wait(spare)
        if groups is not None and registered:
            groups.discard(pgid)
