"""The shared option checks: one rule per kind of option, messages that say what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

import trioforge as tf
from trioforge.combinators import (
    ConditionalTask,
    FallbackTask,
    ParallelTasks,
    RaceTasks,
    SequentialTasks,
    TryCatchTask,
)
from trioforge.store import SQLiteRunStore


async def body(ctx: tf.TaskContext) -> None:
    return None


def children() -> list[tf.Task]:
    return [tf.Task("a", body), tf.Task("b", body)]


COMBINATORS: list[Any] = [
    lambda **kw: ParallelTasks("combo", children(), **kw),
    lambda **kw: SequentialTasks("combo", children(), **kw),
    lambda **kw: RaceTasks("combo", children(), **kw),
    lambda **kw: ConditionalTask("combo", lambda ctx: True, tf.Task("a", body), **kw),
    lambda **kw: TryCatchTask("combo", tf.Task("a", body), tf.Task("b", body), **kw),
]

BAD_OPTIONS = [
    ({"retries": "3"}, TypeError, r"task 'combo': retries must be an int >= 0 or None, got '3'"),
    ({"retries": -1}, ValueError, r"task 'combo': retries must be an int >= 0, got -1"),
    ({"timeout": -1}, ValueError, r"task 'combo': timeout must be a finite number .* > 0, got -1"),
    ({"timeout": 0}, ValueError, r"timeout must be a finite number of seconds > 0, got 0"),
    ({"estimate": "x"}, TypeError, r"task 'combo': estimate must be a number of seconds >= 0"),
    ({"compensation_timeout": None}, TypeError, r"compensation_timeout must be a number"),
]


@pytest.mark.parametrize("make", COMBINATORS)
@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
def test_a_combinator_refuses_a_bad_option_when_made(
    make: Any, options: dict[str, object], error: type[Exception], message: str
) -> None:
    """A wrong option on any combinator is an error naming the task and the option at once."""
    with pytest.raises(error, match=message):
        make(**options)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"timeout": float("nan")}, ValueError, r"task 't': timeout must be a finite number"),
        ({"timeout": True}, TypeError, r"task 't': timeout must be a number of seconds"),
        ({"estimate": -0.5}, ValueError, r"task 't': estimate must be .* >= 0, got -0.5"),
        ({"retries": 1.5}, TypeError, r"task 't': retries must be an int >= 0 or None"),
    ],
)
def test_tasks_share_the_rules(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Task, ShellTask and FallbackTask check the same options with the same words."""
    with pytest.raises(error, match=message):
        tf.Task("t", body, **options)
    with pytest.raises(error, match=message):
        tf.ShellTask("t", "true", **options)
    if "timeout" not in options:  # a FallbackTask's timeout belongs to its primary command
        fallback_options = {"retries": 0, **options}
        with pytest.raises(error, match=message.replace(" or None", "")):
            FallbackTask(
                "t", tf.ShellTask("p", "true"), tf.ShellTask("f", "true"), **fallback_options
            )


def test_executor_and_store_arguments_read_the_same() -> None:
    """Plain arguments (executor, store) get the same messages, naming the argument."""
    with pytest.raises(ValueError, match=r"^task_timeout must be a finite number of seconds > 0"):
        tf.WorkflowExecutor(tf.Workflow(), task_timeout=-2)
    with pytest.raises(TypeError, match=r"^max_concurrency must be an int >= 1 or None, got '4'"):
        tf.WorkflowExecutor(tf.Workflow(), max_concurrency="4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^busy_timeout must be a finite number"):
        SQLiteRunStore("unused.db", busy_timeout=-1)
