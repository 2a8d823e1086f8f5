"""Task output on the console: ``--output stream`` and ``--output grouped``.

A task's command writes to its log file (see ``_shell``), never to the
console, so its output is shown by reading the log back:

* ``stream`` prints every line as it is written, prefixed with the task id
  (``build | compiling...``), as docker compose does. A ticker thread queues a
  "read what is new" action every :data:`POLL_INTERVAL` seconds while tasks
  run; a line still being written waits until its end (or the task's end), so
  two tasks never share a line.
* ``grouped`` prints each task's output as one block when its attempt ends
  (nox ``-j`` and tox style), which keeps a CI log readable.

All reading happens on the view's writer thread (a :class:`LineWriter`
action), in the same queue as the view's own lines: the trio thread never
opens a log (which could be anything a task made of it, a FIFO included),
and a block is always printed before the line that says how the task ended.
Control characters are removed, as in the failure excerpt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .._core import AuditEvent, EventType
from .._shell import task_log_path
from .._shell._files import open_regular
from ._output import LineWriter
from ._progress import RunTracker
from ._summary import clean_line

__all__ = ["OUTPUT_MODES", "POLL_INTERVAL", "LogFollower"]

#: The values of ``--output``.
OUTPUT_MODES = ("stream", "grouped", "quiet")
#: Seconds between two reads of the running tasks' logs in ``stream`` mode.
POLL_INTERVAL = 0.1
#: Bytes read from a log at a time.
_CHUNK = 64 * 1024
_ENDS = frozenset(
    {
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TASK_TIMED_OUT,
        EventType.TASK_CANCELLED,
    }
)


class LogFollower:
    """Shows the tasks' log lines on a view, streamed or grouped (an audit sink).

    Args:
        tracker: the run's tracker (for the log paths; fed by the view).
        writer: the view's writer; every read and print runs there.
        show: prints one line (``task_id``, ``line``) on the writer thread.
        mode: ``stream`` or ``grouped``.
        header: prints a block's first line (``task_id``, ``what``), grouped mode.
    """

    def __init__(
        self,
        tracker: RunTracker,
        writer: LineWriter,
        show: Callable[[str, str], None],
        *,
        mode: str,
        header: Callable[[str, str], None],
    ) -> None:
        self.tracker = tracker
        self.writer = writer
        self.show = show
        self.header = header
        self.mode = mode
        # Touched only on the writer thread:
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._running: set[str] = set()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        """Start the ticker thread (``stream`` mode)."""
        if self.mode == "stream" and self._ticker is None:
            self._ticker = threading.Thread(
                target=self._tick, name="trioforge-follow", daemon=True
            )
            self._ticker.start()

    def stop(self) -> None:
        """Stop the ticker (what is queued is still written by the view's writer)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(POLL_INTERVAL * 10)

    def emit(self, event: AuditEvent) -> None:
        """Queue the reading an event calls for (on the trio thread: never reads itself)."""
        task_id = event.task_id
        if event.type == EventType.WORKFLOW_STARTED:
            sizes = self._sizes(event.workflow_id)  # before any task writes: here, not later
            self.writer.put(lambda: self._offsets.update(sizes))
        if task_id is None or task_id not in self.tracker.records:
            return
        if event.type == EventType.TASK_STARTED:
            self.writer.put(lambda: self._running.add(task_id))
        elif event.type in _ENDS:
            what = self.tracker.message(event, self.tracker.records[task_id]) or "ended"
            self.writer.put(lambda: self._finish(task_id, what))

    def _tick(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            self.writer.put(self._poll)

    def _poll(self) -> None:
        for task_id in sorted(self._running):
            self._read(task_id, final=False)

    def _sizes(self, run_id: str) -> dict[str, int]:
        """A resumed run appends to its logs: show only what this process's attempts write.

        ``stat`` never blocks (whatever the path is), so this may run on the trio thread.
        """
        sizes: dict[str, int] = {}
        for task_id in self.tracker.records:
            try:
                sizes[task_id] = os.stat(
                    task_log_path(self.tracker.log_dir, run_id, task_id)
                ).st_size
            except OSError:
                sizes[task_id] = 0
        return sizes

    def _finish(self, task_id: str, what: str) -> None:
        self._running.discard(task_id)
        if self.mode == "grouped":
            self.header(task_id, what)
        self._read(task_id, final=True)

    def _read(self, task_id: str, *, final: bool) -> None:
        path = self.tracker.log_path(task_id)
        if path is None:
            return
        offset = self._offsets.get(task_id, 0)
        data = self._partial.pop(task_id, b"")
        try:
            fd = open_regular(Path(path), os.O_RDONLY)
        except OSError:
            return
        with os.fdopen(fd, "rb") as file:
            file.seek(offset)
            while chunk := file.read(_CHUNK):
                offset += len(chunk)
                data += chunk
                data = self._lines(task_id, data)
        self._offsets[task_id] = offset
        if data and final:
            self.show(task_id, clean_line(data.decode("utf-8", errors="replace")))
        elif data:
            self._partial[task_id] = data

    def _lines(self, task_id: str, data: bytes) -> bytes:
        """Show each complete line of ``data``; return the unfinished rest."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            self.show(task_id, clean_line(line.decode("utf-8", errors="replace")))
        return rest
