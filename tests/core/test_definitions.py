"""Task definitions are checked when made: bodies and compensations are ``async def f(ctx)``."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import trioforge as tf


async def body(ctx: tf.TaskContext) -> None:
    """A valid body."""


def sync_body(ctx: tf.TaskContext) -> None:
    """A sync function: refused."""


async def no_context() -> None:
    """An async function that cannot take the context: refused."""


async def two_args(ctx: tf.TaskContext, extra: int) -> None:
    """Needs an argument the executor does not give: refused unless bound."""


class AsyncCallable:
    """An object whose ``__call__`` is async: accepted."""

    async def __call__(self, ctx: tf.TaskContext) -> None:
        """Run."""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fn": sync_body}, r"task 'a': fn must be an async function .* got the sync"),
        ({"fn": no_context}, r"task 'a': fn must be an async function .* cannot take the context"),
        ({"fn": two_args}, r"task 'a': fn must be an async function .* cannot take the context"),
        ({"fn": body, "compensate": sync_body}, r"task 'a': compensate must be an async function"),
        ({"fn": body, "compensate": no_context}, r"task 'a': compensate must be .* cannot take"),
        ({"fn": lambda ctx: body(ctx)}, r"task 'a': fn must be an async .* got the sync"),  # noqa: PLW0108
    ],
)
def test_task_refuses_functions_that_cannot_run(kwargs: dict[str, Any], message: str) -> None:
    """Task refuses a sync function or one without a context, naming the task and parameter."""
    with pytest.raises(TypeError, match=message):
        tf.Task("a", **kwargs)


@pytest.mark.parametrize("fn", [body, AsyncCallable(), functools.partial(two_args, extra=1)])
def test_task_accepts_async_functions_of_the_context(fn: Any) -> None:
    """Async functions, async callables and partials binding the rest are accepted."""
    assert tf.Task("a", fn).id == "a"


def test_decorator_refuses_a_sync_function() -> None:
    """@wf.task on a sync function is a TypeError naming the task."""
    wf = tf.Workflow("w")
    with pytest.raises(TypeError, match="task 'sync_body': fn must be an async function"):
        wf.task(sync_body)  # type: ignore[arg-type]
    assert len(wf) == 0


def test_decorator_refuses_a_sync_compensation() -> None:
    """@wf.task(compensate=sync) is a TypeError naming the task and ``compensate``."""
    wf = tf.Workflow("w")
    with pytest.raises(TypeError, match="task 'body': compensate must be an async function"):
        wf.task(compensate=sync_body)(body)  # type: ignore[arg-type]
