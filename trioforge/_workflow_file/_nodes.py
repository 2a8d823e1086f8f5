"""Reading a workflow file into a tree of YAML nodes that remember where they were written.

The naive way is ``yaml.safe_load``: it loses every source position, expands
aliases (a few hundred bytes of nested aliases become gigabytes: the "billion
laughs" bomb), recurses once per nesting level (a file of ``[[[[...`` raises
``RecursionError`` in the pure-Python loader) and turns ``1.10`` into
``1.1`` and ``on`` into ``True`` before we can see what was written.

So we compose nodes ourselves from PyYAML's event stream (libyaml's parser
when it is available). On a 50,000-task file this takes about 0.5 s, a third
of what ``yaml.compose`` with libyaml takes, mostly because tag resolution is
skipped until a value is actually read:

* every node keeps its 1-based line and column and its character offsets;
* scalars keep the text exactly as written plus the resolver's hints
  (plain or quoted), so "is this null / an int / a bool" is decided lazily;
* an alias is the anchored node itself, shared, never copied, so an alias
  bomb costs what its text costs. Anchors are registered when their node is
  complete, so a node can never contain itself and the tree has no cycles.
  The first alias of an anchor marks the anchored node and everything inside
  it ``shared`` (each node at most once), so readers know which nodes they may
  reach more than once and can read those only once;
* nesting deeper than :data:`MAX_DEPTH` is an error at the offending node,
  and composition is a loop with an explicit stack: no recursion at all;
* the cyclic garbage collector is paused while the (acyclic) tree is built:
  otherwise its full collections, triggered again and again by a few hundred
  thousand new objects, take two thirds of the time.

Before parsing, the bytes are checked: a file larger than :data:`MAX_BYTES`,
with NUL bytes, or that is not UTF-8 is reported with the position of the
first bad byte instead of a decoder traceback.

``<<`` merge keys are resolved by :class:`Merges`. The naive way keeps the
resolved dictionary of every mapping, each holding its own keys and all those
it merges: a chain of 12,000 links ``mK: &mK {<<: *mK-1, KK: v}`` (470 KB)
then holds 72 million entries (2 GB) and 25,000 links end in MemoryError.
Here a mapping's pairs are resolved for the mapping asked about only, by two
walks of what it merges that visit each mapping once, and nothing is kept of
the mappings in between. A read that keeps only some keys (a task body:
``run``, ``needs``...) is remembered per mapping, as it is small: a chain of
task bodies merging each other costs one small dictionary per link.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator
from typing import Any, NoReturn

import yaml

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "SourceError",
    "compose",
    "decode",
    "gc_paused",
    "position",
    "read_bytes",
]

MAX_BYTES = 32 * 1024 * 1024
"""Largest workflow file we read (a 50,000-task file is about 3 MB)."""

MAX_DEPTH = 64
"""Deepest nesting of collections we accept (a valid workflow needs 5)."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER: Any = yaml.resolver.Resolver()
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


class SourceError(Exception):
    """The file cannot be read as YAML; carries a 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


class Node:
    """Base of the node classes: where the node starts and ends in the text.

    Attributes:
        line: 1-based line of the node's first character.
        column: 1-based column of the node's first character.
        start: offset of the node's first character in the text.
        end: offset just past the node's last character.
        shared: whether the node is reachable through an alias, so possibly
            from more than one place of the tree.
    """

    __slots__ = ("column", "end", "line", "shared", "start")

    def __init__(self, event: Any) -> None:
        mark = event.start_mark
        self.line: int = mark.line + 1
        self.column: int = mark.column + 1
        self.start: int = mark.index
        self.end: int = event.end_mark.index
        self.shared: bool = False

    kind = "node"


class ScalarNode(Node):
    """A scalar, with its text exactly as written."""

    __slots__ = ("plain", "quoted", "style", "tag", "value")
    kind = "a string"

    def __init__(self, event: Any) -> None:
        mark = event.start_mark
        self.line = mark.line + 1
        self.column = mark.column + 1
        self.start = mark.index
        self.end = event.end_mark.index
        self.shared = False
        self.value: str = event.value
        self.tag: str | None = event.tag
        self.plain: bool
        self.quoted: bool
        self.plain, self.quoted = event.implicit
        self.style: str | None = event.style

    def resolved_tag(self) -> str:
        """The YAML 1.1 type of the scalar: ``...:str``, ``...:int``, ``...:null`` and so on."""
        if self.tag is not None and self.tag != "!":
            return self.tag
        return str(_RESOLVER.resolve(yaml.ScalarNode, self.value, (self.plain, self.quoted)))

    def is_null(self) -> bool:
        """Whether the scalar is ``null``, ``~`` or empty (and not quoted)."""
        if self.tag is None:
            return self.plain and self.value in _NULLS
        return self.resolved_tag() == "tag:yaml.org,2002:null"


class SequenceNode(Node):
    """A sequence of nodes."""

    __slots__ = ("items", "tag")
    kind = "a list"

    def __init__(self, event: Any) -> None:
        super().__init__(event)
        self.items: list[Node] = []
        self.tag: str | None = event.tag


class MappingNode(Node):
    """A mapping, as its key/value pairs in written order (duplicates kept)."""

    __slots__ = ("pairs", "tag")
    kind = "a mapping"

    def __init__(self, event: Any) -> None:
        super().__init__(event)
        self.pairs: list[tuple[Node, Node]] = []
        self.tag: str | None = event.tag


#: Where a line ends, for every position trioforge reports: \r\n, \r or \n (as
#: editors count them), never U+0085, U+2028 or U+2029 (which PyYAML's marks count).
LINE_END = re.compile("\r\n?|\n")


def position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``, by :data:`LINE_END`."""
    index = max(0, min(index, len(text)))
    line, start = 1, 0
    for match in LINE_END.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


class _Located(Exception):
    """A problem at character ``index``, turned into a :class:`SourceError` by :func:`compose`."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, at most :data:`MAX_BYTES` of them.

    Raises:
        SourceError: the file cannot be read or is too large.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SourceError(1, 1, f"cannot read the file: {reason}") from None
    if len(data) > MAX_BYTES:
        raise SourceError(1, 1, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return data


def decode(data: bytes) -> str:
    """UTF-8 text of ``data`` (a leading byte order mark is dropped).

    Raises:
        SourceError: NUL bytes (a binary file) or bytes that are not UTF-8.
    """
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _byte_position(data, nul)
        raise SourceError(line, column, "this is a binary file (it contains NUL bytes), not YAML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise SourceError(
            line, column, f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None
    return text.removeprefix("\ufeff")


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def compose(text: str) -> Node | None:
    """The single document in ``text`` as a node tree, or None for an empty file.

    Raises:
        SourceError: a syntax error, an undefined alias, a second document,
            or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        with gc_paused():
            return _compose(text)
    except _Located as exc:
        raise SourceError(*position(text, exc.index), exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = position(text, mark.index) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        raise SourceError(line, column, f"YAML syntax error: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line, column = position(text, exc.position)
        raise SourceError(line, column, f"YAML syntax error: {exc.reason}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error above is marked
        raise SourceError(1, 1, f"YAML syntax error: {exc}") from None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (not reference counting) inside the block.

    Building a large acyclic tree triggers full collections again and again,
    each walking every object built so far; pausing them halves load times.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _fail(event: Any, message: str) -> NoReturn:
    raise _Located(event.start_mark.index, message)


def _mark_shared(node: Node) -> None:
    """Mark ``node`` and everything inside it shared; stop at nodes already marked."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.shared:
            continue
        current.shared = True
        if isinstance(current, SequenceNode):
            stack.extend(current.items)
        elif isinstance(current, MappingNode):
            for key, value in current.pairs:
                stack.append(key)
                stack.append(value)


def _compose(text: str) -> Node | None:
    anchors: dict[str, Node] = {}
    # Each open collection with the anchor to register when it closes, and for
    # mappings the key waiting for its value.
    stack: list[tuple[SequenceNode | MappingNode, str | None, list[Node]]] = []
    root: Node | None = None
    documents = 0
    scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
    sequence_start, mapping_start = yaml.SequenceStartEvent, yaml.MappingStartEvent
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    events: Iterator[Any] = yaml.parse(text, Loader=_Loader)
    for event in events:
        kind = type(event)
        node: Node
        if kind is scalar_event:
            node = ScalarNode(event)
            if event.anchor is not None:
                anchors[event.anchor] = node
        elif kind is mapping_start or kind is sequence_start:
            if len(stack) >= MAX_DEPTH:
                _fail(event, f"the YAML is nested more than {MAX_DEPTH} levels deep")
            collection = SequenceNode(event) if kind is sequence_start else MappingNode(event)
            stack.append((collection, event.anchor, []))
            continue
        elif kind in ends:
            node, anchor, _pending = stack.pop()
            node.end = event.end_mark.index
            if anchor is not None:
                anchors[anchor] = node
        elif kind is alias_event:
            found = anchors.get(event.anchor)
            if found is None:
                _fail(event, f"alias *{event.anchor} names no anchor defined before it is used")
            if not found.shared:
                _mark_shared(found)
            node = found
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                _fail(
                    event, "a workflow file holds one YAML document; this is the start of a second"
                )
            continue
        else:
            continue
        if not stack:
            root = node
            continue
        parent, _anchor, pending = stack[-1]
        if type(parent) is SequenceNode:
            parent.items.append(node)
        elif pending:
            parent.pairs.append((pending.pop(), node))  # type: ignore[union-attr]
        else:
            pending.append(node)
    return root
