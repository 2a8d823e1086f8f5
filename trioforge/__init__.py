"""trioforge: structured-concurrency workflows for trio.

A workflow is a DAG of async tasks. trioforge checks it, runs independent
tasks concurrently under trio's structured concurrency, records every event,
and rolls back completed work by compensation when a run fails.
"""

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
from ._core import ResultNotAvailableError as ResultNotAvailableError
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
from ._store import Lease as Lease
from ._store import RunLockedError as RunLockedError
from ._store import RunNotFoundError as RunNotFoundError
from ._store import RunRecord as RunRecord
from ._store import RunRecorder as RunRecorder
from ._store import RunStore as RunStore
from ._store import RunStoreError as RunStoreError
from ._store import SQLiteRunStore as SQLiteRunStore
from ._store import StoredRun as StoredRun
from ._store import TaskRecord as TaskRecord
from ._store import default_store_path as default_store_path
from ._store import definition_hash as definition_hash
from ._store import definition_snapshot as definition_snapshot
from ._store import hold_lease as hold_lease
from ._store import keep_lease as keep_lease
from ._store import lease_owner as lease_owner
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
    "Lease",
    "MissingDependencyError",
    "MissingOutputError",
    "Problem",
    "ProcessGroups",
    "ResultNotAvailableError",
    "RunLockedError",
    "RunNotFoundError",
    "RunRecord",
    "RunRecorder",
    "RunStore",
    "RunStoreError",
    "SQLiteRunStore",
    "ShellCommandError",
    "ShellResult",
    "ShellTask",
    "StoredRun",
    "Task",
    "TaskContext",
    "TaskFailedError",
    "TaskRecord",
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
    "default_store_path",
    "definition_hash",
    "definition_snapshot",
    "hold_lease",
    "keep_lease",
    "lease_owner",
    "load_workflow",
    "load_workflow_file",
    "process_watchdog",
    "render_report",
]
