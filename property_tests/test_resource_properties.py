"""Resource pools: the ready-queue machine with pools, and random runs in virtual time."""

from __future__ import annotations

from collections import Counter

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import trioforge as tf
from trioforge._core._dag import compile_dag
from trioforge._core._ready import Demand, Pools, ReadyQueue
from trioforge.testing import DagSpec, dag_specs

POOLS = {"a": 1, "b": 2, "c": 3}


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    """A demand on up to all three pools, within capacity; shrinks toward no demand."""
    names = draw(st.lists(st.sampled_from(sorted(POOLS)), unique=True, max_size=3))
    return tuple(sorted((n, draw(st.integers(1, POOLS[n]))) for n in names))


class PooledQueueMachine(RuleBasedStateMachine):
    """Drive the ready queue and pools like the scheduler; every ending gives units back."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: set[int] = set()
        self.running: list[int] = []
        self.finished: set[int] = set()
        self.failed: set[int] = set()
        # The model of reservations: ready nodes passed over once by a reserving pop.
        self.overtaken: set[int] = set()

    @initialize(spec=dag_specs(max_tasks=30, max_deps=3), data=st.data())
    def build(self, spec: DagSpec, data: st.DataObject) -> None:
        self.dag = compile_dag("m", spec.ids, list(spec.dependencies.values()))
        self.priorities = self.dag.remaining_costs([t.duration for t in spec.tasks])
        self.demands = [data.draw(demands()) for _ in spec.ids]
        self.queue = ReadyQueue(self.dag.predecessors, self.dag.successors, self.priorities)
        self.pools = Pools(POOLS)
        for node in self.queue.roots():
            self.queue.push(node)
            self.ready.add(node)

    def fits(self, node: int) -> bool:
        return self.pools.fits(self.demands[node])

    @rule()
    def start(self) -> None:
        node = self.queue.pop_fitting(self.fits)
        fitting = [n for n in self.ready if self.fits(n)]
        if node is None:
            assert fitting == []
            return
        best = max(self.priorities[n] for n in fitting)
        assert (best, min(n for n in fitting if self.priorities[n] == best)) == (
            self.priorities[node],
            node,
        )
        self.overtaken.discard(node)
        self.pools.take(self.demands[node])
        self.ready.remove(node)
        self.running.append(node)

    def beside(self, first: int, node: int) -> bool:
        return self.pools.fits_beside(self.demands[first], self.demands[node])

    @rule()
    def start_reserving(self) -> None:
        """As the pooled scheduler pops: the first node passed over is overtaken once, then kept.

        Model: the best ready node ``first`` starts if it fits. If not, and it was
        never overtaken, the best node that fits starts instead and ``first`` is
        overtaken; if it was, only a node that fits beside ``first``'s units
        (set aside for it) may start, so ``first`` is not starved.
        """
        if not self.ready:
            assert self.queue.pop_fitting(self.fits, self.beside) is None
            return
        order = sorted(self.ready, key=lambda n: (-self.priorities[n], n))
        first = order[0]
        expected: int | None
        if self.fits(first):
            expected = first
        else:
            if first in self.overtaken:
                candidates = [n for n in order[1:] if self.beside(first, n)]
            else:
                candidates = [n for n in order[1:] if self.fits(n)]
            expected = candidates[0] if candidates else None
            if expected is not None:
                self.overtaken.add(first)
        node = self.queue.pop_fitting(self.fits, self.beside)
        assert node == expected
        if node is None:
            return
        self.overtaken.discard(node)
        self.pools.take(self.demands[node])
        self.ready.remove(node)
        self.running.append(node)

    @precondition(lambda self: len(self.running) > 0)
    @rule(data=st.data(), how=st.sampled_from(["success", "failure", "timeout", "cancel"]))
    def end(self, data: st.DataObject, how: str) -> None:
        node = data.draw(st.sampled_from(self.running))
        self.running.remove(node)
        self.pools.give(self.demands[node])
        if how != "success":
            self.failed.add(node)
            for skipped in self.queue.skip_dependents(node):
                self.failed.add(skipped)
            return
        self.finished.add(node)
        for ready in self.queue.finish(node):
            if not self.queue.is_skipped(ready):
                self.queue.push(ready)
                self.ready.add(ready)

    @invariant()
    def units_in_use_are_those_of_running_tasks(self) -> None:
        expected: Counter[str] = Counter()
        for node in self.running:
            for pool, units in self.demands[node]:
                expected[pool] += units
        assert {p: expected[p] for p in POOLS} == self.pools.in_use
        assert all(self.pools.in_use[p] <= POOLS[p] for p in POOLS)

    @invariant()
    def only_ready_nodes_are_overtaken(self) -> None:
        assert self.overtaken <= self.ready

    @invariant()
    def something_ready_can_start_when_nothing_runs(self) -> None:
        if not self.running and self.ready:
            # With every unit free, each ready node fits: nothing waits forever.
            assert self.pools.idle()
            assert all(self.fits(n) for n in self.ready)


TestPooledQueue = PooledQueueMachine.TestCase


@given(
    spec=dag_specs(max_tasks=25, max_deps=3),
    data=st.data(),
    limit=st.none() | st.integers(1, 4),
    layers=st.booleans(),
)
def test_runs_never_exceed_a_pool_and_every_task_ends(
    spec: DagSpec, data: st.DataObject, limit: int | None, layers: bool
) -> None:
    """Random DAG, demands, failures and timeouts: pools never overfull, no unit leaks."""
    wanted = [data.draw(demands()) for _ in spec.ids]
    failing = {t.id for t in spec.tasks if data.draw(st.integers(0, 5)) == 0}
    slow = {t.id for t in spec.tasks if data.draw(st.integers(0, 5)) == 0}
    now: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    ran: set[str] = set()

    def make(task_id: str, demand: Demand, duration: float) -> tf.Task:
        async def fn(_ctx: tf.TaskContext) -> None:
            ran.add(task_id)
            for pool, units in demand:
                now[pool] += units
                peak[pool] = max(peak[pool], now[pool])
            try:
                await trio.sleep(100 if task_id in slow else duration)
                if task_id in failing:
                    raise RuntimeError(task_id)
            finally:
                for pool, units in demand:
                    now[pool] -= units

        return tf.Task(task_id, fn, depends_on=spec.dependencies[task_id], resources=dict(demand))

    workflow = tf.Workflow("prop")
    for task, demand in zip(spec.tasks, wanted, strict=True):
        workflow.add_task(make(task.id, demand, task.duration))
    executor = tf.WorkflowExecutor(
        workflow,
        resources=POOLS,
        max_concurrency=limit,
        task_timeout=50,
        failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT,
    )
    run = executor.execute_parallel if layers else executor.execute_dataflow
    try:
        result = trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    except tf.TaskFailedError as exc:
        done, failed = set(exc.completed), set(exc.failures)
        assert failed <= failing | slow
        ended = done | failed | set(exc.skipped)
    else:
        done, failed = set(result.completed), set()
        ended = done
    assert set(spec.ids) == ended  # a leaked unit would leave tasks never started
    assert all(peak[p] <= POOLS[p] for p in POOLS)
    assert sum(now.values()) == 0
    assert ran == done | failed
