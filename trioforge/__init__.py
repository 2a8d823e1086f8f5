"""trioforge: structured-concurrency workflows for trio.

A workflow is a DAG of async tasks. trioforge checks it, runs independent
tasks concurrently under trio's structured concurrency, records every event,
and rolls back completed work by compensation when a run fails.
"""

from typing import TYPE_CHECKING
from typing import Any as _Any

if TYPE_CHECKING:
    from ._core import AuditEvent as AuditEvent
    from ._core import AuditLog as AuditLog
    from ._core import AuditSink as AuditSink
    from ._core import Backoff as Backoff
    from ._core import CycleDetectedError as CycleDetectedError
    from ._core import DuplicateTaskError as DuplicateTaskError
    from ._core import EmptyWorkflowError as EmptyWorkflowError
    from ._core import EventType as EventType
    from ._core import FailurePolicy as FailurePolicy
    from ._core import JsonLinesSink as JsonLinesSink
    from ._core import MissingDependencyError as MissingDependencyError
    from ._core import ResourceError as ResourceError
    from ._core import ResultNotAvailableError as ResultNotAvailableError
    from ._core import Schedule as Schedule
    from ._core import Task as Task
    from ._core import TaskContext as TaskContext
    from ._core import TaskFailedError as TaskFailedError
    from ._core import TaskTimeoutError as TaskTimeoutError
    from ._core import UnknownTaskError as UnknownTaskError
    from ._core import Workflow as Workflow
    from ._core import WorkflowCancelledError as WorkflowCancelledError
    from ._core import WorkflowError as WorkflowError
    from ._core import WorkflowTask as WorkflowTask
    from ._core import WorkflowTimeoutError as WorkflowTimeoutError
    from ._executor import WorkflowExecutor as WorkflowExecutor
    from ._executor import WorkflowResult as WorkflowResult
    from ._report import render_report as render_report
    from ._shell import MissingOutputError as MissingOutputError
    from ._shell import ProcessGroups as ProcessGroups
    from ._shell import ShellCommandError as ShellCommandError
    from ._shell import ShellResult as ShellResult
    from ._shell import ShellTask as ShellTask
    from ._shell import process_watchdog as process_watchdog
    from ._store import DefinitionChangedError as DefinitionChangedError
    from ._workflow_file import Problem as Problem
    from ._workflow_file import WorkflowFile as WorkflowFile
    from ._workflow_file import WorkflowFileError as WorkflowFileError
    from ._workflow_file import load_workflow as load_workflow
    from ._workflow_file import load_workflow_file as load_workflow_file

__version__ = "0.1.0"

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "Backoff",
    "CycleDetectedError",
    "DefinitionChangedError",
    "DuplicateTaskError",
    "EmptyWorkflowError",
    "EventType",
    "FailurePolicy",
    "JsonLinesSink",
    "MissingDependencyError",
    "MissingOutputError",
    "Problem",
    "ProcessGroups",
    "ResourceError",
    "ResultNotAvailableError",
    "Schedule",
    "ShellCommandError",
    "ShellResult",
    "ShellTask",
    "Task",
    "TaskContext",
    "TaskFailedError",
    "TaskTimeoutError",
    "UnknownTaskError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowError",
    "WorkflowExecutor",
    "WorkflowFile",
    "WorkflowFileError",
    "WorkflowResult",
    "WorkflowTask",
    "WorkflowTimeoutError",
    "load_workflow",
    "load_workflow_file",
    "process_watchdog",
    "render_report",
]

# Each public name loads its room on first use (PEP 562): ``import trioforge``
# stays cheap, so that a command (``trioforge nox``) loads only the rooms it
# needs. ``from trioforge import X``, ``dir()``, Sphinx and pickling see the
# same objects; type checkers read the re-exports under TYPE_CHECKING above.
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(
        (
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
            "ResourceError",
            "ResultNotAvailableError",
            "Schedule",
            "Task",
            "TaskContext",
            "TaskFailedError",
            "TaskTimeoutError",
            "UnknownTaskError",
            "Workflow",
            "WorkflowCancelledError",
            "WorkflowError",
            "WorkflowTask",
            "WorkflowTimeoutError",
        ),
        "._core",
    ),
    **dict.fromkeys(("WorkflowExecutor", "WorkflowResult"), "._executor"),
    **dict.fromkeys(("render_report",), "._report"),
    **dict.fromkeys(
        (
            "MissingOutputError",
            "ProcessGroups",
            "ShellCommandError",
            "ShellResult",
            "ShellTask",
            "process_watchdog",
        ),
        "._shell",
    ),
    **dict.fromkeys(("DefinitionChangedError",), "._store"),
    **dict.fromkeys(
        ("Problem", "WorkflowFile", "WorkflowFileError", "load_workflow", "load_workflow_file"),
        "._workflow_file",
    ),
}


# Names that moved to ``trioforge.store`` in 0.2 and that earlier docs showed
# here: they still import from the top level, with a DeprecationWarning.
_MOVED_TO_STORE = frozenset(
    {
        "Lease",
        "RunLockedError",
        "RunNotFoundError",
        "RunRecord",
        "RunStore",
        "RunStoreError",
        "SQLiteRunStore",
        "StoredRun",
        "TaskRecord",
        "default_store_path",
    }
)


# Plumbing that earlier docs showed here and that is private now: still
# importable from the top level, with a DeprecationWarning, until 0.3.
_NO_LONGER_PUBLIC = {
    "RunRecorder": "._store",
    "definition_hash": "._store",
    "definition_snapshot": "._store",
    "hold_lease": "._store",
    "keep_lease": "._store",
    "lease_owner": "._store",
}


def __getattr__(name: str) -> _Any:
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    if name in _NO_LONGER_PUBLIC:
        import importlib
        import warnings

        warnings.warn(
            f"trioforge.{name} is no longer public and will be removed in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_NO_LONGER_PUBLIC[name], __name__), name)
    if name in _MOVED_TO_STORE:
        import warnings

        from . import store

        warnings.warn(
            f"trioforge.{name} moved to trioforge.store.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(store, name)
    raise AttributeError(f"module 'trioforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
