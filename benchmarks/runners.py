"""Everything the benchmark runs a DAG with: trioforge's modes and what users would pick instead.

Each runner is a :class:`Runner`; ``runner.prepare(graph, slots, virtual)``
builds the runner's own objects (a ``Workflow``, layer lists, a dask graph
dict...) outside any timed region and returns ``once``, a zero-argument
function that performs one run in a fresh event loop and returns a
:class:`Measurement`. Per-run objects that a run consumes (a
``WorkflowExecutor``, a ``graphlib.TopologicalSorter``) are made inside
``once`` but before the clock starts.

Timed regions (``wall``): the whole ``trio.run`` / ``asyncio.run`` /
``anyio.run`` / ``dask.get`` call, so event-loop start and stop are included
for everybody. ``makespan`` is measured inside the loop, from just before the
runner's first scheduling step to just after its last task ended (for dask it
is the ``get`` call, which is all dask has).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import graphlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing
from workloads import Graph

import trioforge as tf

perf = time.perf_counter


@dataclass(frozen=True)
class Measurement:
    """One run.

    Attributes:
        wall: seconds of the whole call, event loop start and stop included.
        makespan: seconds from the first scheduling step to the last task's end.
        cp_actual: with real sleeps, the critical path recomputed from how long
            each task's sleep really took (timer overshoot included), so that
            ``makespan / cp_actual`` is what the scheduler itself added.
        overshoot: mean seconds a task's sleep lasted beyond what it asked for.
        audit_read: trioforge only: seconds the first read of
            ``executor.audit_log.events`` took after the run (not timed in
            ``wall``; the log may keep raw records and build events lazily).
        phases: user-path runners only: seconds of each phase of the timed region
            (``build_s``, ``compile_s``, ``run_s`` for trioforge, ``prep_s`` and
            ``run_s`` for the peers) and the collector's seconds in it (``*_gc_s``).
    """

    wall: float
    makespan: float
    cp_actual: float | None = None
    overshoot: float | None = None
    audit_read: float | None = None
    phases: dict[str, float] | None = None


def actual_durations(graph: Graph) -> list[float]:
    """The per-graph list that sleeping task bodies fill with their measured sleep time."""
    actual = graph._cache.get("actual")
    if actual is None:
        actual = graph._cache["actual"] = [math.nan] * len(graph)
    return actual  # type: ignore[return-value]


Once = Callable[[], Measurement]


@dataclass(frozen=True)
class Runner:
    """One way to run a DAG.

    Attributes:
        name: short key, used in tables and JSON.
        label: what it is, for the table.
        family: "trioforge", "peer" or "baseline".
        timed: what the timed region contains (for results.md).
        prepare: ``prepare(graph, slots, virtual) -> once``.
        takes_dag: it honours dependencies (baselines only run flat graphs).
        slots_ok: it can limit concurrency.
        virtual_ok: it can run under trio's MockClock.
        concurrent: it overlaps sleeping tasks (False: sequential / dask sync).
    """

    name: str
    label: str
    family: str
    timed: str
    prepare: Callable[[Graph, int | None, bool], Once]
    takes_dag: bool = True
    slots_ok: bool = True
    virtual_ok: bool = False
    concurrent: bool = True

    def display(self, slots: int | None) -> str:
        return self.name if slots is None else f"{self.name}[{slots}]"


# -- task bodies ---------------------------------------------------------------------------


def _body(
    graph: Graph, sleep_fn: Callable[[float], Awaitable[None]]
) -> Callable[[int], Awaitable[None]]:
    """The task body for a peer: a no-op, or a sleep of the task's duration, timed."""
    durations = graph.durations
    if durations is None:

        async def noop(_i: int) -> None:
            return None

        return noop

    actual = actual_durations(graph)

    async def sleep(i: int) -> None:
        t0 = perf()
        await sleep_fn(durations[i])
        actual[i] = perf() - t0

    return sleep


def _trio_body(graph: Graph) -> Callable[[int], Awaitable[None]]:
    return _body(graph, trio.sleep)


def _asyncio_body(graph: Graph) -> Callable[[int], Awaitable[None]]:
    return _body(graph, asyncio.sleep)


def _anyio_body(graph: Graph) -> Callable[[int], Awaitable[None]]:
    import anyio

    return _body(graph, anyio.sleep)


def _run_trio(body: Callable[[], Awaitable[None]], virtual: bool) -> Measurement:
    now = trio.current_time if virtual else perf

    async def main() -> float:
        start = now()
        await body()
        return now() - start

    clock = trio.testing.MockClock(autojump_threshold=0) if virtual else None
    t0 = perf()
    span = trio.run(main, clock=clock)
    return Measurement(perf() - t0, span)


# -- trioforge -----------------------------------------------------------------------------

_WORKFLOWS: dict[int, tuple[Graph, tf.Workflow]] = {}
COMPILE_S: dict[str, float] = {}
"""Seconds the first ``Workflow.validate()`` (a compile) of each graph took, untimed."""


def _noop_task_fn() -> Callable[[tf.TaskContext], Awaitable[None]]:
    async def noop(_ctx: tf.TaskContext) -> None:
        return None

    return noop


def _sleep_task_fn(
    seconds: float, i: int, actual: list[float]
) -> Callable[[tf.TaskContext], Awaitable[None]]:
    async def sleep(_ctx: tf.TaskContext) -> None:
        t0 = perf()
        await trio.sleep(seconds)
        actual[i] = perf() - t0

    return sleep


def build_workflow(graph: Graph) -> tf.Workflow:
    """A trioforge Workflow for the graph, compiled; cached per graph object.

    Tasks carry ``estimate=duration`` so that ``max_concurrency`` runs order
    ready tasks by the real remaining critical path.
    """
    cached = _WORKFLOWS.get(id(graph))
    if cached is not None and cached[0] is graph:
        return cached[1]
    wf = tf.Workflow(graph.name)
    ids = graph.ids
    noop = _noop_task_fn()
    for i, tid in enumerate(ids):
        deps = [ids[d] for d in graph.deps[i]]
        if graph.durations is None:
            wf.add_task(tf.Task(tid, noop, depends_on=deps))
        else:
            d = graph.durations[i]
            fn = _sleep_task_fn(d, i, actual_durations(graph))
            wf.add_task(tf.Task(tid, fn, depends_on=deps, estimate=d))
    t0 = perf()
    wf.validate()
    COMPILE_S[graph.name] = perf() - t0
    _WORKFLOWS[id(graph)] = (graph, wf)
    return wf


def clear_workflow_cache() -> None:
    _WORKFLOWS.clear()


def _trioforge(method: str) -> Callable[[Graph, int | None, bool], Once]:
    def prepare(graph: Graph, slots: int | None, virtual: bool) -> Once:
        wf = build_workflow(graph)
        n = len(graph)

        def once() -> Measurement:
            executor = tf.WorkflowExecutor(wf, max_concurrency=slots)
            run = getattr(executor, method)
            done: list[int] = []

            async def body() -> None:
                result = await run()
                done.append(len(result.completed))

            m = _run_trio(body, virtual)
            if done != [n]:
                raise RuntimeError(f"trioforge {method} completed {done} of {n} tasks")
            t0 = perf()
            events = len(executor.audit_log.events)
            audit_read = perf() - t0
            if events < 2 * n:
                raise RuntimeError(f"trioforge {method}: {events} audit events for {n} tasks")
            return dataclasses.replace(m, audit_read=audit_read)

        return once

    return prepare


# -- hand-written trio ---------------------------------------------------------------------


def _prepare_trio_layers(graph: Graph, slots: int | None, virtual: bool) -> Once:
    layers = graph.layers()
    fn = _trio_body(graph)

    def once() -> Measurement:
        async def body() -> None:
            if slots is None:
                for layer in layers:
                    async with trio.open_nursery() as nursery:
                        for i in layer:
                            nursery.start_soon(fn, i)
                return
            limiter = trio.CapacityLimiter(slots)

            async def limited(i: int) -> None:
                async with limiter:
                    await fn(i)

            for layer in layers:
                async with trio.open_nursery() as nursery:
                    for i in layer:
                        nursery.start_soon(limited, i)

        return _run_trio(body, virtual)

    return once


def _prepare_trio_dataflow(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """The least a dependency-driven trio scheduler can do: counters and one nursery."""
    deps = graph.deps
    succ = graph.successors()
    roots = [i for i, d in enumerate(deps) if not d]
    fn = _trio_body(graph)

    def once() -> Measurement:
        remaining = [len(d) for d in deps]

        async def body() -> None:
            async with trio.open_nursery() as nursery:
                limiter = trio.CapacityLimiter(slots) if slots is not None else None

                async def run(node: int) -> None:
                    if limiter is None:
                        await fn(node)
                    else:
                        async with limiter:
                            await fn(node)
                    for s in succ[node]:
                        remaining[s] -= 1
                        if remaining[s] == 0:
                            nursery.start_soon(run, s)

                for node in roots:
                    nursery.start_soon(run, node)

        m = _run_trio(body, virtual)
        if any(remaining):
            raise RuntimeError("trio.dataflow peer finished with tasks left")
        return m

    return once


def _flat_only(graph: Graph) -> None:
    if graph.edges:
        raise ValueError("baselines run only graphs without dependencies")


def _prepare_bare_nursery(graph: Graph, slots: int | None, virtual: bool) -> Once:
    _flat_only(graph)
    fn = _trio_body(graph)
    n = len(graph)

    def once() -> Measurement:
        async def body() -> None:
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(fn, i)

        return _run_trio(body, virtual)

    return once


PER_TASK_TIMEOUT = 3600.0


def _prepare_nursery_move_on_after(graph: Graph, slots: int | None, virtual: bool) -> Once:
    _flat_only(graph)
    fn = _trio_body(graph)
    n = len(graph)

    async def scoped(i: int) -> None:
        with trio.move_on_after(PER_TASK_TIMEOUT):
            await fn(i)

    def once() -> Measurement:
        async def body() -> None:
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(scoped, i)

        return _run_trio(body, virtual)

    return once


# -- asyncio -------------------------------------------------------------------------------


def _run_asyncio(body: Callable[[], Awaitable[None]]) -> Measurement:
    async def main() -> float:
        start = perf()
        await body()
        return perf() - start

    t0 = perf()
    span = asyncio.run(main())
    return Measurement(perf() - t0, span)


def _prepare_asyncio_layers(graph: Graph, slots: int | None, virtual: bool) -> Once:
    layers = graph.layers()
    fn = _asyncio_body(graph)

    def once() -> Measurement:
        async def body() -> None:
            if slots is None:
                for layer in layers:
                    async with asyncio.TaskGroup() as tg:
                        for i in layer:
                            tg.create_task(fn(i))
                return
            sem = asyncio.Semaphore(slots)

            async def limited(i: int) -> None:
                async with sem:
                    await fn(i)

            for layer in layers:
                async with asyncio.TaskGroup() as tg:
                    for i in layer:
                        tg.create_task(limited(i))

        return _run_asyncio(body)

    return once


def _prepare_asyncio_graphlib(graph: Graph, slots: int | None, virtual: bool) -> Once:
    deps = graph.deps
    fn = _asyncio_body(graph)

    def once() -> Measurement:
        sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
        for i, d in enumerate(deps):
            sorter.add(i, *d)
        sorter.prepare()
        sem = asyncio.Semaphore(slots) if slots is not None else None

        async def body() -> None:
            async with asyncio.TaskGroup() as tg:

                def launch() -> None:
                    for node in sorter.get_ready():
                        tg.create_task(run(node))

                async def run(node: int) -> None:
                    if sem is None:
                        await fn(node)
                    else:
                        async with sem:
                            await fn(node)
                    sorter.done(node)
                    launch()

                launch()
            if sorter.is_active():
                raise RuntimeError("graphlib peer finished with tasks left")

        return _run_asyncio(body)

    return once


# -- anyio ---------------------------------------------------------------------------------


def _prepare_anyio_layers(graph: Graph, slots: int | None, virtual: bool) -> Once:
    import anyio

    layers = graph.layers()
    fn = _anyio_body(graph)

    def once() -> Measurement:
        async def main() -> float:
            start = perf()
            if slots is None:
                for layer in layers:
                    async with anyio.create_task_group() as tg:
                        for i in layer:
                            tg.start_soon(fn, i)
            else:
                limiter = anyio.CapacityLimiter(slots)

                async def limited(i: int) -> None:
                    async with limiter:
                        await fn(i)

                for layer in layers:
                    async with anyio.create_task_group() as tg:
                        for i in layer:
                            tg.start_soon(limited, i)
            return perf() - start

        t0 = perf()
        span = anyio.run(main, backend="trio")
        return Measurement(perf() - t0, span)

    return once


# -- dask ----------------------------------------------------------------------------------


def _dask_noop(*_args: Any) -> None:
    return None


def _dask_sleep(actual: list[float], i: int, seconds: float, *_args: Any) -> None:
    t0 = perf()
    time.sleep(seconds)
    actual[i] = perf() - t0


def _dask_graph(graph: Graph) -> dict[str, tuple[Any, ...]]:
    ids = graph.ids
    dsk: dict[str, tuple[Any, ...]] = {}
    for i, tid in enumerate(ids):
        dep_keys = [ids[d] for d in graph.deps[i]]
        if graph.durations is None:
            dsk[tid] = (_dask_noop, *dep_keys)
        else:
            body = functools.partial(_dask_sleep, actual_durations(graph), i, graph.durations[i])
            dsk[tid] = (body, *dep_keys)
    return dsk


def _prepare_dask_sync(graph: Graph, slots: int | None, virtual: bool) -> Once:
    import dask

    dsk = _dask_graph(graph)
    keys = list(graph.ids)

    def once() -> Measurement:
        t0 = perf()
        dask.get(dsk, keys)
        wall = perf() - t0
        return Measurement(wall, wall)

    return once


def _prepare_dask_threaded(graph: Graph, slots: int | None, virtual: bool) -> Once:
    import dask.threaded

    dsk = _dask_graph(graph)
    keys = list(graph.ids)
    if slots is not None:
        workers: int | None = slots
    elif graph.durations is not None:
        workers = len(graph)  # sleeping tasks: a thread per task is "unbounded"
    else:
        workers = None  # no-op tasks: dask's default pool (one thread per core)

    def once() -> Measurement:
        t0 = perf()
        dask.threaded.get(dsk, keys, num_workers=workers)
        wall = perf() - t0
        return Measurement(wall, wall)

    return once


# -- the registry --------------------------------------------------------------------------

_TF_TIMED = (
    "`trio.run` of `WorkflowExecutor(wf, max_concurrency=...).{m}()`: the run's "
    "bookkeeping, audit log (in memory), every task; the `Workflow` is built and compiled "
    "beforehand, the executor is made per run before the clock starts"
)

RUNNERS: list[Runner] = [
    Runner(
        "tf.sequential",
        "trioforge WorkflowExecutor.execute",
        "trioforge",
        _TF_TIMED.format(m="execute"),
        _trioforge("execute"),
        slots_ok=False,
        virtual_ok=True,
        concurrent=False,
    ),
    Runner(
        "tf.parallel",
        "trioforge WorkflowExecutor.execute_parallel",
        "trioforge",
        _TF_TIMED.format(m="execute_parallel"),
        _trioforge("execute_parallel"),
        virtual_ok=True,
    ),
    Runner(
        "tf.dataflow",
        "trioforge WorkflowExecutor.execute_dataflow",
        "trioforge",
        _TF_TIMED.format(m="execute_dataflow"),
        _trioforge("execute_dataflow"),
        virtual_ok=True,
    ),
    Runner(
        "trio.layers",
        "hand-written trio: a nursery per layer",
        "peer",
        "`trio.run`: a nursery per layer, `start_soon` per task (layers precomputed)",
        _prepare_trio_layers,
    ),
    Runner(
        "trio.dataflow",
        "hand-written trio, dependency-driven (dependency counters, one nursery)",
        "baseline",
        "`trio.run`: one nursery; each finished task decrements its dependents' counters and "
        "`start_soon`s those that reach zero (a `CapacityLimiter`, FIFO, when slots are "
        "limited)",
        _prepare_trio_dataflow,
    ),
    Runner(
        "asyncio.layers",
        "asyncio: a TaskGroup per layer",
        "peer",
        "`asyncio.run`: a `TaskGroup` per layer, `create_task` per task (layers precomputed)",
        _prepare_asyncio_layers,
    ),
    Runner(
        "asyncio.graphlib",
        "asyncio + graphlib.TopologicalSorter (dependency-driven)",
        "peer",
        "`asyncio.run`: one `TaskGroup`; each finished task calls `sorter.done` and starts "
        "whatever `get_ready()` returns (the sorter is built and `prepare()`d per run before "
        "the clock starts)",
        _prepare_asyncio_graphlib,
    ),
    Runner(
        "anyio.layers",
        "anyio task group per layer (trio backend)",
        "peer",
        "`anyio.run(..., backend='trio')`: a task group per layer (layers precomputed)",
        _prepare_anyio_layers,
    ),
    Runner(
        "dask.sync",
        "Dask synchronous scheduler (dask.get)",
        "peer",
        "`dask.get(dsk, keys)` (the graph dict is built beforehand; dask orders it per call)",
        _prepare_dask_sync,
        slots_ok=False,
        concurrent=False,
    ),
    Runner(
        "dask.threaded",
        "Dask threaded scheduler",
        "peer",
        "`dask.threaded.get(dsk, keys, num_workers=...)`: default pool for no-ops, one "
        "thread per task for unbounded sleeps, `slots` threads when limited",
        _prepare_dask_threaded,
    ),
    Runner(
        "trio.bare",
        "bare trio nursery (flat, start_soon each task)",
        "baseline",
        "`trio.run`: one nursery, `start_soon` per task",
        _prepare_bare_nursery,
        takes_dag=False,
        slots_ok=False,
    ),
    Runner(
        "trio.move_on_after",
        "trio nursery + move_on_after per task",
        "baseline",
        f"`trio.run`: one nursery, each task inside `trio.move_on_after({PER_TASK_TIMEOUT:g})`",
        _prepare_nursery_move_on_after,
        takes_dag=False,
        slots_ok=False,
    ),
]

BY_NAME = {r.name: r for r in RUNNERS}
