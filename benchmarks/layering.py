"""Layering a big workflow: ``Workflow.execution_layers()`` vs plain rustworkx.

trioforge's side: a ``Workflow`` of ``n`` tasks (0-3 random dependencies on
earlier tasks) is built outside the timed region, anew for every repeat; the
timed call is its first ``execution_layers()``, which compiles the graph
(validation, index, predecessor/successor lists, the rustworkx graph,
``topological_generations``) and maps the layers back to sorted ids.

rustworkx's side, from the same plain lists of ids: a dict id -> index,
``PyDiGraph.add_nodes_from`` / ``add_edges_from_no_data``,
``rustworkx.topological_generations`` and the generations mapped back to ids.
A second variant also sorts each layer by id, which ``execution_layers``
promises and plain rustworkx does not do.

Both sides run with the collector enabled (the default, and the setting of
every other benchmark), in the same process, with the same objects alive.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import rustworkx as rx
from workloads import SEED_LAYERING, random_dag_ids

import trioforge as tf

perf = time.perf_counter


def rustworkx_layers(ids: list[str], deps: list[list[str]]) -> list[list[str]]:
    index = {tid: i for i, tid in enumerate(ids)}
    graph = rx.PyDiGraph()
    graph.add_nodes_from(range(len(ids)))
    graph.add_edges_from_no_data(
        [(index[d], i) for i, ds in enumerate(deps) for d in ds],
    )
    return [[ids[j] for j in gen] for gen in rx.topological_generations(graph)]


def rustworkx_layers_sorted(ids: list[str], deps: list[list[str]]) -> list[list[str]]:
    return [sorted(layer) for layer in rustworkx_layers(ids, deps)]


async def _noop(_ctx: tf.TaskContext) -> None:
    return None


def build(ids: list[str], deps: list[list[str]]) -> tf.Workflow:
    wf = tf.Workflow("layering")
    for tid, ds in zip(ids, deps, strict=True):
        wf.add_task(tf.Task(tid, _noop, depends_on=ds))
    return wf


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = perf()
    out = fn()
    return perf() - t0, out


def run(n: int, repeats: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    ids, deps = random_dag_ids(n, SEED_LAYERING)
    samples: dict[str, list[float]] = {
        "trioforge": [],
        "rustworkx": [],
        "rustworkx_sorted": [],
    }
    builds: list[float] = []
    tf_layers: list[list[str]] = []
    rx_layers: list[list[str]] = []
    for rep in range(repeats):
        gc.collect()
        t0 = perf()
        wf = build(ids, deps)
        builds.append(perf() - t0)
        dt, tf_layers = _time(wf.execution_layers)
        samples["trioforge"].append(dt)
        del wf
        dt, rx_layers = _time(lambda: rustworkx_layers(ids, deps))
        samples["rustworkx"].append(dt)
        dt, _ = _time(lambda: rustworkx_layers_sorted(ids, deps))
        samples["rustworkx_sorted"].append(dt)
        log(
            f"  repeat {rep + 1}/{repeats}: build {builds[-1]:.2f} s (untimed), "
            f"execution_layers {samples['trioforge'][-1]:.3f} s, "
            f"rustworkx {samples['rustworkx'][-1]:.3f} s"
        )
    same = len(tf_layers) == len(rx_layers) and all(
        a == sorted(b) for a, b in zip(tf_layers, rx_layers, strict=True)
    )
    if not same:
        raise RuntimeError("execution_layers and rustworkx disagree on the layers")
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "tasks": n,
        "edges": sum(len(d) for d in deps),
        "layers": len(tf_layers),
        "seed": SEED_LAYERING,
        "build_s": builds,
        "build_median_s": statistics.median(builds),
        "samples_s": samples,
        "median_s": medians,
        "ratio": medians["trioforge"] / medians["rustworkx"],
        "ratio_vs_sorted": medians["trioforge"] / medians["rustworkx_sorted"],
    }
