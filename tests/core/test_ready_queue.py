"""The pure ready queue and the DAG priority helpers (no trio)."""

from __future__ import annotations

import pytest

import trioforge as tf
from trioforge._core._dag import compile_dag
from trioforge._core._ready import ReadyQueue


def dag(edges: dict[str, list[str]]) -> tf._dag.Dag:
    return compile_dag("t", list(edges), list(edges.values()))


def test_roots_and_finish_release_dependents_once_all_deps_finished() -> None:
    """finish() returns a dependent only when its last dependency finishes."""
    g = dag({"a": [], "b": [], "c": ["a", "b"], "d": ["c"]})
    q = ReadyQueue(g.predecessors, g.successors)
    assert q.roots() == [0, 1]
    assert q.finish(0) == []
    assert q.finish(1) == [2]
    assert q.finish(2) == [3]
    assert q.finish(3) == []


def test_pop_order_is_priority_then_node_order() -> None:
    """pop() returns the highest priority first; ties go to the earlier node."""
    q = ReadyQueue([[], [], [], []], [[], [], [], []], [1.0, 5.0, 5.0, 3.0])
    for node in [0, 1, 2, 3]:
        q.push(node)
    assert [q.pop() for _ in range(4)] == [1, 2, 3, 0]
    assert len(q) == 0
    with pytest.raises(IndexError):
        q.pop()


def test_pop_without_priorities_is_node_order() -> None:
    """Without priorities the queue is FIFO by node index."""
    q = ReadyQueue([[]] * 3, [[]] * 3)
    for node in [2, 0, 1]:
        q.push(node)
    assert [q.pop(), q.pop(), q.pop()] == [0, 1, 2]


def test_skip_dependents_is_transitive_and_idempotent() -> None:
    """skip_dependents marks every transitive dependent exactly once."""
    g = dag({"a": [], "b": ["a"], "c": ["b"], "d": ["a", "x"], "x": [], "y": ["x"]})
    q = ReadyQueue(g.predecessors, g.successors)
    ids = g.ids
    assert sorted(ids[n] for n in q.skip_dependents(g.index["a"])) == ["b", "c", "d"]
    assert [ids[n] for n in q.skip_dependents(g.index["x"])] == ["y"]
    assert q.is_skipped(g.index["d"])
    assert not q.is_skipped(g.index["x"])


def test_remaining_costs_are_own_cost_plus_longest_chain_below() -> None:
    """A node's priority is its cost plus the costliest chain of its dependents."""
    g = dag({"z1": [], "z2": ["z1"], "z3": ["z2"], "a": [], "b": []})
    assert g.remaining_costs([1.0] * 5) == [3.0, 2.0, 1.0, 1.0, 1.0]


def test_remaining_costs_with_estimates() -> None:
    """A 60 s task outranks a chain of two 1 s tasks."""
    g = dag({"long": [], "c1": [], "c2": ["c1"]})
    assert g.remaining_costs([60.0, 1.0, 1.0]) == [60.0, 2.0, 1.0]


def test_queue_drives_a_whole_graph_in_dependency_order() -> None:
    """Popping and finishing until empty visits every node after its dependencies."""
    edges = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": [], "f": ["e", "d"]}
    g = dag(edges)
    q = ReadyQueue(g.predecessors, g.successors, g.remaining_costs([1.0] * len(g)))
    for node in q.roots():
        q.push(node)
    order: list[str] = []
    while q:
        node = q.pop()
        order.append(g.ids[node])
        for ready in q.finish(node):
            q.push(ready)
    assert sorted(order) == sorted(edges)
    for task_id, deps in edges.items():
        for dep in deps:
            assert order.index(dep) < order.index(task_id)
    # a heads the longest chain (a-b-d-f), so it goes before e.
    assert order[0] == "a"


def test_restore_counts_earlier_completions_as_finished() -> None:
    """restore() releases the dependents of nodes finished in an earlier run, and not those."""
    g = dag({"a": [], "b": ["a"], "c": ["a", "x"], "x": [], "d": ["b"]})
    q = ReadyQueue(g.predecessors, g.successors)
    ids = g.ids
    done = {g.index["a"], g.index["b"]}
    assert [ids[n] for n in q.restore(done)] == ["x", "d"]
    assert [ids[n] for n in q.finish(g.index["x"])] == ["c"]


def test_a_restored_node_never_becomes_ready_again() -> None:
    """A node finished earlier stays finished when a dependency of it runs in this process."""
    g = dag({"a": [], "b": ["a"], "c": ["b"]})
    q = ReadyQueue(g.predecessors, g.successors)
    ids = g.ids
    # "b" was restored, "a" was not (its result could not be kept): "a" runs again.
    assert [ids[n] for n in q.restore({g.index["b"]})] == ["a", "c"]
    assert q.finish(g.index["a"]) == []
