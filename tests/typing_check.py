"""Checked by mypy --strict in the typecheck session, never run: the public API types well."""

from __future__ import annotations

from typing import assert_type

import trio

import trioforge as tf
from trioforge.combinators import ParallelTasks


async def _uses_the_api() -> None:
    wf = tf.Workflow("typed")

    @wf.task(depends_on=["b"], timeout=1.0)
    async def a(ctx: tf.TaskContext) -> int:
        assert_type(ctx.attempt, int)
        return 1

    assert_type(a, tf.Task)
    wf.add_task(ParallelTasks("p", [a]))
    assert_type(wf.execution_layers(), list[list[str]])
    assert_type(wf.critical_path(), tuple[list[str], float])
    executor = tf.WorkflowExecutor(wf, max_concurrency=4, retries=2)
    result = await executor.execute_dataflow()
    assert_type(result, tf.WorkflowResult)
    assert_type(result.completed, list[str])
    assert_type(executor.audit_log.events, list[tf.AuditEvent])
    with trio.move_on_after(1):
        await executor.execute_parallel()
