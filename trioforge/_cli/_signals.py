"""Ctrl-C and friends for ``trioforge run``: count every delivery and escalate.

See :class:`Interrupts` for why this is not ``trio.open_signal_receiver``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .._executor import WorkflowExecutor
from .._shell import ProcessGroups

__all__ = ["Interrupts"]


@attrs.define(eq=False)
class Interrupts:
    """Counts SIGINT, SIGTERM and SIGHUP deliveries and escalates with each one.

    Not ``trio.open_signal_receiver``: it keeps at most one pending delivery
    per signal, so a second Ctrl-C that arrives before the first was handled
    is lost. Nor a plain Python handler, which Python also runs once for
    deliveries that arrive together. What sees every delivery is the wakeup
    fd: the C-level handler writes one byte (the signal number) to it for
    each. So during the run the wakeup fd is a socket of ours, read by
    :meth:`watch`; trio's own wakeup fd and the previous handlers are put
    back when it ends. (The kernel itself still merges a signal sent while
    the same one is pending, before the process was scheduled to take the
    first: two ``kill`` calls in a row from another process may arrive as one.)
    """

    executor: WorkflowExecutor
    groups: ProcessGroups
    notice: Callable[[str], None]
    started: Callable[[], bool] = lambda: True
    count: int = 0
    signum: int | None = None

    async def watch(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        reader, writer = socket.socketpair()
        previous: dict[signal.Signals, Any] = {}
        old_fd: int | None = None
        try:
            for sock in (reader, writer):
                sock.setblocking(False)
            for each in _SIGNALS:
                previous[each] = signal.signal(each, _count_only)
            old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            task_status.started()
            while True:
                await trio.lowlevel.wait_readable(reader)
                try:
                    data = reader.recv(256)
                except BlockingIOError:
                    continue
                for number in data:
                    if number in _SIGNALS:
                        self.deliver(number)
        finally:
            if old_fd is not None:
                signal.set_wakeup_fd(old_fd, warn_on_full_buffer=False)
            for each, handler in previous.items():
                signal.signal(each, handler)
            reader.close()
            writer.close()

    def deliver(self, signum: int) -> None:
        """Act on one delivery of ``signum`` (on the trio thread)."""
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self.signum = signum
            if self.started() and not self.executor.running:
                self.notice(
                    f"{name}: rollback in progress; interrupt again to kill it "
                    "(the remaining compensations will not run)"
                )
                return
            self.notice(
                f"{name}: stopping running tasks, then rolling back completed ones "
                "(interrupt again to kill everything at once)"
            )
            self.executor.cancel(f"interrupted by {name}")
        elif self.count == 2:
            killed = self.groups.kill_all()
            self.notice(
                f"{name} again: killed {killed} running process group(s); "
                "remaining compensations will not run"
            )
            self.executor.cancel(f"interrupted by {name}")
        else:
            self.groups.kill_all()
            sys.stderr.write("\x1b[?25h" if sys.stderr.isatty() else "")
            sys.stderr.write(f"trioforge: {name} a third time: exiting now\n")
            sys.stderr.flush()
            os._exit(128 + (self.signum or signum))


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _count_only(_signum: int, _frame: object) -> None:
    """A Python-level handler, so that each delivery reaches the wakeup fd (``Interrupts``)."""
