"""The audit log and its sinks.

:class:`AuditLog` keeps every event in memory and hands each one, as it is
recorded, to its sinks. A sink is anything with ``emit(event)``; emitting is
synchronous, so a sink must be quick (a buffered line write is fine, a network
call is not).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from math import isnan, nan
from typing import IO, Any, Protocol, overload, runtime_checkable

import attrs

from ._events import AuditEvent, EventType

__all__ = [
    "FIELDS",
    "NO_DURATION",
    "AuditLog",
    "AuditSink",
    "EventColumns",
    "JsonLinesSink",
    "fields_of",
    "row_of",
]

_TYPES = {str(t): t for t in EventType}

FIELDS = len(attrs.fields(AuditEvent))
"""How many values one event has: the type's string value, then the other fields in order."""

NO_DURATION = nan
"""What a pending event's duration is while it has none (None once it is an AuditEvent)."""

OBJECTS = 7
"""Values of a pending event without a shape: type, workflow_id, task_id, layer, attempt,
error, detail."""

TIMES = 3
"""Values per pending event in the array of doubles: clock, wall, duration."""


Row = tuple[Any, ...]
"""One event as the tuple of its :class:`AuditEvent` fields, in order, the type as its string."""


def fields_of(event: AuditEvent) -> Row:
    """``event`` as a :data:`Row`."""
    return (
        event.type.value,
        event.workflow_id,
        event.clock,
        event.wall,
        event.task_id,
        event.layer,
        event.attempt,
        event.duration,
        event.error,
        event.detail,
    )


Shape = tuple[str, str, int | None, int | None]
"""The values events of one *shape* share: type, workflow_id, layer, attempt."""


def _shaped(task_id: Any, error: Any, detail: Any) -> bool:
    """Whether an event with these values is kept as a shape and its task id."""
    return error is None and detail is None and task_id is not None


def _number(key: Shape, shapes: list[Shape], numbers: dict[Shape, int]) -> int:
    """The number of shape ``key`` in ``shapes`` (``numbers`` indexes it), added if new."""
    number = numbers.get(key)
    if number is None:
        number = numbers[key] = len(shapes)
        shapes.append(key)
    return number


def _add_row(
    row: Row | tuple[Any, ...],
    shapes: list[Shape],
    numbers: dict[Shape, int],
    marks: MutableSequence[int],
    items: list[Any],
    times: array[float],
) -> None:
    """Append one event given as a :data:`Row` to columns (the log's buffers, or a batch's)."""
    kind, workflow_id, clock, wall, task_id, layer, attempt, duration, error, detail = row
    if _shaped(task_id, error, detail):
        marks.append(_number((kind, workflow_id, layer, attempt), shapes, numbers))
        items.append(task_id)
    else:
        marks.append(-1)
        items.append((kind, workflow_id, task_id, layer, attempt, error, detail))
    times.fromlist([clock, wall, NO_DURATION if duration is None else duration])


def row_of(shape: Shape | None, item: Any, clock: float, wall: float, duration: float) -> Row:
    """An event kept compactly, as a :data:`Row`.

    ``shape`` is the event's shape, with ``item`` its task id; or None, with
    ``item`` the tuple of its type, workflow_id, task_id, layer, attempt,
    error and detail. A NaN ``duration`` is none.
    """
    if shape is None:
        kind, workflow_id, task_id, layer, attempt, error, detail = item
    else:
        kind, workflow_id, layer, attempt = shape
        task_id, error, detail = item, None, None
    return (
        kind,
        workflow_id,
        clock,
        wall,
        task_id,
        layer,
        attempt,
        None if isnan(duration) else duration,
        error,
        detail,
    )


class EventColumns(Sequence[AuditEvent]):
    """A batch of events kept the way the audit log keeps them, read as AuditEvents on demand.

    What the durable-run recorder hands a store: a slice of the log's own
    buffers (``AuditLog._columns``), so no object per event is made; the
    SQLite store writes the columns as they are, any other store reads
    AuditEvents, each made when it is read.

    Attributes:
        shapes: the shapes of the batch's events that have one (see :class:`AuditLog`).
        marks: per event, the index of its shape in ``shapes``, or -1 for none.
        items: per event, its task id when it has a shape, else the tuple of
            its type, workflow_id, task_id, layer, attempt, error and detail.
        times: per event, its clock, wall and duration (NaN: none), in one
            array of doubles.
    """

    __slots__ = ("items", "marks", "shapes", "times")

    def __init__(
        self, shapes: list[Shape], marks: list[int], items: list[Any], times: array[float]
    ) -> None:
        if not (len(marks) == len(items) and len(times) == TIMES * len(items)):
            raise ValueError(
                f"columns of different lengths: {len(marks)} marks, {len(items)} items, "
                f"{len(times)} times"
            )
        self.shapes = shapes
        self.marks = marks
        self.items = items
        self.times = times

    @classmethod
    def from_rows(cls, rows: Iterable[Row]) -> EventColumns:
        """The columns of events given as :data:`Row` tuples."""
        shapes: list[Shape] = []
        numbers: dict[Shape, int] = {}
        marks: list[int] = []
        items: list[Any] = []
        times: array[float] = array("d")
        for row in rows:
            _add_row(row, shapes, numbers, marks, items, times)
        return cls(shapes, marks, items, times)

    def __len__(self) -> int:
        return len(self.items)

    def row(self, index: int) -> Row:
        """Event ``index`` as a :data:`Row`."""
        if index < 0:
            index += len(self.items)
        if not 0 <= index < len(self.items):
            raise IndexError(f"event {index} of {len(self.items)}")
        clock, wall, duration = self.times[index * TIMES : index * TIMES + TIMES]
        mark = self.marks[index]
        return row_of(
            None if mark < 0 else self.shapes[mark], self.items[index], clock, wall, duration
        )

    @property
    def rows(self) -> list[Row]:
        """Every event as a :data:`Row`."""
        return [self.row(i) for i in range(len(self.items))]

    def task_ids(self) -> dict[str, None]:
        """The ids of the tasks the batch has events of, in order of first appearance."""
        out: dict[str, None] = {}
        for mark, item in zip(self.marks, self.items, strict=True):
            task_id = item if mark >= 0 else item[2]
            if task_id is not None:
                out[task_id] = None
        return out

    def positions_of(self, kind: str) -> list[tuple[int, str]]:
        """``(position, task_id)`` of each event of type ``kind`` that has a task id."""
        numbers = {n for n, shape in enumerate(self.shapes) if shape[0] == kind}
        marks, items = self.marks, self.items
        if -1 not in marks:  # every event has a shape (a batch of starts and completions)
            return [(i, items[i]) for i, mark in enumerate(marks) if mark in numbers]
        return [
            (i, item if mark >= 0 else item[2])
            for i, (mark, item) in enumerate(zip(marks, items, strict=True))
            if (mark in numbers) or (mark < 0 and item[0] == kind and item[2] is not None)
        ]

    def unshaped(self) -> list[int]:
        """The positions of the events without a shape (every run-level event is one)."""
        return [i for i, mark in enumerate(self.marks) if mark < 0]

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[AuditEvent]: ...

    def __getitem__(self, index: int | slice) -> AuditEvent | list[AuditEvent]:
        if isinstance(index, slice):
            return [_event(self.row(i)) for i in range(*index.indices(len(self.items)))]
        return _event(self.row(index))

    def __iter__(self) -> Iterator[AuditEvent]:
        return (_event(self.row(i)) for i in range(len(self.items)))

    def __repr__(self) -> str:
        return f"EventColumns({len(self.items)} events, {len(self.shapes)} shapes)"


def _event(row: Row) -> AuditEvent:
    return AuditEvent(_TYPES[row[0]], *row[1:])


@runtime_checkable
class AuditSink(Protocol):
    """Receives every audit event as it is recorded."""

    def emit(self, event: AuditEvent) -> None:
        """Consume one event; must not block for long."""
        ...


class JsonLinesSink:
    """Writes each event as one JSON object per line, flushed as it goes.

    The file is opened for appending on the first event and stays open until
    :meth:`close`.

    Args:
        path: the file to append to; its folder is created if missing.
        fsync: also ``os.fsync`` after each line (slower; survives a power cut).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self._file: IO[str] | None = None

    def __repr__(self) -> str:
        return f"JsonLinesSink({self.path!r})"

    def emit(self, event: AuditEvent) -> None:
        """Append the event as a JSON line and flush it."""
        file = self._file
        if file is None:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            file = self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        file.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
        file.flush()
        if self.fsync:
            os.fsync(file.fileno())

    def close(self) -> None:
        """Close the file (a later event reopens it)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class AuditLog:
    """Every event of an executor's runs, in the order they happened.

    Args:
        sinks: consumers that receive each event as it is recorded.

    While no sink is attached, the executor records each event as its field
    values appended to flat buffers, and :attr:`events` turns the new ones
    into :class:`AuditEvent` objects when it is read: the hot path of a run
    pays for three appends, not for an object nobody may look at, and leaves
    nothing new for the garbage collector to track. The three numbers of an
    event (clock, wall, duration) go into an array of doubles, so they are
    not float objects either (an event's numbers read back as floats). An
    event with no error and no detail (a task's start or completion, say)
    keeps only its task id as an object: its type, run id, layer and attempt
    are one of a few *shapes*, numbered in an array of ints (about 40 bytes an
    event, where the seven values took 80).
    """

    def __init__(self, sinks: Iterable[AuditSink] = ()) -> None:
        self._events: list[AuditEvent] = []
        # Events not yet turned into AuditEvents. Per event: one entry in _pending
        # (the task id when the event has a shape, else the tuple of its OBJECTS
        # values), one in _marks (the shape's number, or -1), and TIMES values
        # (clock, wall, duration or NO_DURATION) in _times. Private: record_fields()
        # is the way in (the executor's hot path appends to all three directly, with
        # a shape from shape(), after checking that no sink is attached).
        self._pending: list[Any] = []
        self._marks: array[int] = array("i")
        self._times: array[float] = array("d")
        self._shapes: list[tuple[str, str, int | None, int | None]] = []
        self._shape_numbers: dict[tuple[str, str, int | None, int | None], int] = {}
        self.sinks: list[AuditSink] = list(sinks)
        #: Functions called with no arguments after each event is recorded (after
        #: each batch, when the executor records several at once), for a consumer
        #: that reads events back by position (:meth:`rows`, ``_columns``)
        #: instead of receiving each as an AuditEvent as a sink does (the
        #: durable-run recorder). Unlike a sink, a follower keeps the compact
        #: recording on.
        self.followers: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        return f"AuditLog(events={len(self)}, sinks={self.sinks!r})"

    def __len__(self) -> int:
        return len(self._events) + len(self._marks)

    def shape(self, kind: str, workflow_id: str, layer: int | None, attempt: int | None) -> int:
        """The number of the shape of events with these values and no error or detail."""
        return _number((kind, workflow_id, layer, attempt), self._shapes, self._shape_numbers)

    @property
    def events(self) -> list[AuditEvent]:
        """The events so far, oldest first."""
        pending = self._pending
        if pending:
            self._events.extend(map(_event, self._pending_rows(0, len(pending))))
            pending.clear()
            del self._marks[:]
            del self._times[:]
        return self._events

    def rows(self, start: int, stop: int) -> list[Row]:
        """The events at positions ``start`` to ``stop`` (0 is the first event), as rows.

        Positions count every event recorded, so a consumer can remember how far
        it has read; no AuditEvent is made for an event not made yet.
        """
        made = self._events
        out = [fields_of(event) for event in made[start:stop]]
        first = max(start - len(made), 0)
        last = min(stop - len(made), len(self._marks))
        if last > first:
            out.extend(self._pending_rows(first, last))
        return out

    def _columns(self, start: int, stop: int, workflow_id: str) -> EventColumns | None:
        """The events at positions ``start`` to ``stop`` as :class:`EventColumns`, if cheap.

        None unless every one of them is still kept compactly (none was made
        an AuditEvent) and belongs to ``workflow_id``: then read :meth:`rows`.
        The columns are copies: recording more events does not change them.
        """
        made = len(self._events)
        if start < made:
            return None
        first, last = start - made, stop - made
        marks = self._marks[first:last].tolist()
        items = self._pending[first:last]
        used = set(marks)
        loose = -1 in used
        used.discard(-1)
        shapes = self._shapes
        if any(shapes[n][1] != workflow_id for n in used):
            return None
        if loose and any(i[1] != workflow_id for m, i in zip(marks, items, strict=True) if m < 0):
            return None
        order = sorted(used)
        if order != list(range(len(order))):
            local = {n: i for i, n in enumerate(order)}
            local[-1] = -1
            marks = [local[m] for m in marks]
        return EventColumns(
            [shapes[n] for n in order], marks, items, self._times[first * TIMES : last * TIMES]
        )

    def _pending_rows(self, first: int, last: int) -> Iterator[Row]:
        """Rows of the pending entries ``first`` to ``last`` (indices into the buffers)."""
        shapes = self._shapes
        numbers = zip(*[iter(self._times[first * TIMES : last * TIMES])] * TIMES, strict=True)
        for value, mark, (clock, wall, duration) in zip(
            self._pending[first:last], self._marks[first:last], numbers, strict=True
        ):
            yield row_of(None if mark < 0 else shapes[mark], value, clock, wall, duration)

    def record(self, event: AuditEvent) -> None:
        """Append an event and hand it to every sink."""
        if self._pending:
            self.events  # noqa: B018 - keeps the order of earlier, deferred events
        self._events.append(event)
        for sink in self.sinks:
            sink.emit(event)
        for follower in self.followers:
            follower()

    def record_fields(self, fields: tuple[Any, ...]) -> None:
        """Record an event given as the tuple of its :class:`AuditEvent` fields, in order.

        The first field is the event type's string value.
        """
        if self.sinks:
            self.record(AuditEvent(_TYPES[fields[0]], *fields[1:]))
            return
        if len(fields) != FIELDS:
            raise ValueError(f"an event has {FIELDS} fields, got {len(fields)}")
        _add_row(
            fields, self._shapes, self._shape_numbers, self._marks, self._pending, self._times
        )
        for follower in self.followers:
            follower()

    def of_type(self, *types: EventType | str) -> list[AuditEvent]:
        """The events whose type is one of ``types``."""
        wanted = {str(t) for t in types}
        return [e for e in self.events if e.type in wanted]

    def for_task(self, task_id: str) -> list[AuditEvent]:
        """The events about one task."""
        return [e for e in self.events if e.task_id == task_id]

    def types(self, *, task_id: str | None = None) -> list[str]:
        """The event names in order, optionally only those of one task."""
        events: Sequence[AuditEvent] = self.events if task_id is None else self.for_task(task_id)
        return [str(e.type) for e in events]

    def to_jsonl(self) -> str:
        """All events as JSON Lines text."""
        return "".join(json.dumps(e.to_dict(), separators=(",", ":")) + "\n" for e in self.events)

    def close(self) -> None:
        """Close every sink that has a ``close`` method."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
