"""Layering invariants and the ready queue over random DAGs (no trio)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from trioforge._core._dag import compile_dag
from trioforge._core._ready import ReadyQueue
from trioforge.testing import DagSpec, dag_specs


def longest_distance_from_a_root(spec: DagSpec) -> dict[str, int]:
    """Reference: a task's layer by the definition, in drawn (topological) order."""
    depth: dict[str, int] = {}
    for task in spec.tasks:
        depth[task.id] = max((depth[d] + 1 for d in task.deps), default=0)
    return depth


def shuffled_spec(spec: DagSpec, data: st.DataObject) -> list[str]:
    """The ids in a random order: insertion order must not matter."""
    return data.draw(st.permutations(spec.ids))


@given(dag_specs(max_tasks=300, max_deps=4))
def test_layers_partition_the_tasks(spec: DagSpec) -> None:
    """Every task is in exactly one layer, and no layer is empty."""
    layers = spec.build().execution_layers()
    assert all(layers)
    flat = [task_id for layer in layers for task_id in layer]
    assert sorted(flat) == sorted(spec.ids)
    assert len(flat) == len(set(flat))


@given(dag_specs(max_tasks=300, max_deps=4))
def test_every_edge_goes_to_a_later_layer(spec: DagSpec) -> None:
    """A task's layer is after the layer of each of its dependencies."""
    layers = spec.build().execution_layers()
    layer_of = {task_id: i for i, layer in enumerate(layers) for task_id in layer}
    for task in spec.tasks:
        for dep in task.deps:
            assert layer_of[dep] < layer_of[task.id]


@given(dag_specs(max_tasks=300, max_deps=4), st.data())
def test_layer_is_longest_distance_from_a_root(spec: DagSpec, data: st.DataObject) -> None:
    """A task's layer equals its longest distance from a root, whatever the insertion order."""
    order = shuffled_spec(spec, data)
    deps = spec.dependencies
    dag = compile_dag("p", order, [deps[t] for t in order])
    layer_of = {task_id: i for i, layer in enumerate(dag.layer_ids()) for task_id in layer}
    assert layer_of == longest_distance_from_a_root(spec)
    for layer in dag.layer_ids():
        assert layer == sorted(layer)


@given(dag_specs(max_tasks=200, max_deps=4))
def test_execution_order_is_topological(spec: DagSpec) -> None:
    """execution_order lists every task after all its dependencies."""
    order = spec.build().execution_order()
    position = {task_id: i for i, task_id in enumerate(order)}
    assert len(order) == len(spec.tasks)
    for task in spec.tasks:
        for dep in task.deps:
            assert position[dep] < position[task.id]


@given(dag_specs(max_tasks=100, max_deps=4))
def test_critical_path_is_a_chain_with_the_largest_total(spec: DagSpec) -> None:
    """critical_path returns a real dependency chain whose length no chain exceeds."""
    wf = spec.build()
    path, length = wf.critical_path()
    durations = spec.durations
    for before, after in itertools.pairwise(path):
        assert before in spec.dependencies[after]
    assert sum(durations[t] for t in path) == length
    # Reference: longest path ending at each task, in topological order.
    best: dict[str, float] = {}
    for task in spec.tasks:
        best[task.id] = durations[task.id] + max((best[d] for d in task.deps), default=0.0)
    assert length == max(best.values())


class ReadyQueueMachine(RuleBasedStateMachine):
    """Drive the ready queue like a scheduler with a random pace; check its promises."""

    def __init__(self) -> None:
        super().__init__()
        self.spec: DagSpec
        self.queue: ReadyQueue
        self.finished: set[int] = set()
        self.started: set[int] = set()
        self.running: list[int] = []
        self.ready: set[int] = set()

    @initialize(spec=dag_specs(max_tasks=40, max_deps=3))
    def build(self, spec: DagSpec) -> None:
        self.spec = spec
        self.dag = compile_dag("m", spec.ids, list(spec.dependencies.values()))
        self.priorities = self.dag.remaining_costs([t.duration for t in spec.tasks])
        self.queue = ReadyQueue(self.dag.predecessors, self.dag.successors, self.priorities)
        for node in self.queue.roots():
            self.queue.push(node)
            self.ready.add(node)

    @precondition(lambda self: len(self.ready) > 0)
    @rule()
    def pop(self) -> None:
        node = self.queue.pop()
        assert node in self.ready
        best = max(self.priorities[n] for n in self.ready)
        assert self.priorities[node] == best
        assert min(n for n in self.ready if self.priorities[n] == best) == node
        self.ready.remove(node)
        assert node not in self.started
        self.started.add(node)
        self.running.append(node)

    @precondition(lambda self: len(self.running) > 0)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(self.running))
        self.running.remove(node)
        self.finished.add(node)
        for ready in self.queue.finish(node):
            assert all(p in self.finished for p in self.dag.predecessors[ready])
            assert ready not in self.ready
            assert ready not in self.started
            self.queue.push(ready)
            self.ready.add(ready)

    @invariant()
    def ready_nodes_have_all_dependencies_finished(self) -> None:
        for node in self.ready:
            assert all(p in self.finished for p in self.dag.predecessors[node])
        assert len(self.queue) == len(self.ready)

    @precondition(lambda self: not self.ready and not self.running)
    @rule()
    def drained(self) -> None:
        # Once nothing is ready or running, every node has run exactly once.
        assert self.finished == set(range(len(self.dag)))
        assert self.started == self.finished


TestReadyQueue = ReadyQueueMachine.TestCase
