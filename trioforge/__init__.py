"""trioforge: structured-concurrency workflows for trio.

A workflow is a DAG of async tasks. trioforge checks it, runs independent
tasks concurrently under trio's structured concurrency, records every event,
and rolls back completed work by compensation when a run fails.
"""

from ._audit import AuditLog as AuditLog
from ._audit import AuditSink as AuditSink
from ._audit import JsonLinesSink as JsonLinesSink
from ._durable import DefinitionChangedError as DefinitionChangedError
from ._errors import CycleDetectedError as CycleDetectedError
from ._errors import DuplicateTaskError as DuplicateTaskError
from ._errors import EmptyWorkflowError as EmptyWorkflowError
from ._errors import MissingDependencyError as MissingDependencyError
from ._errors import ResultNotAvailableError as ResultNotAvailableError
from ._errors import TaskFailedError as TaskFailedError
from ._errors import TaskTimeoutError as TaskTimeoutError
from ._errors import UnknownTaskError as UnknownTaskError
from ._errors import WorkflowCancelledError as WorkflowCancelledError
from ._errors import WorkflowError as WorkflowError
from ._errors import WorkflowTimeoutError as WorkflowTimeoutError
from ._events import AuditEvent as AuditEvent
from ._events import EventType as EventType
from ._executor import WorkflowExecutor as WorkflowExecutor
from ._executor import WorkflowResult as WorkflowResult
from ._process_group import ProcessGroups as ProcessGroups
from ._process_group import process_watchdog as process_watchdog
from ._report import render_report as render_report
from ._retry import Backoff as Backoff
from ._schedulers import FailurePolicy as FailurePolicy
from ._shell import ShellCommandError as ShellCommandError
from ._shell import ShellResult as ShellResult
from ._shell import ShellTask as ShellTask
from ._store import RunStore as RunStore
from ._store import SQLiteRunStore as SQLiteRunStore
from ._store import default_store_path as default_store_path
from ._store_lease import hold_lease as hold_lease
from ._store_lease import keep_lease as keep_lease
from ._store_lease import lease_owner as lease_owner
from ._store_records import Lease as Lease
from ._store_records import RunLockedError as RunLockedError
from ._store_records import RunNotFoundError as RunNotFoundError
from ._store_records import RunRecord as RunRecord
from ._store_records import RunStoreError as RunStoreError
from ._store_records import StoredRun as StoredRun
from ._store_records import TaskRecord as TaskRecord
from ._store_records import definition_hash as definition_hash
from ._store_records import definition_snapshot as definition_snapshot
from ._store_writer import RunRecorder as RunRecorder
from ._task import Task as Task
from ._task import TaskContext as TaskContext
from ._task import WorkflowTask as WorkflowTask
from ._templates import MissingOutputError as MissingOutputError
from ._workflow import Workflow as Workflow
from ._yaml_loader import WorkflowFile as WorkflowFile
from ._yaml_loader import WorkflowFileError as WorkflowFileError
from ._yaml_loader import load_workflow as load_workflow
from ._yaml_loader import load_workflow_file as load_workflow_file
from ._yaml_schema import Problem as Problem

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
