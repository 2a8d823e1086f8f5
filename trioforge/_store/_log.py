"""A run's log in the SQLite store: its events in chunks, and the fold that turns them into rows.

The store keeps each run as the list of its events (the ``log`` table,
schema version 3 and later). A commit appends its events as a few rows of at most
:data:`CHUNK` events each, written the way the audit log keeps them in
memory (:class:`~trioforge._core.EventColumns`), so that writing a batch
makes no object per event:

``events``
    JSON ``[shapes, marks, items]``: ``shapes`` lists the ``[type,
    workflow_id, layer, attempt]`` that the row's events without an error or
    a detail share (a task's start, its completion); ``marks`` gives each
    event's index in ``shapes``, or -1; ``items`` each event's task id (with
    a shape) or its ``[type, workflow_id, task_id, layer, attempt, error,
    detail]``.
``times``
    per event its clock, wall and duration (NaN: none) as little-endian
    IEEE doubles: 24 bytes an event, and no float printed or parsed.
``results``
    JSON ``{task_id: [result_json, restorable]}`` of the completions the
    row holds (NULL: none).
``states``
    JSON ``{task_id: [ctx_state_json, restorable]}``, on the commit's last
    row (NULL: none).
``reserved`` (schema version 4)
    JSON ``{task_id: attempt}``, on the commit's last row: the starts the
    commit reserved (see ``RunStore.commit``; NULL: none).

Writing a task's row per event instead (version 2) cost SQLite about 5 us per
row and per update: a 10,000-task run paid 10,000 inserts at its start and
40,000 row writes for its starts and completions, four times what the run
itself cost. A chunk row costs one insert for 256 events.

Where each task stands (:class:`~trioforge.store.TaskRecord`) is a fold of
the events, in order, done when a run is loaded (:class:`RunFold`): the same
rules the rows followed when they were written. A reserved start (schema
version 4) counts in its task's attempts, as an attempt that may have begun,
unless a ``TaskStarted`` of that attempt (or a later one) follows it or the
run ends first; a ``WorkflowStarted`` after it (a resume) or the end of the
log while the run has not ended (a crash, or a run still going) counts it.
The task's state stays what its events say. A run's status and end time are
kept in its ``runs`` row, updated by the commits that hold a
``WorkflowStarted`` or a run-ending event (:func:`run_updates`).

A store file is input: :func:`decode_chunk` checks every value it reads and
raises a :class:`~trioforge.store.RunStoreError` naming the run and the row
for anything that is not what this module writes; nothing read is ever run.
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._core import EventColumns, EventType, row_of
from ._records import StoreContentError, TaskRecord

__all__ = [
    "CHUNK",
    "RUN_ENDS",
    "Chunk",
    "Decoded",
    "Logged",
    "RunFold",
    "decode_chunk",
    "decode_reserved",
    "encode_chunks",
    "encode_reserved",
    "run_updates",
]

#: Events per ``log`` row: about 2 ms of encoding on a slow VM.
CHUNK = 256

#: The run status each run-ending event stores.
RUN_ENDS = {
    EventType.WORKFLOW_COMPLETED.value: "completed",
    EventType.WORKFLOW_FAILED.value: "failed",
    EventType.WORKFLOW_CANCELLED.value: "cancelled",
    EventType.WORKFLOW_TIMED_OUT.value: "timed_out",
}
_RUN_STARTED = EventType.WORKFLOW_STARTED.value
_STARTED = EventType.TASK_STARTED.value
_COMPLETED = EventType.TASK_COMPLETED.value
_FAILURE_ENDS = frozenset({EventType.TASK_FAILED.value, EventType.TASK_TIMED_OUT.value})
_RETRYING = EventType.TASK_RETRYING.value
_CANCELLED = EventType.TASK_CANCELLED.value
_SKIPPED = EventType.TASK_SKIPPED.value
_COMPENSATED = EventType.TASK_COMPENSATED.value
_TYPES = frozenset(t.value for t in EventType)

#: One ``log`` row's values: ``(events, times, results, states)`` (None: none).
Chunk = tuple[str, bytes, str | None, str | None]
_SWAP = sys.byteorder != "little"  # the times are stored little-endian
Row = tuple[Any, ...]
#: One ``log`` row decoded: ``(events as field tuples, results, states)``.
Decoded = tuple[list[Row], dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, bool]]]
#: One ``log`` row as the store reads it: :data:`Decoded` and its reserved starts.
Logged = tuple[
    list[Row],
    dict[str, tuple[str | None, bool]],
    dict[str, tuple[str | None, bool]],
    dict[str, int],
]

# A task's fields while folding, by position (a list per task: cheap to update).
(
    _STATE,
    _ATTEMPTS,
    _STARTED_AT,
    _FINISHED_AT,
    _ERROR,
    _RESULT,
    _RESULT_OK,
    _DURATION,
    _COMP,
    _CTX,
    _CTX_OK,
) = range(11)


def _dumps(value: Any) -> str:
    # What this module writes holds no cycle: no check per container.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), check_circular=False)


def encode_chunks(
    batch: EventColumns,
    results: Mapping[str, tuple[str | None, bool]],
    states: Mapping[str, tuple[str | None, bool]] | None,
) -> Iterator[Chunk]:
    """The ``log`` rows of one commit: ``batch`` in pieces of :data:`CHUNK` events.

    ``results``: the encoded result of each task the events complete (each
    goes with the piece that holds its completion); ``states``: encoded
    ``ctx.state`` by task id (they go with the last piece). A generator: a
    caller can stop between pieces.
    """
    count = len(batch)
    done = [(i, tid) for i, tid in batch.positions_of(_COMPLETED) if tid in results]
    last = max(count - 1, 0) // CHUNK * CHUNK
    shapes = batch.shapes
    for start in range(0, max(count, 1), CHUNK):
        stop = start + CHUNK
        times = batch.times[start * 3 : stop * 3]
        if _SWAP:  # pragma: no cover - no big-endian machine in CI
            times.byteswap()
        finished = {tid: results[tid] for i, tid in done if start <= i < stop}
        carried = states if start == last and states else None
        yield (
            _dumps([shapes, batch.marks[start:stop], batch.items[start:stop]]),
            times.tobytes(),
            _dumps(finished) if finished else None,
            None if carried is None else _dumps(carried),
        )


def run_updates(batch: EventColumns) -> list[tuple[str, float | None]]:
    """``(status, finished_at)`` for each event of ``batch`` that sets the run's status."""
    out: list[tuple[str, float | None]] = []
    for i in batch.unshaped():
        kind = batch.items[i][0]
        if kind == _RUN_STARTED:
            out.append(("running", None))
        elif kind in RUN_ENDS:
            out.append((RUN_ENDS[kind], batch.times[i * 3 + 1]))
    return out


def _bad(where: str, what: str) -> StoreContentError:
    return StoreContentError(
        f"{where}: {what}; the store file is damaged or was not written by trioforge"
    )


def _unknown(where: str, kind: object) -> StoreContentError:
    return StoreContentError(
        f"{where}: an event has a type this version of trioforge does not know "
        f"({kind!r}); read it with the trioforge that wrote it"
    )


_TEXT: tuple[type, ...] = (str,)
_TEXT_OR_NONE: tuple[type, ...] = (str, type(None))
_INT_OR_NONE: tuple[type, ...] = (int, type(None))  # type(): a bool is not an int here
#: The types of a shape's fields after its type: workflow_id, layer, attempt.
_SHAPE = (_TEXT, _INT_OR_NONE, _INT_OR_NONE)
#: ... and of an event without a shape: workflow_id, task_id, layer, attempt, error, detail.
_LOOSE = (_TEXT, _TEXT_OR_NONE, _INT_OR_NONE, _INT_OR_NONE, _TEXT_OR_NONE, _TEXT_OR_NONE)


def _check_fields(
    values: object, types: tuple[tuple[type, ...], ...], where: str, what: str
) -> tuple[Any, ...]:
    """``values``, a list of an event type then fields of ``types``, as a tuple; checked."""
    if type(values) is not list or len(values) != len(types) + 1:
        raise _bad(where, f"{what} is not a list of {len(types) + 1} fields")
    kind = values[0]
    if kind not in _TYPES:
        raise _unknown(where, kind)
    if not all(type(v) in allowed for v, allowed in zip(values[1:], types, strict=True)):
        raise _bad(where, f"{what} ({kind}) has a field of the wrong type")
    return tuple(values)


def _load(text: object, where: str, name: str) -> Any:
    """A row's JSON column ``name``, parsed (any value); a clear error if it is not JSON text."""
    if type(text) is not str:
        raise _bad(where, f"its {name} are not text")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(where, f"its {name} are not JSON ({exc})") from None


def _check_pairs(text: object, where: str, name: str) -> dict[str, tuple[str | None, bool]]:
    if text is None:
        return {}
    value = _load(text, where, name)
    if type(value) is not dict:
        raise _bad(where, f"its {name} are not a JSON object")
    out: dict[str, tuple[str | None, bool]] = {}
    for key, pair in value.items():
        if (
            type(pair) is not list
            or len(pair) != 2
            or not (pair[0] is None or type(pair[0]) is str)
            or type(pair[1]) is not bool
        ):
            raise _bad(where, f"its {name} entry for {key!r} is not [text or null, true/false]")
        out[key] = (pair[0], pair[1])
    return out


def encode_reserved(reserved: Mapping[str, int] | None) -> str | None:
    """The ``reserved`` column of a commit's last row (:func:`decode_reserved` reads it)."""
    return _dumps(dict(reserved)) if reserved else None


def decode_reserved(text: object, where: str) -> dict[str, int]:
    """A ``log`` row's reserved starts (``task_id: attempt``), checked; ``{}`` for NULL.

    Raises:
        StoreContentError: the value is not what a commit writes.
    """
    if text is None:
        return {}
    value = _load(text, where, "reserved starts")
    if type(value) is not dict or not all(
        type(attempt) is int and attempt >= 1 for attempt in value.values()
    ):
        raise _bad(where, "its reserved starts are not a JSON object of attempts (1, 2, ...)")
    return value


def decode_chunk(
    events: object, times: object, results: object, states: object, where: str
) -> Decoded:
    """One ``log`` row's events as rows, its results and its states, checked.

    ``where`` names the row in errors.

    Raises:
        StoreContentError: a value is not what :func:`encode_chunks` writes.
    """
    loaded = _load(events, where, "events")
    if type(loaded) is not list or len(loaded) != 3 or not all(type(x) is list for x in loaded):
        raise _bad(where, "its events are not [shapes, marks, items]")
    raw_shapes, marks, items = loaded
    shapes = [_check_fields(shape, _SHAPE, where, "a shape") for shape in raw_shapes]
    count = len(items)
    if type(times) is not bytes or len(times) != 24 * count or len(marks) != count:
        raise _bad(where, f"its times or marks do not match its {count} events")
    numbers: array[float] = array("d")
    numbers.frombytes(times)
    if _SWAP:  # pragma: no cover - no big-endian machine in CI
        numbers.byteswap()
    rows: list[Row] = []
    for n, (mark, item) in enumerate(zip(marks, items, strict=True)):
        clock, wall, duration = numbers[n * 3 : n * 3 + 3]
        if type(mark) is not int or not -1 <= mark < len(shapes):
            raise _bad(where, f"event {n + 1} has no shape {mark!r}")
        if mark < 0:
            loose = _check_fields(item, _LOOSE, where, f"event {n + 1}")
            rows.append(row_of(None, loose, clock, wall, duration))
        elif type(item) is not str:
            raise _bad(where, f"event {n + 1} has a shape but its task id is not text")
        else:
            rows.append(row_of(shapes[mark], item, clock, wall, duration))
    return rows, _check_pairs(results, where, "results"), _check_pairs(states, where, "states")


def _new() -> list[Any]:
    return ["pending", 0, None, None, None, None, False, None, False, None, None]


class RunFold:
    """Where each task of one run stands, from its events applied in order.

    Args:
        run_id: the run.
        task_ids: the tasks of the run's definition, in its order; tasks that
            only appear in events come after them, in the order they appear.
    """

    def __init__(self, run_id: str, task_ids: Iterable[str]) -> None:
        self.run_id = run_id
        self._tasks: dict[str, list[Any]] = {tid: _new() for tid in task_ids}
        self._reserved: dict[str, int] = {}  # reserved starts that no start followed yet

    def apply(
        self,
        rows: Iterable[Row],
        results: Mapping[str, tuple[str | None, bool]],
        states: Mapping[str, tuple[str | None, bool]],
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        """Apply one chunk: its events in order, then its results, states and reservations.

        A completion clears the task's result; the chunk's results (the
        results of the completions it holds) set it again.
        """
        tasks = self._tasks
        pending = self._reserved
        for row in rows:
            task_id = row[4]
            if task_id is None:
                if pending:
                    self._run_event(row[0])
                continue
            task = tasks.get(task_id)
            if task is None:
                task = tasks[task_id] = _new()
            kind = row[0]
            if kind == _STARTED:
                task[_STATE] = "running"
                task[_ATTEMPTS] += 1
                task[_STARTED_AT] = row[3]
                task[_FINISHED_AT] = task[_DURATION] = None
                if pending and pending.get(task_id, math.inf) <= (row[6] or 1):
                    del pending[task_id]  # its start is recorded: no longer a guess
            elif kind == _COMPLETED:
                task[_STATE] = "completed"
                task[_FINISHED_AT] = row[3]
                task[_DURATION] = row[7]
                task[_ERROR] = None
                task[_RESULT] = None  # the chunk's results say what it was
                task[_RESULT_OK] = False
                task[_COMP] = False
            elif kind in _FAILURE_ENDS:
                # Final unless a TaskRetrying follows.
                task[_STATE] = "failed"
                task[_FINISHED_AT] = row[3]
                task[_DURATION] = row[7]
                task[_ERROR] = row[8]
            elif kind == _RETRYING:
                task[_STATE] = "running"
            elif kind == _CANCELLED:
                task[_STATE] = "cancelled"
                task[_FINISHED_AT] = row[3]
                task[_DURATION] = row[7]
            elif kind == _SKIPPED:
                task[_STATE] = "skipped"
            elif kind == _COMPENSATED and row[6] is None:
                # With an attempt: a failed attempt's steps, undone before its retry.
                task[_COMP] = True
        for pairs, at in ((results, _RESULT), (states, _CTX)):
            for task_id, (text, restorable) in pairs.items():
                task = tasks.get(task_id)
                if task is None:
                    task = tasks[task_id] = _new()
                task[at] = text
                task[at + 1] = restorable  # _RESULT_OK, _CTX_OK
        if reserved:
            pending.update(reserved)

    def _run_event(self, kind: str) -> None:
        """A run's own event while starts are reserved: a resume counts them, an end voids them."""
        if kind == _RUN_STARTED:
            self._count_reserved()  # a resume: they may have run before it
        elif kind in RUN_ENDS:
            self._reserved.clear()  # the run ended without starting them

    def _count_reserved(self) -> None:
        """Count each reserved start that no recorded start followed as an attempt.

        Its task may have run (a reserved task starts before a commit records
        its start), so its attempts count it, as if its start had been
        recorded: a resume runs it again as a later attempt. Its state stays
        what the events say (``pending``: no start of it is recorded).
        """
        tasks = self._tasks
        for task_id, attempt in self._reserved.items():
            task = tasks.get(task_id)
            if task is None:
                task = tasks[task_id] = _new()
            task[_ATTEMPTS] = max(task[_ATTEMPTS], attempt)
        self._reserved.clear()

    def records(self) -> dict[str, TaskRecord]:
        """Every task's record, in order (reserved starts counted: :meth:`_count_reserved`)."""
        self._count_reserved()
        run_id = self.run_id
        return {
            tid: TaskRecord(
                run_id,
                tid,
                t[_STATE],
                t[_ATTEMPTS],
                t[_STARTED_AT],
                t[_FINISHED_AT],
                t[_ERROR],
                t[_RESULT],
                t[_RESULT_OK],
                t[_DURATION],
                t[_COMP],
                t[_CTX],
                t[_CTX_OK],
            )
            for tid, t in self._tasks.items()
        }

    def completed_durations(self) -> list[tuple[str, float]]:
        """``(task_id, duration)`` of every task that stands completed with a duration."""
        return [
            (tid, t[_DURATION])
            for tid, t in self._tasks.items()
            if t[_STATE] == "completed" and t[_DURATION] is not None
        ]
