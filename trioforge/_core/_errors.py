"""The error hierarchy: one root, small subclasses that carry the data a user needs.

Every error trioforge raises on purpose is a :class:`WorkflowError`. Definition
problems (empty workflow, cycle, missing dependency, duplicate id) are raised
before anything runs; run problems (a task failed, the run was cancelled or timed
out) are raised after rollback has finished, so when you see one of them nothing
the run started is still running.

Each subclass also derives from the builtin it resembles (``ValueError``,
``LookupError``, ``TimeoutError``) so code that already catches those keeps
working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CycleDetectedError",
    "DuplicateTaskError",
    "EmptyWorkflowError",
    "MissingDependencyError",
    "ResultNotAvailableError",
    "TaskFailedError",
    "TaskTimeoutError",
    "UnknownTaskError",
    "WorkflowCancelledError",
    "WorkflowError",
    "WorkflowTimeoutError",
]


def _describe(exc: BaseException) -> str:
    """One line naming an exception's type and message."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class WorkflowError(Exception):
    """Root of every error trioforge raises on purpose."""


class EmptyWorkflowError(WorkflowError, ValueError):
    """Raised when a workflow with no tasks is validated, ordered or run.

    Attributes:
        workflow_name: the empty workflow's name.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"workflow {name!r} has no tasks")
        self.workflow_name = name


class DuplicateTaskError(WorkflowError, ValueError):
    """Raised by :meth:`Workflow.add_task` when the id is already taken.

    Attributes:
        task_id: the id that was added twice.
    """

    def __init__(self, task_id: str) -> None:
        super().__init__(f"a task with id {task_id!r} is already in the workflow")
        self.task_id = task_id


class UnknownTaskError(WorkflowError, LookupError):
    """Raised when a task id that the workflow does not contain is looked up.

    Attributes:
        task_id: the id that was looked up.
    """

    def __init__(self, task_id: str, *, known: Sequence[str] = ()) -> None:
        hint = ""
        if known:
            import difflib

            close = difflib.get_close_matches(task_id, known, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        super().__init__(f"the workflow has no task {task_id!r}{hint}")
        self.task_id = task_id


class MissingDependencyError(WorkflowError, LookupError):
    """Raised when a task depends on an id that is not in the workflow.

    Attributes:
        task_id: the task that declares the dependency.
        dependency: the id it depends on, which no task has.
    """

    def __init__(self, task_id: str, dependency: str, *, known: Sequence[str] = ()) -> None:
        hint = ""
        if known:
            import difflib

            close = difflib.get_close_matches(dependency, known, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        super().__init__(
            f"task {task_id!r} depends on {dependency!r}, which is not in the workflow{hint}"
        )
        self.task_id = task_id
        self.dependency = dependency


class CycleDetectedError(WorkflowError, ValueError):
    """Raised when the dependencies form a cycle.

    Attributes:
        cycle: the tasks on one cycle, in dependency order; the first one
            depends on the last. Only tasks on the cycle are listed.
    """

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
        super().__init__(f"dependency cycle: {path}")


class ResultNotAvailableError(WorkflowError, LookupError):
    """Raised by :meth:`TaskContext.result_of` for a task that is not upstream.

    A task may read the result of any task it depends on, directly or through
    other tasks; anything else would depend on scheduling luck.

    Attributes:
        task_id: the task that asked.
        requested: the id it asked for.
    """

    def __init__(self, task_id: str, requested: str, reason: str) -> None:
        super().__init__(f"task {task_id!r} cannot read the result of {requested!r}: {reason}")
        self.task_id = task_id
        self.requested = requested


class TaskTimeoutError(WorkflowError, TimeoutError):
    """Recorded as the failure of a task that ran out of time.

    It appears in :attr:`TaskFailedError.failures` and as the ``__cause__`` of
    the :class:`TaskFailedError` when the timed-out task failed first.

    Attributes:
        task_id: the task that timed out.
        timeout: the limit it had, in seconds.
    """

    def __init__(self, task_id: str, timeout: float) -> None:
        super().__init__(f"task {task_id!r} timed out after {timeout:g}s")
        self.task_id = task_id
        self.timeout = timeout


class TaskFailedError(WorkflowError):
    """Raised when one or more tasks failed, after rollback has run.

    The ``__cause__`` is the first failed task's own exception (never an
    exception group), so the traceback shows what really broke.

    Attributes:
        task_id: the first task that failed.
        failures: every failed task's exception, by task id, in failure order.
        completed: the tasks that completed before the run stopped.
        results: the completed tasks' results, by task id.
        skipped: tasks that never ran because something they depend on failed.
        compensation_failures: compensations that raised or timed out, by task
            id (the first one per task).
    """

    def __init__(
        self,
        task_id: str,
        failures: Mapping[str, BaseException],
        *,
        completed: Sequence[str] = (),
        skipped: Sequence[str] = (),
        compensation_failures: Mapping[str, BaseException] | None = None,
        results: Mapping[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self.failures = dict(failures)
        self.completed = list(completed)
        self.results = dict(results or {})
        self.skipped = list(skipped)
        self.compensation_failures = dict(compensation_failures or {})
        first = self.failures.get(task_id)
        message = f"task {task_id!r} failed"
        if first is not None:
            message += f": {_describe(first)}"
        others = [tid for tid in self.failures if tid != task_id]
        if others:
            message += f" (also failed: {_names(others)})"
        if self.compensation_failures:
            names = ", ".join(repr(t) for t in self.compensation_failures)
            message += f"; compensation failed for {names}"
        super().__init__(message)


def _names(task_ids: Sequence[str]) -> str:
    shown = ", ".join(repr(t) for t in task_ids[:5])
    more = f" and {len(task_ids) - 5} more" if len(task_ids) > 5 else ""
    return shown + more


def _failed_before(failures: Mapping[str, BaseException]) -> str:
    if not failures:
        return ""
    return f" (after task failures: {_names(list(failures))})"


class WorkflowCancelledError(WorkflowError):
    """Raised when :meth:`WorkflowExecutor.cancel` stopped a run, after rollback.

    A cancel outranks a task failure and the workflow timeout: a run that
    had failed tasks, or had run out of time, and was then cancelled raises
    this error, still carrying the failures (and chaining the first one as
    ``__cause__``).

    Attributes:
        reason: the reason given to ``cancel``.
        completed: the tasks that completed before the cancel.
        results: the completed tasks' results, by task id.
        failures: the tasks that had failed before the cancel, by task id.
        compensation_failures: compensations that raised or timed out, by task
            id (the first one per task).
    """

    def __init__(
        self,
        reason: str,
        *,
        completed: Sequence[str] = (),
        compensation_failures: Mapping[str, BaseException] | None = None,
        results: Mapping[str, Any] | None = None,
        failures: Mapping[str, BaseException] | None = None,
    ) -> None:
        self.reason = reason
        self.completed = list(completed)
        self.results = dict(results or {})
        self.failures = dict(failures or {})
        self.compensation_failures = dict(compensation_failures or {})
        super().__init__(f"workflow cancelled: {reason}{_failed_before(self.failures)}")


class WorkflowTimeoutError(WorkflowError, TimeoutError):
    """Raised when a run exceeded its ``workflow_timeout``, after rollback.

    The timeout outranks a task failure: a run that had failed tasks and
    then ran out of time raises this error, still carrying the failures
    (and chaining the first one as ``__cause__``).

    Attributes:
        timeout: the limit, in seconds.
        completed: the tasks that completed in time.
        results: the completed tasks' results, by task id.
        running: the tasks that were cut off.
        failures: the tasks that had failed before the deadline, by task id.
        compensation_failures: compensations that raised or timed out, by task
            id (the first one per task).
    """

    def __init__(
        self,
        timeout: float,
        *,
        completed: Sequence[str] = (),
        running: Sequence[str] = (),
        compensation_failures: Mapping[str, BaseException] | None = None,
        results: Mapping[str, Any] | None = None,
        failures: Mapping[str, BaseException] | None = None,
    ) -> None:
        self.timeout = timeout
        self.completed = list(completed)
        self.results = dict(results or {})
        self.running = list(running)
        self.failures = dict(failures or {})
        self.compensation_failures = dict(compensation_failures or {})
        message = f"workflow timed out after {timeout:g}s"
        if self.running:
            message += " while running " + ", ".join(repr(t) for t in self.running)
        super().__init__(message + _failed_before(self.failures))
