"""Hypothesis strategies for random workflows.

A DAG is drawn the hypothesis way: first the number of tasks, then for each
task up to ``max_deps`` dependencies chosen only among the tasks before it.
Edges always go from a lower to a higher index, so every draw is acyclic by
construction and no draw is ever rejected. Examples shrink toward fewer
tasks, fewer edges, shorter durations and no failures.

Durations are multiples of 1/64 s: such numbers add up exactly in binary
floating point, so virtual-time equalities (makespan == critical path) hold
to the last bit.

:func:`faults` draws a :class:`FaultPlan` for a given workflow as a list of
``(task, kind)`` pairs, unique by task, so no task is ever drawn into two
fault sets and no draw is rejected; then ``cancel_at`` as "none, or a time".
A list shrinks toward fewer and earlier items and a ``one_of`` toward its
first branch, so plans shrink toward fewer faults, toward the workflow's
first tasks and ``fail_before``, and toward no cancel (then an earlier one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import trio
from hypothesis import strategies as st

from trioforge import TaskContext, Workflow

from ._faults import FaultKind, FaultPlan

__all__ = [
    "DagSpec",
    "SimulatedFailure",
    "SimulatedTask",
    "SimulatedWorkflow",
    "TaskSpec",
    "Trace",
    "dag_specs",
    "faults",
    "workflows",
]


class SimulatedFailure(Exception):
    """Raised by a :class:`SimulatedTask` that was drawn to fail."""


@attrs.frozen
class TaskSpec:
    """One drawn task: its id, dependencies, duration in seconds and whether it fails."""

    id: str
    deps: tuple[str, ...]
    duration: float
    fails: bool = False


@attrs.frozen
class DagSpec:
    """A drawn DAG: tasks in an order where every dependency comes first."""

    tasks: tuple[TaskSpec, ...]
    name: str = "simulated"

    @property
    def ids(self) -> list[str]:
        """Task ids in drawn order."""
        return [t.id for t in self.tasks]

    @property
    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each task's dependencies by id."""
        return {t.id: t.deps for t in self.tasks}

    @property
    def durations(self) -> dict[str, float]:
        """Each task's duration by id."""
        return {t.id: t.duration for t in self.tasks}

    @property
    def failing(self) -> set[str]:
        """The ids of the tasks drawn to fail."""
        return {t.id for t in self.tasks if t.fails}

    def build(self, trace: Trace | None = None) -> SimulatedWorkflow:
        """A workflow of :class:`SimulatedTask` recording into ``trace`` (a new one if None)."""
        return SimulatedWorkflow(self, Trace() if trace is None else trace)


@attrs.define(eq=False)
class Trace:
    """What the simulated tasks of one workflow did, in virtual time.

    Attributes:
        starts: start times of each attempt, by task id.
        ends: when each task succeeded.
        failures: when each task failed.
        cancelled: tasks that were cancelled while running.
        compensated: compensations in the order they ran.
        running: tasks running now.
        max_running: the most tasks that ever ran at once.
    """

    starts: dict[str, list[float]] = attrs.Factory(dict)
    ends: dict[str, float] = attrs.Factory(dict)
    failures: dict[str, float] = attrs.Factory(dict)
    cancelled: list[str] = attrs.Factory(list)
    compensated: list[str] = attrs.Factory(list)
    running: int = 0
    max_running: int = 0


@attrs.frozen
class SimulatedTask:
    """A task that sleeps for ``duration``, then fails or returns its id."""

    id: str
    depends_on: tuple[str, ...]
    duration: float
    fails: bool
    trace: Trace = attrs.field(repr=False)
    timeout: float | None = None
    estimate: float | None = None

    async def run(self, ctx: TaskContext) -> str:
        """Sleep, then fail or return the task id, recording everything in the trace."""
        trace = self.trace
        trace.starts.setdefault(self.id, []).append(trio.current_time())
        trace.running += 1
        trace.max_running = max(trace.max_running, trace.running)
        try:
            await trio.sleep(self.duration)
        except trio.Cancelled:
            trace.cancelled.append(self.id)
            raise
        finally:
            trace.running -= 1
        if self.fails:
            trace.failures[self.id] = trio.current_time()
            raise SimulatedFailure(f"task {self.id!r} was drawn to fail")
        trace.ends[self.id] = trio.current_time()
        return self.id

    async def compensate(self, ctx: TaskContext) -> None:
        """Record the compensation."""
        await trio.lowlevel.checkpoint()
        self.trace.compensated.append(self.id)


class SimulatedWorkflow(Workflow):
    """A :class:`~trioforge.Workflow` built from a :class:`DagSpec`.

    Attributes:
        spec: the drawn DAG.
        trace: what its tasks did.
    """

    def __init__(
        self, spec: DagSpec, trace: Trace, *, estimates: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.trace = trace
        for t in spec.tasks:
            estimate = t.duration if estimates is None else estimates.get(t.id)
            self.add_task(
                SimulatedTask(t.id, t.deps, t.duration, t.fails, trace, estimate=estimate)
            )


def _check_bounds(**bounds: Any) -> None:
    for name, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")


_DEFAULT_DURATIONS = st.integers(min_value=0, max_value=64).map(lambda n: n / 64)


@st.composite
def dag_specs(
    draw: st.DrawFn,
    *,
    min_tasks: int = 1,
    max_tasks: int = 50,
    max_deps: int = 3,
    durations: st.SearchStrategy[float] | None = None,
    failures: bool = False,
) -> DagSpec:
    """Draw a random :class:`DagSpec`.

    Args:
        draw: supplied by hypothesis; callers never pass it.
        min_tasks: at least this many tasks (>= 1).
        max_tasks: at most this many tasks.
        max_deps: at most this many dependencies per task, each on an earlier task.
        durations: strategy for each task's duration in seconds (default:
            multiples of 1/64 s from 0 to 1 s, exact in binary).
        failures: when true, about one task in ten is drawn to fail.

    Shrinks toward fewer tasks, fewer edges, zero durations and no failures.
    """
    _check_bounds(min_tasks=min_tasks, max_tasks=max_tasks, max_deps=max_deps)
    if min_tasks < 1 or min_tasks > max_tasks:
        raise ValueError(f"need 1 <= min_tasks <= max_tasks, got {min_tasks}, {max_tasks}")
    duration_strategy = _DEFAULT_DURATIONS if durations is None else durations
    count = draw(st.integers(min_value=min_tasks, max_value=max_tasks))
    tasks: list[TaskSpec] = []
    for index in range(count):
        deps: list[int] = []
        if index and max_deps:
            deps = draw(
                st.lists(
                    st.integers(min_value=0, max_value=index - 1),
                    max_size=min(max_deps, index),
                    unique=True,
                )
            )
        fails = failures and draw(st.integers(min_value=0, max_value=9)) == 9
        tasks.append(
            TaskSpec(
                f"t{index}",
                tuple(f"t{d}" for d in sorted(deps)),
                draw(duration_strategy),
                fails,
            )
        )
    return DagSpec(tuple(tasks))


def workflows(
    *,
    min_tasks: int = 1,
    max_tasks: int = 50,
    max_deps: int = 3,
    durations: st.SearchStrategy[float] | None = None,
    failures: bool = False,
) -> st.SearchStrategy[SimulatedWorkflow]:
    """Draw ready-to-run :class:`SimulatedWorkflow` objects (see :func:`dag_specs`).

    Each drawn workflow has a fresh :class:`Trace` at ``wf.trace`` and its
    spec at ``wf.spec``; every task's ``estimate`` is its duration.
    """
    return dag_specs(
        min_tasks=min_tasks,
        max_tasks=max_tasks,
        max_deps=max_deps,
        durations=durations,
        failures=failures,
    ).map(lambda spec: spec.build())


@st.composite
def _fault_plans(
    draw: st.DrawFn,
    ids: tuple[str, ...],
    kinds: tuple[FaultKind, ...],
    max_faults: int,
    cancel_times: st.SearchStrategy[float] | None,
) -> FaultPlan:
    chosen: list[tuple[str, FaultKind]] = []
    if ids and max_faults:
        chosen = draw(
            st.lists(
                st.tuples(st.sampled_from(ids), st.sampled_from(kinds)),
                max_size=min(max_faults, len(ids)),
                unique_by=lambda pair: pair[0],
            )
        )
    sets: dict[str, set[str]] = {kind: set() for kind in kinds}
    for task_id, kind in chosen:
        sets[kind].add(task_id)
    cancel_at = None if cancel_times is None else draw(st.none() | cancel_times)
    return FaultPlan(
        cancel_at=cancel_at, **{kind: frozenset(members) for kind, members in sets.items()}
    )


def faults(
    workflow: Workflow,
    *,
    max_faults: int = 3,
    hangs: bool = True,
    cancel: bool = True,
    max_cancel_at: float = 60.0,
) -> st.SearchStrategy[FaultPlan]:
    """Draw :class:`FaultPlan` objects over ``workflow``'s task ids.

    Args:
        workflow: the workflow whose tasks may get faults (only its ids are read).
        max_faults: at most this many tasks get a fault (``cancel_at`` does
            not count).
        hangs: whether ``hang`` faults may be drawn (``fail_before`` and
            ``fail_after`` always may).
        cancel: whether a ``cancel_at`` may be drawn.
        max_cancel_at: the latest ``cancel_at``, in virtual seconds from the
            start of the run.

    Shrinks toward fewer faults, toward the workflow's first tasks and
    ``fail_before`` over ``fail_after`` over ``hang``, and toward no cancel
    (then toward cancelling at 0): a failing property is reported with the
    smallest plan that still breaks it.

    Raises:
        TypeError: ``workflow`` is not a Workflow.
        ValueError: a bound is out of range (checked here, not when drawing).
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"workflow must be a trioforge.Workflow, got {workflow!r}")
    _check_bounds(max_faults=max_faults)
    for name, flag in (("hangs", hangs), ("cancel", cancel)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    if (
        isinstance(max_cancel_at, bool)
        or not isinstance(max_cancel_at, int | float)
        or not 0 <= max_cancel_at < float("inf")
    ):
        raise ValueError(f"max_cancel_at must be a finite number >= 0, got {max_cancel_at!r}")
    kinds: tuple[FaultKind, ...] = ("fail_before", "fail_after")
    if hangs:
        kinds += ("hang",)
    cancel_times = (
        st.floats(min_value=0.0, max_value=float(max_cancel_at), allow_nan=False)
        if cancel
        else None
    )
    return _fault_plans(tuple(workflow), kinds, max_faults, cancel_times)
