"""Typed reads of YAML nodes that collect every problem instead of stopping at the first.

The loader asks a :class:`Checker` for "the string at this node", "the
duration at this node" and so on. Each read either returns a value or records
a :class:`Problem` at the node's line and column and returns None, so one pass
over the file reports everything that is wrong with it.

Scalars are read from the text as written (``1.10`` stays ``"1.10"``, ``on``
stays ``"on"``); only numbers and booleans are interpreted, and only where
the schema wants one. Numbers are checked for length before they are
converted (Python refuses to convert more than 4300 digits). Mappings are read
with :meth:`Checker.mapping`, which reports duplicate keys (YAML parsers
silently keep the last one), unknown keys with a "did you mean" hint (within
a budget per file, see :meth:`Checker.hint`), non-string keys, and applies
``<<`` merge keys as YAML 1.1 does: explicit keys win, then the merged
mappings in order, each bringing its own merges with it. Merges are resolved
by ``_nodes.Merges`` in time and memory linear in what is read (a chain of
25,000 merges included); a mapping that merges a checked one costs a union
made in C (:func:`under`), not a Python loop over its keys.
Aliases: a node reachable through an alias (``Node.shared``) can be reached
from many places; a mapping of 300 unknown keys used as ``*m`` by 300 tasks
would otherwise be checked 300 times and give 90,000 problems (and a 64 KB
file would take minutes). So every read of a shared node is remembered by
(read, node, settings): the second task that reads it gets the same answer at
the cost of a dictionary look-up, and its problems are reported once, where
the anchored node is written, naming the first place that used it. Checks made
outside this class ask :meth:`Checker.first` before reporting. Nodes that are
not shared are read directly: most nodes are not, and remembering them would
only cost memory.

Locating a template inside a scalar maps the template's offset in the value
to its offset in the file through the list of ``${{`` positions of both,
built once per scalar, and offsets to lines through a sorted list of line
starts: one problem costs a binary search, not a scan of the file.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs

from .._core import DurationError, parse_duration
from .._shell import OPEN, Reference
from ._hints import SYNONYMS, HintBudget, suggestion
from ._inputs import scan_with_inputs
from ._merges import Merges, is_merge_key
from ._nodes import LINE_END, MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["NodeReader", "Problem", "once_per_shared_node", "shown", "under", "usual_tag"]


_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_WHOLE = re.compile(r"[+]?[0-9][0-9_]*")
_OPENS = re.compile(re.escape(OPEN))
_NEWLINE = LINE_END  # the one rule for lines in every problem's position
_SHOWN = 40
_HINT_BUDGET = 200_000
"""Candidates all "did you mean" hints of one file may compare (see :meth:`Checker.hint`)."""


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


def shown(text: str) -> str:
    """``repr(text)``, cut to about 40 characters: a value quoted in a message stays readable."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[: _SHOWN - 5]!r}... ({len(text)} characters)"


_V = TypeVar("_V")


def under(top: dict[str, _V], below: dict[str, _V]) -> dict[str, _V]:
    """``top``, then the pairs of ``below`` whose keys ``top`` lacks (``top`` if none).

    Three dictionary operations that run in C: a mapping that merges a
    3,000-key mapping costs microseconds, not a Python loop over 3,000 keys.
    """
    if not below:
        return top
    combined = top | below
    combined.update(top)
    return combined


def usual_tag(tag: str | None) -> bool:
    return tag is None or tag == "!" or tag in _STANDARD_TAGS


@functools.cache
def _known(allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(allowed)


_UNREAD: Any = object()
_N = TypeVar("_N", bound=Node)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_C = TypeVar("_C", bound="NodeReader")


def once_per_shared_node(
    read: Callable[Concatenate[_C, _N, str, _P], _R],
) -> Callable[Concatenate[_C, _N, str, _P], _R]:
    """Make ``read(node, what, ...)`` run once per shared node and settings.

    ``what`` (the place, for messages) is not part of the key: a shared node is
    read once, and its problems name the first place that read it. The other
    arguments are; they must be hashable, and keyword arguments must be given
    in the same order at every call (they are, the calls are few).
    """
    name = read.__name__

    @functools.wraps(read)
    def once(self: _C, node: _N, what: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not node.shared:
            return read(self, node, what, *args, **kwargs)
        key = (name, id(node), args, tuple(kwargs.items())) if kwargs else (name, id(node), args)
        memo = self._memo
        value = memo.get(key, _UNREAD)
        if value is _UNREAD:
            value = memo[key] = read(self, node, what, *args, **kwargs)
        return value  # type: ignore[no-any-return]

    return once


class NodeReader:
    """Reads nodes of one file and collects the problems found.

    Reads of nodes reachable through aliases are remembered (see the module
    notes); their values are shared, so callers must not modify what a read
    returns.
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[Problem] = []
        #: What is valid but probably not meant (``validate`` prints them; they fail nothing).
        self.warnings: list[Problem] = []
        self._memo: dict[Hashable, Any] = {}
        self._asked: set[Hashable] = set()
        self._line_starts: list[int] | None = None
        self._opens: dict[int, tuple[list[int], list[int]]] = {}
        self._hint_budget = _HINT_BUDGET
        self._hint_work = HintBudget()
        self._merges = Merges(self.add)
        #: The file's declared inputs (None: it has no ``inputs:``), read before the tasks.
        self.inputs: Mapping[str, object] | None = None

    def first(self, node: Node, *about: Hashable) -> bool:
        """Whether ``about`` is asked of ``node`` for the first time (always true if not shared).

        A check outside this class that reports on a node it may reach
        through several aliases asks this first, so it reports only once.
        """
        if not node.shared:
            return True
        key = (id(node), *about)
        if key in self._asked:
            return False
        self._asked.add(key)
        return True

    def hint(self, word: str, choices: Sequence[str]) -> str:
        """:func:`suggestion` for ``word``, while this file's budget for hints lasts.

        A hint compares the word with every choice; 1,500 unknown ``needs``
        among 1,500 task ids would take seconds, for hints nobody reads past
        the first screen. So hints stop once :data:`_HINT_BUDGET` candidates
        have been compared, or the file's :class:`HintBudget` of work is spent
        (about a second), except the synonyms' (``depends_on`` -> ``needs``).
        """
        self._hint_budget -= len(choices)
        if self._hint_budget < 0:
            synonym = SYNONYMS.get(word.lower())
            choices = [synonym] if synonym is not None and synonym in choices else []
        return suggestion(word, choices, self._hint_work)

    def add(self, node: Node, message: str) -> None:
        """Record a problem at ``node``."""
        self.problems.append(Problem(self.path, *self.position(node.start), message))

    def add_in_scalar(self, node: ScalarNode, offset: int, message: str) -> None:
        """Record a problem at the template starting at ``offset`` of the scalar's value."""
        line, column = self.position(node.start)
        found = self._source_offset(node, offset)
        if found is not None:
            line, column = self.position(found)
        self.problems.append(Problem(self.path, line, column, message))

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` of the file."""
        starts = self._line_starts
        if starts is None:
            starts = [0]
            starts.extend(match.end() for match in _NEWLINE.finditer(self.text))
            self._line_starts = starts
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    def _source_offset(self, node: ScalarNode, offset: int) -> int | None:
        """Where the ``${{`` at ``offset`` of the scalar's value is written in the file.

        The n-th ``${{`` of the value is the n-th one of the scalar's source
        text (escapes aside); both lists are built once per scalar.
        """
        opens = self._opens.get(id(node))
        if opens is None:
            in_value = [found.start() for found in _OPENS.finditer(node.value)]
            written = _OPENS.finditer(self.text, node.start, node.end)
            in_source = [found.start() for found in written]
            opens = self._opens[id(node)] = (in_value, in_source)
        in_value, in_source = opens
        nth = bisect_left(in_value, offset)
        return in_source[nth] if nth < len(in_source) else None

    # -- scalars -----------------------------------------------------------

    def scalar(self, node: Node, what: str) -> ScalarNode | None:
        """``node`` if it is a scalar with no unusual tag, else a problem."""
        if not isinstance(node, ScalarNode):
            self.add(node, f"{what} must be a single value, not {node.kind}")
            return None
        if not usual_tag(node.tag):
            self.add(node, f"YAML tag {shown(str(node.tag))} is not supported here")
            return None
        return node

    @once_per_shared_node
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

    @once_per_shared_node
    def whole(self, node: Node, what: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number between ``minimum`` and ``maximum`` (both >= 0).

        The digits are counted before anything is converted: Python refuses to
        convert more than 4300 digits, and a number that long is out of range
        anyway.
        """
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        text = scalar.value.strip()
        if not _WHOLE.fullmatch(text):
            self.add(node, f"{what} must be a whole number, got {shown(scalar.value)}")
            return None
        digits = text.removeprefix("+").replace("_", "").lstrip("0") or "0"
        if len(digits) > len(str(maximum)) or not minimum <= int(digits) <= maximum:
            got = digits if len(digits) <= _SHOWN else f"a number of {len(digits)} digits"
            self.add(node, f"{what} must be between {minimum} and {maximum}, got {got}")
            return None
        return int(digits)

    @once_per_shared_node
    def boolean(self, node: Node, what: str) -> bool | None:
        """``true`` or ``false`` (YAML 1.1 spellings: yes/no, on/off too)."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        if scalar.resolved_tag() != "tag:yaml.org,2002:bool":
            self.add(node, f"{what} must be true or false, got {shown(scalar.value)}")
            return None
        return scalar.value.lower() in ("true", "yes", "on")

    @once_per_shared_node
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

    @once_per_shared_node
    def templates(self, node: ScalarNode, what: str) -> list[Reference]:
        """The well-formed templates in a scalar; malformed ones are problems.

        ``${{ inputs.KEY }}`` counts as a template (see ``_inputs``), of the
        inputs in :attr:`inputs`.
        """
        refs, problems = scan_with_inputs(node.value, self.inputs)
        for offset, message in problems:
            self.add_in_scalar(node, offset, f"{what}: {message}")
        return refs

    # -- collections -------------------------------------------------------

    @once_per_shared_node
    def mapping(
        self,
        node: Node,
        what: str,
        allowed: tuple[str, ...] | None,
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
        result, merges = self._written(node, what, allowed, item=item, extensions=extensions)
        for merge in merges:
            result = under(result, self._merged_known(merge, what, allowed, extensions=extensions))
        return result

    def _written(
        self,
        node: MappingNode,
        what: str,
        allowed: tuple[str, ...] | None,
        *,
        item: str = "key",
        extensions: bool = False,
    ) -> tuple[dict[str, tuple[ScalarNode, Node]], list[Node]]:
        """The pairs written in a mapping (see :meth:`mapping`), and the values of its ``<<``."""
        known = None if allowed is None else _known(allowed)
        result: dict[str, tuple[ScalarNode, Node]] = {}
        merges: list[Node] = []
        for key, value in node.pairs:
            if is_merge_key(key):
                merges.append(value)
                continue
            if not isinstance(key, ScalarNode) or key.is_null():
                self.add(key, f"keys in {what} must be strings")
                continue
            name = key.value
            if name in result:
                first = result[name][0]
                self.add(
                    key,
                    f"duplicate {item} {shown(name)} in {what} (first at line {first.line})",
                )
                continue
            if extensions and name.startswith("x-"):
                result[name] = (key, value)
                continue
            if known is not None and name not in known:
                assert allowed is not None
                if self.first(key, "unknown key", allowed):
                    self.add(key, f"unknown key {shown(name)} in {what}{self.hint(name, allowed)}")
                continue
            result[name] = (key, value)
        return result, merges

    @once_per_shared_node
    def _merged_known(
        self, node: Node, what: str, allowed: tuple[str, ...] | None, *, extensions: bool
    ) -> dict[str, tuple[ScalarNode, Node]]:
        """The pairs a ``<<`` value (a mapping or a list of them) brings; earlier ones win."""
        kept: dict[str, tuple[ScalarNode, Node]] = {}
        for source in node.items if isinstance(node, SequenceNode) else [node]:
            kept = under(kept, self._known_pairs(source, what, allowed, extensions=extensions))
        return kept

    @once_per_shared_node
    def _known_pairs(
        self, node: Node, what: str, allowed: tuple[str, ...] | None, *, extensions: bool
    ) -> dict[str, tuple[ScalarNode, Node]]:
        """The pairs of one merged mapping that ``allowed`` accepts; the others are problems."""
        if allowed is None and not extensions:
            return self._merges.pairs(node, what)

        def dropped(key: ScalarNode) -> None:
            if allowed is not None and self.first(key, "unknown key", allowed):
                name = key.value
                self.add(key, f"unknown key {shown(name)} in {what}{self.hint(name, allowed)}")

        known = None if allowed is None else _known(allowed)
        return self._merges.kept(node, what, known, extensions=extensions, dropped=dropped)

    @once_per_shared_node
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
