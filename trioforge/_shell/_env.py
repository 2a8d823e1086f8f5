"""Commands and environments, checked once per value.

A command, an env and the text of an argv item or env value are checked once
per value, not once per task: what :func:`to_command`, :func:`to_env` and
:func:`checked_text` return is an instance of a private ``str`` or ``tuple``
subclass, and they take such an instance back as is. A workflow file whose
1,500 tasks share one 1,500-variable ``env`` through a YAML alias would
otherwise check 2.25 million variables and hold 2.25 million pairs; the
loader converts each shared value once, and every task holds the same one.
The values are immutable, so a value cannot change after it was checked;
``attrs.evolve`` on a task costs nothing and keeps what was checked.

The environment-variable name rule (:data:`ENV_NAME`) lives here, a leaf the
YAML loader imports too, and so does the one list of the ``TRIOFORGE_*``
variables a command gets (:func:`task_env`), from which the names a task's
``env`` may not set (:data:`RESERVED_ENV`) are made.
"""

from __future__ import annotations

import operator
import re
import sys
from collections.abc import Iterable, Mapping, Sequence

from ._argv_code import code_items
from ._templates import contains_template, scan
from ._watchdog import DRIVER_ENV, RUN_ENV

__all__ = [
    "ENV_NAME",
    "RESERVED_ENV",
    "EnvLike",
    "checked_text",
    "layered_env",
    "task_env",
    "to_command",
    "to_env",
]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What an environment variable name may be (the YAML loader checks names with it too)."""


def task_env(
    *, output: str, attempt: int, task_id: str, run_id: str, phase: str
) -> dict[str, str]:
    """The ``TRIOFORGE_*`` variables of a command, but ``TRIOFORGE_DRIVER``.

    ``TRIOFORGE_DRIVER`` names the process that starts the command, so the
    code that starts it adds it (``with_driver`` in ``_process_group``). A
    new variable is added here, and only here: :data:`RESERVED_ENV` follows.

    Args:
        output: the path of the outputs file (``TRIOFORGE_OUTPUT``).
        attempt: the attempt number, from 1 (``TRIOFORGE_ATTEMPT``).
        task_id: the workflow task the command belongs to (``TRIOFORGE_TASK_ID``).
        run_id: the run's id (``TRIOFORGE_RUN_ID``).
        phase: ``run``, ``fallback`` or ``compensate`` (``TRIOFORGE_PHASE``).
    """
    return {
        "TRIOFORGE_OUTPUT": output,
        "TRIOFORGE_ATTEMPT": str(attempt),
        "TRIOFORGE_TASK_ID": task_id,
        RUN_ENV: run_id,
        "TRIOFORGE_PHASE": phase,
        "TRIOFORGE_PYTHON": sys.executable,
    }


RESERVED_ENV = frozenset(
    {*task_env(output="", attempt=1, task_id="", run_id="", phase=""), DRIVER_ENV}
)
"""The variables trioforge sets for a command, which a task's ``env`` may not set."""


class _Script(str):
    """A script that :func:`to_command` checked (see the module notes)."""

    __slots__ = ()


class _Argv(tuple[str, ...]):
    """An argv tuple that :func:`to_command` checked (see the module notes)."""

    __slots__ = ()


class _Text(str):
    """An argv item or env value that :func:`checked_text` checked (see the module notes)."""

    __slots__ = ()


class _Env(tuple[tuple[str, str], ...]):
    """``(name, value)`` pairs that :func:`to_env` checked (see the module notes)."""

    __slots__ = ()


_NO_ENV = _Env()
_first = operator.itemgetter(0)


def to_command(value: str | Sequence[str]) -> str | tuple[str, ...]:
    """The command a :class:`ShellTask` stores for ``value``: a script, or an argv tuple.

    What this returns is taken back as is, unchecked: the tasks of a workflow
    file that share one command (a YAML alias) share one checked value.

    Raises:
        ValueError: an empty command, a template in a script, a malformed
            template, or a template in an argv item the program reads as code.
    """
    if type(value) is _Script or type(value) is _Argv:
        return value
    if isinstance(value, str):
        if not value or value.isspace():  # what value.strip() tells, without a copy
            raise ValueError("a shell command must not be empty")
        if contains_template(value):
            raise ValueError(
                "templates are not expanded in shell text (an output could run as code); "
                "pass the value through env and use $NAME in the script"
            )
        return _Script(value)
    argv = tuple(value)
    if not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
        raise ValueError(f"an argv command must be a non-empty list of str, got {value!r}")
    for item in argv:
        if type(item) is not _Text:
            _check_templates(item)
    for code in code_items(argv):
        if contains_template(argv[code.index]):
            raise ValueError(
                f"argv item {code.index} ({argv[code.index]!r}) is {code.reads}, so a "
                "template there could run an output as code; pass the value as a "
                "separate argument ($1) or through env"
            )
    return _Argv(argv)


def _to_optional_command(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    return None if value is None else to_command(value)


def checked_text(text: str) -> str:
    """``text`` checked as an argv item or an env value is: no NUL, well-formed templates.

    :func:`to_command` and :func:`to_env` take what this returns as is, so an
    argv item or env value that many tasks share (a YAML alias) is scanned for
    templates once, not once per task.

    Raises:
        ValueError: a NUL character or a malformed template.
    """
    if type(text) is _Text:
        return text
    _check_templates(text)
    return _Text(text)


def _check_templates(text: str) -> None:
    if "\0" in text:
        raise ValueError(f"{text!r} holds a NUL character")
    _refs, problems = scan(text)
    if problems:
        raise ValueError(problems[0][1])


EnvLike = Mapping[str, str] | Iterable[tuple[str, str]] | None
"""What ``env`` may be: a mapping, ``(name, value)`` pairs (another task's ``env``), or None."""


def to_env(value: EnvLike) -> tuple[tuple[str, str], ...]:
    """The ``(name, value)`` pairs a :class:`ShellTask` stores for ``env=value``.

    A name given twice as pairs keeps its last value, as in a dict. What this
    returns is taken back as is, unchecked: the tasks of a workflow file that
    share one ``env`` (a YAML alias) share one checked tuple, and
    ``attrs.evolve`` on a task keeps its env.

    Raises:
        ValueError: a name that is not a valid environment variable name or
            is reserved (:data:`RESERVED_ENV`), a NUL character or a
            malformed template in a value.
        TypeError: a value that is not a str, or an item that is not a pair.
    """
    if type(value) is _Env:
        return value
    if value is None:
        return _NO_ENV
    if isinstance(value, Mapping):
        env = dict(value)
    else:
        items = list(value)
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"env must be a mapping or (name, value) pairs, got {item!r}")
        env = dict(items)
    for name, text in env.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
        if name in RESERVED_ENV:
            raise ValueError(f"{name} is set by trioforge and cannot be overridden")
        if not isinstance(text, str):
            raise TypeError(f"env values must be str, got {text!r} for {name}")
        if type(text) is not _Text:
            _check_templates(text)
    return _Env(env.items()) if env else _NO_ENV


def layered_env(*layers: EnvLike) -> tuple[tuple[str, str], ...]:
    """:func:`to_env` of ``layers`` applied in order, a later layer's value winning.

    Layers that :func:`to_env` returned are not checked again, and their
    ``(name, value)`` pairs are reused, not copied: layering checked envs (a
    workflow's env under a task's) costs one dictionary update per variable,
    and tasks layering one big shared env hold references to its pairs.
    """
    checked = [layer for layer in map(to_env, layers) if layer]
    if len(checked) <= 1:
        return checked[0] if checked else _NO_ENV
    env: dict[str, tuple[str, str]] = {}
    for layer in checked:
        env.update(zip(map(_first, layer), layer, strict=True))  # name -> the layer's own pair
    return _Env(env.values())
