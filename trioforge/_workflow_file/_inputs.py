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

import attrs

from .._shell import OPEN, Reference, scan
from ._nodes import ScalarNode

__all__ = [
    "INPUTS_TASK",
    "InputSpec",
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


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${{ inputs.KEY }}`` replaced by its value (keys were checked)."""
    if OPEN not in text:
        return text
    return _INPUT.sub(lambda match: values.get(match["key"], match[0]), text)
