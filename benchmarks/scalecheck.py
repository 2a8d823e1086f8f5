"""Scale check, run in a fresh subprocess: N no-op tasks with random deps under execute_dataflow.

Prints one JSON object on stdout. The peak resident set is ``VmHWM`` from
``/proc/self/status`` (interpreter, imports, the built workflow and the run);
the figure after the build shows how much of it the run itself added.
``ru_maxrss`` is reported too but is not used on Linux: a child started with
``vfork``/``posix_spawn`` inherits the parent's high-water mark at ``exec``, so
it reads as the benchmark driver's size until the child outgrows it. With
``--tracemalloc`` the peak of Python allocations made during compile + run is
measured instead (slower, so the times of that mode are not reported).

Usage: python benchmarks/scalecheck.py --tasks 100000 [--seed 5] [--tracemalloc]
       [--runner trioforge|trio]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

perf = time.perf_counter


def maxrss_bytes() -> int:
    # Linux reports kilobytes (macOS bytes; this benchmark targets Linux CI).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """This process's own resident-set high-water mark (VmHWM), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return maxrss_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--runner",
        choices=["trioforge", "trio"],
        default="trioforge",
        help="trioforge's execute_dataflow, or the hand-written dependency-counting trio "
        "scheduler (the floor) on the same graph",
    )
    args = parser.parse_args()

    from workloads import SEED_SCALE, random_dag_ids

    seed = SEED_SCALE if args.seed is None else args.seed
    rss_imports = peak_rss_bytes()
    ids, deps = random_dag_ids(args.tasks, seed)
    out: dict[str, object] = {
        "runner": args.runner,
        "tasks": args.tasks,
        "edges": sum(len(d) for d in deps),
        "seed": seed,
        "tracemalloc": args.tracemalloc,
    }
    if args.runner == "trioforge":
        out |= run_trioforge(ids, deps, args.tracemalloc)
    else:
        out |= run_trio(ids, deps, args.tracemalloc)
    out |= {
        "peak_rss_after_imports": rss_imports,
        "peak_rss": peak_rss_bytes(),
        "ru_maxrss": maxrss_bytes(),
    }
    print(json.dumps(out))


def run_trioforge(ids: list[str], deps: list[list[str]], traced: bool) -> dict[str, object]:
    import trio

    import trioforge as tf

    async def noop(_ctx: tf.TaskContext) -> None:
        return None

    t0 = perf()
    wf = tf.Workflow("scale")
    for tid, ds in zip(ids, deps, strict=True):
        wf.add_task(tf.Task(tid, noop, depends_on=ds))
    build_s = perf() - t0
    gc.collect()
    rss_built = peak_rss_bytes()

    if traced:
        tracemalloc.start()
    t0 = perf()
    wf.validate()
    compile_s = perf() - t0
    executor = tf.WorkflowExecutor(wf)
    gc.collect()
    t0 = perf()
    result = trio.run(executor.execute_dataflow)
    execute_s = perf() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    if len(result.completed) != len(ids):
        raise SystemExit(f"completed {len(result.completed)} of {len(ids)}")
    return {
        "layers": len(wf.execution_layers()),
        "build_s": build_s,
        "compile_s": compile_s,
        "execute_s": execute_s,
        "audit_events": len(executor.audit_log),
        "peak_rss_after_build": rss_built,
        "traced_peak": traced_peak,
    }


def run_trio(ids: list[str], deps: list[list[str]], traced: bool) -> dict[str, object]:
    """Dependency counters and one nursery: the least a dataflow scheduler can do."""
    import trio

    t0 = perf()
    index = {tid: i for i, tid in enumerate(ids)}
    remaining = [len(d) for d in deps]
    succ: list[list[int]] = [[] for _ in ids]
    for i, ds in enumerate(deps):
        for d in ds:
            succ[index[d]].append(i)
    roots = [i for i, c in enumerate(remaining) if c == 0]
    build_s = perf() - t0
    gc.collect()
    rss_built = peak_rss_bytes()
    done = [0]

    async def noop(_i: int) -> None:
        return None

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def run(node: int) -> None:
                await noop(node)
                done[0] += 1
                for s in succ[node]:
                    remaining[s] -= 1
                    if remaining[s] == 0:
                        nursery.start_soon(run, s)

            for node in roots:
                nursery.start_soon(run, node)

    if traced:
        tracemalloc.start()
    gc.collect()
    t0 = perf()
    trio.run(main)
    execute_s = perf() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    if done[0] != len(ids):
        raise SystemExit(f"completed {done[0]} of {len(ids)}")
    return {
        "build_s": build_s,
        "compile_s": 0.0,
        "execute_s": execute_s,
        "peak_rss_after_build": rss_built,
        "traced_peak": traced_peak,
    }


if __name__ == "__main__":
    main()
