"""cProfile of trioforge's hot paths, for digging into a missed target (not run by nox).

Usage::

    python benchmarks/profile_hotpaths.py flat [--mode execute_dataflow] [--tasks 10000]
    python benchmarks/profile_hotpaths.py scale [--tasks 100000]
    python benchmarks/profile_hotpaths.py layering [--tasks 1000000]

``flat`` profiles one ``trio.run`` of a trioforge mode on N independent no-op
tasks next to the bare trio nursery doing the same, and prints the functions
by own time with the time per task. ``scale`` profiles two runs of the mode on
the scale check's random 100,000-task graph. ``layering`` profiles the first
``Workflow.execution_layers()`` call on the layering benchmark's graph next to
plain rustworkx. cProfile slows Python code down several times, so read the
shares, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio

import trioforge as tf


def _where(filename: str) -> str:
    for key in ("trioforge", "trio", "rustworkx", "attrs", "outcome"):
        if f"/{key}/" in filename or f"/{key}." in filename:
            return key
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins / generated"
    return "other"


def profile(label: str, fn: Callable[[], Any], per: int, top: int) -> None:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    unit, scale = ("us", 1e6) if per > 1 else ("ms", 1e3)
    print(
        f"== {label}: {wall:.3f} s under cProfile; own time {total / per * scale:.2f} {unit}"
        f" per {'task' if per > 1 else 'call'}"
    )
    groups: dict[str, float] = {}
    for (filename, _line, _func), v in raw.items():
        groups[_where(filename)] = groups.get(_where(filename), 0.0) + v[2]
    print(
        "   own time by package: "
        + ", ".join(
            f"{k} {v / per * scale:.2f} {unit}"
            for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
        )
    )
    print(f"{'own ' + unit:>9} {'cum ' + unit:>9} {'calls':>9}  function")
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = f"{Path(filename).name}:{line}({func})" if line else func
        print(f"{tt / per * scale:9.3f} {ct / per * scale:9.3f} {nc:9d}  {where}")
    print()


def flat(args: argparse.Namespace) -> None:
    n = args.tasks

    async def noop_ctx(_ctx: tf.TaskContext) -> None:
        return None

    async def noop() -> None:
        return None

    wf = tf.Workflow("flat")
    for i in range(n):
        wf.add_task(tf.Task(f"f{i:05d}", noop_ctx))
    wf.validate()

    async def bare() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(noop)

    def run_tf() -> None:
        executor = tf.WorkflowExecutor(wf, max_concurrency=args.slots)
        trio.run(getattr(executor, args.mode))

    profile("bare trio nursery", lambda: trio.run(bare), n, args.top)
    profile(f"trioforge {args.mode}", run_tf, n, args.top)


def scale(args: argparse.Namespace) -> None:
    from workloads import SEED_SCALE, random_dag_ids

    ids, deps = random_dag_ids(args.tasks, SEED_SCALE)

    async def noop_ctx(_ctx: tf.TaskContext) -> None:
        return None

    wf = tf.Workflow("scale")
    for tid, ds in zip(ids, deps, strict=True):
        wf.add_task(tf.Task(tid, noop_ctx, depends_on=ds))
    wf.validate()

    def run_tf() -> None:
        executor = tf.WorkflowExecutor(wf, max_concurrency=args.slots)
        trio.run(getattr(executor, args.mode))

    profile(f"trioforge {args.mode}, first run (compiled)", run_tf, args.tasks, args.top)
    profile(f"trioforge {args.mode}, second run", run_tf, args.tasks, args.top)


def layering(args: argparse.Namespace) -> None:
    import layering as lay
    from workloads import SEED_LAYERING, random_dag_ids

    ids, deps = random_dag_ids(args.tasks, SEED_LAYERING)
    wf = lay.build(ids, deps)
    profile("rustworkx from plain id lists", lambda: lay.rustworkx_layers(ids, deps), 1, args.top)
    profile("Workflow.execution_layers()", wf.execution_layers, 1, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["flat", "scale", "layering"])
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--mode", default="execute_dataflow")
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.what == "flat":
        args.tasks = args.tasks or 10_000
        flat(args)
    elif args.what == "scale":
        args.tasks = args.tasks or 100_000
        scale(args)
    else:
        args.tasks = args.tasks or 1_000_000
        layering(args)


if __name__ == "__main__":
    main()
