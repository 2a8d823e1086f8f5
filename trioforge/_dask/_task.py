"""``DaskTask``: a workflow task whose body runs on a Dask worker.

The runner drives a :class:`DaskTask` exactly like a local task (its
timeout scope, retries, fail-fast, rollback, audit events and the run store
are the runner's), because the only thing that differs is the body:
``run(ctx)`` submits ``fn(upstream)`` to the cluster and awaits it without a
thread (see ``_remote``). A timeout or cancellation reaches the await as
``trio.Cancelled``, which flags and cancels the remote call and propagates
at once.

Where the data goes: with ``fetch=True`` (the default) the task's result is
the value, fetched to the orchestrator, so local dependents, compensations,
the run's results and the run store see it like a local task's result. With
``fetch=False`` the value stays on the worker and the task's result is a
:class:`RemoteResult` holding the Dask future; a dependent ``DaskTask`` gets
that future in its ``upstream`` dict, which Dask resolves on the worker, so
the data moves worker to worker and never through the orchestrator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import trio
from distributed import Client, Future

import trioforge

from ._remote import LEFT_RUNNING, await_future, submit_call

__all__ = ["DaskTask", "RemoteResult"]


@attrs.frozen
class RemoteResult:
    """The result of a ``DaskTask(..., fetch=False)``: its value, left on the cluster.

    A dependent :class:`DaskTask` receives the value itself on its worker;
    a local task can fetch it with :meth:`fetch`. The value stays in the
    cluster's memory as long as this object is referenced (the run's
    results hold it until they are dropped). The run store cannot record it,
    so a resumed run runs the task again.

    Attributes:
        future: the Dask future of the value.
    """

    future: Future[Any]

    @property
    def key(self) -> str:
        """The Dask key of the value."""
        return str(self.future.key)

    async def fetch(self) -> Any:
        """Fetch the value to this process (without a thread; cancelling stops only the wait).

        Raises:
            Exception: the remote function's exception, if it failed.
        """
        return await await_future(self.future.client, self.future, fetch=True, cancel=False)


def _check_id(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"task_id must be a non-empty str, got {value!r}")


def _check_fn(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.alias} must be callable, got {value!r}")


def _check_client(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Client):
        raise TypeError(f"client must be a distributed.Client, got {value!r}")


def _check_seconds(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.alias} must be a number of seconds, got {value!r}")
    if attribute.alias == "timeout" and not value > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {value!r}")
    if not value >= 0:
        raise ValueError(f"{attribute.alias} must be >= 0, got {value!r}")


def _check_retries(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"retries must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"retries must be >= 0, got {value!r}")


def _to_resources(value: Mapping[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"resources must be a mapping of names to amounts, got {value!r}")
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"resources names must be non-empty str, got {name!r}")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount >= 0:
            raise ValueError(f"resources[{name!r}] must be a number >= 0, got {amount!r}")
    return dict(value)


def _to_ids(value: Sequence[str] | str) -> tuple[str, ...]:
    ids = (value,) if isinstance(value, str) else tuple(value)
    for item in ids:
        if not isinstance(item, str) or not item:
            raise TypeError(f"depends_on must hold non-empty str ids, got {item!r}")
    return ids


def _on_cluster(value: Any) -> Any:
    """What a dependent's worker receives for an upstream result: the future if it has one."""
    return value.future if isinstance(value, RemoteResult) else value


@attrs.frozen(repr=False)
class DaskTask:
    """A workflow task whose body ``fn(upstream)`` runs on a Dask worker.

    ``upstream`` is a dict of the results of the tasks in ``depends_on``, by
    id. A dependency that is a ``DaskTask(..., fetch=False)`` is passed as its
    Dask future, which Dask resolves on the worker: ``fn`` sees the value,
    and the value moves worker to worker, never through the orchestrator.

    Timeouts, retries, fail-fast, rollback, audit events and the run store
    work as for local tasks. When the task times out or is cancelled, the
    orchestrator stops waiting at once, flags the call (see
    :func:`trioforge.dask.cancelled`) and cancels its future, but **a call
    already running on a worker may still finish**: Dask cannot interrupt
    it, and the task's cancelled or timed-out event says so (its
    ``detail`` ends with ``cancel_note``). A remote exception fails the task
    as itself (same type and message).

    Args:
        task_id: unique id within the workflow.
        fn: ``fn(upstream: dict) -> result``, run on a worker; it must be
            importable or picklable there.
        client: the ``distributed.Client`` to submit to.
        depends_on: ids of the tasks that must succeed first (their results
            make ``upstream``).
        timeout: seconds the task may run; None uses the executor's ``task_timeout``.
        retries: how many times to retry after a failure (each retry is a new
            remote call); None uses the executor's default.
        resources: Dask worker resources one call needs, e.g. ``{"GPU": 1}``
            (kept as ``dask_resources``; trioforge's own resource pools are
            not used by a DaskTask).
        estimate: expected run time in seconds, for critical-path priority.
        compensate: ``async def undo(ctx)``, run locally during rollback.
        fetch: bring the result back to the orchestrator (the default); with
            False the result stays on the cluster as a :class:`RemoteResult`.
    """

    id: str = attrs.field(alias="task_id", validator=_check_id)
    _fn: Callable[[dict[str, Any]], Any] = attrs.field(alias="fn", validator=_check_fn)
    client: Client = attrs.field(kw_only=True, validator=_check_client)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=_check_seconds, kw_only=True)
    retries: int | None = attrs.field(default=None, validator=_check_retries, kw_only=True)
    # Stored as ``dask_resources``: a task's ``resources`` attribute names
    # trioforge's own resource pools, which the scheduler reads.
    dask_resources: dict[str, float] | None = attrs.field(
        default=None, converter=_to_resources, kw_only=True, alias="resources"
    )
    estimate: float | None = attrs.field(default=None, validator=_check_seconds, kw_only=True)
    _compensate: Callable[[trioforge.TaskContext], Awaitable[None]] | None = attrs.field(
        default=None, alias="compensate", validator=_check_fn, kw_only=True
    )
    fetch: bool = attrs.field(default=True, kw_only=True)

    #: Appended by the runner to the task's cancelled and timed-out events.
    cancel_note: ClassVar[str] = LEFT_RUNNING

    def __repr__(self) -> str:
        # No client or address: the repr is the task's spec in a durable run's definition.
        fn = self._fn
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        deps = f", depends_on={list(self.depends_on)!r}" if self.depends_on else ""
        extra = f", resources={self.dask_resources!r}" if self.dask_resources else ""
        extra += "" if self.fetch else ", fetch=False"
        return f"DaskTask({self.id!r}, {name}{deps}{extra})"

    @property
    def fn(self) -> Callable[[dict[str, Any]], Any]:
        """The function run on a worker."""
        return self._fn

    @property
    def has_compensation(self) -> bool:
        """Whether a ``compensate`` function was given."""
        return self._compensate is not None

    async def run(self, ctx: trioforge.TaskContext) -> Any:
        """Submit ``fn(upstream)`` to the cluster; return its result or :class:`RemoteResult`."""
        upstream = {dep: _on_cluster(ctx.result_of(dep)) for dep in self.depends_on}
        reason = f"trioforge task {self.id!r} (run {ctx.workflow_id}) stopped"
        future = await submit_call(
            self.client, self._fn, (upstream,), {}, resources=self.dask_resources, reason=reason
        )
        result = await await_future(self.client, future, fetch=self.fetch, reason=reason)
        return result if self.fetch else RemoteResult(result)

    async def compensate(self, ctx: trioforge.TaskContext) -> None:
        """Run the local ``compensate`` function, if one was given; always a checkpoint."""
        if self._compensate is not None:
            await self._compensate(ctx)
        else:
            await trio.lowlevel.checkpoint()
