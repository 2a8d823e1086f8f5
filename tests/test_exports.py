"""The public API: exactly the documented names, each with a docstring."""

from __future__ import annotations

import inspect

import trioforge as tf
import trioforge.combinators
import trioforge.testing

# The names the issues pin, plus the ones we added; a change here is an API change.
CORE_API = {
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "Backoff",
    "CycleDetectedError",
    "DuplicateTaskError",
    "EmptyWorkflowError",
    "EventType",
    "FailurePolicy",
    "JsonLinesSink",
    "MissingDependencyError",
    "ResultNotAvailableError",
    "Task",
    "TaskContext",
    "TaskFailedError",
    "TaskTimeoutError",
    "UnknownTaskError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowError",
    "WorkflowExecutor",
    "WorkflowResult",
    "WorkflowTask",
    "WorkflowTimeoutError",
}


def test_core_names_are_exported() -> None:
    """Every core name is in trioforge.__all__ and importable."""
    assert set(tf.__all__) >= CORE_API
    for name in tf.__all__:
        assert hasattr(tf, name), name


def test_all_is_sorted_and_unique() -> None:
    """__all__ lists each name once, sorted."""
    assert list(tf.__all__) == sorted(set(tf.__all__))


def test_errors_share_one_root() -> None:
    """Every exported error derives from WorkflowError."""
    for name in tf.__all__:
        obj = getattr(tf, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and name.endswith("Error"):
            assert issubclass(obj, tf.WorkflowError), name


def _public_members(obj: object) -> list[tuple[str, object]]:
    members: list[tuple[str, object]] = []
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or isinstance(member, property):
            members.append((name, member))
    return members


def test_every_public_item_has_a_docstring() -> None:
    """Each exported class, function, method and property is documented."""
    modules = [tf, trioforge.combinators, trioforge.testing]
    missing = []
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
            if isinstance(obj, type):
                for member_name, member in _public_members(obj):
                    if not inspect.getdoc(member):
                        missing.append(f"{module.__name__}.{name}.{member_name}")
    assert missing == []


def test_event_type_names() -> None:
    """Every event name the issue pins exists with exactly that spelling."""
    pinned = {
        "WorkflowStarted",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowTaskFailed",
        "WorkflowTaskTimedOut",
        "WorkflowTaskCancelled",
        "WorkflowTaskParallelStarted",
        "WorkflowTaskParallelCompleted",
        "WorkflowTaskCompensated",
        "WorkflowTaskCompensationFailed",
        "WorkflowCancelled",
        "WorkflowTimedOut",
        "WorkflowCompleted",
        "WorkflowFailed",
        "WorkflowTaskSkipped",
    }
    assert pinned <= {str(t) for t in tf.EventType}
