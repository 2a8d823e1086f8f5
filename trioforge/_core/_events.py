"""Audit events: frozen records of everything a run does.

Every reporter (the in-memory :class:`AuditLog`, a JSON Lines file, later the
progress view and the run store) consumes the same events. Recording one is
synchronous and cheap: an event stores the wall clock as a float and builds
its ``datetime`` only when asked.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any

import attrs

__all__ = ["AuditEvent", "EventType"]


class EventType(enum.StrEnum):
    """The name of an audit event; each member compares equal to its string value."""

    WORKFLOW_STARTED = "WorkflowStarted"
    WORKFLOW_COMPLETED = "WorkflowCompleted"
    WORKFLOW_FAILED = "WorkflowFailed"
    WORKFLOW_CANCELLED = "WorkflowCancelled"
    WORKFLOW_TIMED_OUT = "WorkflowTimedOut"
    TASK_STARTED = "WorkflowTaskStarted"
    TASK_COMPLETED = "WorkflowTaskCompleted"
    TASK_FAILED = "WorkflowTaskFailed"
    TASK_TIMED_OUT = "WorkflowTaskTimedOut"
    TASK_CANCELLED = "WorkflowTaskCancelled"
    TASK_RETRYING = "WorkflowTaskRetrying"
    TASK_SKIPPED = "WorkflowTaskSkipped"
    TASK_COMPENSATED = "WorkflowTaskCompensated"
    TASK_COMPENSATION_FAILED = "WorkflowTaskCompensationFailed"
    LAYER_STARTED = "WorkflowTaskParallelStarted"
    LAYER_COMPLETED = "WorkflowTaskParallelCompleted"


@attrs.frozen
class AuditEvent:
    """One thing that happened in a run.

    Attributes:
        type: the event's name, e.g. ``"WorkflowTaskCompleted"``.
        workflow_id: the run's id.
        clock: ``trio.current_time()`` when it happened (virtual under a MockClock).
        wall: seconds since the epoch when it happened (see :attr:`timestamp`).
        task_id: the task, on task events.
        layer: the layer index, on layer events (and task events of ``execute_parallel``).
        attempt: the attempt number, on task events.
        duration: seconds the task, attempt or run took, on ending events.
        error: ``"ExceptionType: message"`` on failure events.
        detail: extra text: a cancel reason, a retry delay, a workflow name.
    """

    type: EventType
    workflow_id: str
    clock: float
    wall: float
    task_id: str | None = None
    layer: int | None = None
    attempt: int | None = None
    duration: float | None = None
    error: str | None = None
    detail: str | None = None

    @property
    def timestamp(self) -> _dt.datetime:
        """When it happened, as a timezone-aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.wall, _dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: strings, numbers and None; ``timestamp`` in ISO 8601.

        Fields that are None on this event are left out, except ``task_id``.
        """
        out: dict[str, Any] = {
            "type": str(self.type),
            "workflow_id": self.workflow_id,
            "timestamp": self.timestamp.isoformat(),
            "clock": self.clock,
            "task_id": self.task_id,
        }
        for name in ("layer", "attempt", "duration", "error", "detail"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out
