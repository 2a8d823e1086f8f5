"""The compiled graph's flat adjacency: the same neighbours, in the same order, as rustworkx."""

from __future__ import annotations

import random

from trioforge._core._dag import compile_dag


def _random_dag(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    ids = [f"t{i}" for i in range(n)]
    deps = [[ids[d] for d in rng.sample(range(i), min(i, rng.randrange(4)))] for i in range(n)]
    return ids, deps


def test_adjacency_matches_rustworkx_order() -> None:
    """predecessors[i] and successors[i] list rustworkx's neighbours of i, in its order."""
    ids, deps = _random_dag(300, seed=7)
    dag = compile_dag("wf", ids, deps)
    graph = dag.graph
    expected = (
        [list(graph.predecessor_indices(i)) for i in range(len(ids))],
        [list(graph.successor_indices(i)) for i in range(len(ids))],
    )
    actual = (
        [list(dag.predecessors[i]) for i in range(len(ids))],
        [list(dag.successors[i]) for i in range(len(ids))],
    )
    assert expected == actual


def test_adjacency_degrees_and_iteration() -> None:
    """degree(), degrees() and iteration agree with indexing, node by node."""
    ids, deps = _random_dag(200, seed=3)
    dag = compile_dag("wf", ids, deps)
    for adjacency in (dag.predecessors, dag.successors):
        by_index = [list(adjacency[i]) for i in range(len(adjacency))]
        assert by_index == [list(row) for row in adjacency]
        assert [len(row) for row in by_index] == adjacency.degrees()
        assert [len(row) for row in by_index] == [adjacency.degree(i) for i in range(len(ids))]
    assert [len(set(d)) for d in deps] == dag.predecessors.degrees()


def test_in_degrees_count_each_nodes_dependencies() -> None:
    """in_degrees() is the number of distinct dependencies of each node."""
    ids, deps = _random_dag(200, seed=5)
    deps[10] = [*deps[10], *deps[10]]  # a repeated dependency is one edge
    dag = compile_dag("wf", ids, deps)
    assert [len(set(d)) for d in deps] == dag.in_degrees()
