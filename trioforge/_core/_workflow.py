"""Workflow: a named, editable set of tasks and the dependencies between them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, overload

from ._dag import Dag, compile_dag
from ._errors import DuplicateTaskError, UnknownTaskError
from ._task import Task, TaskContext, WorkflowTask

__all__ = ["Workflow"]

TaskFn = Callable[[TaskContext], Awaitable[Any]]


class Workflow:
    """A DAG of tasks.

    Tasks may be added in any order and may name dependencies that are added
    later; the graph is checked when it is compiled (:meth:`validate`,
    :meth:`execution_layers`, or a run).

    Args:
        name: a name for messages, audit events and run ids.

    Example::

        wf = Workflow("build")

        @wf.task()
        async def fetch(ctx): ...

        @wf.task(depends_on=["fetch"], timeout=30)
        async def build(ctx):
            source = ctx.result_of("fetch")
            ...
    """

    def __init__(self, name: str = "workflow") -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        self.name = name
        self._tasks: dict[str, WorkflowTask] = {}
        self._extra_deps: dict[str, list[str]] = {}
        self._dag: Dag | None = None

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={len(self._tasks)})"

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __getitem__(self, task_id: str) -> WorkflowTask:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTaskError(task_id, known=list(self._tasks)) from None

    @property
    def tasks(self) -> dict[str, WorkflowTask]:
        """A copy of the tasks by id, in insertion order."""
        return dict(self._tasks)

    def add_task(self, task: WorkflowTask) -> str:
        """Add a task and return its id.

        Raises:
            DuplicateTaskError: a task with the same id is already here.
            TypeError: ``task`` does not satisfy :class:`WorkflowTask`.
        """
        # isinstance() against a runtime protocol costs microseconds: skip it for Task.
        if type(task) is not Task and not isinstance(task, WorkflowTask):
            raise TypeError(
                f"add_task needs a WorkflowTask (id, depends_on, timeout, run, compensate), "
                f"got {task!r}"
            )
        task_id = task.id
        # A Task checked its id when it was made.
        if type(task) is not Task and (not isinstance(task_id, str) or not task_id):
            raise TypeError(f"a task id must be a non-empty str, got {task_id!r}")
        if task_id in self._tasks:
            raise DuplicateTaskError(task_id)
        self._tasks[task_id] = task
        self._dag = None
        return task_id

    @overload
    def task(self, fn: TaskFn, /) -> Task: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        depends_on: Sequence[str] = (),
        timeout: float | None = None,
        compensate: Callable[[TaskContext], Awaitable[None]] | None = None,
        id: str | None = None,
        estimate: float | None = None,
        retries: int | None = None,
    ) -> Callable[[TaskFn], Task]: ...

    def task(
        self,
        fn: TaskFn | None = None,
        /,
        *,
        depends_on: Sequence[str] = (),
        timeout: float | None = None,
        compensate: Callable[[TaskContext], Awaitable[None]] | None = None,
        id: str | None = None,
        estimate: float | None = None,
        retries: int | None = None,
    ) -> Task | Callable[[TaskFn], Task]:
        """Decorator: turn ``async def f(ctx)`` into a :class:`Task` and add it.

        The task's id is ``id`` or ``f.__name__``. The decorated name is bound
        to the new :class:`Task`. Works bare (``@wf.task``) or called
        (``@wf.task(depends_on=["a"])``).

        Args:
            fn: the function, when used bare.
            depends_on: ids of the tasks that must succeed first.
            timeout: seconds the task may run; None uses the executor's ``task_timeout``.
            compensate: ``async def undo(ctx)`` run during rollback.
            id: the task id; defaults to the function's name.
            estimate: expected run time in seconds, for scheduling priority.
            retries: retries after a failure; None uses the executor's default.
        """

        def decorate(func: TaskFn) -> Task:
            task = Task(
                id if id is not None else func.__name__,
                func,
                depends_on=depends_on,
                timeout=timeout,
                compensate=compensate,
                estimate=estimate,
                retries=retries,
            )
            self.add_task(task)
            return task

        if fn is not None:
            return decorate(fn)
        return decorate

    def add_dependency(self, before: str, after: str) -> None:
        """Make ``after`` wait for ``before`` to succeed.

        Raises:
            UnknownTaskError: either id is not in the workflow yet.
        """
        for task_id in (before, after):
            if task_id not in self._tasks:
                raise UnknownTaskError(task_id, known=list(self._tasks))
        self._extra_deps.setdefault(after, []).append(before)
        self._dag = None

    def dependencies_of(self, task_id: str) -> list[str]:
        """The ids ``task_id`` depends on directly, without duplicates."""
        return _unique(self[task_id].depends_on, self._extra_deps.get(task_id))

    def _dependency_lists(self) -> Iterator[tuple[str, WorkflowTask, list[str]]]:
        """``(id, task, dependencies_of(id))`` for every task, in order, in one pass."""
        extra = self._extra_deps
        for task_id, task in self._tasks.items():
            yield task_id, task, _unique(task.depends_on, extra.get(task_id) if extra else None)

    def _compile(self) -> Dag:
        """Check the workflow and return its compiled graph (cached until the next edit).

        Raises:
            EmptyWorkflowError: there are no tasks.
            MissingDependencyError: a task depends on an unknown id.
            CycleDetectedError: the dependencies form a cycle.
        """
        if self._dag is None:
            extra = self._extra_deps
            deps: list[Sequence[str]] = [task.depends_on for task in self._tasks.values()]
            if extra:
                deps = [
                    [*task_deps, *extra[tid]] if tid in extra else task_deps
                    for tid, task_deps in zip(self._tasks, deps, strict=True)
                ]
            self._dag = compile_dag(self.name, list(self._tasks), deps)
        return self._dag

    def validate(self) -> None:
        """Check the workflow: not empty, every dependency known, no cycle.

        Raises:
            EmptyWorkflowError: there are no tasks.
            MissingDependencyError: a task depends on an unknown id.
            CycleDetectedError: the dependencies form a cycle.
        """
        self._compile()

    def execution_order(self) -> list[str]:
        """A topological order of the task ids, keeping insertion order where possible."""
        dag = self._compile()
        ids = dag.ids
        return [ids[i] for i in dag.topological_order()]

    def execution_layers(self) -> list[list[str]]:
        """Task ids grouped by layer: a task's layer is its longest distance from a root.

        Every task of a layer depends only on tasks of earlier layers, so a
        layer's tasks can run concurrently. Each inner list is sorted.
        """
        return self._compile().layer_ids()

    def estimates(self) -> list[float]:
        """Each task's ``estimate`` in seconds, 1.0 where it has none, in insertion order."""
        result: list[float] = []
        for task in self._tasks.values():
            estimate = getattr(task, "estimate", None)
            result.append(1.0 if estimate is None else float(estimate))
        return result

    def critical_path(self) -> tuple[list[str], float]:
        """The chain of tasks with the largest total estimate, and that total.

        Estimates come from each task's ``estimate``; a task without one
        counts as one unit (1.0).
        """
        dag = self._compile()
        path, total = dag.critical_path(self.estimates())
        return [dag.ids[i] for i in path], total


def _unique(deps: Sequence[str], more: Sequence[str] | None) -> list[str]:
    """``deps`` then ``more``, each id once, in order."""
    if more:
        return list(dict.fromkeys([*deps, *more]))
    # Most lists repeat nothing: a set says so for a third of what dict.fromkeys costs.
    if len(deps) < 2 or len(set(deps)) == len(deps):
        return list(deps)
    return list(dict.fromkeys(deps))
