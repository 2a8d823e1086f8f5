"""Typed reads of YAML nodes that collect every problem instead of stopping at the first.

The loader asks a :class:`Checker` for "the string at this node", "the
duration at this node" and so on. Each read either returns a value or records
a :class:`Problem` at the node's line and column and returns None, so one pass
over the file reports everything that is wrong with it.

Scalars are read from the text as written (``1.10`` stays ``"1.10"``, ``on``
stays ``"on"``); only numbers and booleans are interpreted, and only where
the schema wants one. Mappings are read with :meth:`Checker.mapping`, which
reports duplicate keys (YAML parsers silently keep the last one), unknown keys
with a "did you mean" hint, non-string keys, and applies ``<<`` merge keys
(explicit keys win, as in YAML 1.1), each merged mapping read once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import attrs

from ._durations import DurationError, parse_duration
from ._templates import Reference, scan
from ._yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode, position

__all__ = ["Checker", "Problem"]

_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_WHOLE = re.compile(r"[+]?[0-9][0-9_]*")

# Keys people bring from other tools, and what we call them.
_SYNONYMS = {
    "after": "needs",
    "dependencies": "needs",
    "depends_on": "needs",
    "depends-on": "needs",
    "deps": "needs",
    "requires": "needs",
    "command": "run",
    "script": "run",
    "shell": "run",
    "args": "cmd",
    "argv": "cmd",
    "dir": "cwd",
    "directory": "cwd",
    "workdir": "cwd",
    "working_dir": "cwd",
    "working_directory": "cwd",
    "working-directory": "cwd",
    "environment": "env",
    "retry": "retries",
    "rollback": "compensate",
    "undo": "compensate",
    "on_failure": "fallback",
    "concurrency": "max_parallel",
    "jobs": "tasks",
    "max_concurrency": "max_parallel",
    "parallel": "max_parallel",
    "steps": "tasks",
}


@attrs.frozen
class Problem:
    """One thing wrong with a workflow file.

    Attributes:
        path: the file, as it was named when loading.
        line: 1-based line.
        column: 1-based column.
        message: what is wrong, and how to fix it where we can tell.
    """

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    options = list(choices)
    synonym = _SYNONYMS.get(word.lower())
    if synonym is not None and synonym in options:
        return f" (did you mean {synonym!r}?)"
    if len(word) > 64 or len(options) > 5000:
        return ""  # a hint is not worth seconds of searching a huge file
    # Typos are mostly one or two edits, swapped letters included ("tset").
    limit = 0 if len(word) <= 2 else 1 if len(word) <= 3 else 2
    scored = [(_edits(word, option, limit), option) for option in options]
    best = min(scored, default=(limit + 1, ""))
    if 0 < best[0] <= limit:
        return f" (did you mean {best[1]!r}?)"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _edits(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (edits, counting a swap of neighbours as one).

    Returns ``limit + 1`` early when the lengths alone rule out a close match.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            cost = 0 if char == other else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]


def _is_merge_key(key: Node) -> bool:
    """Whether ``key`` is YAML's merge key: a plain ``<<`` or one tagged ``!!merge``."""
    if not isinstance(key, ScalarNode) or key.value != "<<":
        return False
    return key.tag == _MERGE_TAG or (key.tag is None and key.plain)


class Checker:
    """Reads nodes of one file and collects the problems found."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[Problem] = []

    def add(self, node: Node, message: str) -> None:
        """Record a problem at ``node``."""
        self.problems.append(Problem(self.path, node.line, node.column, message))

    def add_in_scalar(self, node: ScalarNode, offset: int, message: str) -> None:
        """Record a problem at the template starting at ``offset`` of the scalar's value."""
        line, column = node.line, node.column
        nth = node.value.count("${{", 0, offset)
        source = self.text[node.start : node.end]
        found = -1
        for _ in range(nth + 1):
            found = source.find("${{", found + 1)
            if found < 0:
                break
        if found >= 0:
            line, column = position(self.text, node.start + found)
        self.problems.append(Problem(self.path, line, column, message))

    # -- scalars -----------------------------------------------------------

    def scalar(self, node: Node, what: str) -> ScalarNode | None:
        """``node`` if it is a scalar with no unusual tag, else a problem."""
        if not isinstance(node, ScalarNode):
            self.add(node, f"{what} must be a single value, not {node.kind}")
            return None
        if node.tag is not None and node.tag != "!" and node.tag not in _STANDARD_TAGS:
            self.add(node, f"YAML tag {node.tag!r} is not supported here")
            return None
        return node

    def string(self, node: Node, what: str, *, allow_empty: bool = False) -> str | None:
        """The text of a scalar, as written; null is a problem."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        if scalar.is_null() or (not allow_empty and not scalar.value.strip()):
            self.add(node, f"{what} must not be empty")
            return None
        if "\0" in scalar.value:
            self.add(node, f"{what} must not hold a NUL character")
            return None
        return scalar.value

    def whole(self, node: Node, what: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number between ``minimum`` and ``maximum``."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        text = scalar.value.strip()
        if not _WHOLE.fullmatch(text):
            self.add(node, f"{what} must be a whole number, got {scalar.value!r}")
            return None
        value = int(text.replace("_", ""))
        if not minimum <= value <= maximum:
            self.add(node, f"{what} must be between {minimum} and {maximum}, got {value}")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        """``true`` or ``false`` (YAML 1.1 spellings: yes/no, on/off too)."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        if scalar.resolved_tag() != "tag:yaml.org,2002:bool":
            self.add(node, f"{what} must be true or false, got {scalar.value!r}")
            return None
        return scalar.value.lower() in ("true", "yes", "on")

    def duration(self, node: Node, what: str, *, allow_none: bool = False) -> float | None:
        """A duration (``90s``, ``10m``, ``1h30m``, seconds); null when ``allow_none``."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        if scalar.is_null() or scalar.value.strip().lower() == "none":
            if not allow_none:
                self.add(node, f"{what} must be a duration such as 90s, 10m or 1h30m")
            return None
        try:
            return parse_duration(scalar.value)
        except DurationError as exc:
            self.add(node, f"{what}: {exc}")
            return None

    def templates(self, node: ScalarNode, what: str) -> list[Reference]:
        """The well-formed templates in a scalar; malformed ones are problems."""
        refs, problems = scan(node.value)
        for offset, message in problems:
            self.add_in_scalar(node, offset, f"{what}: {message}")
        return refs

    # -- collections -------------------------------------------------------

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: Iterable[str] | None,
        *,
        item: str = "key",
        extensions: bool = False,
    ) -> dict[str, tuple[ScalarNode, Node]] | None:
        """Key -> (key node, value node) of a mapping; ``allowed`` None accepts any key.

        ``item`` names a key in messages ("duplicate task id 'x'"). With
        ``extensions``, keys starting with ``x-`` are skipped: a place to put
        YAML anchors, as in Compose files.
        """
        if not isinstance(node, MappingNode):
            self.add(node, f"{what} must be a mapping of keys to values, not {node.kind}")
            return None
        known = None if allowed is None else list(allowed)
        result: dict[str, tuple[ScalarNode, Node]] = {}
        merged: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.pairs:
            if _is_merge_key(key):
                self._merge(value, what, merged)
                continue
            if not isinstance(key, ScalarNode) or key.is_null():
                self.add(key, f"keys in {what} must be strings")
                continue
            name = key.value
            if name in result:
                first = result[name][0]
                self.add(key, f"duplicate {item} {name!r} in {what} (first at line {first.line})")
                continue
            if extensions and name.startswith("x-"):
                result[name] = (key, value)
                continue
            if known is not None and name not in known:
                self.add(key, f"unknown key {name!r} in {what}{suggestion(name, known)}")
                continue
            result[name] = (key, value)
        for name, pair in merged.items():
            if extensions and name.startswith("x-"):
                continue
            if name not in result and (known is None or name in known):
                result[name] = pair
            elif known is not None and name not in known:
                self.add(pair[0], f"unknown key {name!r} in {what}{suggestion(name, known)}")
        return result

    def _merge(self, node: Node, what: str, into: dict[str, tuple[ScalarNode, Node]]) -> None:
        """Add the pairs of ``<<`` mappings (and the mappings they merge) not yet in ``into``."""
        pending = list(node.items) if isinstance(node, SequenceNode) else [node]
        seen: set[int] = set()
        while pending:
            source = pending.pop(0)
            if id(source) in seen:
                continue
            seen.add(id(source))
            if not isinstance(source, MappingNode):
                self.add(source, f"'<<' in {what} must name a mapping or a list of mappings")
                continue
            for key, value in source.pairs:
                if _is_merge_key(key):
                    nested = value.items if isinstance(value, SequenceNode) else [value]
                    pending.extend(nested)
                elif isinstance(key, ScalarNode) and not key.is_null():
                    into.setdefault(key.value, (key, value))
                else:
                    self.add(key, f"keys in {what} must be strings")

    def string_list(self, node: Node, what: str) -> list[tuple[str, ScalarNode]]:
        """A list of strings (a single string counts as a list of one)."""
        items = node.items if isinstance(node, SequenceNode) else [node]
        result: list[tuple[str, ScalarNode]] = []
        for item in items:
            text = self.string(item, f"each item of {what}")
            if text is not None:
                assert isinstance(item, ScalarNode)
                result.append((text, item))
        return result

    def env(
        self, node: Node, what: str, reserved: frozenset[str]
    ) -> list[tuple[str, str, ScalarNode]]:
        """Environment variables: ``(name, value, value node)`` in written order."""
        pairs = self.mapping(node, what, None)
        if pairs is None:
            return []
        result: list[tuple[str, str, ScalarNode]] = []
        for name, (key, value) in pairs.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.add(key, f"{name!r} in {what} is not a valid environment variable name")
                continue
            if name in reserved:
                self.add(key, f"{name} is set by trioforge; it cannot be set in {what}")
                continue
            scalar = self.scalar(value, f"the value of {name} in {what}")
            if scalar is None:
                continue
            if scalar.is_null():
                self.add(value, f'the value of {name} in {what} is empty; write "" if you mean it')
                continue
            text = scalar.value
            if "\0" in text:
                self.add(value, f"the value of {name} in {what} must not hold a NUL character")
                continue
            result.append((name, text, scalar))
        return result
