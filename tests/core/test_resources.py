"""Named resource pools: the pure pop-that-fits, the checks before a run, and runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge._core import Pools, ResourceError, pools_for
from trioforge._core._ready import ReadyQueue, demand_of
from trioforge.store import SQLiteRunStore

# --- the pure part ---------------------------------------------------------


def queue_of(priorities: list[float]) -> ReadyQueue:
    """A queue of independent nodes, all pushed."""
    n = len(priorities)
    queue = ReadyQueue([[]] * n, [[]] * n, priorities)
    for node in range(n):
        queue.push(node)
    return queue


def test_pop_fitting_returns_the_best_that_fits_and_keeps_the_rest_in_order() -> None:
    """pop_fitting skips nodes that do not fit, and they stay ready in priority order."""
    queue = queue_of([9.0, 8.0, 7.0, 6.0])
    assert queue.pop_fitting(lambda node: node >= 2) == 2
    assert len(queue) == 3
    assert [queue.pop() for _ in range(3)] == [0, 1, 3]


def test_pop_fitting_none_when_nothing_fits() -> None:
    """pop_fitting returns None when no ready node fits, and removes nothing."""
    queue = queue_of([1.0, 2.0])
    assert None is queue.pop_fitting(lambda _node: False)
    assert [queue.pop(), queue.pop()] == [1, 0]
    assert None is queue.pop_fitting(lambda _node: True)


def test_pop_order_with_pools_exact() -> None:
    """A scheduler loop over pools: exact start order as units are taken and given back."""
    # node: priority, demand
    demands = [
        (("gpu", 1),),  # 0: p 10
        (("gpu", 1),),  # 1: p 9 (waits: one gpu)
        (),  # 2: p 8, no pools
        (("cpu", 2), ("gpu", 1)),  # 3: p 7
        (("cpu", 1),),  # 4: p 6
    ]
    queue = queue_of([10.0, 9.0, 8.0, 7.0, 6.0])
    pools = Pools({"gpu": 1, "cpu": 2})

    def start_all() -> list[int]:
        started = []
        while (node := queue.pop_fitting(lambda n: pools.fits(demands[n]))) is not None:
            pools.take(demands[node])
            started.append(node)
        return started

    assert start_all() == [0, 2, 4]
    assert pools.in_use == {"gpu": 1, "cpu": 1}
    pools.give(demands[0])
    assert start_all() == [1]  # 3 needs 2 cpu: still one in use by 4
    pools.give(demands[4])
    assert start_all() == []  # 3 also needs the gpu that 1 holds
    pools.give(demands[1])
    assert start_all() == [3]
    pools.give(demands[2])
    pools.give(demands[3])
    assert pools.idle()


def test_demand_is_sorted_and_checked() -> None:
    """A resources mapping becomes sorted pairs; bad units or names are ResourceErrors."""
    assert demand_of("t", {"b": 2, "a": 1}) == (("a", 1), ("b", 2))
    assert demand_of("t", None) == ()
    for bad in ({"a": 0}, {"a": True}, {"a": 1.5}, {"": 1}):
        with pytest.raises(ResourceError, match="task 't'"):
            demand_of("t", bad)  # type: ignore[arg-type]


def test_pools_for_checks_unknown_pool_and_capacity() -> None:
    """An unknown pool or a demand above capacity names the task and the pool."""
    with pytest.raises(ResourceError, match="task 'b' needs resource pool 'gpu'") as info:
        pools_for({"docker": 2}, [("a", {"docker": 1}), ("b", {"gpu": 1})])
    assert (info.value.task_id, info.value.pool) == ("b", "gpu")
    with pytest.raises(ResourceError, match="task 'a' needs 3 units of resource pool 'docker'"):
        pools_for({"docker": 2}, [("a", {"docker": 3})])
    assert None is pools_for({"docker": 2}, [("a", None), ("b", {})])


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True, "2"])
def test_bad_pool_definition(capacity: Any) -> None:
    """A pool whose capacity is not a whole number >= 1 is refused by the executor."""
    workflow = tf.Workflow("w")
    workflow.add_task(tf.Task("a", _sleeper(0)))
    with pytest.raises(ValueError, match="resource pool 'p'"):
        tf.WorkflowExecutor(workflow, resources={"p": capacity})


# --- runs -----------------------------------------------------------------


class Meter:
    """Counts how many units of each pool running tasks hold, and the peak."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.starts: dict[str, float] = {}

    def task(
        self, seconds: float, resources: dict[str, int], *, fail: bool = False
    ) -> Callable[[tf.TaskContext], Awaitable[str]]:
        async def fn(ctx: tf.TaskContext) -> str:
            self.starts[ctx.task_id] = trio.current_time()
            self.now.update(resources)
            for pool in resources:
                self.peak[pool] = max(self.peak[pool], self.now[pool])
            try:
                await trio.sleep(seconds)
                if fail:
                    raise RuntimeError(f"{ctx.task_id} failed")
            finally:
                self.now.subtract(resources)
            return ctx.task_id

        return fn


def _sleeper(seconds: float) -> Callable[[tf.TaskContext], Awaitable[None]]:
    async def fn(_ctx: tf.TaskContext) -> None:
        await trio.sleep(seconds)

    return fn


def build(meter: Meter, spec: dict[str, tuple[float, dict[str, int]]], **kw: Any) -> tf.Workflow:
    workflow = tf.Workflow("pools")
    for task_id, (seconds, resources) in spec.items():
        fail = task_id.startswith("bad")
        workflow.add_task(
            tf.Task(task_id, meter.task(seconds, resources, fail=fail), resources=resources, **kw)
        )
    return workflow


@pytest.mark.parametrize("mode", ["execute_dataflow", "execute_parallel", "execute"])
async def test_pool_limits_concurrency_in_every_mode(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Four 1 s tasks on a pool of 2 take 2 s (1 at a time: 4 s sequentially); peak 2."""
    meter = Meter()
    workflow = build(meter, {f"t{i}": (1.0, {"docker": 1}) for i in range(4)})
    executor = tf.WorkflowExecutor(workflow, resources={"docker": 2})
    start = trio.current_time()
    result = await getattr(executor, mode)()
    expected = 4.0 if mode == "execute" else 2.0
    assert (expected, 4) == (trio.current_time() - start, len(result.completed))
    assert (1 if mode == "execute" else 2) == meter.peak["docker"]


async def test_priority_holds_among_tasks_that_fit(autojump_clock: trio.testing.MockClock) -> None:
    """With a gpu pool of 1, the gpu task with the longest path below it starts first."""
    meter = Meter()
    workflow = tf.Workflow("prio")
    workflow.add_task(tf.Task("short", meter.task(1, {"gpu": 1}), resources={"gpu": 1}))
    workflow.add_task(tf.Task("long", meter.task(1, {"gpu": 1}), resources={"gpu": 1}))
    workflow.add_task(tf.Task("tail", meter.task(5, {}), depends_on=["long"], estimate=5))
    workflow.add_task(tf.Task("free", meter.task(1, {})))
    executor = tf.WorkflowExecutor(workflow, resources={"gpu": 1})
    await executor.execute_dataflow()
    assert meter.starts == {"long": 0.0, "free": 0.0, "short": 1.0, "tail": 1.0}


async def test_big_demand_waits_for_room(autojump_clock: trio.testing.MockClock) -> None:
    """A task taking both units starts only when the pool is empty, then alone."""
    meter = Meter()
    spec = {"a": (1.0, {"p": 1}), "both": (1.0, {"p": 2}), "b": (2.0, {"p": 1})}
    executor = tf.WorkflowExecutor(build(meter, spec), resources={"p": 2})
    await executor.execute_dataflow()
    assert meter.starts["both"] == 2.0
    assert meter.peak["p"] == 2


async def test_no_slot_leaks_after_failures_and_timeouts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failed and timed-out tasks give their units back: every other task still runs."""
    meter = Meter()
    spec: dict[str, tuple[float, dict[str, int]]] = {
        "bad1": (0.5, {"p": 1}),
        "slow": (10.0, {"p": 1}),  # times out at 1 s
        **{f"ok{i}": (0.5, {"p": 1}) for i in range(4)},
    }
    workflow = build(meter, spec)
    executor = tf.WorkflowExecutor(
        workflow,
        resources={"p": 1},
        task_timeout=1.0,
        failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT,
    )
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert {"bad1", "slow"} == set(info.value.failures)
    assert {f"ok{i}" for i in range(4)} == set(info.value.completed)
    assert meter.peak["p"] == 1


async def test_cancel_mid_run_leaves_nothing_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling a run whose tasks hold and wait for units ends it, nothing left running."""
    meter = Meter()
    executor = tf.WorkflowExecutor(
        build(meter, {f"t{i}": (5.0, {"p": 1}) for i in range(3)}), resources={"p": 1}
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_later, executor)
        with pytest.raises(tf.WorkflowCancelledError):
            await executor.execute_dataflow()
    assert (meter.now["p"], meter.peak["p"], len(meter.starts)) == (0, 1, 1)


async def _cancel_later(executor: tf.WorkflowExecutor) -> None:
    await trio.sleep(1)
    executor.cancel("test")


async def test_fail_fast_cancels_pool_holders(autojump_clock: trio.testing.MockClock) -> None:
    """Fail-fast: a failure cancels the other pool's holder; the waiting task never starts."""
    meter = Meter()
    spec = {"bad": (1.0, {"a": 1}), "long": (9.0, {"b": 1}), "later": (1.0, {"a": 1})}
    executor = tf.WorkflowExecutor(build(meter, spec), resources={"a": 1, "b": 1})
    with pytest.raises(tf.TaskFailedError):
        await executor.execute_dataflow()
    assert "later" not in meter.starts
    assert sum(meter.now.values()) == 0


async def test_unknown_pool_fails_before_anything_runs() -> None:
    """A task naming an unknown pool: a ResourceError naming it, early and at the run."""
    meter = Meter()
    with pytest.raises(ValueError, match="task 'b' needs resource pool 'gpu'"):
        tf.WorkflowExecutor(
            build(meter, {"a": (0.0, {}), "b": (0.0, {"gpu": 1})}), resources={"docker": 1}
        )
    workflow = build(meter, {"a": (0.0, {})})
    executor = tf.WorkflowExecutor(workflow, resources={"docker": 1})
    workflow.add_task(tf.Task("late", meter.task(0, {"docker": 2}), resources={"docker": 2}))
    with pytest.raises(tf.WorkflowError, match="task 'late' needs 2 units"):
        await executor.execute_dataflow()
    with pytest.raises(tf.WorkflowError, match="task 'late'"):
        await executor.execute()
    assert meter.starts == {}


def test_task_resources_property_and_validation() -> None:
    """Task(resources=...) reads back as a dict and refuses bad units, naming the task."""
    task = tf.Task("t", _sleeper(0), resources={"docker": 1})
    assert task.resources == {"docker": 1}
    assert tf.Task("u", _sleeper(0)).resources == {}
    with pytest.raises(ValueError, match="task 'v': pool 'docker' units"):
        tf.Task("v", _sleeper(0), resources={"docker": 0})
    with pytest.raises(TypeError, match="resources must be a mapping"):
        tf.Task("w", _sleeper(0), resources=["docker"])  # type: ignore[arg-type]


async def test_resume_with_pools_runs_only_what_did_not_complete(tmp_path: Path) -> None:
    """Resume with pools: completed tasks are restored; the failed one and its dependent run."""
    meter = Meter()
    broken = {"flag": True}

    async def flaky(ctx: tf.TaskContext) -> str:
        meter.starts[f"{ctx.task_id}#{ctx.attempt}"] = trio.current_time()
        if broken["flag"]:
            raise RuntimeError("broken")
        return ctx.task_id

    workflow = tf.Workflow("resumable")
    workflow.add_task(tf.Task("a", meter.task(0, {"p": 1}), resources={"p": 1}))
    workflow.add_task(tf.Task("b", flaky, resources={"p": 1}))
    workflow.add_task(tf.Task("c", meter.task(0, {"p": 1}), depends_on=["b"], resources={"p": 1}))
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        executor = tf.WorkflowExecutor(
            workflow,
            resources={"p": 1},
            store=store,
            failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT,
        )
        with pytest.raises(tf.TaskFailedError):
            await executor.execute_dataflow()
        assert sorted(meter.starts) == ["a", "b#1"]
        broken["flag"] = False
        run_id = executor.audit_log.events[0].workflow_id
        result = await executor.resume(run_id)
    assert sorted(meter.starts) == ["a", "b#1", "b#2", "c"]
    assert sorted(result.completed) == ["a", "b", "c"]


def test_a_big_demand_overtaken_once_then_reserves_its_units() -> None:
    """With fits_beside a big demand is overtaken once, then keeps its units; without, it waits."""
    # node 0: the big one (2 units, highest priority); nodes 1-4: small ones (1 unit each).
    demands: list[tuple[tuple[str, int], ...]] = [(("p", 2),), *[(("p", 1),)] * 4]
    before = -1  # a task from before the queue, holding one unit

    def run(*, reserve: bool, ends: list[int]) -> list[list[int]]:
        """Start what fits, then after each task of ``ends`` ends: what started each time."""
        queue = queue_of([10.0, 5.0, 4.0, 3.0, 2.0])
        pools = Pools({"p": 2})
        pools.take((("p", 1),))

        def beside(first: int, node: int) -> bool:
            return pools.fits_beside(demands[first], demands[node])

        def start_all() -> list[int]:
            started = []
            fits = (lambda n: pools.fits(demands[n]), beside if reserve else None)
            while (node := queue.pop_fitting(*fits)) is not None:
                pools.take(demands[node])
                started.append(node)
            return started

        waves = [start_all()]
        for node in ends:
            pools.give((("p", 1),) if node == before else demands[node])
            waves.append(start_all())
        return waves

    assert run(reserve=True, ends=[before, 1, 0, 2, 3]) == [[1], [], [0], [2, 3], [4], []]
    assert run(reserve=False, ends=[before, 1, 2, 3, 4]) == [[1], [2], [3], [4], [], [0]]


async def test_a_big_demand_is_not_overtaken_by_a_stream_of_small_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two chains of 1-unit tasks on a pool of 2 overtake a 2-unit task once, not till they end."""
    meter = Meter()
    workflow = tf.Workflow("stream")

    def add(
        task_id: str, seconds: float, pools: dict[str, int], after: list[str], rest: float
    ) -> None:
        task = meter.task(seconds, pools)
        workflow.add_task(
            tf.Task(task_id, task, resources=pools, depends_on=after, estimate=seconds + rest)
        )

    add("gate", 0.25, {}, [], 6.0)  # the big one is ready at 0.25, with the most work below
    add("big", 1.0, {"p": 2}, ["gate"], 5.0)
    add("after", 5.0, {}, ["big"], 0.0)
    add("holder", 0.5, {"p": 1}, [], 0.0)
    add("x", 0.5, {}, [], 4.0)  # the d chain starts at 0.5, the c chain at 0
    for chain, first in (("c", []), ("d", ["x"])):
        for i in range(1, 5):
            add(f"{chain}{i}", 1.0, {"p": 1}, first if i == 1 else [f"{chain}{i - 1}"], 4.0 - i)
    await tf.WorkflowExecutor(workflow, resources={"p": 2}).execute_dataflow()
    # d1 overtakes big at 0.5 (c1 holds a unit); then big keeps its units: when d1 ends at 1.5
    # it starts, although c2 (ready at 1.0) would fit. Without the reservation: 4.5.
    assert (meter.starts["d1"], meter.starts["big"], meter.peak["p"]) == (0.5, 1.5, 2)


def test_evolve_keeps_a_tasks_resources() -> None:
    """attrs.evolve on a Task with resources keeps them (the stored pairs convert back)."""

    async def body(ctx: tf.TaskContext) -> None:
        return None

    task = tf.Task("a", body, resources={"docker": 2})
    expected = {"docker": 2}
    assert expected == attrs.evolve(task, id="b").resources
