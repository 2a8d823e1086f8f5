"""``${{ tasks.<id>.outputs.<key> }}`` templates: finding, checking and expanding them.

A template names one output of one task. Templates are expanded only in
places where the result is a single value handed to the operating system as
is (an environment variable's value, one argv item), never into shell text
that trioforge runs: expanding an output into a ``run`` script would let
whatever a task printed run as code in the next one. The loader rejects
templates in shell text and tells the user to pass the value through ``env``
instead.

That is all expanding guarantees: one value, never parsed by a shell that
trioforge starts. The program that receives the value may still read it as
code (``[sh, -c, SCRIPT]``) or, if it starts with ``-``, as an option; the
loader refuses templates in the argv items it knows to be code (see
``_argv_code``).

The scanner is a regular expression for the opening ``${{`` and the closing
``}}``, then a strict full match of the expression between them, so every
malformed template is reported with its offset in the string (the loader
turns offsets into line and column).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import attrs

from .._core import WorkflowError

__all__ = ["MissingOutputError", "Reference", "contains_template", "expand", "scan"]

OPEN = "${{"
_TEMPLATE = re.compile(r"\$\{\{(?P<body>.*?)\}\}", re.DOTALL)
_EXPRESSION = re.compile(
    r"\s*tasks\.(?P<task>[A-Za-z0-9_][A-Za-z0-9_-]*)\.outputs\.(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]*)\s*"
)


@attrs.frozen
class Reference:
    """One well-formed template in a string.

    Attributes:
        task: the task whose output it names.
        key: the output's key.
        offset: index of the template's ``${{`` in the string.
        text: the template as written, e.g. ``"${{ tasks.build.outputs.version }}"``.
    """

    task: str
    key: str
    offset: int
    text: str


class MissingOutputError(WorkflowError, LookupError):
    """Raised when a task runs and a template names an output that was not written.

    Attributes:
        task_id: the task whose command or environment uses the template.
        source: the task the template reads from.
        key: the output key it asked for.
    """

    def __init__(
        self, task_id: str, source: str, key: str, *, available: Sequence[str] = ()
    ) -> None:
        wrote = ", ".join(repr(k) for k in sorted(available)) if available else "nothing"
        super().__init__(
            f"task {task_id!r} uses ${{{{ tasks.{source}.outputs.{key} }}}}, but task "
            f"{source!r} wrote no output {key!r} to $TRIOFORGE_OUTPUT (it wrote: {wrote})"
        )
        self.task_id = task_id
        self.source = source
        self.key = key


def contains_template(text: str) -> bool:
    """Whether ``text`` holds anything that starts like a template."""
    return OPEN in text


def scan(text: str) -> tuple[list[Reference], list[tuple[int, str]]]:
    """Every template in ``text``: the well-formed ones and ``(offset, message)`` problems."""
    refs: list[Reference] = []
    problems: list[tuple[int, str]] = []
    if OPEN not in text:
        return refs, problems
    position = 0
    while True:
        start = text.find(OPEN, position)
        if start < 0:
            break
        match = _TEMPLATE.match(text, start)
        if match is None:
            problems.append((start, "unclosed template: '${{' without a matching '}}'"))
            break
        body = match.group("body")
        expression = _EXPRESSION.fullmatch(body)
        if expression is None:
            problems.append(
                (
                    start,
                    f"unknown template expression {body.strip()!r}: the only form is "
                    "${{ tasks.<task id>.outputs.<key> }}",
                )
            )
        else:
            refs.append(
                Reference(expression.group("task"), expression.group("key"), start, match[0])
            )
        position = match.end()
    return refs, problems


def expand(text: str, lookup: Callable[[str, str], str]) -> str:
    """Replace every template in ``text`` with ``lookup(task, key)``.

    ``text`` must be well formed (see :func:`scan`); the loader guarantees it.
    """
    if OPEN not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        expression = _EXPRESSION.fullmatch(match.group("body"))
        if expression is None:
            raise ValueError(f"malformed template {match[0]!r}")
        return lookup(expression.group("task"), expression.group("key"))

    return _TEMPLATE.sub(replace, text)
