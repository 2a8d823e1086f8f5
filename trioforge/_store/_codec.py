"""How the run store writes task results and ``ctx.state`` as JSON, and reads them back.

Results and each task's ``ctx.state`` are stored as *tagged JSON*
(:func:`encode_result`, :func:`encode_state`): plain JSON, except that the
non-JSON values trioforge itself makes are written as ``{"$trioforge": TYPE,
"value": ...}``: a :class:`~trioforge.ShellResult` (combinators keep their
children's results in their results and state), a :class:`~pathlib.Path`,
and an exception (``TryCatchTask`` and ``FallbackTask`` keep the exception
they caught), as its type, ``args`` and attributes.

A value is *restorable* only if decoding its JSON gives back an equal value
of the same types all the way down (for exceptions: the same type, ``args``
and attributes; a traceback, cause or context is never stored). Otherwise
the store keeps the JSON for people to read, and a resume runs the task
again (a result) or compensates it with an empty state (a ``ctx.state``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "RESULT_TYPE_KEY",
    "decode_result",
    "decode_state",
    "dump_result",
    "encode_result",
    "encode_state",
    "load_result",
    "register_result_type",
]


#: Marks a stored result of a known non-JSON type: ``{"$trioforge": TYPE, "value": ...}``.
RESULT_TYPE_KEY = "$trioforge"


class JsonCodable(Protocol):
    """A result type the store can keep: ``to_json()`` and ``from_json()`` round-trip it."""

    def to_json(self) -> Any:
        """The value as JSON data."""
        ...


# Known non-JSON result types by tag. The store is a lower layer than the
# packages whose types it keeps, so they register here (the shell package
# registers ShellResult when it is imported); the store imports none of them.
_RESULT_TYPES: dict[str, type[Any]] = {}

# For some of them, a cheap check that a value comes back equal from its JSON
# (see register_result_type): True spares encode_result its round trip.
_RESTORES: dict[type[Any], Callable[[Any], bool]] = {}


def register_result_type(
    tag: str, cls: type[JsonCodable], *, restores: Callable[[Any], bool] | None = None
) -> None:
    """Let the store keep results of type ``cls`` under ``tag``.

    ``cls`` needs ``to_json()`` and a ``from_json(data)`` classmethod that
    gives back an equal value. Registering the same class again is a no-op;
    another class under a taken tag is a ``ValueError``.

    ``restores``, if given, is a cheap check (field types, say) of a value of
    exactly ``cls`` whose True promises that the value comes back equal from
    its JSON; :func:`encode_result` then skips decoding the JSON again to
    compare (a shell task's result, by the thousand, on a durable run's
    commit path). False promises nothing: the round trip decides, so the
    answer never depends on the check, only the cost.
    """
    if not callable(getattr(cls, "from_json", None)):
        raise TypeError(f"{cls.__qualname__} needs a from_json() classmethod to be stored")
    known = _RESULT_TYPES.setdefault(tag, cls)
    if known is not cls:
        raise ValueError(f"result tag {tag!r} is taken by {known.__qualname__}")
    if restores is not None:
        _RESTORES[cls] = restores


def _result_types() -> dict[str, type[Any]]:
    return _RESULT_TYPES


def dump_result(value: Any) -> Any:
    """What the store keeps for a task result: the value, or a known type's tagged ``to_json()``.

    A :class:`~trioforge.ShellResult` becomes ``{"$trioforge": "ShellResult",
    "value": result.to_json()}``, which :func:`load_result` turns back into an
    equal ``ShellResult``; anything else is stored as it is.
    """
    for name, cls in _result_types().items():
        if type(value) is cls:
            return {RESULT_TYPE_KEY: name, "value": value.to_json()}
    return value


def load_result(data: Any) -> Any:
    """The task result that :func:`dump_result` stored as ``data`` (after ``json.loads``)."""
    if isinstance(data, dict) and len(data) == 2 and "value" in data:
        cls = _result_types().get(data.get(RESULT_TYPE_KEY))  # type: ignore[arg-type]
        if cls is not None:
            return cls.from_json(data["value"])
    return data


def encode_state(state: Mapping[str, Any]) -> tuple[str | None, bool]:
    """``(json_text, restorable)`` for a task's ``ctx.state``, as tagged JSON (see the module).

    Not JSON even with the tags (a set, an object, NaN): ``(None, False)``.
    JSON, but :func:`decode_state` of it is not equal to ``state`` (a tuple
    becomes a list, an int key a string, an exception type cannot be found
    again): ``(json_text, False)``. Call it where nothing changes ``state``
    meanwhile (on the trio thread, for a live run).
    """
    return _encode(state, decode_state)


def decode_state(text: str) -> dict[str, Any]:
    """The ``ctx.state`` that :func:`encode_state` wrote as ``text``.

    Raises:
        ValueError: ``text`` is not such a state, or names an exception type
            that is not loaded in this process (its module is never imported
            here, so decoding runs no code).
    """
    state = _decode(text, "ctx.state")
    if type(state) is not dict:
        raise ValueError(f"not a stored ctx.state: {text[:100]!r}")
    return state


_EXCEPTION = "Exception"
_PATH = "Path"


def _dump_tagged(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _dump_tagged(item) for key, item in value.items()}
    if kind is list:
        return [_dump_tagged(item) for item in value]
    if isinstance(value, Exception):
        spec = {
            "type": f"{kind.__module__}:{kind.__qualname__}",
            "args": _dump_tagged(list(value.args)),
            "attributes": _dump_tagged(dict(vars(value))),
        }
        return {RESULT_TYPE_KEY: _EXCEPTION, "value": spec}
    if isinstance(value, Path):
        return {RESULT_TYPE_KEY: _PATH, "value": os.fspath(value)}
    return dump_result(value)


def _load_tagged(data: Any) -> Any:
    kind = type(data)
    if kind is list:
        return [_load_tagged(item) for item in data]
    if kind is not dict:
        return data
    if len(data) == 2 and "value" in data and RESULT_TYPE_KEY in data:
        tag = data[RESULT_TYPE_KEY]
        if tag == _EXCEPTION:
            return _load_exception(data["value"])
        if tag == _PATH:
            return Path(data["value"])
        return load_result(data)
    return {key: _load_tagged(item) for key, item in data.items()}


def _load_exception(spec: Mapping[str, Any]) -> Exception:
    name = spec["type"]
    module, _, qualname = name.partition(":")
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Exception)):
        raise ValueError(f"cannot restore an exception of type {name}: it is not loaded")
    args = _load_tagged(spec["args"])
    exc = found.__new__(found, *args)  # like pickle, without running __init__
    if type(exc) is not found:
        raise ValueError(f"cannot restore an exception of type {name}")
    exc.args = tuple(args)
    vars(exc).update(_load_tagged(spec["attributes"]))
    return exc


def _same(a: Any, b: Any) -> bool:
    """Equality for the round trip: same types all the way down; exceptions by content."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseException):
        return _same(list(a.args), list(b.args)) and _same(vars(a), vars(b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(item, b[key]) for key, item in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


def encode_result(value: Any) -> tuple[str | None, bool]:
    """``(json_text, restorable)`` for a task result, as tagged JSON.

    Not JSON even with the tags (NaN, a set, an object): ``(None, False)``.
    JSON, but changed by the round trip (a tuple becomes a list, int keys
    become strings): ``(json_text, False)``. A :class:`~trioforge.ShellResult`,
    alone or inside dicts and lists (a combinator's results), is restorable.
    """
    return _encode(value, decode_result)


def decode_result(text: str) -> Any:
    """The task result that :func:`encode_result` (or, before it, :func:`dump_result`) wrote.

    Raises:
        ValueError: ``text`` is not JSON, or names an exception type that is
            not loaded in this process.
    """
    return _decode(text, "result")


def _encode(value: Any, decode: Callable[[str], Any]) -> tuple[str | None, bool]:
    """``(json_text, restorable)``: restorable when ``decode`` gives ``value`` back."""
    if value is None:
        return "null", True  # a no-op's result, by the thousand: not worth a json.dumps
    kind = type(value)
    if kind is bool or kind is int or kind is str:
        # The common results (a no-op's None, a count, a name): no round trip needed.
        return json.dumps(value, ensure_ascii=False), True
    try:
        text = json.dumps(
            _dump_tagged(value), allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
    except Exception:  # TypeError, ValueError, RecursionError, or a user object's own error
        return None, False
    restores = _RESTORES.get(kind)
    if restores is not None and restores(value):
        return text, True  # JSON it is (dumps took it), and it comes back equal
    try:
        restorable = _same(decode(text), value)
    except Exception:
        restorable = False
    return text, restorable


def _decode(text: str, what: str) -> Any:
    try:
        return _load_tagged(json.loads(text))
    except ValueError:
        raise
    except Exception as exc:  # a tagged value of the wrong shape
        raise ValueError(f"not a stored {what}: {exc!r}") from exc
