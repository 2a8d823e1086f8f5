"""A workflow file's ``inputs:``: values given on the command line, used as ``${{ inputs.KEY }}``.

::

    inputs:
      python: {description: "the interpreter to test with", default: python3}
      version: {description: "the release's version"}     # no default: required

An input template is allowed exactly where a task output's template is (an
env value, one argv item) and refused wherever those are (shell text, the
workflow's env, ``cwd``, and the argv items a program reads as code), with
the same messages: to the checks it is one more template. Unlike an output,
its value is known when the file is loaded, so the loader puts it in place
before the task is built, and the task never sees a template of its own.

A value may not itself hold ``${{``: pasted into an argv item, it would
become a template the task expands at run time (an input that reads another
task's output). Refused, as anything the check does not understand is.

Problems name FILE:LINE:COL: an input template naming an undeclared input is
reported where the template is; an input with no default and no value, at
its declaration; a value given for an undeclared input, at ``inputs:`` (or
1:1 when there is none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from .._shell import OPEN, Reference, scan
from ._nodes import Node, ScalarNode

if TYPE_CHECKING:
    from ._reads import NodeReader

__all__ = [
    "INPUTS_TASK",
    "InputSpec",
    "read_inputs",
    "resolve_inputs",
    "scan_with_inputs",
    "substitute",
]

#: The "task" of an input template's :class:`Reference`: never a valid task id.
INPUTS_TASK = "$inputs"
_INPUT = re.compile(r"\$\{\{\s*inputs\.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
_INPUT_KEYS = ("description", "default")


@attrs.frozen
class InputSpec:
    """One declared input.

    Attributes:
        name: its name (``${{ inputs.NAME }}``).
        description: what it is for, or None.
        default: the value when none is given; None makes it required.
        node: its key in the file (for problems).
    """

    name: str
    description: str | None
    default: str | None
    node: ScalarNode


def scan_with_inputs(
    text: str, declared: Mapping[str, object] | None
) -> tuple[list[Reference], list[tuple[int, str]]]:
    """:func:`scan`, with ``${{ inputs.KEY }}`` as a template (task :data:`INPUTS_TASK`).

    An input template naming an undeclared input is a problem; so is any
    input template when ``declared`` is None (the file has no ``inputs:``).
    """
    refs, problems = scan(text)
    if not problems:
        return refs, problems
    kept: list[tuple[int, str]] = []
    for offset, message in problems:
        match = _INPUT.match(text, offset)
        if match is None:
            kept.append((offset, message))
            continue
        key = match["key"]
        if declared is None or key not in declared:
            names = ", ".join(sorted(declared or ())) or "none (add an 'inputs:' mapping)"
            kept.append((offset, f"unknown input {key!r}; the file's inputs: {names}"))
            continue
        refs.append(Reference(INPUTS_TASK, key, offset, match[0]))
    refs.sort(key=lambda ref: ref.offset)
    return refs, kept


def read_inputs(check: NodeReader, node: Node) -> dict[str, InputSpec]:
    """The ``inputs:`` mapping, each problem recorded with ``check``."""
    pairs = check.mapping(node, "inputs", None, item="input")
    specs: dict[str, InputSpec] = {}
    for name, (key, value) in (pairs or {}).items():
        if not _NAME.fullmatch(name):
            check.add(
                key,
                f"input name {name!r} may use only letters, digits, '_' and '-', and must "
                "start with a letter or '_'",
            )
            continue
        description = default = None
        if not (isinstance(value, ScalarNode) and value.is_null()):
            fields = check.mapping(value, f"input {name!r}", _INPUT_KEYS) or {}
            if "description" in fields:
                description = check.string(
                    fields["description"][1], f"description of input {name!r}", allow_empty=True
                )
            if "default" in fields:
                default = check.string(
                    fields["default"][1], f"default of input {name!r}", allow_empty=True
                )
                if default is not None and OPEN in default:
                    check.add(fields["default"][1], _nested(name))
                    default = None
        specs[name] = InputSpec(name, description, default, key)
    return specs


def _nested(name: str) -> str:
    return (
        f"the value of input {name!r} holds '${{{{': a template inside an input is not "
        "expanded, and is refused so that it cannot become one"
    )


def resolve_inputs(
    check: NodeReader,
    specs: Mapping[str, InputSpec],
    given: Mapping[str, str] | None,
    where: Node | None,
) -> dict[str, str]:
    """Each input's value: given, else its default; problems recorded with ``check``.

    With ``given`` None (``validate``, ``plan``), a required input without a
    value is not a problem and is empty.
    """
    from ._reads import Problem  # _reads imports this module

    values: dict[str, str] = {}
    for name, value in (given or {}).items():
        if name not in specs:
            declared = ", ".join(sorted(specs)) or "none"
            message = (
                f"--input {name}: the file declares no input {name!r} (its inputs: {declared})"
            )
            if where is None:
                check.problems.append(Problem(check.path, 1, 1, message))
            else:
                check.add(where, message)
        elif OPEN in value:
            check.add(specs[name].node, _nested(name))
        else:
            values[name] = value
    for name, spec in specs.items():
        if name in values:
            continue
        if spec.default is not None:
            values[name] = spec.default
        elif given is not None:
            check.add(
                spec.node,
                f"input {name!r} has no default and no value: pass --input {name}=VALUE",
            )
        else:
            values[name] = ""
    return values


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${{ inputs.KEY }}`` replaced by its value (keys were checked)."""
    if OPEN not in text:
        return text
    return _INPUT.sub(lambda match: values.get(match["key"], match[0]), text)
