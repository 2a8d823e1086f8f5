"""Run a workflow under trio's MockClock: sleeps cost no real time and times are exact.

:func:`run_in_trio` runs inside the current trio run, and :func:`run_virtual`
is ``trio.run`` of it under a ``MockClock``. It applies a :class:`FaultPlan`
(:func:`with_faults`, plus a task that calls the executor's ``cancel()`` at
``plan.cancel_at`` virtual seconds after the ``WorkflowStarted`` event), and
wraps the run in
:func:`fail_on_deadlock`, so a stuck run is rolled back and reported as
:class:`Deadlock` instead of hanging. What the run did is read back from the
executor's audit log (:attr:`VirtualRun.completed`,
:attr:`VirtualRun.compensated`), the one record every mode writes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import trio
import trio.testing

from trioforge import (
    AuditEvent,
    AuditLog,
    EventType,
    Schedule,
    Workflow,
    WorkflowError,
    WorkflowExecutor,
    WorkflowResult,
)

from ._deadlock import fail_on_deadlock
from ._faults import FaultPlan, with_faults

__all__ = ["Mode", "VirtualRun", "run_in_trio", "run_virtual"]

Mode = Schedule
"""How :func:`run_virtual` schedules: a :data:`trioforge.Schedule`."""

_METHODS: dict[str, str] = {
    "sequential": "execute",
    "layers": "execute_parallel",
    "dataflow": "execute_dataflow",
}


@attrs.frozen
class VirtualRun:
    """The outcome of :func:`run_virtual`.

    Attributes:
        result: the run's result, or None if it raised.
        error: the :class:`~trioforge.WorkflowError` it raised, or None (a
            run stopped by ``FaultPlan.cancel_at`` gives a
            :class:`~trioforge.WorkflowCancelledError`).
        audit_log: the executor's audit log.
        duration: virtual seconds from the call to its return (includes rollback).
    """

    result: WorkflowResult | None
    error: WorkflowError | None
    audit_log: AuditLog
    duration: float

    @property
    def completed(self) -> list[str]:
        """Task ids in the order they completed (whether or not the run then failed)."""
        return [
            e.task_id
            for e in self.audit_log.of_type(EventType.TASK_COMPLETED)
            if e.task_id is not None
        ]

    @property
    def compensated(self) -> list[str]:
        """Task ids in the order their undo began, each once, whether or not it succeeded.

        Read from the ``WorkflowTaskCompensated`` and
        ``WorkflowTaskCompensationFailed`` events. A task whose undo never
        started because the ``compensation_timeout`` ran out first is left
        out (its failure event is recorded with no duration; the first such
        task of a rollback is the one the timeout cut short, so it did start).
        """
        return _compensation_order(
            self.audit_log.of_type(EventType.TASK_COMPENSATED, EventType.TASK_COMPENSATION_FAILED)
        )


def _compensation_order(events: list[AuditEvent]) -> list[str]:
    """The task ids whose undo began, in order, from a rollback's compensation events."""
    order: list[str] = []
    cut_short = False
    for event in events:
        if event.task_id is None:
            continue
        if event.type == EventType.TASK_COMPENSATION_FAILED and event.duration is None:
            # Recorded after the timeout: only the first of a batch had begun.
            if cut_short:
                continue
            cut_short = True
        else:
            cut_short = False
        if event.task_id not in order:
            order.append(event.task_id)
    return order


@attrs.define(eq=False)
class _RunStarted:
    """An audit sink that notes when the run started, for ``cancel_at``."""

    event: trio.Event = attrs.Factory(trio.Event)
    clock: float = 0.0

    def emit(self, event: AuditEvent) -> None:
        if event.type == EventType.WORKFLOW_STARTED and not self.event.is_set():
            self.clock = event.clock
            self.event.set()


async def _cancel_at(executor: WorkflowExecutor, started: _RunStarted, delay: float) -> None:
    await started.event.wait()
    await trio.sleep_until(started.clock + delay)
    executor.cancel(f"FaultPlan.cancel_at: cancelled {delay:g}s after the run started")


def _check_mode(mode: object) -> str:
    if mode not in _METHODS:
        hint = " (the layer-by-layer schedule is 'layers')" if mode == "parallel" else ""
        raise ValueError(
            f"mode must be one of {', '.join(map(repr, _METHODS))}, got {mode!r}{hint}"
        )
    return _METHODS[str(mode)]


async def run_in_trio(
    workflow: Workflow,
    *,
    mode: Mode = "dataflow",
    faults: FaultPlan | None = None,
    **executor_kwargs: Any,
) -> VirtualRun:
    """:func:`run_virtual` for code already inside trio, such as a pytest-trio test.

    Runs ``workflow`` with a fresh executor in the current trio run, with its
    clock: take pytest-trio's ``autojump_clock`` fixture for virtual time.
    Same arguments, faults, ``cancel_at``, deadlock check and result as
    :func:`run_virtual`::

        async def test_rollback(autojump_clock):
            run = await run_in_trio(wf, faults=FaultPlan(fail_after={"charge"}))
            assert run.compensated == ["reserve"]

    Raises:
        Deadlock: the run got stuck; it was cancelled and rolled back first.
        ValueError: ``mode`` is not one of the three names.
    """
    method = _check_mode(mode)
    if faults is not None and not isinstance(faults, FaultPlan):
        raise TypeError(f"faults must be a FaultPlan or None, got {faults!r}")
    started: _RunStarted | None = None
    if faults is not None:
        workflow = with_faults(workflow, faults)
        if faults.cancel_at is not None:
            started = _RunStarted()
            sinks = list(executor_kwargs.pop("audit_sinks", ()))
            executor_kwargs["audit_sinks"] = [*sinks, started]
    executor = WorkflowExecutor(workflow, **executor_kwargs)
    start = trio.current_time()
    result: WorkflowResult | None = None
    error: WorkflowError | None = None
    other: Exception | None = None
    async with trio.open_nursery() as nursery:
        if started is not None and faults is not None and faults.cancel_at is not None:
            nursery.start_soon(_cancel_at, executor, started, faults.cancel_at)
        try:
            with fail_on_deadlock(executor):
                result = await getattr(executor, method)()
        except WorkflowError as exc:
            error = exc
        except Exception as exc:
            other = exc  # Deadlock or a bug: raised below, not inside the nursery's group
        finally:
            nursery.cancel_scope.cancel("the run is over: FaultPlan.cancel_at no longer applies")
    if other is not None:
        raise other
    return VirtualRun(result, error, executor.audit_log, trio.current_time() - start)


def run_virtual(
    workflow: Workflow,
    *,
    mode: Mode = "dataflow",
    faults: FaultPlan | None = None,
    **executor_kwargs: Any,
) -> VirtualRun:
    """Run ``workflow`` with a fresh executor under ``MockClock(autojump_threshold=0)``.

    Args:
        workflow: the workflow to run.
        mode: ``"sequential"`` (:meth:`~trioforge.WorkflowExecutor.execute`),
            ``"layers"`` (``execute_parallel``) or ``"dataflow"``
            (``execute_dataflow``): the names of ``resume(schedule=...)``
            and the command line's ``--schedule``.
        faults: a :class:`FaultPlan` to apply: the run uses
            ``with_faults(workflow, faults)``, and when ``faults.cancel_at``
            is set, the executor's ``cancel()`` is called that many virtual
            seconds after the run started (nothing happens if it already
            ended), so the run ends in
            :class:`~trioforge.WorkflowCancelledError` in :attr:`VirtualRun.error`.
        **executor_kwargs: passed to :class:`~trioforge.WorkflowExecutor`.

    A :class:`~trioforge.WorkflowError` raised by the run is returned in
    :attr:`VirtualRun.error`; any other exception propagates. The run is
    checked for deadlock as by :func:`fail_on_deadlock`.

    Raises:
        Deadlock: the run got stuck: no task could run, no deadline was
            pending and nothing outside trio could wake a task. It was
            cancelled and rolled back first.
        ValueError: ``mode`` is not one of the three names.
        RuntimeError: called inside a trio run (a pytest-trio test, say):
            this function starts its own; use :func:`run_in_trio` there.
    """
    _check_mode(mode)
    if trio.lowlevel.in_trio_run():
        raise RuntimeError(
            "run_virtual() starts its own trio run, so it cannot be called inside one "
            "(a pytest-trio test is one): use `await run_in_trio(...)`, which takes the "
            "same arguments, and the autojump_clock fixture for virtual time"
        )
    return trio.run(
        partial(run_in_trio, workflow, mode=mode, faults=faults, **executor_kwargs),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
