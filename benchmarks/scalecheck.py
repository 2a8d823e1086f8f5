"""Scale check, run in a fresh subprocess: a big layered no-op workflow on the user's path.

One run per process, so that the process's peak resident set belongs to that
run alone. The workload is ``workloads.layered(layers, width)`` (each task on
3 random tasks of the layer before, seeded). The timed region is the user's
path (see ``userpath.py``): for trioforge, ``tf.Workflow(...)``, one
``add_task`` per task with a new closure each, ``validate()`` and
``execute_dataflow()`` (with the in-memory audit log, which is always on);
for the bare trio nursery, a new closure per task and one ``open_nursery()``
per layer; for the hand-written dataflow loop, closures, dependency counters
and one nursery. The garbage collector is on; ``gc.callbacks`` measure the
time spent in collections.

Prints one JSON object on stdout. The peak resident set is ``VmHWM`` from
``/proc/self/status`` (interpreter, imports, the workload description, the
run). ``ru_maxrss`` is reported too but not used on Linux: a child started
with ``vfork``/``posix_spawn`` inherits the parent's high-water mark at
``exec``, so ``getrusage(RUSAGE_CHILDREN)`` in the driver would read as the
driver's own size (large after the layering section) until the child
outgrows it.

Usage: python benchmarks/scalecheck.py --layers 100 --width 1000
       [--runner tf.dataflow|trio.nursery|trio.dataflow]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

perf = time.perf_counter

RUNNERS = ("tf.dataflow", "trio.nursery", "trio.dataflow")


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
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--runner", choices=RUNNERS, default="tf.dataflow")
    args = parser.parse_args()

    import userpath
    import workloads

    graph = workloads.layered(args.layers, args.width)
    if args.runner == "trio.nursery":
        # The layer lists stand for the user's code; by construction, without the
        # temporaries of a topological sort (they would raise this process's peak).
        w = args.width
        graph._cache["layers"] = [range(k * w, (k + 1) * w) for k in range(args.layers)]
    rss_before = peak_rss_bytes()
    prepare = userpath.USER_BY_NAME[args.runner].prepare
    once = prepare(graph, None, False)
    gc.collect()
    with userpath.GC:
        m = once()
        gc_total = userpath.GC.total
        gc_counts = list(userpath.GC.counts)
    out: dict[str, object] = {
        "runner": args.runner,
        "tasks": len(graph),
        "edges": graph.edges,
        "layers": args.layers,
        "width": args.width,
        "source": graph.source,
        "wall_s": m.wall,
        "makespan_s": m.makespan,
        "phases": m.phases,
        "gc_s": gc_total,
        "gc_collections": gc_counts,
        "peak_rss_before_run": rss_before,
        "peak_rss": peak_rss_bytes(),
        "ru_maxrss": maxrss_bytes(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
