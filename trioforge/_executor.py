"""WorkflowExecutor: runs a workflow in one of three modes and owns the run's lifecycle.

Lifecycle of every run, whatever the mode:

1. compile and check the workflow (before anything starts);
2. ``WorkflowStarted``; the mode's driver runs inside the run's cancel scope,
   whose deadline is ``workflow_timeout`` and which :meth:`cancel` cancels;
3. on success: ``WorkflowCompleted`` and a :class:`WorkflowResult`;
4. otherwise rollback (shielded, bounded by ``compensation_timeout``), then the
   terminal event and a domain error: :class:`TaskFailedError`,
   :class:`WorkflowCancelledError` or :class:`WorkflowTimeoutError`, the
   highest reason (failure < timeout < cancel), each carrying ``failures`` and
   ``results`` and chaining the first failure as ``__cause__``. A run counts as
   cancelled or timed out when ``cancel()`` was called or the deadline passed
   while it was in progress, even if no task reached a checkpoint afterwards
   (no task starts after that: see the runner). When the caller's own cancel
   scope (or a ``KeyboardInterrupt``) stops the run, rollback runs the same way
   and the original exception propagates. A ``BaseException`` raised by a
   compensation propagates last, once the terminal event is recorded.

When an ``execute_*`` method returns or raises, nothing it started is running.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

import attrs
import trio

from ._core import (
    SCHEDULES,
    AuditLog,
    AuditSink,
    Backoff,
    Demand,
    EventType,
    FailurePolicy,
    JsonLinesSink,
    Pools,
    Run,
    Schedule,
    Workflow,
    WorkflowTask,
    check,
    count,
    fail,
    names_a_pool,
    pools_for,
    roll_back,
    run_dataflow,
    run_layers,
    run_pooled,
    run_sequential,
    seconds,
    stopped_from_outside,
)
from ._store import ResumeRequest, Resumption, RunStore, definition_of, driving

__all__ = ["WorkflowExecutor", "WorkflowResult"]


@attrs.frozen
class WorkflowResult:
    """What a successful run produced.

    Attributes:
        workflow_id: the run's id.
        completed: task ids in the order they completed.
        results: each task's result by id.
        duration: seconds from start to end, by ``trio.current_time()``
            (virtual under a MockClock).
        skipped: tasks that did not run (always empty for a successful run;
            see :attr:`TaskFailedError.skipped`).
        attempts: how many attempts each task took.
    """

    workflow_id: str
    completed: list[str]
    results: dict[str, Any]
    duration: float
    skipped: list[str] = attrs.Factory(list)
    attempts: dict[str, int] = attrs.Factory(dict)


class WorkflowExecutor:
    """Runs a :class:`Workflow`.

    Args:
        workflow: the workflow to run; it is checked at the start of each run.
        task_timeout: default per-task limit in seconds for tasks without their own.
        workflow_timeout: limit for a whole run, in seconds.
        compensation_timeout: limit for the whole rollback, in seconds.
        max_concurrency: at most this many tasks run at once
            (``execute_parallel`` and ``execute_dataflow``); None for no limit.
        failure_policy: what happens when a task fails.
        retries: default number of retries for tasks that do not set their own.
        backoff: waits between attempts.
        seed: seed of the executor's own random generator (retry jitter).
        audit_path: also stream every event to this JSON Lines file.
        audit_sinks: more consumers of every event.
        store: record every run in this :class:`~trioforge.store.RunStore` (durable runs: a
            completion is committed before its dependents start; see
            :meth:`resume`).
        definition_extra: more JSON-able data for the stored definition
            snapshot (e.g. a YAML file's text), so a change to it is noticed
            by :meth:`resume`.
        resources: named resource pools and their capacities, e.g.
            ``{"docker": 2, "gpu": 1}``. A task with ``resources={"docker":
            1}`` starts only when every pool it names has room; a task that
            names an unknown pool, or asks for more than a pool has, raises
            ``ResourceError`` (a :class:`WorkflowError` and ``ValueError``
            naming the task and the pool) when a run starts, before anything
            runs (and already here, for the tasks the workflow has now).

    The arguments are kept as attributes of the same names (``workflow``,
    ``task_timeout``, ``max_concurrency``, ...), except ``seed``: the
    generator it seeds is :attr:`random`.

    Attributes:
        random: the executor's own random generator (retry jitter); never the
            global one, so seeded runs are reproducible.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        task_timeout: float | None = None,
        workflow_timeout: float | None = None,
        compensation_timeout: float = 30.0,
        max_concurrency: int | None = None,
        failure_policy: FailurePolicy = FailurePolicy.FAIL_FAST,
        retries: int = 0,
        backoff: Backoff | None = None,
        seed: int | None = None,
        audit_path: str | os.PathLike[str] | None = None,
        audit_sinks: Iterable[AuditSink] = (),
        store: RunStore | None = None,
        definition_extra: Mapping[str, Any] | None = None,
        resources: Mapping[str, int] | None = None,
    ) -> None:
        if not isinstance(workflow, Workflow):
            raise TypeError(f"workflow must be a Workflow, got {workflow!r}")
        check("task_timeout", task_timeout, seconds())
        check("workflow_timeout", workflow_timeout, seconds())
        check("compensation_timeout", compensation_timeout, seconds(optional=False))
        check("max_concurrency", max_concurrency, count(minimum=1))
        if not isinstance(failure_policy, FailurePolicy):
            raise TypeError(f"failure_policy must be a FailurePolicy, got {failure_policy!r}")
        check("retries", retries, count(optional=False))
        self.workflow = workflow
        self.task_timeout = task_timeout
        self.workflow_timeout = workflow_timeout
        self.compensation_timeout = compensation_timeout
        self.max_concurrency = max_concurrency
        self.failure_policy = failure_policy
        self.retries = retries
        self.backoff = Backoff() if backoff is None else backoff
        self.random = random.Random(seed)
        sinks = list(audit_sinks)
        if audit_path is not None:
            sinks.append(JsonLinesSink(audit_path))
        self._audit = AuditLog(sinks)
        self.store = store
        self.definition_extra: Mapping[str, Any] = dict(definition_extra or {})
        self._active: list[Run] = []
        self.resources: dict[str, int] = dict(resources or {})
        # Checked here for an early, plain error (a command line exits 2 before
        # anything starts), and again when each run starts (tasks may be added).
        Pools(self.resources)
        self._pools(list(workflow.tasks.values()))

    def __repr__(self) -> str:
        return f"WorkflowExecutor({self.workflow!r})"

    @property
    def running(self) -> bool:
        """Whether a run is in progress and :meth:`cancel` would stop it.

        False again once a failed run has started its rollback.
        """
        return bool(self._active)

    @property
    def audit_log(self) -> AuditLog:
        """Every event of this executor's runs."""
        return self._audit

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Stop every run of this executor that is in progress.

        Safe to call from any task. No task of the run starts after this
        call, even if no task reaches a checkpoint; the run cancels its
        running tasks, rolls back and raises :class:`WorkflowCancelledError`
        (a cancel outranks a task failure and the workflow timeout). Does
        nothing when no run is in progress. The first reason given is kept.
        """
        for run in self._active:
            if run.cancel_reason is None:
                run.cancel_reason = reason
                run.halted = reason
            run.scope.cancel(reason=run.cancel_reason)

    async def execute(self) -> WorkflowResult:
        """Run the tasks one at a time, in topological order."""
        return await self._execute("sequential")

    async def execute_parallel(self) -> WorkflowResult:
        """Run layer by layer: a nursery per layer, each task in its own cancel scope.

        A layer starts only when every task of the layer before it finished.
        """
        return await self._execute("layers")

    async def execute_dataflow(self) -> WorkflowResult:
        """Start each task as soon as its dependencies succeeded (no layer barrier).

        With ``max_concurrency``, ready tasks start in order of longest
        remaining critical path.
        """
        return await self._execute("dataflow")

    async def resume(
        self,
        run_id: str,
        *,
        force: bool = False,
        schedule: Schedule = "dataflow",
        rerun: Iterable[str] = (),
        compensate: bool = True,
        on_restore: Callable[[Resumption], None] | None = None,
    ) -> WorkflowResult:
        """Resume a run recorded in the executor's ``store``, under the same run id.

        Tasks that completed in that run are not executed again: their stored
        results are restored for their dependents. Failed, interrupted and
        pending tasks run; a task that had started keeps counting its
        attempts (``ctx.attempt``). Every task gets back the ``ctx.state`` it
        had, when it could be stored faithfully; the ``WorkflowStarted``
        event names the restored tasks with a compensation whose state could
        not be. The run is read from the store once, under its lease.

        Args:
            run_id: the run to resume.
            force: resume even if the workflow's definition changed; the tasks
                that changed (or were added) and everything downstream of
                them run again, and the current definition becomes the run's
                (the resumed run's ``WorkflowStarted`` event says what
                changed), so a later resume of the same workflow needs no force.
            schedule: ``"dataflow"``, ``"layers"`` or ``"sequential"``.
            rerun: ids of tasks to run again, with everything downstream of
                them, even though they completed.
            compensate: before re-running them, compensate the earlier
                completions of the ``rerun`` tasks and their completed
                dependents (dependents first, each with its restored
                ``ctx.state``), so the re-run starts from a clean state.
            on_restore: called with the :class:`~trioforge.store.Resumption`
                (what is restored, what runs) before the run starts.

        Raises:
            RunNotFoundError: the store has no such run.
            DefinitionChangedError: the definition changed and ``force`` is false.
            RunLockedError: another live process is driving the run.
            LeaseLostError: another driver took the run over while it ran
                (this one stopped without rolling back).
            RewindError: compensating an earlier completion failed (nothing re-ran).
            ValueError: ``rerun`` names a task the workflow does not have.
        """
        if self.store is None:
            raise TypeError("resume() needs an executor created with store=...")
        again = tuple(rerun)
        unknown = [tid for tid in again if tid not in self.workflow.tasks]
        if unknown:
            raise ValueError(f"cannot re-run {', '.join(map(repr, unknown))}: no such task")
        request = ResumeRequest(run_id, force, again, compensate, on_restore)
        return await self._execute(schedule, resume=request)

    def _pools(self, tasks: list[WorkflowTask]) -> tuple[Pools, list[Demand]] | None:
        """The run's pools and each task's demand, checked; None (fast) when no task names one."""
        if not names_a_pool(tasks):
            return None
        return pools_for(self.resources, [(t.id, getattr(t, "resources", None)) for t in tasks])

    async def _priorities(self) -> list[float] | None:
        await trio.lowlevel.checkpoint()  # execute_*() and resume() always checkpoint
        if self.max_concurrency is None and not self.resources:
            return None
        estimates = self.workflow.estimates()
        if self.store is not None:
            # Median durations of earlier runs beat the defaults (not explicit estimates).
            medians = await self.store.task_durations(self.workflow.name)
            if medians:
                tasks = self.workflow.tasks
                for i, task_id in enumerate(tasks):
                    if getattr(tasks[task_id], "estimate", None) is None and task_id in medians:
                        estimates[i] = medians[task_id]
        return self.workflow._compile().remaining_costs(estimates)

    async def _execute(
        self, schedule: Schedule, *, resume: ResumeRequest | None = None
    ) -> WorkflowResult:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        dag = self.workflow._compile()
        tasks = list(self.workflow.tasks.values())
        pooled = self._pools(tasks)
        priorities = await self._priorities()
        limiter = (
            None if self.max_concurrency is None else trio.CapacityLimiter(self.max_concurrency)
        )
        policy = self.failure_policy
        driver: Callable[[Run], Awaitable[None]]
        if schedule == "sequential":
            driver = partial(run_sequential, policy=policy)
        elif schedule == "layers":
            driver = partial(run_layers, policy=policy, limiter=limiter, priorities=priorities)
        else:
            driver = partial(run_dataflow, policy=policy, limiter=limiter, priorities=priorities)
        if pooled is not None and schedule != "sequential":
            driver = partial(
                run_pooled,
                policy=policy,
                limiter=limiter,
                priorities=priorities,
                pools=pooled[0],
                demands=pooled[1],
                layers=schedule == "layers",
            )
        run = Run(
            workflow_id=resume.run_id
            if resume
            else f"{self.workflow.name}-{uuid.uuid4().hex[:12]}",
            dag=dag,
            tasks=tasks,
            audit=self._audit,
            task_timeout=self.task_timeout,
            default_retries=self.retries,
            backoff=self.backoff,
            rng=self.random,
        )
        if self.store is None:
            return await self._lifecycle(run, driver)
        async with driving(
            self.store,
            run,
            definition_of(self.workflow, dict(self.definition_extra)),
            resume=resume,
            compensation_timeout=self.compensation_timeout,
        ) as resumed:
            return await self._lifecycle(run, driver, resumed=resumed)

    async def _lifecycle(
        self,
        run: Run,
        driver: Callable[[Run], Awaitable[None]],
        *,
        resumed: Resumption | None = None,
    ) -> WorkflowResult:
        start = trio.current_time()
        run.compensation_limit = self.compensation_timeout
        if self.workflow_timeout is not None:
            run.workflow_timeout = self.workflow_timeout
            run.deadline = run.scope.deadline = start + self.workflow_timeout
        detail = self.workflow.name
        if resumed is not None:
            detail += f" ({resumed.describe()})"
        run.emit(EventType.WORKFLOW_STARTED, detail=detail)
        self._active.append(run)
        try:
            try:
                run.settle()
                with run.scope:
                    await driver(run)
            except BaseException as exc:
                # roll_back is shielded and bounded by compensation_timeout itself;
                # this outer shield shows it here and bounds the bookkeeping too.
                with trio.move_on_after(2 * self.compensation_timeout, shield=True):
                    await stopped_from_outside(run, exc, start, self.compensation_timeout)
                raise
        finally:
            self._active.remove(run)
        # Stopped: cancel() was called or the deadline passed while the run was in
        # progress, even if no task reached a checkpoint afterwards.
        stopped = (
            run.scope.cancelled_caught
            or run.cancel_reason is not None
            or trio.current_time() >= run.deadline
        )
        if stopped or run.failures:
            await fail(run, start, self.compensation_timeout, stopped=stopped)
        duration = trio.current_time() - start
        if len(run.results) != len(run.tasks):
            # Never report success with a task that did not run (a scheduler bug).
            await roll_back(run, self.compensation_timeout)
            lost = [task_id for task_id in run.dag.ids if task_id not in run.results]
            run.emit(EventType.WORKFLOW_FAILED, error=f"tasks never ran: {lost}")
            raise RuntimeError(
                f"internal error: run {run.workflow_id!r} ended without running {lost}; "
                "completed tasks were rolled back"
            )
        run.emit(EventType.WORKFLOW_COMPLETED, duration=duration)
        return WorkflowResult(
            workflow_id=run.workflow_id,
            completed=run.completed,
            results=run.results,
            duration=duration,
            skipped=run.skipped,
            attempts=run.attempts_of_completed(),
        )
