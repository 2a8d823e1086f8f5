"""Option checks shared by every place that takes them: one rule, one message.

Tasks, combinators, shell tasks, the executor and the store take the same
kinds of options: seconds (a timeout, an estimate), counts (retries), a
choice among a few values. Each kind is checked here, as an attrs validator,
and every message names the option, what it must be and what was received,
plus the task when the option belongs to one::

    task 'build': timeout must be a finite number of seconds > 0, got -1

A wrong type is a ``TypeError``, a value out of range a ``ValueError`` (as
in attrs). :func:`check` applies the same rules to plain arguments (the
executor's, the store's), so their messages read the same.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["Rule", "check", "check_step", "context_function", "count", "one_of", "seconds"]


@attrs.frozen
class Rule:
    """One kind of option check; call it as an attrs validator, or through :func:`check`."""

    kind: str
    optional: bool = True
    positive: bool = True
    minimum: int = 0
    choices: tuple[object, ...] = ()

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and self.optional:
            return  # before reading the task's id: the common case costs one comparison
        self.apply(attribute.alias or attribute.name, value, getattr(instance, "id", None))

    def apply(self, name: str, value: object, task_id: object = None) -> None:
        """Like :meth:`validate`, with the message prefixed by ``task_id`` when it is a str."""
        if value is None and self.optional:
            return  # the common case costs one comparison: tasks are made by the thousand
        if self.kind == "function" and _plain_takes_one(value, self.positive):
            return  # a plain function: answered from its code object
        try:
            self.validate(name, value)
        except (TypeError, ValueError) as exc:
            if isinstance(task_id, str):
                raise type(exc)(f"task {task_id!r}: {exc}") from None
            raise

    def validate(self, name: str, value: object) -> None:
        """Raise TypeError/ValueError naming ``name`` unless ``value`` follows the rule."""
        if value is None and self.optional:
            return
        none = " or None" if self.optional else ""
        if self.kind == "seconds":
            bound = "> 0" if self.positive else ">= 0"
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds {bound}{none}, got {value!r}")
            if not math.isfinite(value) or value < 0 or (self.positive and value == 0):
                raise ValueError(
                    f"{name} must be a finite number of seconds {bound}, got {value!r}"
                )
        elif self.kind == "function":
            _check_function(name, value, awaitable=self.positive)
        elif self.kind == "count":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int >= {self.minimum}{none}, got {value!r}")
            if value < self.minimum:
                raise ValueError(f"{name} must be an int >= {self.minimum}, got {value!r}")
        elif value not in self.choices:
            shown = ", ".join(repr(choice) for choice in self.choices)
            raise ValueError(f"{name} must be one of {shown}, got {value!r}")


def seconds(*, positive: bool = True, optional: bool = True) -> Rule:
    """A finite number of seconds, ``> 0`` (``positive``) or ``>= 0``; None if ``optional``."""
    return Rule("seconds", optional=optional, positive=positive)


def count(*, minimum: int = 0, optional: bool = True) -> Rule:
    """An ``int >= minimum``, never a bool; None if ``optional``."""
    return Rule("count", optional=optional, minimum=minimum)


def one_of(choices: Iterable[object]) -> Rule:
    """One of ``choices``."""
    return Rule("one_of", optional=False, choices=tuple(choices))


def check(name: str, value: object, rule: Rule) -> None:
    """Apply ``rule`` to a plain argument called ``name`` (not an attrs field)."""
    rule.validate(name, value)


def context_function(*, awaitable: bool = True, optional: bool = True) -> Rule:
    """A function taking the task's context: ``async def f(ctx)`` (``awaitable``) or ``f(ctx)``."""
    return Rule("function", optional=optional, positive=awaitable)


_CO_VARARGS = inspect.CO_VARARGS
_CO_COROUTINE = inspect.CO_COROUTINE
#: The code object of the last async function found able to take one argument with no
#: defaults: the closures of a loop share one, so each costs an identity test.
_last_async_code: list[types.CodeType | None] = [None]


def _plain_takes_one(value: object, awaitable: bool) -> bool | None:
    """For a plain function, whether it is (``awaitable``: async and) able to take one argument.

    Read from the code object in O(1): what ``inspect.signature(value).bind(None)``
    answers, without building a signature (tasks are made by the thousand, each
    its own closure). None when ``value`` is not a plain function (wrapped,
    with a ``__signature__``, a partial, a method...): the caller asks inspect.
    """
    if type(value) is not types.FunctionType:
        return None
    # What inspect.signature would follow instead of the code object. Looked up
    # by name: reading ``value.__dict__`` would give every function a dict.
    if (
        hasattr(value, "__wrapped__")
        or hasattr(value, "__signature__")
        or hasattr(value, "_partialmethod")
        or hasattr(value, "__partialmethod__")
    ):
        return None
    code = value.__code__
    defaults = value.__defaults__
    if code is _last_async_code[0] and defaults is None:
        return True  # the same code with no defaults: the same answer (also when not awaitable)
    if awaitable and not code.co_flags & _CO_COROUTINE:
        return False
    positional = code.co_argcount
    required = positional - (len(defaults) if defaults else 0)
    if required > 1 or (positional == 0 and not code.co_flags & _CO_VARARGS):
        return False
    if code.co_kwonlyargcount:
        names = code.co_varnames[positional : positional + code.co_kwonlyargcount]
        given = value.__kwdefaults__ or {}
        if any(name not in given for name in names):
            return False
    elif awaitable and defaults is None and code.co_flags & _CO_COROUTINE:
        _last_async_code[0] = code
    return True


def _is_async(value: object) -> bool:
    if inspect.iscoroutinefunction(value):
        return True
    call = getattr(type(value), "__call__", None)  # noqa: B004 - the class's, not a callable() test
    return call is not None and not inspect.isfunction(value) and inspect.iscoroutinefunction(call)


def _check_function(name: str, value: object, *, awaitable: bool) -> None:
    shape = "an async function taking the task's context, like `async def f(ctx)`"
    if not awaitable:
        shape = "a function taking the task's context, like `def f(ctx)`"
    if _plain_takes_one(value, awaitable):
        return  # the common case: the answer inspect would give, from the code object
    if not callable(value):
        raise TypeError(f"{name} must be {shape}, got {value!r}")
    if awaitable and not _is_async(value):
        raise TypeError(f"{name} must be {shape}, got the sync {value!r}")
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return  # a builtin or extension callable: nothing to read, accept it
    try:
        signature.bind(None)
    except TypeError:
        raise TypeError(
            f"{name} must be {shape}, got {value!r} with the signature {signature}, "
            "which cannot take the context"
        ) from None


def check_step(name: str, fn: object, args: tuple[Any, ...]) -> None:
    """Refuse an undo step that is not an async function able to take ``args``."""
    if not callable(fn) or not _is_async(fn):
        raise TypeError(f"{name} needs an async function, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        raise TypeError(f"{name}: {fn!r} cannot take {len(args)} argument(s): {exc}") from None
