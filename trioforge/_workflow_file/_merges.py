"""YAML's ``<<`` merge keys, resolved in time and memory linear in what is read.

A full read walks from the mapping asked about twice, visiting each merged
mapping once, and keeps nothing per link, so a chain of 25,000 merges costs
about as much as 25,000 keys; a read that keeps only some keys (task bodies,
top-level keys) is remembered per mapping, each entry at most the allowed set.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator

from ._nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Merges", "Pairs", "is_merge_key"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


Pairs = dict[str, tuple[ScalarNode, Node]]
"""Key -> (key node, value node), in the order YAML's merge gives them."""


def is_merge_key(key: Node) -> bool:
    """Whether ``key`` is YAML's merge key: a plain ``<<`` or one tagged ``!!merge``."""
    if not isinstance(key, ScalarNode) or key.value != "<<":
        return False
    return key.tag == _MERGE_TAG or (key.tag is None and key.plain)


def _sources(node: MappingNode) -> list[Node]:
    """What ``node`` merges, in order: the values of its ``<<`` keys, lists flattened."""
    return [
        source
        for key, value in node.pairs
        if is_merge_key(key)
        for source in (value.items if isinstance(value, SequenceNode) else [value])
    ]


class Merges:
    """Resolves ``<<`` merge keys as YAML 1.1 does, in time and memory linear in what is read.

    A mapping's pairs are its own (the first of duplicate keys), then those
    of each mapping it merges, in order, each with its own merges: the first
    to give a key wins, and keys come in the order of ``S2 | S1 | own`` (the
    dictionary union of the mappings merged last to first, then its own). A
    merged value that is not a mapping and a key that is not a string are
    reported once, through ``report(node, message)``.
    """

    def __init__(self, report: Callable[[Node, str], None]) -> None:
        self._report = report
        self._reported: set[int] = set()
        self._kept: dict[Hashable, Pairs] = {}

    def pairs(self, root: Node, what: str) -> Pairs:
        """Every pair that the merged mapping ``root`` stands for.

        Two walks, each visiting a mapping once however often it is merged:
        the first finds each key's winner (the first in precedence order:
        own, then each merged mapping's, depth first), the second the order
        of the keys (each mapping's merged mappings last to first, then its
        own). Nothing is kept, so reading many links of a chain costs what
        their pairs are, not a dictionary per link on the way.
        """
        winners: Pairs = {}
        seen: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if not isinstance(node, MappingNode):
                self._not_a_mapping(node, what)
                continue
            for name, pair in self._own(node, what):
                winners.setdefault(name, pair)
            stack.extend(reversed(_sources(node)))
        ordered: Pairs = {}
        seen.clear()
        walk: list[tuple[Node, bool]] = [(root, False)]
        while walk:
            node, done = walk.pop()
            if done:
                assert isinstance(node, MappingNode)
                for name, _pair in self._own(node, what):
                    if name not in ordered:
                        ordered[name] = winners[name]
                continue
            if id(node) in seen or not isinstance(node, MappingNode):
                continue
            seen.add(id(node))
            walk.append((node, True))
            walk.extend((source, False) for source in _sources(node))
        return ordered

    def kept(
        self,
        root: Node,
        what: str,
        keep: frozenset[str] | None,
        *,
        extensions: bool,
        dropped: Callable[[ScalarNode], None],
    ) -> Pairs:
        """The pairs of ``root`` whose keys are in ``keep`` (None: all), without ``x-`` keys.

        Filtering commutes with merging, so each mapping's kept pairs are
        its own kept ones under those of what it merges: remembered per
        mapping (an explicit stack, as a chain can be long), each at most as
        large as ``keep``. ``dropped`` is called once for each key of each
        mapping that is not kept (``x-`` keys with ``extensions`` aside).
        """
        memo = self._kept
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            key = (id(node), keep, extensions)
            if key in memo:
                continue
            if not isinstance(node, MappingNode):
                self._not_a_mapping(node, what)
                memo[key] = {}
                continue
            sources = _sources(node)
            if not ready:
                stack.append((node, True))
                stack.extend((source, False) for source in sources)
                continue
            pairs: Pairs = {}
            for source in sources:
                pairs = memo[(id(source), keep, extensions)] | pairs
            own: Pairs = {}
            for name, pair in self._own(node, what):
                if extensions and name.startswith("x-"):
                    continue
                if keep is None or name in keep:
                    own[name] = pair
                else:
                    dropped(pair[0])
            memo[key] = pairs | own if pairs else own
        return memo[(id(root), keep, extensions)]

    def _own(self, node: MappingNode, what: str) -> Iterator[tuple[str, tuple[ScalarNode, Node]]]:
        """The pairs written in ``node`` (not its merges), the first of duplicate keys only."""
        names: set[str] = set()
        for key, value in node.pairs:
            if is_merge_key(key):
                continue
            if not isinstance(key, ScalarNode) or key.is_null():
                self._once(key, f"keys in {what} must be strings")
                continue
            if key.value not in names:
                names.add(key.value)
                yield key.value, (key, value)

    def _not_a_mapping(self, node: Node, what: str) -> None:
        self._once(node, f"'<<' in {what} must name a mapping or a list of mappings")

    def _once(self, node: Node, message: str) -> None:
        if id(node) not in self._reported:
            self._reported.add(id(node))
            self._report(node, message)
