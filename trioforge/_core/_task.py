"""Tasks: the :class:`WorkflowTask` protocol, the :class:`Task` value and :class:`TaskContext`.

Anything with an ``id``, ``depends_on``, ``timeout`` and async ``run(ctx)`` /
``compensate(ctx)`` methods is a task, so combinators and user classes plug in
beside :class:`Task`. Two optional attributes refine how the scheduler treats a
task: ``estimate`` (seconds, for critical-path priority) and ``retries``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import trio

from ._errors import ResultNotAvailableError
from ._ready import demand_of
from ._validate import _plain_takes_one, check_step, context_function, count, seconds

__all__ = ["Step", "Task", "TaskContext", "WorkflowTask", "has_compensation", "names_a_pool"]

#: An undo step registered with :meth:`TaskContext.add_compensation`: the
#: function and its arguments.
Step = tuple[Callable[..., Awaitable[object]], tuple[Any, ...]]


class UpstreamSource(abc.ABC):
    """Builds a context's upstream container only when the context first needs it.

    The executor passes one source per run as every context's ``upstream``;
    a context that never calls :meth:`TaskContext.result_of` or
    :meth:`TaskContext.child` never builds its own container.
    """

    __slots__ = ()

    def __contains__(self, task_id: object) -> bool:
        raise TypeError("an UpstreamSource answers through for_task(), not `in`")

    @abc.abstractmethod
    def for_task(self, task_id: str) -> Container[str]:
        """The ids ``task_id`` may read the results of."""


class TaskContext:
    """What a running task knows about its run.

    One context is made per attempt; it is cheap and never shared between
    tasks. The executor makes them; contexts for a combinator's children are
    made with :meth:`child`. Build one by hand only to call a task outside an
    executor (in a unit test, say).

    Args:
        task_id: the task's id.
        workflow_id: the run's id.
        attempt: the attempt number.
        results: completed tasks' results by id.
        upstream: the ids whose results this task may read.
        states: where :attr:`state` dicts live, by task id.
        last_attempt: whether no retry follows if this attempt fails.
        steps: where :meth:`add_compensation` registers undo steps, by task
            id (the executor passes the run's; None keeps them in this context).
        owner: the task the steps belong to (a combinator's children register
            theirs for the combinator); None for ``task_id``.

    Attributes:
        task_id: the id of the task this context belongs to.
        workflow_id: the id of the run (unique per execution).
        attempt: the attempt number, 1 for the first try (a resumed run keeps
            counting the attempts the task made before).
        last_attempt: True when a failure of this attempt is final: the task
            has no retries left (so ``attempt`` alone does not tell, after a
            resume or with the executor's default ``retries``).
    """

    __slots__ = (
        "_owner",
        "_results",
        "_states",
        "_steps",
        "_upstream",
        "attempt",
        "last_attempt",
        "task_id",
        "workflow_id",
    )

    task_id: str
    workflow_id: str
    attempt: int
    last_attempt: bool

    def __init__(
        self,
        task_id: str,
        workflow_id: str,
        attempt: int = 1,
        results: Mapping[str, Any] | None = None,
        upstream: Container[str] = (),
        states: dict[str, dict[str, Any]] | None = None,
        *,
        last_attempt: bool = True,
        steps: dict[str, list[Step]] | None = None,
        owner: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.workflow_id = workflow_id
        self.attempt = attempt
        self._results: Mapping[str, Any] = {} if results is None else results
        self._upstream = upstream
        self._states = {} if states is None else states
        self.last_attempt = last_attempt
        self._steps = steps
        self._owner = owner

    def __repr__(self) -> str:
        return (
            f"TaskContext(task_id={self.task_id!r}, workflow_id={self.workflow_id!r}, "
            f"attempt={self.attempt})"
        )

    def result_of(self, task_id: str) -> Any:
        """Return the result of ``task_id``, a completed upstream dependency.

        Raises:
            ResultNotAvailableError: ``task_id`` is not upstream of this task
                (directly or through other tasks), or has no result yet.
        """
        if task_id not in self._allowed():
            raise ResultNotAvailableError(
                self.task_id, task_id, "it is not an upstream dependency of this task"
            )
        try:
            return self._results[task_id]
        except KeyError:
            raise ResultNotAvailableError(
                self.task_id, task_id, "it has not completed in this run"
            ) from None

    def _allowed(self) -> Container[str]:
        upstream = self._upstream
        if isinstance(upstream, UpstreamSource):
            upstream = self._upstream = upstream.for_task(self.task_id)
        return upstream

    @property
    def state(self) -> dict[str, Any]:
        """A scratch dict shared by this task's attempts and its compensation in one run.

        Use it to remember what the task did (ids of created resources, say) so
        that ``compensate`` can undo exactly that.
        """
        state = self._states.get(self.task_id)
        if state is None:
            state = self._states[self.task_id] = {}
        return state

    def add_compensation(self, fn: Callable[..., Awaitable[object]], /, *args: Any) -> None:
        """Register ``await fn(*args)`` as a step that undoes what the task just did.

        Call it right after (or right before) a side effect, the way
        ``contextlib.ExitStack.callback`` is used: if the run rolls back, the
        step runs whether this task completed, failed, timed out or was
        cancelled. On rollback a completed task's ``compensate`` runs first,
        then its steps in reverse registration order; across tasks the order
        is reverse dependency order, as for ``compensate``. Steps registered
        by an attempt that fails are undone before the next attempt starts,
        so only the successful attempt's steps wait for a rollback. Each step
        runs at most once, shielded from cancellation and bounded by the
        executor's ``compensation_timeout``; a step that raises is recorded
        (``WorkflowTaskCompensationFailed``) and the others still run. Steps
        registered by a combinator's children belong to the combinator's task.

        Args:
            fn: an async function; it gets ``args``, not a context (bind what
                it needs now: a resource id, a path).
            *args: the arguments ``fn`` is called with.

        Raises:
            TypeError: ``fn`` is not an async function, or cannot take ``args``.
        """
        check_step(f"task {self.task_id!r}: add_compensation", fn, args)
        steps = self._steps
        if steps is None:
            steps = self._steps = {}
        owner = self.task_id if self._owner is None else self._owner
        registered = steps.get(owner)
        if registered is None:
            registered = steps[owner] = []
        registered.append((fn, args))

    def child(
        self,
        task_id: str,
        *,
        results: Mapping[str, Any] | None = None,
        upstream: Container[str] | None = None,
    ) -> TaskContext:
        """Return a context for a combinator's child task.

        The child sees this task's upstream results (plus ``results`` for ids
        listed in ``upstream``, such as earlier siblings) and keeps its own
        :attr:`state` inside this task's state.
        """
        children: dict[str, dict[str, Any]] = self.state.setdefault("__children__", {})
        merged_results: Mapping[str, Any] = self._results
        merged_upstream = self._allowed()
        if results is not None:
            merged_results = _ChainResults(results, self._results)
        if upstream is not None:
            merged_upstream = _UnionContainer(upstream, merged_upstream)
        return TaskContext(
            task_id,
            self.workflow_id,
            attempt=self.attempt,
            results=merged_results,
            upstream=merged_upstream,
            states=children,
            last_attempt=self.last_attempt,
            steps=self._shared_steps(),
            owner=self.task_id if self._owner is None else self._owner,
        )

    def _shared_steps(self) -> dict[str, list[Step]]:
        steps = self._steps
        if steps is None:
            steps = self._steps = {}
        return steps


class _ChainResults(Mapping[str, Any]):
    """A read-only view of two result mappings, the first one winning."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
        self._first = first
        self._second = second

    def __getitem__(self, key: str) -> Any:
        if key in self._first:
            return self._first[key]
        return self._second[key]

    def __iter__(self) -> Any:
        yield from self._first
        yield from (k for k in self._second if k not in self._first)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _UnionContainer:
    """A container holding whatever either of two containers holds."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Container[str], second: Container[str]) -> None:
        self._first = first
        self._second = second

    def __contains__(self, item: object) -> bool:
        return item in self._first or item in self._second


@runtime_checkable
class WorkflowTask(Protocol):
    """The protocol every task satisfies.

    Optional attributes the executor also reads when present: ``estimate``
    (float seconds, for scheduling priority), ``retries`` (int),
    ``has_compensation`` (bool; when false, rollback skips the task) and
    ``resources`` (a mapping of pool name to units the task holds while it runs).
    """

    @property
    def id(self) -> str:
        """The task's unique id within its workflow."""
        ...

    @property
    def depends_on(self) -> Sequence[str]:
        """Ids of the tasks that must succeed before this one starts."""
        ...

    @property
    def timeout(self) -> float | None:
        """Seconds the task may run, or None for the executor's default."""
        ...

    async def run(self, ctx: TaskContext) -> Any:
        """Do the task's work; the return value is its result."""
        ...

    async def compensate(self, ctx: TaskContext) -> None:
        """Undo the task's effects; called during rollback of a failed run."""
        ...


def has_compensation(task: WorkflowTask) -> bool:
    """Whether rollback must call ``task.compensate`` (true unless the task says otherwise)."""
    return bool(getattr(task, "has_compensation", True))


def names_a_pool(tasks: Iterable[WorkflowTask]) -> bool:
    """Whether any of ``tasks`` holds units of a resource pool (cheap for plain tasks)."""
    for task in tasks:
        if task._resources if type(task) is Task else getattr(task, "resources", None):
            return True
    return False


def _check_id(value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"id must be a non-empty str, got {value!r}")


def _to_ids(value: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        # A lone string is almost always a forgotten comma: ("a") instead of ("a",).
        return (value,)
    ids = tuple(value)
    for item in ids:
        if not isinstance(item, str) or not item:
            raise TypeError(f"depends_on must hold non-empty str ids, got {item!r}")
    return ids


def _to_pairs(
    value: Mapping[str, int] | Iterable[tuple[str, int]] | None,
) -> tuple[tuple[str, int], ...]:
    if not value:
        return ()
    if isinstance(value, tuple):
        value = dict(value)  # attrs.evolve hands the stored pairs back
    if not isinstance(value, Mapping):
        raise TypeError(f"resources must be a mapping of pool name to units, got {value!r}")
    return tuple(value.items())


_FN = context_function(optional=False)
_COMPENSATE = context_function()
_TIMEOUT = seconds()
_ESTIMATE = seconds(positive=False)
_RETRIES = count()


@attrs.frozen(repr=False, init=False)
class Task:
    """A task made from an async function.

    Args:
        id: unique id within the workflow.
        fn: ``async def fn(ctx: TaskContext)``; what it returns is the task's result.
        depends_on: ids of the tasks that must succeed first.
        timeout: seconds the task may run; None uses the executor's ``task_timeout``.
        compensate: ``async def undo(ctx)`` run during rollback if this task
            completed and the run later failed or was cancelled.
        estimate: expected run time in seconds, used for critical-path priority
            (a task without one counts as one unit).
        retries: how many times to retry after a failure; None uses the
            executor's default.
        resources: units of the executor's named resource pools the task
            holds while it runs, e.g. ``{"docker": 1}``; it starts only when
            every pool it names has room.
    """

    id: str
    _fn: Callable[[TaskContext], Awaitable[Any]] = attrs.field(alias="fn")
    depends_on: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    timeout: float | None = attrs.field(default=None, kw_only=True)
    _compensate: Callable[[TaskContext], Awaitable[None]] | None = attrs.field(
        default=None, alias="compensate", kw_only=True
    )
    estimate: float | None = attrs.field(default=None, kw_only=True)
    retries: int | None = attrs.field(default=None, kw_only=True)
    _resources: tuple[tuple[str, int], ...] = attrs.field(
        default=(), alias="resources", kw_only=True
    )

    def __init__(
        self,
        id: str,
        fn: Callable[[TaskContext], Awaitable[Any]],
        *,
        depends_on: Sequence[str] | str = (),
        timeout: float | None = None,
        compensate: Callable[[TaskContext], Awaitable[None]] | None = None,
        estimate: float | None = None,
        retries: int | None = None,
        resources: Mapping[str, int] | None = None,
    ) -> None:
        # Written by hand, not generated by attrs: users make tasks by the hundred
        # thousand, and attrs' frozen __init__ costs a setattr call and a validator
        # call per field (~1.5 us a task). The rules and messages are the same
        # (_validate); each check costs one comparison when the option is not given.
        if type(id) is not str or not id:
            _check_id(id)
        if _plain_takes_one(fn, True) is not True:  # else answered from its code object
            _FN.apply("fn", fn, id)
        if type(depends_on) is not tuple or depends_on:
            depends_on = _to_ids(depends_on)
        if timeout is not None:
            _TIMEOUT.apply("timeout", timeout, id)
        if compensate is not None:
            _COMPENSATE.apply("compensate", compensate, id)
        if estimate is not None:
            _ESTIMATE.apply("estimate", estimate, id)
        if retries is not None:
            _RETRIES.apply("retries", retries, id)
        pairs = _to_pairs(resources) if resources else ()
        if pairs:
            demand_of(id, dict(pairs))
        # Through the slots' own descriptors: object.__setattr__ looks each name up first.
        _SET_ID(self, id)
        _SET_FN(self, fn)
        _SET_DEPENDS_ON(self, depends_on)
        _SET_TIMEOUT(self, timeout)
        _SET_COMPENSATE(self, compensate)
        _SET_ESTIMATE(self, estimate)
        _SET_RETRIES(self, retries)
        _SET_RESOURCES(self, pairs)

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", repr(self._fn))
        deps = f", depends_on={list(self.depends_on)!r}" if self.depends_on else ""
        return f"Task({self.id!r}, {name}{deps})"

    @property
    def fn(self) -> Callable[[TaskContext], Awaitable[Any]]:
        """The async function the task runs."""
        return self._fn

    @property
    def resources(self) -> dict[str, int]:
        """Units of each named resource pool the task holds while it runs."""
        return dict(self._resources)

    @property
    def has_compensation(self) -> bool:
        """Whether a ``compensate`` function was given."""
        return self._compensate is not None

    async def run(self, ctx: TaskContext) -> Any:
        """Run ``fn(ctx)`` and return its result."""
        return await self._fn(ctx)

    async def compensate(self, ctx: TaskContext) -> None:
        """Run the ``compensate`` function, if one was given."""
        if self._compensate is not None:
            await self._compensate(ctx)
        else:
            await trio.lowlevel.checkpoint()


_SET_ID, _SET_FN, _SET_DEPENDS_ON, _SET_TIMEOUT = (
    Task.__dict__[name].__set__ for name in ("id", "_fn", "depends_on", "timeout")
)
_SET_COMPENSATE, _SET_ESTIMATE, _SET_RETRIES, _SET_RESOURCES = (
    Task.__dict__[name].__set__ for name in ("_compensate", "estimate", "retries", "_resources")
)


def single_attempt_context(
    task_id: str,
    workflow_id: str,
    results: Mapping[str, Any],
    upstream: Container[str],
    states: dict[str, dict[str, Any]],
    steps: dict[str, list[Step]],
) -> TaskContext:
    """``TaskContext(task_id, workflow_id, 1, results, upstream, states, steps=steps)``.

    The context of an attempt that is the first and the last, as the runner's
    single-attempt path makes it: the same object, made without the
    constructor's argument handling (half the cost, per task).
    """
    ctx: TaskContext = _NEW(TaskContext)
    ctx.task_id = task_id
    ctx.workflow_id = workflow_id
    ctx.attempt = 1
    ctx.last_attempt = True
    ctx._results = results
    ctx._upstream = upstream
    ctx._states = states
    ctx._steps = steps
    ctx._owner = None
    return ctx


_NEW = object.__new__
