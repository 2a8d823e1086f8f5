"""The compiled dependency graph: validation, order, layers and critical paths (no trio).

A :class:`Workflow` is edited by adding tasks and edges in any order (a task
may name a dependency that is added later), so the graph is compiled on
demand into a :class:`Dag`: task ids are numbered in insertion order, the edges
go into a rustworkx ``PyDiGraph`` and into plain predecessor/successor lists
that the schedulers walk without calling back into rustworkx.

Layering is rustworkx's ``topological_generations`` (Kahn's algorithm by
generations, in Rust): generation *k* holds exactly the tasks whose longest
path from a root has *k* edges, which is the definition of a task's layer.
A cycle makes it raise; we then ask ``digraph_find_cycle`` for one cycle so
the error names only the tasks on it.

Remaining-path priorities and the critical path are one reverse-topological
sweep, O(V + E), in Python.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice, repeat
from operator import sub

import rustworkx as rx

from ._errors import CycleDetectedError, EmptyWorkflowError, MissingDependencyError

__all__ = ["Adjacency", "Dag", "compile_dag"]


class Adjacency(Sequence["array[int]"]):
    """Each node's neighbours, as one flat array plus offsets (compressed sparse rows).

    ``adjacency[node]`` is a new small array of the node's neighbours, in
    rustworkx's order. Two arrays for the whole graph instead of a tuple per
    node: no object per node or per edge that lives for the run (the garbage
    collector never sees them), 4 bytes per edge and 8 per node.
    """

    __slots__ = ("_flat", "_offsets")

    def __init__(self, count: int, neighbours: Callable[[int], Sequence[int]]) -> None:
        # C ints (4 bytes) while they can hold every index, as they do below 2**31 nodes.
        code = "i" if count < 2**31 - 1 else "q"
        flat: array[int] = array(code)
        offsets: array[int] = array("q", [0])
        extend, append = flat.extend, offsets.append
        for node in range(count):
            extend(neighbours(node))
            append(len(flat))
        self._flat = flat
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, node: int) -> array[int]:  # type: ignore[override]
        offsets = self._offsets
        return self._flat[offsets[node] : offsets[node + 1]]

    def __iter__(self) -> Iterator[array[int]]:
        flat, offsets = self._flat, self._offsets
        for node in range(len(offsets) - 1):
            yield flat[offsets[node] : offsets[node + 1]]

    def degree(self, node: int) -> int:
        """How many neighbours ``node`` has (no array made)."""
        offsets = self._offsets
        return offsets[node + 1] - offsets[node]

    def degrees(self) -> list[int]:
        """Every node's number of neighbours, in node order."""
        offsets = self._offsets
        return list(map(sub, offsets[1:], offsets[:-1]))


class Dag:
    """A validated, acyclic task graph with its nodes numbered 0..n-1.

    Args:
        ids: task ids by node index (insertion order).
        index: node index by task id.
        generations: node indices by layer, in any order within a layer
            (:attr:`layers` sorts them when first read).
        graph: the rustworkx graph (node payload = node index).

    Attributes:
        ids: task ids by node index (insertion order).
        index: node index by task id.
        graph: the rustworkx graph (node payload = node index).
    """

    __slots__ = (
        "_generations",
        "_layers",
        "_predecessors",
        "_successors",
        "graph",
        "ids",
        "index",
    )

    def __init__(
        self,
        ids: list[str],
        index: dict[str, int],
        generations: Sequence[Sequence[int]],
        graph: rx.PyDiGraph[int, None],
    ) -> None:
        self.ids = ids
        self.index = index
        self.graph = graph
        self._generations = generations
        self._layers: list[list[int]] | None = None
        self._predecessors: Adjacency | None = None
        self._successors: Adjacency | None = None

    @property
    def layers(self) -> list[list[int]]:
        """Node indices by layer (longest distance from a root), each layer sorted by task id.

        Sorted on first read: a dataflow run never reads them.
        """
        if self._layers is None:
            key = self.ids.__getitem__
            # One int object per node, shared with the index and the graph's payloads
            # (rustworkx hands back a new int for every index it returns).
            shared = self.graph.__getitem__
            self._layers = [list(map(shared, sorted(gen, key=key))) for gen in self._generations]
            self._generations = []
        return self._layers

    @property
    def predecessors(self) -> Adjacency:
        """For each node, the nodes it depends on (built on first use)."""
        if self._predecessors is None:
            self._predecessors = Adjacency(len(self.ids), self.graph.predecessor_indices)
        return self._predecessors

    @property
    def successors(self) -> Adjacency:
        """For each node, the nodes that depend on it (built on first use)."""
        if self._successors is None:
            self._successors = Adjacency(len(self.ids), self.graph.successor_indices)
        return self._successors

    def __len__(self) -> int:
        return len(self.ids)

    def in_degrees(self) -> list[int]:
        """Each node's number of dependencies, a new list (one rustworkx call per node)."""
        return list(map(self.graph.in_degree, range(len(self.ids))))

    def layer_ids(self) -> list[list[str]]:
        """Layers as lists of task ids, each sorted."""
        ids = self.ids
        return [[ids[i] for i in layer] for layer in self.layers]

    def topological_order(self) -> list[int]:
        """A topological order that keeps insertion order wherever the edges allow."""
        return list(rx.lexicographical_topological_sort(self.graph, key=_insertion_key))

    def ancestors(self, node: int) -> set[int]:
        """Every node ``node`` depends on, directly or transitively."""
        return set(rx.ancestors(self.graph, node))

    def descendants(self, nodes: Iterable[int]) -> set[int]:
        """Every node that depends, directly or transitively, on any of ``nodes``."""
        seen: set[int] = set()
        stack = list(nodes)
        successors = self.successors
        while stack:
            for succ in successors[stack.pop()]:
                if succ not in seen:
                    seen.add(succ)
                    stack.append(succ)
        return seen

    def remaining_costs(self, costs: Sequence[float]) -> list[float]:
        """Each node's cost plus the costliest chain of nodes that depend on it.

        This is the scheduling priority: a node with more work hanging below it
        should start first.
        """
        remaining = list(costs)
        successors = self.successors
        for layer in reversed(self.layers):
            for node in layer:
                succs = successors[node]
                if succs:
                    remaining[node] = costs[node] + max(remaining[s] for s in succs)
        return remaining

    def critical_path(self, costs: Sequence[float]) -> tuple[list[int], float]:
        """The costliest chain of nodes and its total cost."""
        remaining = self.remaining_costs(costs)
        roots = self.layers[0]
        node = max(roots, key=lambda n: (remaining[n], -n))
        total = remaining[node]
        path = [node]
        successors = self.successors
        while successors.degree(node):
            node = max(successors[node], key=lambda n: (remaining[n], -n))
            path.append(node)
        return path, total


def _insertion_key(node: int) -> str:
    return f"{node:012d}"


def compile_dag(
    name: str,
    ids: Sequence[str],
    dependencies: Sequence[Sequence[str]],
) -> Dag:
    """Check and compile a graph from task ids and each task's dependencies.

    Args:
        name: the workflow's name, for error messages.
        ids: every task id, in insertion order (unique).
        dependencies: for each id in ``ids``, the ids it depends on
            (a repeated id is one edge).

    Raises:
        EmptyWorkflowError: ``ids`` is empty.
        MissingDependencyError: a dependency names an id not in ``ids``.
        CycleDetectedError: the dependencies form a cycle.
    """
    if not ids:
        raise EmptyWorkflowError(name)
    if len(dependencies) != len(ids):
        raise ValueError(f"{len(ids)} task ids but {len(dependencies)} dependency lists")
    # One int object per node, shared by the index, the graph's payloads and the
    # layers (rustworkx hands back a new int for every index it returns).
    nodes = list(range(len(ids)))
    index = dict(zip(ids, nodes, strict=True))
    try:
        graph = _graph(nodes, index, dependencies)
        if graph.has_parallel_edges():  # in Rust: a task listed a dependency twice (rare)
            graph = _graph(nodes, index, [list(dict.fromkeys(deps)) for deps in dependencies])
    except KeyError:
        for after, deps in enumerate(dependencies):
            for dep in deps:
                if dep not in index:
                    raise MissingDependencyError(ids[after], dep, known=ids) from None
        raise  # pragma: no cover - the loop above always finds the culprit
    try:
        generations = rx.topological_generations(graph)
    except rx.DAGHasCycle:
        raise CycleDetectedError(_find_cycle(graph, ids)) from None
    return Dag(list(ids), index, generations, graph)


def _graph(
    nodes: list[int], index: dict[str, int], dependencies: Sequence[Sequence[str]]
) -> rx.PyDiGraph[int, None]:
    """The graph with an edge ``dependency -> dependent`` for every listed dependency.

    Raises:
        KeyError: a dependency is not in ``index``.
    """
    # multigraph=False would look for an existing edge on every insertion, scanning
    # the source's edges, so 1,500 tasks that each need the same 1,500 tasks took 75 s
    # instead of 1 s; compile_dag asks rustworkx for repeats once instead.
    graph: rx.PyDiGraph[int, None] = rx.PyDiGraph(check_cycle=False, multigraph=True)
    graph.add_nodes_from(nodes)
    # Made in C, no Python frame per edge (a generator took a frame switch for each),
    # and handed over a chunk at a time: a list of every edge's tuple at once was the
    # peak of a large run's memory (300,000 edges: ~30 MB for a moment).
    counts = list(map(len, dependencies))
    sources = map(index.__getitem__, chain.from_iterable(dependencies))
    targets = chain.from_iterable(map(repeat, nodes, counts))
    pairs = zip(sources, targets, strict=True)
    for _ in range(0, sum(counts), _EDGE_CHUNK):
        chunk = islice(pairs, _EDGE_CHUNK)
        # An iterator where rustworkx takes one: zip then reuses its pair tuple
        # (compiling 30,000 edges: 5.3 ms instead of 6.8, a third less GC).
        graph.add_edges_from_no_data(chunk if _TAKES_ITERATORS else list(chunk))
    return graph


#: Edges handed to rustworkx per call while compiling.
_EDGE_CHUNK = 8192


def _takes_iterators() -> bool:
    """Whether this rustworkx's ``add_edges_from_no_data`` takes any iterable (0.15: lists)."""
    probe: rx.PyDiGraph[int, None] = rx.PyDiGraph()
    probe.add_nodes_from([0, 1])
    try:
        probe.add_edges_from_no_data(iter([(0, 1)]))
    except TypeError:
        return False
    return probe.num_edges() == 1


_TAKES_ITERATORS = _takes_iterators()


def _find_cycle(graph: rx.PyDiGraph[int, None], ids: Sequence[str]) -> list[str]:
    """Return the ids on one cycle, each depending on the one before it."""
    for component in rx.strongly_connected_components(graph):
        if len(component) > 1 or graph.has_edge(component[0], component[0]):
            edges = rx.digraph_find_cycle(graph, component[0])
            return [ids[before] for before, _after in edges]
    return []  # pragma: no cover - only called when rustworkx found a cycle
