"""The run store's log format: any batch of events reads back exactly, and a damaged row is named.

A run is stored as the log of its events (``trioforge._store._log``), written
from the audit log's own columns. Whatever events a run records (with or
without an error, a detail, a layer, an attempt, a duration), encoding them in
chunks and decoding the chunks gives back the same events in the same order,
with every float exact; and a row that is not what trioforge writes is
refused with a StoreContentError naming it, never a crash or a wrong record.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioforge._core import EventColumns, EventType
from trioforge._core._audit import AuditLog
from trioforge._store._log import CHUNK, decode_chunk, encode_chunks
from trioforge._store._records import StoreContentError

TYPES = [t.value for t in EventType]
text = st.text(max_size=12)
maybe_int = st.none() | st.integers(min_value=-(2**31), max_value=2**31)
floats = st.floats(allow_nan=False, allow_infinity=True)
rows = st.tuples(
    st.sampled_from(TYPES),
    st.sampled_from(["run-1", "run-2", "ü-run"]),
    floats,
    floats,
    st.none() | st.sampled_from(["a", "b", "é", "t 1"]) | text,
    maybe_int,
    maybe_int,
    st.none() | floats,
    st.none() | text,
    st.none() | text,
)


def _decoded(batch: EventColumns) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for n, (events, times, results, states) in enumerate(encode_chunks(batch, {}, None)):
        got, _results, _states = decode_chunk(events, times, results, states, f"row {n}")
        out.extend(got)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(rows, max_size=CHUNK * 2 + 3))
def test_any_events_read_back_exactly_through_the_log(events: list[tuple[Any, ...]]) -> None:
    """from_rows -> encode_chunks -> decode_chunk gives back every event, in order."""
    batch = EventColumns.from_rows(events)
    assert batch.rows == events
    assert _decoded(batch) == events


@settings(max_examples=100, deadline=None)
@given(st.lists(rows, min_size=1, max_size=300), st.data())
def test_a_slice_of_the_audit_log_reads_back_exactly(
    events: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    """AuditLog._columns of any slice of one run's events is those events, through the log."""
    log = AuditLog()
    for event in events:
        log.record_fields((event[0], "run-1", *event[2:]))
    recorded = [(e[0], "run-1", *e[2:]) for e in events]
    start = data.draw(st.integers(0, len(events)))
    stop = data.draw(st.integers(start, len(events)))
    batch = log._columns(start, stop, "run-1")
    assert batch is not None
    assert _decoded(batch) == recorded[start:stop]


def _one_row() -> tuple[str, bytes]:
    batch = EventColumns.from_rows(
        [
            ("WorkflowTaskStarted", "r", 1.0, 2.0, "a", None, 1, None, None, None),
            ("WorkflowTaskFailed", "r", 1.5, 2.5, "a", None, 1, 0.5, "E: x", None),
        ]
    )
    events, times, _results, _states = next(iter(encode_chunks(batch, {}, None)))
    return events, times


def _damaged() -> list[tuple[str, object, object, object, object]]:
    events, times = _one_row()
    shapes, marks, items = json.loads(events)
    deep = "[" * 100_000 + "]" * 100_000
    return [
        ("not JSON", "{", times, None, None),
        ("not text", b"[]", times, None, None),
        ("deeply nested", deep, times, None, None),
        ("not three lists", json.dumps([shapes, marks]), times, None, None),
        ("times too short", events, times[:-8], None, None),
        ("times not bytes", events, "x" * len(times), None, None),
        ("a mark out of range", json.dumps([shapes, [5, -1], items]), times, None, None),
        ("a mark not an int", json.dumps([shapes, ["0", -1], items]), times, None, None),
        ("a task id not text", json.dumps([shapes, marks, [7, items[1]]]), times, None, None),
        (
            "a bad shape",
            json.dumps([[["WorkflowTaskStarted", 3, None, 1]], marks, items]),
            times,
            None,
            None,
        ),
        (
            "an event of 6 fields",
            json.dumps([shapes, marks, [items[0], items[1][:6]]]),
            times,
            None,
            None,
        ),
        (
            "an error not text",
            json.dumps([shapes, marks, [items[0], [*items[1][:5], 1, None]]]),
            times,
            None,
            None,
        ),
        ("results not JSON", events, times, "{", None),
        ("results not an object", events, times, "[]", None),
        ("a result not a pair", events, times, '{"a": ["null"]}', None),
        ("a restorable flag not a bool", events, times, None, '{"a": [null, 1]}'),
    ]


@pytest.mark.parametrize(("what", "events", "times", "results", "states"), _damaged())
def test_a_damaged_row_is_refused_with_its_name(
    what: str, events: object, times: object, results: object, states: object
) -> None:
    """Every kind of damage gives StoreContentError naming the row, never another error."""
    with pytest.raises(StoreContentError, match="row 7 of run 'r'") as info:
        decode_chunk(events, times, results, states, "row 7 of run 'r'")
    assert "damaged" in str(info.value) or "does not know" in str(info.value), what


def test_an_unknown_event_type_says_this_version_does_not_know_it() -> None:
    """A type from a newer trioforge is named as such, not called damage."""
    events, times = _one_row()
    shapes, marks, items = json.loads(events)
    shapes[0][0] = "WorkflowFromTheFuture"
    with pytest.raises(StoreContentError, match=r"does not know \('WorkflowFromTheFuture'\)"):
        decode_chunk(json.dumps([shapes, marks, items]), times, None, None, "row 1")


def test_times_are_exact_doubles_and_no_duration_is_none() -> None:
    """Floats go through the log bit for bit; a missing duration comes back as None."""
    values = [math.pi, 1e-300, 1.7e9 + 0.123456789, -0.0, math.inf]
    events = [
        ("WorkflowTaskCompleted", "r", v, v, "a", None, 1, v, None, None) for v in values
    ] + [("WorkflowTaskStarted", "r", 1.0, 2.0, "a", None, 1, None, None, None)]
    got = _decoded(EventColumns.from_rows(events))
    assert got == events
    assert [math.copysign(1, e[2]) for e in got] == [math.copysign(1, e[2]) for e in events]
