"""Each nox session's output, shown as one block when an attempt ends (never interleaved).

Sessions write to their own logs while they run (``_nox``), so their outputs
never mix; like ``nox -j``, ``trioforge nox`` then shows the output of each
attempt as one block once it ends, above the live view. The block is read
and written on the view's own writer thread (a callable queued on its
:class:`LineWriter`), so the trio thread never waits on the file or the
terminal: the audit sink only queues.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from .._core import AuditEvent, EventType
from ._progress import LiveReporter, PlainReporter, RunTracker

__all__ = ["SessionBlocks", "last_attempt"]

#: At most this many bytes of a log are read for a block (its end).
MAX_BYTES = 64 * 1024
#: At most this many lines of an attempt are shown (its last ones).
MAX_LINES = 200
_ENDS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_TIMED_OUT})
_HEADER = "[trioforge] run attempt"


def last_attempt(path: Path) -> list[str]:
    """The lines of the last attempt in a session's log (at most :data:`MAX_LINES`)."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - MAX_BYTES))
            data = file.read(MAX_BYTES)
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith(_HEADER):
            lines = lines[index + 1 :]
            break
    return lines[-MAX_LINES:]


@attrs.define(eq=False)
class SessionBlocks:
    """An audit sink: when a session attempt ends, show its output as one block."""

    tracker: RunTracker
    reporter: LiveReporter | PlainReporter

    def emit(self, event: AuditEvent) -> None:
        """Queue the block of the attempt that ``event`` ended (other events: nothing)."""
        if event.type not in _ENDS or event.task_id is None:
            return
        path = self.tracker.log_path(event.task_id)
        if path is None:
            return
        title = f"── {event.task_id} (attempt {event.attempt or 1}) ──"
        reporter = self.reporter
        if isinstance(reporter, LiveReporter):
            console = reporter.console

            def draw() -> None:
                console.print("\n".join([title, *last_attempt(path)]), markup=False, style="dim")

            reporter.writer.put(draw)
        else:
            stream = reporter.writer.stream

            def write() -> None:
                if stream is not None:
                    stream.write("\n".join([title, *last_attempt(path), ""]))
                    stream.flush()

            reporter.writer.put(write)
