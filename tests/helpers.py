"""Small builders shared by the tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

import trioforge as tf

MODES = ["execute", "execute_parallel", "execute_dataflow"]
CONCURRENT_MODES = ["execute_parallel", "execute_dataflow"]


@attrs.define
class Recorder:
    """Records starts, ends, compensations and how many tasks run at once."""

    starts: dict[str, float] = attrs.Factory(dict)
    ends: dict[str, float] = attrs.Factory(dict)
    compensated: list[str] = attrs.Factory(list)
    cancelled: list[str] = attrs.Factory(list)
    running: int = 0
    max_running: int = 0

    def task(
        self,
        task_id: str,
        duration: float = 0.0,
        *,
        deps: tuple[str, ...] = (),
        fail: BaseException | None = None,
        result: Any = None,
        compensate: bool = True,
        **kwargs: Any,
    ) -> tf.Task:
        """A task that sleeps ``duration`` then raises ``fail`` or returns ``result``."""

        async def body(ctx: tf.TaskContext) -> Any:
            self.starts[task_id] = trio.current_time()
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                await trio.sleep(duration)
            except trio.Cancelled:
                self.cancelled.append(task_id)
                raise
            finally:
                self.running -= 1
            if fail is not None:
                raise fail
            self.ends[task_id] = trio.current_time()
            return task_id if result is None else result

        async def undo(ctx: tf.TaskContext) -> None:
            await trio.lowlevel.checkpoint()
            self.compensated.append(task_id)

        return tf.Task(
            task_id, body, depends_on=deps, compensate=undo if compensate else None, **kwargs
        )


def workflow(*tasks: tf.WorkflowTask, name: str = "test") -> tf.Workflow:
    wf = tf.Workflow(name)
    for task in tasks:
        wf.add_task(task)
    return wf


async def run_mode(executor: tf.WorkflowExecutor, mode: str) -> tf.WorkflowResult:
    method: Callable[[], Awaitable[tf.WorkflowResult]] = getattr(executor, mode)
    return await method()
