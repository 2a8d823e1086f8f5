"""The state of one execution: :class:`Run`, shared by the schedulers, the runner and rollback.

One :class:`Run` per execution, made by the executor and owned by it: which
tasks completed, failed, were skipped or cancelled, their results, attempts,
``ctx.state`` dicts and registered undo steps, why the run is stopping, and
the audit log its events go to.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable, Container
from functools import partial
from typing import Any, Protocol

import attrs
import trio

from ._audit import AuditLog
from ._dag import Dag
from ._events import EventType
from ._retry import Backoff
from ._task import Step, TaskContext, WorkflowTask
from ._undo import UndoItem, step_label
from ._upstream import RunUpstream, Upstream, WithSelf

__all__ = ["Run", "StartReserver"]


class StartReserver(Protocol):
    """A scheduler that can have the starts of the tasks next in line made durable ahead.

    Durable runs with a slot limit: the run store's recorder asks
    :meth:`reserve` for the tasks to reserve with each commit it makes, and
    calls :meth:`confirm` once that commit is durable; a reserved task may
    then start without waiting for a commit of its own start (see
    ``_Bounded`` in ``_schedulers``).
    """

    def reserve(self) -> dict[str, int]:
        """The tasks to reserve with the commit being made, as ``task_id: attempt``."""
        ...

    def confirm(self) -> None:
        """The commit that carried the last :meth:`reserve` is durable."""
        ...


@attrs.define(eq=False)
class Run:
    """Mutable state of one execution; owned by the executor for that run only."""

    workflow_id: str
    dag: Dag
    tasks: list[WorkflowTask]
    audit: AuditLog
    task_timeout: float | None
    default_retries: int
    backoff: Backoff
    rng: random.Random
    results: dict[str, Any] = attrs.Factory(dict)
    completed: list[str] = attrs.Factory(list)
    failures: dict[str, BaseException] = attrs.Factory(dict)
    skipped: list[str] = attrs.Factory(list)
    cancelled: list[str] = attrs.Factory(list)
    restored: set[int] = attrs.Factory(set)
    attempt_base: dict[str, int] = attrs.Factory(dict)
    checkpoint: Callable[[], Awaitable[None]] | None = None
    retried: dict[str, int] = attrs.Factory(dict)
    states: dict[str, dict[str, Any]] = attrs.Factory(dict)
    cancel_reason: str | None = None
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    clock: trio.abc.Clock = attrs.Factory(trio.lowlevel.current_clock)
    upstream: RunUpstream = attrs.field(init=False)
    """What every attempt's context may read, built per context only on demand."""
    plain: bool = False
    """Whether plain tasks may take :meth:`TaskRunner.run_node`'s single-attempt path.

    Set by :meth:`settle` once the run's store hooks are in place.
    """
    steps: dict[str, list[Step]] = attrs.Factory(dict)
    """Undo steps registered with ``ctx.add_compensation`` and not yet run, by task id."""
    halted: str | None = None
    """Why no task may start any more (``cancel()``'s reason, a fail-fast failure), or None."""
    deadline: float = math.inf
    """When ``workflow_timeout`` runs out (``trio.current_time()``); no task starts after it."""
    workflow_timeout: float | None = None
    compensation_limit: float = 30.0
    """Seconds for undoing a failed attempt's steps (the executor's ``compensation_timeout``)."""
    compensation_failures: dict[str, BaseException] = attrs.Factory(dict)
    """Undo work that failed, the first per task: attempts' steps, then the rollback."""
    admitted: dict[int, tuple[float, int, bool]] = attrs.Factory(dict)
    """Durable runs: tasks whose first attempt's start :meth:`TaskRunner.spawn` recorded
    and committed before spawning them, as ``node: (started, attempt, recheck)``;
    ``recheck``: that commit failed, so the attempt meets the error at its own
    checkpoint."""
    reserver: StartReserver | None = None
    """Durable runs with a slot limit: the scheduler running now, whose next starts
    the run store's commits reserve (:meth:`reserve_starts`); None: no reservations."""

    @upstream.default
    def _upstream_default(self) -> RunUpstream:
        return RunUpstream(self.dag)

    def settle(self) -> None:
        """Fix :attr:`plain`: true when no executor-wide timeout or retries and not resumed."""
        self.plain = (
            self.task_timeout is None and self.default_retries == 0 and not self.attempt_base
        )

    def reserve_starts(self) -> dict[str, int]:
        """Starts to reserve with the commit being made (see :class:`StartReserver`)."""
        reserver = self.reserver
        return {} if reserver is None else reserver.reserve()

    def confirm_reserved(self) -> None:
        """The commit that carried the last :meth:`reserve_starts` is durable."""
        if self.reserver is not None:
            self.reserver.confirm()

    def emit(
        self,
        kind: EventType,
        task_id: str | None = None,
        *,
        layer: int | None = None,
        attempt: int | None = None,
        duration: float | None = None,
        error: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an audit event stamped with both clocks."""
        self.audit.record_fields(
            (
                kind.value,
                self.workflow_id,
                trio.current_time(),
                time.time(),
                task_id,
                layer,
                attempt,
                duration,
                error,
                detail,
            )
        )

    def halt(self, reason: str, scope: trio.CancelScope) -> None:
        """Start no new task and cancel ``scope``; the first reason given stays."""
        if self.halted is None:
            self.halted = reason
        scope.cancel(reason=reason)

    def stop_reason(self) -> str:
        """Why a task of this run is being cancelled, for its event's ``detail``."""
        if self.halted is not None:
            return self.halted
        if trio.current_time() >= self.deadline and self.workflow_timeout is not None:
            return f"workflow_timeout of {self.workflow_timeout:g}s ran out"
        return "stopped from outside the run"

    def emit_undo(
        self, ok: bool, item: UndoItem, duration: float | None, error: str | None
    ) -> None:
        """Record the outcome of one compensation or undo step (see :func:`undo_all`).

        ``detail`` names a step (``"step 2: release"``); ``attempt`` is set only
        when a failed attempt's steps are undone before the next attempt.
        """
        self.emit(
            EventType.TASK_COMPENSATED if ok else EventType.TASK_COMPENSATION_FAILED,
            item.task_id,
            attempt=item.attempt,
            duration=duration,
            error=error,
            detail=item.label,
        )

    def step_items(self, task_id: str, attempt: int | None = None) -> list[UndoItem]:
        """Take ``task_id``'s registered steps, newest first, so each runs at most once.

        ``attempt``: the failed attempt whose steps these are, when undone before a retry.
        """
        steps = self.steps.pop(task_id, ())
        return [
            UndoItem(task_id, partial(fn, *args), step_label(index, fn), attempt)
            for index, (fn, args) in reversed(list(enumerate(steps, 1)))
        ]

    def attempts(self, task_id: str) -> int:
        """How many attempts ``task_id`` has started in this run (1 unless it was retried)."""
        return self.retried.get(task_id, 1)

    def attempts_of_completed(self) -> dict[str, int]:
        """How many attempts each completed task took, in completion order."""
        attempts = dict.fromkeys(self.completed, 1)
        for task_id, count in self.retried.items():
            if task_id in attempts:
                attempts[task_id] = count
        return attempts

    def context(self, node: int, attempt: int, *, compensating: bool = False) -> TaskContext:
        """A fresh context for one attempt (or the compensation) of ``node``."""
        task_id = self.dag.ids[node]
        upstream: Container[str] = Upstream(self.dag, node)
        if compensating:
            upstream = WithSelf(task_id, upstream)
        return TaskContext(
            task_id,
            self.workflow_id,
            attempt=attempt,
            results=self.results,
            upstream=upstream,
            states=self.states,
            steps=None if compensating else self.steps,
        )
