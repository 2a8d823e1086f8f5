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

from collections.abc import Iterable, Sequence

import attrs
import rustworkx as rx

from ._errors import CycleDetectedError, EmptyWorkflowError, MissingDependencyError

__all__ = ["Dag", "compile_dag"]


@attrs.frozen(eq=False)
class Dag:
    """A validated, acyclic task graph with its nodes numbered 0..n-1.

    Attributes:
        ids: task ids by node index (insertion order).
        index: node index by task id.
        predecessors: for each node, the nodes it depends on.
        successors: for each node, the nodes that depend on it.
        layers: node indices by layer (longest distance from a root), each
            layer sorted by task id.
        graph: the rustworkx graph (node payload = node index).
    """

    ids: list[str]
    index: dict[str, int]
    predecessors: list[list[int]]
    successors: list[list[int]]
    layers: list[list[int]]
    graph: rx.PyDiGraph[int, None]

    def __len__(self) -> int:
        return len(self.ids)

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
        while successors[node]:
            node = max(successors[node], key=lambda n: (remaining[n], -n))
            path.append(node)
        return path, total


def _insertion_key(node: int) -> str:
    return f"{node:012d}"


def compile_dag(
    name: str,
    ids: Sequence[str],
    dependencies: Iterable[tuple[str, Sequence[str]]],
) -> Dag:
    """Check and compile a graph from task ids and each task's dependencies.

    Args:
        name: the workflow's name, for error messages.
        ids: every task id, in insertion order (unique).
        dependencies: pairs of a task id and the ids it depends on (duplicates ignored).

    Raises:
        EmptyWorkflowError: ``ids`` is empty.
        MissingDependencyError: a dependency names an id not in ``ids``.
        CycleDetectedError: the dependencies form a cycle.
    """
    if not ids:
        raise EmptyWorkflowError(name)
    index = {tid: i for i, tid in enumerate(ids)}
    n = len(ids)
    predecessors: list[list[int]] = [[] for _ in range(n)]
    successors: list[list[int]] = [[] for _ in range(n)]
    edges: list[tuple[int, int]] = []
    for tid, deps in dependencies:
        if not deps:
            continue
        after = index[tid]
        preds = predecessors[after]
        for dep in dict.fromkeys(deps) if len(deps) > 1 else deps:
            before = index.get(dep)
            if before is None:
                raise MissingDependencyError(tid, dep, known=ids)
            preds.append(before)
            successors[before].append(after)
            edges.append((before, after))
    graph: rx.PyDiGraph[int, None] = rx.PyDiGraph(check_cycle=False, multigraph=False)
    graph.add_nodes_from(range(n))
    graph.add_edges_from_no_data(edges)
    try:
        generations = rx.topological_generations(graph)
    except rx.DAGHasCycle:
        raise CycleDetectedError(_find_cycle(graph, ids)) from None
    layers = [sorted(gen, key=ids.__getitem__) for gen in generations]
    return Dag(
        ids=list(ids),
        index=index,
        predecessors=predecessors,
        successors=successors,
        layers=layers,
        graph=graph,
    )


def _find_cycle(graph: rx.PyDiGraph[int, None], ids: Sequence[str]) -> list[str]:
    """Return the ids on one cycle, each depending on the one before it."""
    for component in rx.strongly_connected_components(graph):
        if len(component) > 1 or graph.has_edge(component[0], component[0]):
            edges = rx.digraph_find_cycle(graph, component[0])
            return [ids[before] for before, _after in edges]
    return []  # pragma: no cover - only called when rustworkx found a cycle
