"""Exception groups from nurseries: what they hold, and letting a lone error out as itself.

trio's nurseries always raise a ``BaseExceptionGroup``. Code that opens a
nursery only for a helper task (a heartbeat, a flusher) wants its block's own
exception to reach the caller as itself, as if no nursery were there; code
that stops a run wants to know whether a group is only ``Cancelled``, or holds
one ``KeyboardInterrupt``-like exception to re-raise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import trio

__all__ = ["is_cancellation", "lone_base_exception", "single_error"]


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is ``trio.Cancelled`` or a group made only of them."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(e) for e in exc.exceptions)
    return False


def lone_base_exception(exc: BaseException) -> BaseException | None:
    """The single KeyboardInterrupt-like leaf of a nursery's group, if that is all it holds.

    Leaves that are ``Cancelled`` are ignored. Returns None when ``exc`` is
    not a group, holds an ``Exception``, or holds more than one leaf.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return None
    leaves: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
        elif not isinstance(item, trio.Cancelled):
            leaves.append(item)
    if len(leaves) == 1 and not isinstance(leaves[0], Exception):
        return leaves[0]
    return None


@contextlib.contextmanager
def single_error() -> Iterator[None]:
    """Re-raise the one exception of a nursery's group as itself; a larger group as it is.

    The child keeps its own ``__cause__``, traceback and ``__context__``
    (raising it inside ``except`` would otherwise replace its context with the
    group); a child without a context of its own gets the group as context, so
    a reader still sees where it came from.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        _raise_keeping_context(group.exceptions[0], group)


def _raise_keeping_context(
    child: BaseException, group: BaseExceptionGroup[BaseException]
) -> NoReturn:
    """Raise ``child`` with its own context; without one, the group becomes its context."""
    context = child.__context__
    try:
        raise child
    finally:
        child.__context__ = context if context is not None else group
        del child, context
