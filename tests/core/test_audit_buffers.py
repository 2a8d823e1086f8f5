"""The audit log's pending buffers: events read back exactly as they were recorded."""

from __future__ import annotations

import trio

import trioforge as tf
from trioforge._core._audit import AuditLog


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
