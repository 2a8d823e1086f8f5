"""Task functions are checked from the code object when plain: the same answers as inspect."""

from __future__ import annotations

import functools
import gc
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import trioforge as tf
from trioforge._core._validate import _plain_takes_one


async def one(ctx): ...  # type: ignore[no-untyped-def]
async def none_(): ...  # type: ignore[no-untyped-def]
async def two(ctx, other): ...  # type: ignore[no-untyped-def]
async def two_default(ctx, other=1): ...  # type: ignore[no-untyped-def]
async def all_default(ctx=None, other=1): ...  # type: ignore[no-untyped-def]
async def star(*args): ...  # type: ignore[no-untyped-def]
async def star_kw(**kw): ...  # type: ignore[no-untyped-def]
async def posonly(ctx, /): ...  # type: ignore[no-untyped-def]
async def posonly_two(ctx, other, /): ...  # type: ignore[no-untyped-def]
async def kwonly(ctx, *, flag): ...  # type: ignore[no-untyped-def]
async def kwonly_default(ctx, *, flag=True): ...  # type: ignore[no-untyped-def]
async def only_kwonly(*, ctx): ...  # type: ignore[no-untyped-def]
async def star_and_kwonly(*args, flag=1): ...  # type: ignore[no-untyped-def]
async def agen(ctx):  # type: ignore[no-untyped-def]
    yield ctx


def sync_one(ctx): ...  # type: ignore[no-untyped-def]
def sync_none(): ...  # type: ignore[no-untyped-def]


@functools.wraps(two)
async def wrapped_two(ctx):  # type: ignore[no-untyped-def]
    return None


async def with_signature(ctx): ...  # type: ignore[no-untyped-def]


with_signature.__signature__ = inspect.signature(two)  # type: ignore[attr-defined]

SHAPES: list[Callable[..., Any]] = [
    one, none_, two, two_default, all_default, star, star_kw, posonly, posonly_two, kwonly,
    kwonly_default, only_kwonly, star_and_kwonly, agen, sync_one, sync_none, wrapped_two,
    with_signature, lambda ctx: None, lambda: None,
]  # fmt: skip


def _inspect_answer(fn: Callable[..., Any], awaitable: bool) -> bool:
    if awaitable and not inspect.iscoroutinefunction(fn):
        return False
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("awaitable", [True, False])
@pytest.mark.parametrize("fn", SHAPES, ids=lambda fn: fn.__name__)
def test_plain_function_check_agrees_with_inspect(fn: Callable[..., Any], awaitable: bool) -> None:
    """The code-object check gives inspect's answer, or defers (None) for non-plain functions."""
    fast = _plain_takes_one(fn, awaitable)
    if fn in (wrapped_two, with_signature):
        assert fast is None
    else:
        assert _inspect_answer(fn, awaitable) == fast


@pytest.mark.parametrize("fn", SHAPES, ids=lambda fn: fn.__name__)
def test_task_accepts_exactly_what_inspect_accepts(fn: Callable[..., Any]) -> None:
    """Task(...) accepts a function iff it is async and can take the context."""
    expected = _inspect_answer(fn, True)
    try:
        tf.Task("t", fn)
    except TypeError:
        accepted = False
    else:
        accepted = True
    assert expected == accepted


def test_checking_a_plain_function_gives_it_no_dict() -> None:
    """Making a Task does not create the function's __dict__ (memory per task)."""

    async def fresh(ctx):  # type: ignore[no-untyped-def]
        return None

    tf.Task("t", fresh)
    # A created __dict__ shows up as an empty dict among the function's referents.
    created = [ref for ref in gc.get_referents(fresh) if type(ref) is dict and not ref]
    assert not created


def _closures(count: int) -> list[Callable[..., Any]]:
    """``count`` new functions made by one ``async def`` in a loop: one shared code object."""
    made = []
    for _ in range(count):

        async def body(ctx):  # type: ignore[no-untyped-def]
            return None

        made.append(body)
    return made


def test_closures_sharing_a_code_object_are_each_checked() -> None:
    """The check remembers the last plain code object it accepted, never a function's own marks.

    Closures of one loop share a code object, so a later closure is answered
    from it; one that was given a signature of its own (``__signature__``,
    ``functools.wraps``) is still one inspect has to read, and Task() refuses
    it when that signature cannot take the context.
    """
    plain, signed, wrapped, again = _closures(4)
    assert plain.__code__ is signed.__code__ is wrapped.__code__ is again.__code__
    assert _plain_takes_one(plain, True) is True
    signed.__signature__ = inspect.signature(two)  # type: ignore[attr-defined]
    functools.update_wrapper(wrapped, two)
    assert _plain_takes_one(signed, True) is None
    assert _plain_takes_one(wrapped, True) is None
    for fn in (signed, wrapped):
        with pytest.raises(TypeError, match="cannot take the context"):
            tf.Task("t", fn)
    assert _plain_takes_one(again, True) is True
    assert _plain_takes_one(again, False) is True  # inspect's answer without the async test
