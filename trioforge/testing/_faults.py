"""Fault plans for real workflows: which tasks fail before or after their body, or hang.

Design note. A fault is injected *around* a task's real body, never instead
of it, so the task's side effects happen exactly as in production:
``fail_before`` raises before the body starts (nothing done), ``fail_after``
raises once the body returned (everything done, but the task fails), and
``hang`` blocks once the body returned until something cancels the task (its
timeout, the run's timeout, ``cancel()``). These are the three points where a
saga can leak: work done by a task that then does not complete.

:func:`with_faults` copies the workflow rather than patching it: the copy has
the same ids, dependencies (including ones added with
:meth:`~trioforge.Workflow.add_dependency`), options and compensations, and
the original stays usable as the fault-free reference. A plain
:class:`~trioforge.Task` is copied with ``attrs.evolve`` and a wrapped
function (still a ``Task``, so the executor treats it exactly the same, and its
stored definition names the same function); any other task (a combinator, a
:class:`~trioforge.ShellTask`, a user class) is wrapped whole in a proxy
that forwards every attribute, so a fault fires around the whole combinator,
never inside it. The fault fires on every attempt, so retries cannot mask it.
Nothing here depends on the clock or the executor.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import attrs

from trioforge import Task, TaskContext, Workflow, WorkflowTask

from ._deadlock import _hang_forever

__all__ = ["FaultKind", "FaultPlan", "InjectedFault", "with_faults"]

FaultKind = Literal["fail_before", "fail_after", "hang"]
"""The names of the three kinds of fault, as :class:`FaultPlan` fields."""

_KINDS: tuple[FaultKind, ...] = ("fail_before", "fail_after", "hang")


class InjectedFault(Exception):
    """Raised by a task that a :class:`FaultPlan` told to fail (``fail_before``/``fail_after``).

    Args:
        task_id: the task.
        kind: ``"fail_before"`` or ``"fail_after"``.

    Attributes:
        task_id: the task that failed.
        kind: ``"fail_before"`` (raised before the body ran) or
            ``"fail_after"`` (raised after the body returned).
    """

    def __init__(self, task_id: str, kind: str) -> None:
        when = "before its body ran" if kind == "fail_before" else "after its body returned"
        super().__init__(f"FaultPlan.{kind}: task {task_id!r} failed {when}")
        self.task_id = task_id
        self.kind = kind

    def __reduce__(self) -> tuple[type[InjectedFault], tuple[str, str]]:
        return (InjectedFault, (self.task_id, self.kind))


def _to_ids(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        # frozenset("ab") would silently mean {"a", "b"}.
        raise TypeError(f"expected a collection of task ids, got the str {value!r}")
    return frozenset(value)


def _check_ids(_instance: object, attribute: attrs.Attribute[Any], value: frozenset[Any]) -> None:
    for item in value:
        if not isinstance(item, str) or not item:
            raise TypeError(
                f"FaultPlan.{attribute.name} must hold non-empty str task ids, got {item!r}"
            )


def _check_cancel_at(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"FaultPlan.cancel_at must be a number of seconds or None, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"FaultPlan.cancel_at must be a finite number >= 0, got {value!r}")


@attrs.frozen
class FaultPlan:
    """Which tasks of a workflow misbehave, and when the run is cancelled.

    Each fault fires on every attempt of its task (retries cannot mask it).
    Draw plans with :func:`~trioforge.testing.faults`; apply one with
    :func:`with_faults` or ``run_virtual(..., faults=plan)``.

    Args:
        fail_before: tasks that raise :class:`InjectedFault` before their
            body runs (the body never runs).
        fail_after: tasks that raise :class:`InjectedFault` after their body
            returned (its side effects are done).
        hang: tasks that, after their body returned, block until cancelled
            (by their timeout, the run's timeout or a cancel).
        cancel_at: virtual seconds after the run started at which
            :func:`~trioforge.testing.run_virtual` calls the executor's
            ``cancel()``, or None; ignored by :func:`with_faults`.

    Raises:
        TypeError: a field holds something other than task ids (a lone str
            is refused: write ``{"a"}``, not ``"a"``), or ``cancel_at`` is not
            a number.
        ValueError: a task id is in more than one of the three sets, or
            ``cancel_at`` is negative or not finite.
    """

    fail_before: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_ids, validator=_check_ids
    )
    fail_after: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_ids, validator=_check_ids
    )
    hang: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_ids, validator=_check_ids
    )
    cancel_at: float | None = attrs.field(default=None, validator=_check_cancel_at)

    def __attrs_post_init__(self) -> None:
        seen: dict[str, str] = {}
        for kind in _KINDS:
            for task_id in sorted(getattr(self, kind)):
                if task_id in seen:
                    raise ValueError(
                        f"task {task_id!r} is in both FaultPlan.{seen[task_id]} and "
                        f"FaultPlan.{kind}; a task takes at most one fault"
                    )
                seen[task_id] = kind

    @property
    def faulty(self) -> frozenset[str]:
        """Every task id the plan gives a fault to."""
        return self.fail_before | self.fail_after | self.hang

    def fault_of(self, task_id: str) -> FaultKind | None:
        """The fault planned for ``task_id``, or None."""
        for kind in _KINDS:
            if task_id in getattr(self, kind):
                return kind
        return None


async def _inject(kind: FaultKind, task_id: str, body: Callable[[], Awaitable[Any]]) -> Any:
    if kind == "fail_before":
        raise InjectedFault(task_id, kind)
    result = await body()
    if kind == "fail_after":
        raise InjectedFault(task_id, kind)
    await _hang_forever()
    return result  # pragma: no cover - _hang_forever only ever raises Cancelled


def _faulty_fn(
    fn: Callable[[TaskContext], Awaitable[Any]], kind: FaultKind, task_id: str
) -> Callable[[TaskContext], Awaitable[Any]]:
    @functools.wraps(fn)
    async def faulty(ctx: TaskContext) -> Any:
        return await _inject(kind, task_id, functools.partial(fn, ctx))

    return faulty


@attrs.frozen(repr=False)
class FaultyTask:
    """A task of any kind with a fault injected around its ``run``.

    Made by :func:`with_faults` for tasks that are not a plain
    :class:`~trioforge.Task` (combinators, :class:`~trioforge.ShellTask`,
    your own classes). The fault fires around the whole of ``inner.run``: a
    combinator's children all run (or none do) and the combinator's own
    rollback of its children works as usual. ``compensate`` is
    ``inner.compensate``; every other attribute (``estimate``, ``retries``,
    ``has_compensation``, a shell task's ``run_command``...) is read from
    ``inner``, and ``repr`` is ``inner``'s, so the stored definition of a run
    is the same as without the fault.

    Attributes:
        inner: the wrapped task.
        kind: the fault.
    """

    inner: WorkflowTask
    kind: FaultKind

    def __repr__(self) -> str:
        return repr(self.inner)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def id(self) -> str:
        """The wrapped task's id."""
        return self.inner.id

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The wrapped task's dependencies."""
        return tuple(self.inner.depends_on)

    @property
    def timeout(self) -> float | None:
        """The wrapped task's timeout (it bounds the injected hang too)."""
        return self.inner.timeout

    async def run(self, ctx: TaskContext) -> Any:
        """Run ``inner.run(ctx)`` with the fault around it."""
        return await _inject(self.kind, self.inner.id, functools.partial(self.inner.run, ctx))

    async def compensate(self, ctx: TaskContext) -> None:
        """Run ``inner.compensate(ctx)``."""
        await self.inner.compensate(ctx)


def _with_fault(task: WorkflowTask, kind: FaultKind) -> WorkflowTask:
    if isinstance(task, Task):
        return attrs.evolve(task, fn=_faulty_fn(task.fn, kind, task.id))
    return FaultyTask(task, kind)


def with_faults(workflow: Workflow, plan: FaultPlan) -> Workflow:
    """A copy of ``workflow`` whose tasks misbehave as ``plan`` says.

    The copy is a plain :class:`~trioforge.Workflow` with the same name, the
    same tasks in the same order, the same dependencies (including those added
    with :meth:`~trioforge.Workflow.add_dependency`) and the same options and
    compensations; tasks without a fault are the very same objects. A task
    with a fault runs its real body (or, for ``fail_before``, not at all) on
    every attempt, then fails or hangs (see :class:`FaultPlan`). A plain
    :class:`~trioforge.Task` stays a ``Task`` with a wrapped function; other
    tasks are wrapped in a :class:`FaultyTask`. ``plan.cancel_at`` is
    ignored: cancelling is the job of whoever runs the copy (as
    :func:`~trioforge.testing.run_virtual` does).

    Runs under any executor mode and any clock: in a pytest-trio test with
    ``autojump_clock``, run it with a :class:`~trioforge.WorkflowExecutor`.

    Args:
        workflow: the workflow to copy; it is not changed.
        plan: the faults.

    Raises:
        TypeError: ``workflow`` is not a Workflow or ``plan`` not a FaultPlan.
        ValueError: the plan names a task the workflow does not have.
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"workflow must be a trioforge.Workflow, got {workflow!r}")
    if not isinstance(plan, FaultPlan):
        raise TypeError(f"plan must be a FaultPlan, got {plan!r}")
    tasks = workflow.tasks
    for kind in _KINDS:
        for task_id in sorted(getattr(plan, kind)):
            if task_id not in tasks:
                close = difflib.get_close_matches(task_id, list(tasks), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"FaultPlan.{kind} names {task_id!r}, which is not a task of "
                    f"workflow {workflow.name!r}{hint}"
                )
    copy = Workflow(workflow.name)
    for task_id, task in tasks.items():
        fault = plan.fault_of(task_id)
        copy.add_task(task if fault is None else _with_fault(task, fault))
    for task_id, task in tasks.items():
        own = set(task.depends_on)
        for dep in workflow.dependencies_of(task_id):
            if dep not in own:
                copy.add_dependency(dep, task_id)
    return copy
