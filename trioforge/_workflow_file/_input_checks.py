"""Reading ``inputs:`` and the values given for them, with every problem at FILE:LINE:COL.

The templates and values themselves (pure, no checker) are in ``_inputs``,
which the node reader uses; this module uses the node reader, so the two
never import each other.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._shell import OPEN
from ._inputs import _INPUT_KEYS, _NAME, InputSpec
from ._nodes import Node, ScalarNode
from ._reads import NodeReader, Problem

__all__ = ["read_inputs", "resolve_inputs"]


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
