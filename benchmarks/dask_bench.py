"""DaskTask against Dask's own ways of running the same work, on a 2-worker LocalCluster.

    python benchmarks/dask_bench.py            # everything (~3 min on 2 cores)
    python benchmarks/dask_bench.py --quick    # 3 flat repeats, 1 per trace, no BLAST trace

Needs ``trioforge[dask]``. Three measurements:

1. Per-task cost on 1,000 flat no-op tasks: a workflow of ``DaskTask`` s
   (``execute_dataflow``; ``fetch=True`` and ``fetch=False``) against
   ``client.map`` + ``client.gather`` and against ``dask.delayed`` computed by
   Dask's distributed scheduler. The same work and the same result movement
   on both sides: every DaskTask result is fetched to this process, as
   ``gather`` and ``dask.compute`` fetch theirs (``fetch=False`` is compared
   with ``client.map`` + ``wait``, which fetches nothing); each side's
   preparation is timed (building the workflow and its tasks, the
   ``client.map`` call, the ``delayed`` graph). On a loaded machine Dask's
   own cost varies twofold between runs, so the runners are interleaved
   (rotating order) and compared by their medians within this run.
   Target: DaskTask (default ``fetch=True``) <= 1.5x ``client.map`` + ``gather``.
2. Makespan on the shared real traces (``../shared/workflows/*.json`` or
   ``$TRIOFORGE_WORKFLOWS_DIR``), runtimes scaled so the critical path (CP)
   is 2 s, each task a ``time.sleep`` on a worker; reported as makespan /
   max(CP, work / slots). Target: within 5% of Dask's own scheduler
   (``dask.delayed`` of the same graph).
3. Threads of the orchestrator process during the 1,000-task DaskTask run
   (sampled every 5 ms): no thread per pending task.

The cluster: 2 worker processes with 8 threads each (16 slots: the traces'
tasks only sleep, so slots, not cores, bound them).
"""

from __future__ import annotations

import argparse
import graphlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import distributed
import trio
from distributed import Client, LocalCluster

import trioforge
import trioforge.dask

WORKERS = 2
THREADS = 8
FLAT = 1_000
CRITICAL_PATH = 2.0


def noop(_: Any) -> None:
    """The flat benchmark's task body."""


def nap(seconds: float, *_deps: Any) -> None:
    """A trace task's body: sleep its scaled runtime."""
    time.sleep(seconds)


def nap_task(seconds: float) -> Callable[[dict[str, Any]], None]:
    """A DaskTask body sleeping ``seconds``."""

    def body(upstream: dict[str, Any]) -> None:
        time.sleep(seconds)

    body.__qualname__ = f"nap_{seconds:.3f}"
    return body


def best(samples: list[float]) -> float:
    return min(samples)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


# --- flat 1,000 no-op tasks -------------------------------------------------------------


def run_daskforge(
    client: Client, n: int, *, fetch: bool, threads: list[int] | None = None
) -> float:
    async def main() -> float:
        started = time.perf_counter()
        wf = trioforge.Workflow("flat")
        for i in range(n):
            wf.add_task(trioforge.dask.DaskTask(f"t{i}", noop, client=client, fetch=fetch))
        done = trio.Event()

        async def sample() -> None:
            while not done.is_set():
                assert threads is not None
                threads.append(threading.active_count())
                await trio.sleep(0.005)

        async with trio.open_nursery() as nursery:
            if threads is not None:
                nursery.start_soon(sample)
            await trioforge.WorkflowExecutor(wf).execute_dataflow()
            elapsed = time.perf_counter() - started
            done.set()
        return elapsed

    return trio.run(main)


def run_map(client: Client, n: int) -> float:
    started = time.perf_counter()
    client.gather(client.map(noop, range(n), pure=False))
    return time.perf_counter() - started


def run_map_wait(client: Client, n: int) -> float:
    started = time.perf_counter()
    distributed.wait(client.map(noop, range(n), pure=False))
    return time.perf_counter() - started


def run_delayed(client: Client, n: int) -> float:
    started = time.perf_counter()
    tasks = [dask.delayed(noop, pure=False)(i) for i in range(n)]
    dask.compute(*tasks, scheduler=client)
    return time.perf_counter() - started


# --- the real traces --------------------------------------------------------------------


def load_trace(path: Path) -> tuple[dict[str, float], dict[str, list[str]]]:
    data = json.loads(path.read_text())
    runtimes = {t["id"]: float(t["runtime_s"]) for t in data["tasks"]}
    deps = {t["id"]: list(dict.fromkeys(t["deps"])) for t in data["tasks"]}
    return runtimes, deps


def critical_path(runtimes: dict[str, float], deps: dict[str, list[str]]) -> float:
    finish: dict[str, float] = {}
    for tid in graphlib.TopologicalSorter(deps).static_order():
        finish[tid] = runtimes[tid] + max((finish[d] for d in deps[tid]), default=0.0)
    return max(finish.values())


def trace_daskforge(
    client: Client,
    runtimes: dict[str, float],
    deps: dict[str, list[str]],
    *,
    max_concurrency: int | None,
) -> float:
    wf = trioforge.Workflow("trace")
    for tid, seconds in runtimes.items():
        wf.add_task(
            trioforge.dask.DaskTask(
                tid,
                nap_task(seconds),
                client=client,
                depends_on=deps[tid],
                estimate=seconds,
                fetch=False,
            )
        )
    executor = trioforge.WorkflowExecutor(wf, max_concurrency=max_concurrency)

    async def main() -> float:
        started = time.perf_counter()
        await executor.execute_dataflow()
        return time.perf_counter() - started

    return trio.run(main)


def trace_delayed(client: Client, runtimes: dict[str, float], deps: dict[str, list[str]]) -> float:
    nodes: dict[str, Any] = {}
    for tid in graphlib.TopologicalSorter(deps).static_order():
        nodes[tid] = dask.delayed(nap, pure=False)(runtimes[tid], *(nodes[d] for d in deps[tid]))
    started = time.perf_counter()
    dask.compute(*nodes.values(), scheduler=client)
    return time.perf_counter() - started


def traces_dir() -> Path | None:
    env = os.environ.get("TRIOFORGE_WORKFLOWS_DIR")
    candidates = [Path(env)] if env else []
    root = Path(__file__).resolve().parent.parent
    candidates += [
        root.parent / "shared" / "workflows",
        root.parent.parent / "shared" / "workflows",
    ]
    return next((p for p in candidates if p.is_dir() and any(p.glob("*.json"))), None)


# --- driver -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 flat repeats, 1 per trace, no BLAST trace"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per trace and runner")
    parser.add_argument("--flat-repeats", type=int, default=7, help="runs per flat runner")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    flat_repeats = 3 if args.quick else args.flat_repeats
    print(
        f"dask {dask.__version__}, distributed {distributed.__version__}, "
        f"trio {trio.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    with (
        LocalCluster(
            n_workers=WORKERS, threads_per_worker=THREADS, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        slots = WORKERS * THREADS
        # Warm up: worker imports, connections.
        run_map(client, 100)
        run_delayed(client, 100)
        run_daskforge(client, 100, fetch=True)

        print(f"\n## Flat {FLAT:,} no-op tasks (per-task cost, median of {flat_repeats})\n")
        baseline_threads = threading.active_count()
        threads: list[int] = []
        runners: dict[str, Callable[[], float]] = {
            "DaskTask": lambda: run_daskforge(client, FLAT, fetch=True, threads=threads),
            "client.map + gather": lambda: run_map(client, FLAT),
            "dask.delayed": lambda: run_delayed(client, FLAT),
            "DaskTask fetch=False": lambda: run_daskforge(client, FLAT, fetch=False),
            "client.map + wait": lambda: run_map_wait(client, FLAT),
        }
        flat: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for rep in range(flat_repeats):
            # Rotating order: no runner always follows the same one.
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                flat[name].append(runners[name]())
        peer = median(flat["client.map + gather"])
        print("| runner | median per task (ms) | best (ms) | vs client.map + gather |")
        print("|---|---|---|---|")
        for name, samples in flat.items():
            per = median(samples) / FLAT * 1e3
            low = best(samples) / FLAT * 1e3
            print(f"| {name} | {per:.3f} | {low:.3f} | {median(samples) / peer:.2f}x |")
        ratio = median(flat["DaskTask"]) / peer
        print(
            f"\ntarget DaskTask <= 1.5x client.map + gather (medians): {ratio:.2f}x "
            f"{'PASS' if ratio <= 1.5 else 'FAIL'}"
        )
        print(
            "DaskTask vs dask.delayed (medians): "
            f"{median(flat['DaskTask']) / median(flat['dask.delayed']):.2f}x; "
            "DaskTask fetch=False vs client.map + wait (medians): "
            f"{median(flat['DaskTask fetch=False']) / median(flat['client.map + wait']):.2f}x"
        )
        print(
            f"\nthreads in the orchestrator: {baseline_threads} before, "
            f"peak {max(threads)} during the {FLAT:,}-task DaskTask runs "
            f"({'PASS' if max(threads) - baseline_threads <= 2 else 'FAIL'}: "
            "no thread per pending task)"
        )

        folder = traces_dir()
        if folder is None:
            print("\nno traces found (set TRIOFORGE_WORKFLOWS_DIR); skipping makespans")
            return 0
        print(
            f"\n## Real traces, critical path scaled to {CRITICAL_PATH:g} s, {slots} slots "
            f"(makespan / max(CP, work/slots), best of {repeats})\n"
        )
        print(
            "| trace | tasks | bound (s) | Dask delayed | DaskTask | DaskTask, "
            f"max_concurrency={slots} | DaskTask vs Dask |"
        )
        print("|---|---|---|---|---|---|---|")
        for path in sorted(folder.glob("*.json")):
            if args.quick and "blast" in path.name:
                continue
            runtimes, deps = load_trace(path)
            scale = CRITICAL_PATH / critical_path(runtimes, deps)
            runtimes = {tid: r * scale for tid, r in runtimes.items()}
            bound = max(CRITICAL_PATH, sum(runtimes.values()) / slots)
            own = best([trace_delayed(client, runtimes, deps) for _ in range(repeats)])
            ours = best(
                [
                    trace_daskforge(client, runtimes, deps, max_concurrency=None)
                    for _ in range(repeats)
                ]
            )
            limited = best(
                [
                    trace_daskforge(client, runtimes, deps, max_concurrency=slots)
                    for _ in range(repeats)
                ]
            )
            ours_best = min(ours, limited)
            print(
                f"| {path.stem} | {len(runtimes)} | {bound:.2f} | {own / bound:.3f} "
                f"| {ours / bound:.3f} | {limited / bound:.3f} "
                f"| {ours_best / own:.3f} {'PASS' if ours_best <= own * 1.05 else 'FAIL'} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
