"""A task's ``fallback``: retry the command as usual, and run the fallback only at the very end.

:class:`~trioforge.combinators.TryCatchTask` runs its fallback as soon as the
task fails once. With ``retries: 2`` and a fallback, people expect three tries
of the real command and then the fallback, so a retry must not be swallowed by
the fallback. :class:`FallbackTask` asks the executor for the retries (so
every attempt is an audit event, with the executor's backoff) and runs:

* attempts before the last one: the task alone; a failure goes back to the
  executor, which retries;
* the last attempt: a ``TryCatchTask(task, fallback)``, so a failure there
  runs the fallback, and the fallback's result becomes the task's result.

Which attempt is the last is the executor's to say (``ctx.last_attempt``):
after a resume a task's attempts keep counting from the earlier process and
it gets its retries again, so ``ctx.attempt`` alone cannot tell. ``retries``
is always an int here (default 0), never None, so a workflow file's
``retries`` and ``fallback`` mean the same whatever the executor's default
``retries`` is.

Rollback compensates whichever command completed: the task (when an early
attempt succeeded, or the last attempt did without a fallback), else whatever
the ``TryCatchTask`` ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import trio

from ._children import run_child
from ._combinators import TryCatchTask
from ._core import TaskContext, WorkflowTask, _to_ids, count, has_compensation, seconds

__all__ = ["FallbackTask"]

_DIRECT = "trioforge.fallback.direct"


def _try_catch(instance: FallbackTask) -> TryCatchTask:
    return TryCatchTask(
        instance.id,
        instance.task,
        instance.fallback,
        compensation_timeout=instance.compensation_timeout,
    )


@attrs.frozen
class FallbackTask:
    """Run ``task`` with retries; when its last attempt fails, run ``fallback``.

    ``retries`` is read by the executor, like any task's, but unlike most
    tasks' it is an int, never None: the executor's default ``retries`` does
    not apply to a ``FallbackTask`` (with ``retries=0``, the default, the
    fallback runs after the first failure). Children keep their own
    ``timeout``; a timed-out last attempt also runs the fallback.
    ``compensation_timeout`` bounds the rollback of whichever command ran on
    the last attempt (as for ``TryCatchTask``).

    Raises:
        TypeError: ``retries`` is not an int, or ``estimate`` or
            ``compensation_timeout`` not a number.
        ValueError: ``retries`` or ``estimate`` is negative, or
            ``compensation_timeout`` is not more than zero.
    """

    id: str
    task: WorkflowTask
    fallback: WorkflowTask
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    retries: int = attrs.field(default=0, validator=count(optional=False), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    compensation_timeout: float = attrs.field(
        default=30.0, validator=seconds(optional=False), kw_only=True
    )
    timeout: float | None = attrs.field(default=None, init=False)
    _try_catch: TryCatchTask = attrs.field(
        init=False, default=attrs.Factory(_try_catch, takes_self=True), repr=False
    )

    @property
    def children(self) -> Sequence[WorkflowTask]:
        """The task and its fallback."""
        return (self.task, self.fallback)

    @property
    def has_compensation(self) -> bool:
        """Whether the task or the fallback has something to undo."""
        return has_compensation(self.task) or has_compensation(self.fallback)

    async def run(self, ctx: TaskContext) -> Any:
        """Run the task alone before the last attempt, then with its fallback."""
        if not ctx.last_attempt:
            ctx.state[_DIRECT] = True
            return await run_child(self.task, ctx.child(self.task.id))
        ctx.state[_DIRECT] = False
        return await self._try_catch.run(ctx)

    async def compensate(self, ctx: TaskContext) -> None:
        """Compensate whichever command completed."""
        if ctx.state.get(_DIRECT):
            if has_compensation(self.task):
                await self.task.compensate(ctx.child(self.task.id))
            else:
                await trio.lowlevel.checkpoint()
            return
        await self._try_catch.compensate(ctx)
