"""Run a workflow under trio's MockClock: sleeps cost no real time and times are exact."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import trio
import trio.testing

from .._core import AuditLog, Workflow, WorkflowError
from .._executor import WorkflowExecutor, WorkflowResult

__all__ = ["VirtualRun", "run_virtual"]

Mode = Literal["sequential", "parallel", "dataflow"]


@attrs.frozen
class VirtualRun:
    """The outcome of :func:`run_virtual`.

    Attributes:
        result: the run's result, or None if it raised.
        error: the :class:`~trioforge.WorkflowError` it raised, or None.
        audit_log: the executor's audit log.
        duration: virtual seconds from the call to its return (includes rollback).
    """

    result: WorkflowResult | None
    error: WorkflowError | None
    audit_log: AuditLog
    duration: float


def run_virtual(
    workflow: Workflow, *, mode: Mode = "dataflow", **executor_kwargs: Any
) -> VirtualRun:
    """Run ``workflow`` with a fresh executor under ``MockClock(autojump_threshold=0)``.

    Args:
        workflow: the workflow to run.
        mode: ``"sequential"`` (:meth:`~trioforge.WorkflowExecutor.execute`),
            ``"parallel"`` (``execute_parallel``) or ``"dataflow"`` (``execute_dataflow``).
        **executor_kwargs: passed to :class:`~trioforge.WorkflowExecutor`.

    A :class:`~trioforge.WorkflowError` raised by the run is returned in
    :attr:`VirtualRun.error`; any other exception propagates.
    """
    methods = {
        "sequential": "execute",
        "parallel": "execute_parallel",
        "dataflow": "execute_dataflow",
    }
    if mode not in methods:
        raise ValueError(f"mode must be one of {sorted(methods)}, got {mode!r}")
    executor = WorkflowExecutor(workflow, **executor_kwargs)

    async def main() -> VirtualRun:
        start = trio.current_time()
        result: WorkflowResult | None = None
        error: WorkflowError | None = None
        try:
            result = await getattr(executor, methods[mode])()
        except WorkflowError as exc:
            error = exc
        return VirtualRun(result, error, executor.audit_log, trio.current_time() - start)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
