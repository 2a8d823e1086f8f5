"""The core: what a workflow is and how one run of it is driven.

What it holds: errors, events and the audit log, tasks and their contexts,
the workflow and its compiled DAG (rustworkx), the ready queue, retry
backoff, the task runner (who may read whose result: ``_upstream``), the
three schedulers (sequential, layers, dataflow), rollback by compensation
and its driver for any undo work (``_undo``: compensations and the steps
registered with ``ctx.add_compensation``, shielded, bounded, fully recorded).
The scheduling core (DAG layers, ready queue, rollback order) is plain data,
testable without trio.

May import: the standard library, trio, attrs, rustworkx; nothing else of
trioforge. Imported by: every other room (store, shell, combinators,
executor, workflow file, report, command line) and the public top level.
"""

from ._audit import AuditLog as AuditLog
from ._audit import AuditSink as AuditSink
from ._audit import EventColumns as EventColumns
from ._audit import JsonLinesSink as JsonLinesSink
from ._audit import fields_of as fields_of
from ._audit import row_of as row_of
from ._dag import Dag as Dag
from ._dag import compile_dag as compile_dag
from ._durations import DurationError as DurationError
from ._durations import format_duration as format_duration
from ._durations import parse_duration as parse_duration
from ._ending import fail as fail
from ._ending import stopped_from_outside as stopped_from_outside
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
from ._groups import is_cancellation as is_cancellation
from ._groups import lone_base_exception as lone_base_exception
from ._groups import single_error as single_error
from ._left_behind import leave_note as leave_note
from ._ready import Demand as Demand
from ._ready import Pools as Pools
from ._ready import ResourceError as ResourceError
from ._ready import pools_for as pools_for
from ._retry import Backoff as Backoff
from ._rollback import roll_back as roll_back
from ._run import Run as Run
from ._runner import describe as describe
from ._schedulers import SCHEDULES as SCHEDULES
from ._schedulers import FailurePolicy as FailurePolicy
from ._schedulers import Schedule as Schedule
from ._schedulers import run_dataflow as run_dataflow
from ._schedulers import run_layers as run_layers
from ._schedulers import run_pooled as run_pooled
from ._schedulers import run_sequential as run_sequential
from ._task import Task as Task
from ._task import TaskContext as TaskContext
from ._task import WorkflowTask as WorkflowTask
from ._task import _to_ids as _to_ids
from ._task import has_compensation as has_compensation
from ._task import names_a_pool as names_a_pool
from ._undo import UndoItem as UndoItem
from ._undo import Undone as Undone
from ._undo import undo_all as undo_all
from ._validate import check as check
from ._validate import context_function as context_function
from ._validate import count as count
from ._validate import one_of as one_of
from ._validate import seconds as seconds
from ._workflow import Workflow as Workflow

__all__ = [
    "SCHEDULES",
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "Backoff",
    "CycleDetectedError",
    "Dag",
    "Demand",
    "DuplicateTaskError",
    "DurationError",
    "EmptyWorkflowError",
    "EventColumns",
    "EventType",
    "FailurePolicy",
    "JsonLinesSink",
    "MissingDependencyError",
    "Pools",
    "ResourceError",
    "ResultNotAvailableError",
    "Run",
    "Schedule",
    "Task",
    "TaskContext",
    "TaskFailedError",
    "TaskTimeoutError",
    "UndoItem",
    "Undone",
    "UnknownTaskError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowError",
    "WorkflowTask",
    "WorkflowTimeoutError",
    "_to_ids",
    "check",
    "compile_dag",
    "context_function",
    "count",
    "describe",
    "fail",
    "fields_of",
    "format_duration",
    "has_compensation",
    "is_cancellation",
    "leave_note",
    "lone_base_exception",
    "names_a_pool",
    "one_of",
    "parse_duration",
    "pools_for",
    "roll_back",
    "row_of",
    "run_dataflow",
    "run_layers",
    "run_pooled",
    "run_sequential",
    "seconds",
    "single_error",
    "stopped_from_outside",
    "undo_all",
]
