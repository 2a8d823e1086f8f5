"""Output that never blocks the run: a writer thread for every view, and JSON Lines events.

``emit`` runs on the trio thread, and a blocking ``write`` to a pipe whose
reader is slow (``trioforge run --json | slow-consumer``) would stop every
timeout and signal with it. So no view writes from the trio thread: each hands
its lines (or, for the live view, its drawing) to a :class:`LineWriter`, a
bounded queue drained by one writer thread. When the queue is full the line
is dropped and counted, and the count is reported when the run ends: a
progress line is worth less than a timeout that fires.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import IO

from .._core import AuditEvent

__all__ = ["FLUSH_LIMIT", "QUEUE_LIMIT", "JsonStreamSink", "LineWriter"]

#: Lines (or drawing actions) waiting for the writer thread before new ones are dropped.
QUEUE_LIMIT = 10_000
#: Seconds :meth:`LineWriter.close` waits for the queue to drain.
FLUSH_LIMIT = 5.0


class LineWriter:
    """Runs output actions on a writer thread, so that the caller never blocks.

    :meth:`put` (any thread, typically the trio thread) queues a line or a
    callable and returns at once; when :data:`QUEUE_LIMIT` items are waiting
    it drops the item and counts it in :attr:`dropped`. The first ``OSError``
    or ``ValueError`` from the stream (a closed pipe) disables the writer.

    Args:
        stream: where lines go (each is flushed at once).
        limit: how many items may wait.
    """

    def __init__(self, stream: IO[str] | None, *, limit: int = QUEUE_LIMIT) -> None:
        self.stream = stream
        self.dropped = 0
        self.broken = False
        self._queue: queue.Queue[str | Callable[[], object] | None] = queue.Queue(limit)
        self._thread: threading.Thread | None = None
        #: Called on the writer thread whenever the queue has just been emptied, so a
        #: view can draw what a burst of actions collected once, not once per action.
        self.on_idle: Callable[[], object] | None = None

    def start(self) -> None:
        """Start the writer thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._drain, name="trioforge-output", daemon=True
            )
            self._thread.start()

    def put(self, item: str | Callable[[], object]) -> None:
        """Queue a line to write, or an action to run, on the writer thread; never blocks."""
        if self.broken:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = FLUSH_LIMIT) -> bool:
        """Write what is queued, waiting at most ``timeout`` seconds; True if all was written.

        What is still queued after ``timeout`` is counted in :attr:`dropped`.
        """
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        else:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if not self._thread.is_alive():
                return True
        # What is still queued will not be written: count it with the dropped lines.
        self.broken = True
        self.dropped += self._queue.qsize()
        return False

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.broken:
                continue
            try:
                if isinstance(item, str):
                    if self.stream is not None:
                        self.stream.write(item)
                        self.stream.flush()
                else:
                    item()
                if self.on_idle is not None and self._queue.empty():
                    self.on_idle()
            except (OSError, ValueError):
                self.broken = True


class JsonStreamSink:
    """Writes each event as one JSON line to a stream (``--json``), from a writer thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.writer = LineWriter(stream)

    def start(self) -> None:
        """Start the writer thread."""
        self.writer.start()

    def stop(self, timeout: float = FLUSH_LIMIT) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds)."""
        self.writer.close(timeout)

    def emit(self, event: AuditEvent) -> None:
        """Queue the event as a JSON line."""
        self.writer.put(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
