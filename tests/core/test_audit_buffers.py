"""The audit log's pending buffers: events read back exactly as they were recorded."""

from __future__ import annotations

import trio

import trioforge as tf
from trioforge._core._audit import AuditLog, EventColumns, fields_of


def as_fields(e: tf.AuditEvent) -> tuple[object, ...]:
    """An event's fields in record_fields order, its type as the string value."""
    return (
        str(e.type),
        e.workflow_id,
        e.clock,
        e.wall,
        e.task_id,
        e.layer,
        e.attempt,
        e.duration,
        e.error,
        e.detail,
    )


def test_recorded_fields_read_back_as_events() -> None:
    """record_fields without sinks keeps every field, a missing duration reads back as None."""
    log = AuditLog()
    started = ("WorkflowTaskStarted", "wf-1", 1.5, 1700000000.25, "a", None, 1, None, None, None)
    failed = ("WorkflowTaskFailed", "wf-1", 2.75, 1700000001.5, "a", 3, 2, 1.25, "E: x", "why")
    log.record_fields(started)
    log.record_fields(failed)
    assert len(log) == 2
    events = log.events
    assert [started, failed] == [as_fields(e) for e in events]
    assert len(log) == 2


def test_a_run_keeps_no_float_object_per_event() -> None:
    """After a plain run, the pending buffer holds no float: times live in the array of doubles."""

    async def body(ctx: tf.TaskContext) -> None:
        return None

    wf = tf.Workflow("w")
    for i in range(50):
        wf.add_task(tf.Task(f"t{i}", body, depends_on=[f"t{i - 1}"] if i else ()))
    executor = tf.WorkflowExecutor(wf)
    trio.run(executor.execute_dataflow)
    pending = executor.audit_log._pending
    assert [value for value in pending if isinstance(value, float)] == []
    durations = [e.duration for e in executor.audit_log.of_type(tf.EventType.TASK_COMPLETED)]
    assert len(durations) == 50
    assert all(d is not None and d >= 0 for d in durations)


def test_shaped_and_unshaped_events_read_back_in_order() -> None:
    """Events without error or detail keep only their task id; all read back in recorded order."""
    log = AuditLog()
    recorded = [
        ("WorkflowStarted", "wf-1", 0.5, 1700000000.0, None, None, None, None, None, None),
        ("WorkflowTaskStarted", "wf-1", 1.5, 1700000000.25, "a", 2, 1, None, None, None),
        ("WorkflowTaskFailed", "wf-1", 2.75, 1700000001.5, "a", 2, 1, 1.25, "E: x", None),
        ("WorkflowTaskStarted", "wf-1", 3.0, 1700000002.0, "a", 2, 2, None, None, None),
        ("WorkflowTaskCompleted", "wf-2", 3.5, 1700000002.5, "b", None, 1, 0.5, None, None),
        ("WorkflowTaskStarted", "wf-1", 4.0, 1700000003.0, "c", 2, 1, None, None, None),
    ]
    for fields in recorded[:3]:
        log.record_fields(fields)
    first = list(log.events)
    for fields in recorded[3:]:
        log.record_fields(fields)
    assert log._pending == ["a", "b", "c"]
    assert recorded == [as_fields(e) for e in log.events]
    assert first == log.events[:3]
    assert len(log) == 6


def test_a_plain_run_keeps_one_object_per_event() -> None:
    """A plain run's starts and completions each keep just the task id among the objects."""

    async def body(ctx: tf.TaskContext) -> None:
        return None

    wf = tf.Workflow("w")
    for i in range(20):
        wf.add_task(tf.Task(f"t{i}", body, depends_on=[f"t{i - 1}"] if i else ()))
    executor = tf.WorkflowExecutor(wf)
    trio.run(executor.execute_dataflow)
    log = executor.audit_log
    task_entries = [value for value in log._pending if isinstance(value, str)]
    assert len(task_entries) == 40
    assert len(log._pending) - len(task_entries) == 2  # WorkflowStarted, WorkflowCompleted
    assert [f"t{i}" for i in range(20)] == [
        e.task_id for e in log.of_type(tf.EventType.TASK_COMPLETED)
    ]


def _mixed_log() -> tuple[AuditLog, list[tuple[object, ...]]]:
    """A log of events recorded both ways (objects and fields), and their fields in order."""
    log = AuditLog()
    recorded: list[tuple[object, ...]] = []
    for i in range(12):
        if i % 4 == 3:
            event = tf.AuditEvent(
                tf.EventType.TASK_FAILED, "wf", float(i), 1e9 + i, f"t{i}", None, 1, 0.5, "E: x"
            )
            log.record(event)
            recorded.append(as_fields(event))
        else:
            fields: tuple[object, ...] = (
                "WorkflowTaskStarted",
                "wf",
                float(i),
                1e9 + i,
                f"t{i}",
                i % 3 or None,
                1,
                None,
                None,
                None,
            )
            if i % 5 == 0:
                fields = (*fields[:8], None, "why")
            log.record_fields(fields)
            recorded.append(fields)
    return log, recorded


def test_rows_read_any_range_by_position_without_making_events() -> None:
    """rows(a, b) gives the fields of events a..b, recorded either way, and makes no AuditEvent."""
    log, recorded = _mixed_log()
    pending_before = len(log._pending)
    for start in range(len(recorded) + 1):
        for stop in range(start, len(recorded) + 2):
            assert log.rows(start, stop) == recorded[start:stop], (start, stop)
    assert len(log._pending) == pending_before  # nothing was turned into an AuditEvent
    assert [as_fields(e) for e in log.events] == recorded
    assert log.rows(2, 9) == recorded[2:9]  # the same positions once they are events


def test_followers_are_called_once_per_event_however_it_is_recorded() -> None:
    """A follower hears of every event, and its presence keeps the compact recording."""
    log = AuditLog()
    heard: list[int] = []
    log.followers.append(lambda: heard.append(len(log)))
    log.record_fields(("WorkflowTaskStarted", "wf", 1.0, 2.0, "a", None, 1, None, None, None))
    log.record(tf.AuditEvent(tf.EventType.TASK_COMPLETED, "wf", 2.0, 3.0, "a", None, 1, 1.0))
    log.record_fields(("WorkflowTaskStarted", "wf", 3.0, 4.0, "b", None, 1, None, None, None))
    assert heard == [1, 2, 3]
    assert len(log._pending) == 1


def test_event_columns_read_as_audit_events() -> None:
    """EventColumns is a Sequence of AuditEvents for any store: index, slice, iterate, len."""
    _log, recorded = _mixed_log()
    rows = EventColumns.from_rows(recorded)
    assert len(rows) == len(recorded)
    assert rows.rows == recorded
    assert [as_fields(e) for e in rows] == recorded
    assert as_fields(rows[3]) == recorded[3]
    assert as_fields(rows[-1]) == recorded[-1]
    assert [as_fields(e) for e in rows[2:5]] == recorded[2:5]
    assert all(isinstance(e, tf.AuditEvent) for e in rows)
    assert [fields_of(e) for e in rows] == recorded


def _compact_log(runs: tuple[str, ...] = ("wf",)) -> tuple[AuditLog, list[tuple[object, ...]]]:
    """A log recorded with record_fields only: shaped and unshaped events of ``runs``."""
    log = AuditLog()
    recorded: list[tuple[object, ...]] = []
    for i in range(40):
        run = runs[i % len(runs)]
        if i % 7 == 6:
            fields: tuple[object, ...] = (
                "WorkflowTaskFailed",
                run,
                float(i),
                1e9 + i,
                f"t{i}",
                None,
                1,
                0.5,
                "E: x",
                None,
            )
        else:
            kind = "WorkflowTaskStarted" if i % 2 else "WorkflowTaskCompleted"
            duration = None if i % 2 else 0.25 * i
            fields = (
                kind,
                run,
                float(i),
                1e9 + i,
                f"t{i}",
                i % 3 or None,
                1,
                duration,
                None,
                None,
            )
        log.record_fields(fields)
        recorded.append(fields)
    return log, recorded


def test_columns_of_a_compact_log_are_its_events_without_an_object_each() -> None:
    """AuditLog._columns gives a slice's events, the shapes it uses only, renumbered."""
    log, recorded = _compact_log()
    batch = log._columns(13, 31, "wf")
    assert batch is not None
    assert batch.rows == recorded[13:31]
    assert len(batch.shapes) == len(set(batch.shapes))
    assert set(batch.marks) == set(range(len(batch.shapes))) | {-1}
    # Copies: what is recorded later does not change them.
    log.record_fields(("WorkflowTaskStarted", "wf", 99.0, 2e9, "late", None, 1, None, None, None))
    assert batch.rows == recorded[13:31]
    assert [tid for _, tid in batch.positions_of("WorkflowTaskCompleted")] == [
        row[4] for row in recorded[13:31] if row[0] == "WorkflowTaskCompleted"
    ]
    assert list(batch.task_ids()) == [row[4] for row in recorded[13:31]]


def test_columns_are_refused_for_events_made_objects_or_of_another_run() -> None:
    """None (read rows instead) when part of the slice was made AuditEvents or is another run's."""
    log, _recorded = _compact_log(("wf", "other"))
    assert log._columns(0, 2, "wf") is None  # event 1 is "other"'s
    assert log._columns(6, 7, "wf") is not None  # an unshaped event of "wf"
    assert log._columns(13, 14, "wf") is None  # an unshaped event of "other"
    assert log._columns(5, 6, "wf") is None  # a shaped event of "other"
    assert log._columns(4, 5, "wf") is not None
    mixed, _ = _mixed_log()
    assert mixed._columns(0, 5, "wf") is None  # a recorded AuditEvent made them objects
