"""The user's path: each runner builds everything it needs inside the timed region.

This is how users run a workflow: they build it (each task its own coroutine
function, here a closure made in a loop, so a new function object per task),
run it once, with the garbage collector on, and read the result. Every runner
here pays the same way: the timed region starts before the first object of the
run is made (``tf.Workflow(...)`` for trioforge; the task closures, dependency
counters, layer nurseries, ``graphlib.TopologicalSorter`` or Dask graph dict
for the peers) and ends when the result is back.

Only the workload's plain description (``Graph``: ids, dependency indices,
layers) exists before the clock starts: it stands for the user's source code.

``measure`` (in ``run.py``) calls ``once()``; each call is one fresh event loop
(``trio.run`` / ``asyncio.run`` / ``anyio.run``) or one ``dask.get`` call.
:data:`GC` records the time spent in garbage collections (``gc.callbacks``)
while a run is measured, the same for every runner.
"""

from __future__ import annotations

import asyncio
import gc
import graphlib
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import trio
import trio.testing
from runners import Measurement, Once, Runner, actual_durations
from workloads import Graph

import trioforge as tf

perf = time.perf_counter

Body = Callable[[], Coroutine[Any, Any, None]]
"""A peer's task: a coroutine function of no arguments."""


class GCTimer:
    """Time spent in the collector, via ``gc.callbacks`` (installed while a run is measured).

    Attributes:
        total: seconds spent in collections since the last :meth:`reset`.
        counts: collections per generation since the last :meth:`reset`.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.counts = [0, 0, 0]
        self._started = 0.0

    def reset(self) -> None:
        self.total = 0.0
        self.counts = [0, 0, 0]

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = perf()
        else:
            self.total += perf() - self._started
            self.counts[info["generation"]] += 1

    def __enter__(self) -> GCTimer:
        self.reset()
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


GC = GCTimer()


def _phases(marks: list[tuple[str, float, float]]) -> dict[str, float]:
    """``[(name, time, gc_total), ...]`` -> seconds and GC seconds of each phase between marks."""
    out: dict[str, float] = {}
    for (_, t_a, g_a), (name, t_b, g_b) in itertools.pairwise(marks):
        out[f"{name}_s"] = t_b - t_a
        out[f"{name}_gc_s"] = g_b - g_a
    return out


def _run_trio(main: Callable[[], Awaitable[dict[str, float]]], virtual: bool) -> Measurement:
    clock = trio.testing.MockClock(autojump_threshold=0) if virtual else None
    t0 = perf()
    phases = trio.run(main, clock=clock)
    wall = perf() - t0
    return Measurement(wall, phases.pop("makespan"), phases=phases)


# -- trioforge -----------------------------------------------------------------------------


def _tf_sleeper(
    seconds: float, i: int, actual: list[float]
) -> Callable[[tf.TaskContext], Awaitable[None]]:
    async def task(_ctx: tf.TaskContext) -> None:
        t0 = perf()
        await trio.sleep(seconds)
        actual[i] = perf() - t0

    return task


def build_workflow(graph: Graph) -> tf.Workflow:
    """The workflow as a user writes it: a new coroutine function per task (a closure)."""
    ids = graph.ids
    deps = graph.deps
    durations = graph.durations
    wf = tf.Workflow(graph.name)
    add = wf.add_task
    if durations is None:
        for i, tid in enumerate(ids):

            async def noop(_ctx: tf.TaskContext) -> None:
                return None

            if deps[i]:
                add(tf.Task(tid, noop, depends_on=[ids[d] for d in deps[i]]))
            else:
                add(tf.Task(tid, noop))
    else:
        actual = actual_durations(graph)
        for i, tid in enumerate(ids):
            d = durations[i]
            fn = _tf_sleeper(d, i, actual)
            add(tf.Task(tid, fn, depends_on=[ids[p] for p in deps[i]], estimate=d))
    return wf


def _trioforge(method: str) -> Callable[[Graph, int | None, bool], Once]:
    def prepare(graph: Graph, slots: int | None, virtual: bool) -> Once:
        n = len(graph)

        def once() -> Measurement:
            now = trio.current_time if virtual else perf

            async def main() -> dict[str, float]:
                marks = [("start", now(), GC.total)]
                wf = build_workflow(graph)
                marks.append(("build", now(), GC.total))
                wf.validate()
                marks.append(("compile", now(), GC.total))
                executor = tf.WorkflowExecutor(wf, max_concurrency=slots)
                result = await getattr(executor, method)()
                marks.append(("run", now(), GC.total))
                if len(result.completed) != n:
                    raise RuntimeError(f"{method} completed {len(result.completed)} of {n}")
                if len(executor.audit_log) < 2 * n:
                    raise RuntimeError(f"{method}: {len(executor.audit_log)} audit events")
                return {"makespan": marks[-1][1] - marks[0][1], **_phases(marks)}

            return _run_trio(main, virtual)

        return once

    return prepare


# -- trio peers ----------------------------------------------------------------------------


def _trio_closures(graph: Graph) -> list[Body]:
    """One new coroutine function per task: a no-op, or a timed sleep."""
    durations = graph.durations
    if durations is None:
        fns = []
        for _ in range(len(graph)):

            async def noop() -> None:
                return None

            fns.append(noop)
        return fns
    actual = actual_durations(graph)

    def make(i: int, seconds: float) -> Body:
        async def task() -> None:
            t0 = perf()
            await trio.sleep(seconds)
            actual[i] = perf() - t0

        return task

    return [make(i, d) for i, d in enumerate(durations)]


def _limited(fn: Body, limiter: trio.CapacityLimiter | None) -> Body:
    if limiter is None:
        return fn

    async def run() -> None:
        async with limiter:
            await fn()

    return run


def _prepare_trio_nursery(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """Bare trio: the tasks' closures, then one ``open_nursery()`` per layer."""
    layers = graph.layers()

    def once() -> Measurement:
        now = trio.current_time if virtual else perf

        async def main() -> dict[str, float]:
            marks = [("start", now(), GC.total)]
            fns = _trio_closures(graph)
            limiter = trio.CapacityLimiter(slots) if slots is not None else None
            marks.append(("prep", now(), GC.total))
            for layer in layers:
                async with trio.open_nursery() as nursery:
                    for i in layer:
                        nursery.start_soon(_limited(fns[i], limiter))
            marks.append(("run", now(), GC.total))
            return {"makespan": marks[-1][1] - marks[0][1], **_phases(marks)}

        return _run_trio(main, virtual)

    return once


def _prepare_trio_dataflow(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """Hand-written dependency-driven trio: counters, successor lists, one nursery."""
    n = len(graph)

    def once() -> Measurement:
        now = trio.current_time if virtual else perf
        done = [0]

        async def main() -> dict[str, float]:
            marks = [("start", now(), GC.total)]
            fns = _trio_closures(graph)
            deps = graph.deps
            remaining = [len(d) for d in deps]
            succ: list[list[int]] = [[] for _ in range(n)]
            for node, preds in enumerate(deps):
                for p in preds:
                    succ[p].append(node)
            limiter = trio.CapacityLimiter(slots) if slots is not None else None
            marks.append(("prep", now(), GC.total))
            async with trio.open_nursery() as nursery:

                async def run(node: int) -> None:
                    if limiter is None:
                        await fns[node]()
                    else:
                        async with limiter:
                            await fns[node]()
                    done[0] += 1
                    for s in succ[node]:
                        remaining[s] -= 1
                        if remaining[s] == 0:
                            nursery.start_soon(run, s)

                for node in range(n):
                    if not deps[node]:
                        nursery.start_soon(run, node)
            marks.append(("run", now(), GC.total))
            return {"makespan": marks[-1][1] - marks[0][1], **_phases(marks)}

        m = _run_trio(main, virtual)
        if done[0] != n:
            raise RuntimeError(f"trio.dataflow ran {done[0]} of {n} tasks")
        return m

    return once


def _prepare_anyio_layers(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """anyio (trio backend): the tasks' closures, then a task group per layer."""
    import anyio

    layers = graph.layers()
    durations = graph.durations
    actual = actual_durations(graph)

    def make(i: int) -> Body:
        if durations is None:

            async def noop() -> None:
                return None

            return noop
        seconds = durations[i]

        async def task() -> None:
            t0 = perf()
            await anyio.sleep(seconds)
            actual[i] = perf() - t0

        return task

    def once() -> Measurement:
        async def main() -> dict[str, float]:
            marks = [("start", perf(), GC.total)]
            fns = [make(i) for i in range(len(graph))]
            limiter = anyio.CapacityLimiter(slots) if slots is not None else None
            marks.append(("prep", perf(), GC.total))
            for layer in layers:
                async with anyio.create_task_group() as tg:
                    for i in layer:
                        if limiter is None:
                            tg.start_soon(fns[i])
                        else:
                            tg.start_soon(_anyio_limited, fns[i], limiter)
            marks.append(("run", perf(), GC.total))
            return {"makespan": marks[-1][1] - marks[0][1], **_phases(marks)}

        t0 = perf()
        phases = anyio.run(main, backend="trio")
        return Measurement(perf() - t0, phases.pop("makespan"), phases=phases)

    return once


async def _anyio_limited(fn: Body, limiter: Any) -> None:
    async with limiter:
        await fn()


# -- asyncio -------------------------------------------------------------------------------


def _prepare_asyncio_graphlib(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """asyncio: the tasks' closures and a ``graphlib.TopologicalSorter``, one TaskGroup."""
    durations = graph.durations
    actual = actual_durations(graph)
    n = len(graph)

    def make(i: int) -> Body:
        if durations is None:

            async def noop() -> None:
                return None

            return noop
        seconds = durations[i]

        async def task() -> None:
            t0 = perf()
            await asyncio.sleep(seconds)
            actual[i] = perf() - t0

        return task

    def once() -> Measurement:
        async def main() -> dict[str, float]:
            marks = [("start", perf(), GC.total)]
            fns = [make(i) for i in range(n)]
            sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
            for i, d in enumerate(graph.deps):
                sorter.add(i, *d)
            sorter.prepare()
            sem = asyncio.Semaphore(slots) if slots is not None else None
            marks.append(("prep", perf(), GC.total))
            async with asyncio.TaskGroup() as tg:

                def launch() -> None:
                    for node in sorter.get_ready():
                        tg.create_task(run(node))

                async def run(node: int) -> None:
                    if sem is None:
                        await fns[node]()
                    else:
                        async with sem:
                            await fns[node]()
                    sorter.done(node)
                    launch()

                launch()
            if sorter.is_active():
                raise RuntimeError("graphlib peer finished with tasks left")
            marks.append(("run", perf(), GC.total))
            return {"makespan": marks[-1][1] - marks[0][1], **_phases(marks)}

        t0 = perf()
        phases = asyncio.run(main())
        return Measurement(perf() - t0, phases.pop("makespan"), phases=phases)

    return once


# -- dask ----------------------------------------------------------------------------------


def _dask_noop_fn() -> Callable[..., None]:
    def noop(*_args: Any) -> None:
        return None

    return noop


def _prepare_dask_sync(graph: Graph, slots: int | None, virtual: bool) -> Once:
    """Dask's synchronous scheduler: the graph dict (a new function per task), then ``get``."""
    import dask

    if graph.durations is not None:
        raise ValueError("dask.sync runs the no-op workloads only (it is sequential)")
    ids = graph.ids

    def once() -> Measurement:
        g0 = GC.total
        t0 = perf()
        dsk: dict[str, tuple[Any, ...]] = {}
        for i, tid in enumerate(ids):
            dsk[tid] = (_dask_noop_fn(), *[ids[d] for d in graph.deps[i]])
        t1 = perf()
        g1 = GC.total
        dask.get(dsk, list(ids))
        t2 = perf()
        phases = {"prep_s": t1 - t0, "prep_gc_s": g1 - g0, "run_s": t2 - t1}
        phases["run_gc_s"] = GC.total - g1
        return Measurement(t2 - t0, t2 - t0, phases=phases)

    return once


# -- the registry --------------------------------------------------------------------------

_TF = (
    "inside `trio.run`: `tf.Workflow(...)`, `add_task(tf.Task(id, fn, depends_on=[...]))` "
    "with a new closure per task, `wf.validate()` (the compile), "
    "`WorkflowExecutor(wf, max_concurrency=...).{m}()` (in-memory audit log on: it cannot "
    "be turned off), result checked"
)

USER_RUNNERS: list[Runner] = [
    Runner(
        "tf.sequential",
        "trioforge execute (one task at a time)",
        "trioforge",
        _TF.format(m="execute"),
        _trioforge("execute"),
        slots_ok=False,
        virtual_ok=True,
        concurrent=False,
    ),
    Runner(
        "tf.parallel",
        "trioforge execute_parallel (layer by layer)",
        "trioforge",
        _TF.format(m="execute_parallel"),
        _trioforge("execute_parallel"),
        virtual_ok=True,
    ),
    Runner(
        "tf.dataflow",
        "trioforge execute_dataflow",
        "trioforge",
        _TF.format(m="execute_dataflow"),
        _trioforge("execute_dataflow"),
        virtual_ok=True,
    ),
    Runner(
        "trio.nursery",
        "bare trio: one open_nursery() per layer",
        "baseline",
        "inside `trio.run`: a new closure per task, then for each layer "
        "`async with trio.open_nursery()` and `start_soon` per task (the layer lists stand "
        "for the user's code and are made beforehand)",
        _prepare_trio_nursery,
        virtual_ok=True,
    ),
    Runner(
        "trio.dataflow",
        "hand-written trio dataflow loop",
        "baseline",
        "inside `trio.run`: a new closure per task, dependency counters and successor lists, "
        "then one nursery in which each finished task `start_soon`s the dependents whose "
        "counter reaches zero (a FIFO `CapacityLimiter` when slots are limited)",
        _prepare_trio_dataflow,
        virtual_ok=True,
    ),
    Runner(
        "anyio.layers",
        "anyio task group per layer (trio backend)",
        "peer",
        "inside `anyio.run(..., backend='trio')`: a new closure per task, then a task group "
        "per layer",
        _prepare_anyio_layers,
    ),
    Runner(
        "asyncio.graphlib",
        "asyncio TaskGroup + graphlib.TopologicalSorter",
        "peer",
        "inside `asyncio.run`: a new closure per task, the sorter built and `prepare()`d, one "
        "`TaskGroup`; each finished task calls `sorter.done` and starts what `get_ready()` "
        "returns",
        _prepare_asyncio_graphlib,
    ),
    Runner(
        "dask.sync",
        "Dask synchronous scheduler (dask.get)",
        "peer",
        "the graph dict built (a new function per task) then `dask.get(dsk, keys)`",
        _prepare_dask_sync,
        slots_ok=False,
        concurrent=False,
    ),
]

USER_BY_NAME = {r.name: r for r in USER_RUNNERS}
