"""trioforge: structured-concurrency workflows for trio.

A workflow is a DAG of async tasks. trioforge checks it, runs independent
tasks concurrently under trio's structured concurrency, records every event,
and rolls back completed work by compensation when a run fails.
"""

from ._core._audit import AuditLog as AuditLog
from ._core._audit import AuditSink as AuditSink
from ._core._audit import JsonLinesSink as JsonLinesSink
from ._core._errors import CycleDetectedError as CycleDetectedError
from ._core._errors import DuplicateTaskError as DuplicateTaskError
from ._core._errors import EmptyWorkflowError as EmptyWorkflowError
from ._core._errors import MissingDependencyError as MissingDependencyError
from ._core._errors import ResultNotAvailableError as ResultNotAvailableError
from ._core._errors import TaskFailedError as TaskFailedError
from ._core._errors import TaskTimeoutError as TaskTimeoutError
from ._core._errors import UnknownTaskError as UnknownTaskError
from ._core._errors import WorkflowCancelledError as WorkflowCancelledError
from ._core._errors import WorkflowError as WorkflowError
from ._core._errors import WorkflowTimeoutError as WorkflowTimeoutError
from ._core._events import AuditEvent as AuditEvent
from ._core._events import EventType as EventType
from ._core._retry import Backoff as Backoff
from ._core._schedulers import FailurePolicy as FailurePolicy
from ._core._task import Task as Task
from ._core._task import TaskContext as TaskContext
from ._core._task import WorkflowTask as WorkflowTask
from ._core._workflow import Workflow as Workflow
from ._executor import WorkflowExecutor as WorkflowExecutor
from ._executor import WorkflowResult as WorkflowResult
from ._report._html import render_report as render_report
from ._shell._process_group import ProcessGroups as ProcessGroups
from ._shell._process_group import process_watchdog as process_watchdog
from ._shell._shell_task import ShellCommandError as ShellCommandError
from ._shell._shell_task import ShellResult as ShellResult
from ._shell._shell_task import ShellTask as ShellTask
from ._shell._templates import MissingOutputError as MissingOutputError
from ._store._durable import DefinitionChangedError as DefinitionChangedError
from ._store._lease import hold_lease as hold_lease
from ._store._lease import keep_lease as keep_lease
from ._store._lease import lease_owner as lease_owner
from ._store._protocol import RunStore as RunStore
from ._store._protocol import SQLiteRunStore as SQLiteRunStore
from ._store._protocol import default_store_path as default_store_path
from ._store._records import Lease as Lease
from ._store._records import RunLockedError as RunLockedError
from ._store._records import RunNotFoundError as RunNotFoundError
from ._store._records import RunRecord as RunRecord
from ._store._records import RunStoreError as RunStoreError
from ._store._records import StoredRun as StoredRun
from ._store._records import TaskRecord as TaskRecord
from ._store._records import definition_hash as definition_hash
from ._store._records import definition_snapshot as definition_snapshot
from ._store._writer import RunRecorder as RunRecorder
from ._workflow_file._loader import WorkflowFile as WorkflowFile
from ._workflow_file._loader import WorkflowFileError as WorkflowFileError
from ._workflow_file._loader import load_workflow as load_workflow
from ._workflow_file._loader import load_workflow_file as load_workflow_file
from ._workflow_file._schema import Problem as Problem

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
