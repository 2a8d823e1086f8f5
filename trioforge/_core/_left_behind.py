"""Notes an attempt leaves about work its cancellation may leave running.

A call a task cannot stop from here (a Python call on a Dask worker, say)
goes on after its caller is cancelled. Whatever makes such a call says so
with :func:`leave_note` while the cancellation passes through it; the runner
takes the note (:func:`take_note`) when it records the attempt's cancelled
or timed-out event, so the event says what may still be running. The note
lives in a context variable of the task's own trio task: nothing is paid on
the way of an attempt that is not cancelled.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["leave_note", "take_note"]

_NOTE: ContextVar[str | None] = ContextVar("trioforge_left_behind", default=None)


def leave_note(text: str) -> None:
    """Say, from inside an attempt being cancelled, what its cancellation leaves running."""
    _NOTE.set(text)


def take_note() -> str | None:
    """The note the current attempt left (then forgotten), or None."""
    note = _NOTE.get()
    if note is not None:
        _NOTE.set(None)
    return note
