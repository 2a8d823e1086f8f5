"""trioforge benchmark suite: what users pay, against what they would pick instead.

Usage::

    python benchmarks/run.py --full     # the whole spec (default; ~40 min on a loaded 2-core VM)
    python benchmarks/run.py --quick    # what CI runs (nox -s bench): fewer repeats, < 4 min
    python benchmarks/run.py --only user,sleepy --repeats 3   # a subset while developing

Sections: ``user`` (flat 10,000 and layered 100 x 100 no-ops on the user's
path: the ``Workflow`` and every peer's own structures built inside the timed
region, a new coroutine function per task, GC on), ``cached`` (the same
workloads the old way: prebuilt workflow, one shared no-op, a warm-up run;
a second table), ``sleepy`` and ``real`` (makespan against the critical path
and the hand-written trio dataflow loop), ``layering`` (``execution_layers``
vs plain rustworkx on 10^6 tasks), ``scale`` (100,000 and 1,000,000 layered
tasks, one subprocess per run for peak RSS) and ``durable`` (the SQLite store
in the library and on the command line).

Prints every table and PASS/FAIL per target of issue 12, and writes
``results.md`` and ``results.json``. A missed target never fails the run
(exit 0); a crash does (non-zero exit).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import durable  # noqa: E402
import layering  # noqa: E402
import reporting as rep  # noqa: E402
import runners  # noqa: E402
import tables  # noqa: E402
import targets  # noqa: E402
import userpath  # noqa: E402
import workloads  # noqa: E402
from runners import Measurement, Once, Runner  # noqa: E402
from workloads import Graph  # noqa: E402

SECTIONS = ("user", "cached", "sleepy", "real", "layering", "scale", "durable")
SLOTS = 4


@dataclass(frozen=True)
class Config:
    mode: str
    repeats_noop: int
    repeats_sleep: int
    repeats_virtual: int
    layering_tasks: int
    layering_repeats: int
    scale_repeats: int
    million_repeats: int
    durable_repeats: int
    durable_limited: bool
    cli_sizes: tuple[int, ...]
    cli_repeats: int
    noop_tasks: int = 10_000
    layered_shape: tuple[int, int] = (100, 100)
    scale_shape: tuple[int, int] = (100, 1_000)
    million_shape: tuple[int, int] = (100, 10_000)
    sleepy_tasks: int = 200
    real_cp_s: float = 0.5
    sequential_real_sleeps: bool = True


QUICK = Config(
    "quick",
    repeats_noop=3,
    repeats_sleep=2,
    repeats_virtual=1,
    layering_tasks=100_000,
    layering_repeats=2,
    scale_repeats=1,
    million_repeats=0,
    durable_repeats=1,
    durable_limited=False,
    cli_sizes=(1_000,),
    cli_repeats=2,
    sequential_real_sleeps=False,
)
FULL = Config(
    "full",
    repeats_noop=15,
    repeats_sleep=5,
    repeats_virtual=2,
    layering_tasks=1_000_000,
    layering_repeats=5,
    scale_repeats=5,
    million_repeats=5,
    durable_repeats=5,
    durable_limited=True,
    cli_sizes=(1_000, 10_000),
    cli_repeats=5,
)


def log(msg: str) -> None:
    print(msg, flush=True)


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    runner: Runner
    slots: int | None

    @property
    def name(self) -> str:
        return self.runner.display(self.slots)


AVAILABLE: set[str] = set()


def entries(
    names: Sequence[str], slots: int | None = None, registry: dict[str, Runner] | None = None
) -> list[Entry]:
    reg = userpath.USER_BY_NAME if registry is None else registry
    return [Entry(reg[n], slots) for n in names if n in reg and n in AVAILABLE]


def measure(
    graph: Graph,
    chosen: Sequence[Entry],
    repeats: int,
    *,
    virtual: bool = False,
    warmup: bool = False,
) -> dict[str, list[Measurement]]:
    """Run every entry ``repeats`` times, round-robin, in a new shuffled order each round.

    Shuffled (seeded, so a rerun takes the same turns) rather than rotated: with a
    rotation every runner always follows the same one, and a runner that leaves the
    allocator or the caches in a bad state (Dask's 10,000-task graphs do) would
    always weigh on the same neighbour.

    Each run is a fresh event loop; ``gc.collect()`` runs before each one and
    the collector stays enabled with default thresholds for every runner;
    ``userpath.GC`` times its collections during the run.
    """
    prepared: list[tuple[str, Once]] = [
        (e.name, e.runner.prepare(graph, e.slots, virtual)) for e in chosen
    ]
    if warmup:
        for _name, once in prepared:
            gc.collect()
            once()
    samples: dict[str, list[Measurement]] = {name: [] for name, _ in prepared}
    track = graph.durations is not None and not virtual
    actual = runners.actual_durations(graph)
    for r in range(repeats):
        turns = random.Random(f"round {r}").sample(prepared, len(prepared))
        for name, once in turns:
            actual[:] = [math.nan] * len(graph)
            gc.collect()
            with userpath.GC as timer:
                m = once()
            phases = dict(m.phases or {})
            phases["gc_s"] = timer.total
            phases["gc_collections"] = float(sum(timer.counts))
            phases["gc_gen2"] = float(timer.counts[2])
            m = replace(m, phases=phases)
            if track:
                if any(math.isnan(a) for a in actual):
                    raise RuntimeError(f"{name}: some tasks did not record their sleep")
                assert graph.durations is not None
                over = statistics.fmean(
                    a - d for a, d in zip(actual, graph.durations, strict=True)
                )
                m = replace(m, cp_actual=graph.critical_path(actual), overshoot=over)
            samples[name].append(m)
    return samples


def summary(samples: list[Measurement], tasks: int) -> dict[str, Any]:
    walls = [m.wall for m in samples]
    spans = [m.makespan for m in samples]
    wall = statistics.median(walls)
    out: dict[str, Any] = {
        "wall_s": walls,
        "makespan_s": spans,
        "wall_median_s": wall,
        "makespan_median_s": statistics.median(spans),
        "per_task_s": wall / tasks,
    }
    keys = [k for k in (samples[0].phases or {}) if all(k in (m.phases or {}) for m in samples)]
    out["phases_median"] = {
        k: statistics.median((m.phases or {})[k] for m in samples) for k in keys
    }
    if samples and samples[0].audit_read is not None:
        out["audit_read_median_s"] = statistics.median(
            m.audit_read for m in samples if m.audit_read is not None
        )
    if samples and samples[0].cp_actual is not None:
        out["cp_actual_s"] = [m.cp_actual for m in samples]
        out["ratio_cp_actual"] = statistics.median(
            m.makespan / m.cp_actual for m in samples if m.cp_actual
        )
        out["sleep_overshoot_s"] = statistics.median(
            m.overshoot for m in samples if m.overshoot is not None
        )
    return out


# -- sections --------------------------------------------------------------------------------

USER_NOOP = [
    "tf.dataflow",
    "tf.parallel",
    "trio.nursery",
    "trio.dataflow",
    "anyio.layers",
    "asyncio.graphlib",
    "dask.sync",
]
CACHED_NOOP = [
    "trio.bare",
    "tf.sequential",
    "tf.parallel",
    "tf.dataflow",
    "trio.layers",
    "trio.dataflow",
    "asyncio.layers",
    "asyncio.graphlib",
    "anyio.layers",
    "dask.sync",
]
CONCURRENT = [
    "tf.parallel",
    "tf.dataflow",
    "trio.nursery",
    "trio.dataflow",
    "asyncio.graphlib",
    "anyio.layers",
]
TF_MODES = ["tf.sequential", "tf.parallel", "tf.dataflow"]
TF_SLOTTED = ["tf.parallel", "tf.dataflow"]


def noop_graphs(cfg: Config) -> list[Graph]:
    return [workloads.flat(cfg.noop_tasks), workloads.layered(*cfg.layered_shape)]


def section_user(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for graph in noop_graphs(cfg):
        chosen = entries(USER_NOOP)
        log(
            f"[user] {graph.name}: {len(graph):,} tasks, {graph.edges:,} edges, "
            f"{len(chosen)} runners x {cfg.repeats_noop} repeats (after a warm-up run each)"
        )
        graph.layers()
        samples = measure(graph, chosen, cfg.repeats_noop, warmup=True)
        out[graph.name] = {
            "tasks": len(graph),
            "edges": graph.edges,
            "layers": len(graph.layers()),
            "source": graph.source,
            "runners": {name: summary(s, len(graph)) for name, s in samples.items()},
        }
    return out


def section_cached(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    graphs = [*noop_graphs(cfg), workloads.chain(cfg.noop_tasks)]
    for graph in graphs:
        chosen = entries(CACHED_NOOP, registry=runners.BY_NAME)
        chosen += entries(TF_SLOTTED, SLOTS, registry=runners.BY_NAME)
        if graph.edges:
            chosen = [e for e in chosen if e.runner.takes_dag]
        log(f"[cached] {graph.name}: {len(chosen)} runners x {cfg.repeats_noop} repeats")
        runners.build_workflow(graph)
        samples = measure(graph, chosen, cfg.repeats_noop, warmup=True)
        out[graph.name] = {
            "tasks": len(graph),
            "edges": graph.edges,
            "trioforge_compile_s": runners.COMPILE_S[graph.name],
            "runners": {name: summary(s, len(graph)) for name, s in samples.items()},
        }
        runners.clear_workflow_cache()
    return out


def _makespan_rows(
    samples: dict[str, list[Measurement]], graph: Graph, cp: float, ls4: float | None = None
) -> dict[str, Any]:
    result = {}
    lower4 = max(cp, graph.total_work() / SLOTS) if ls4 is not None else None
    for name, s in samples.items():
        d = summary(s, len(graph))
        span = d["makespan_median_s"]
        d["ratio_cp"] = span / cp
        if name.endswith(f"[{SLOTS}]") and ls4 is not None and lower4 is not None:
            d["ratio_lower_bound"] = span / lower4
            d["ratio_list_schedule"] = span / ls4
        result[name] = d
    return result


def section_sleepy(cfg: Config) -> dict[str, Any]:
    graph = workloads.sleepy(cfg.sleepy_tasks)
    cp = graph.critical_path()
    work = graph.total_work()
    ls4 = graph.list_schedule(SLOTS)
    graph.layers()
    log(
        f"[sleepy] {len(graph)} tasks, {graph.edges} edges, {len(graph.layers())} layers, "
        f"CP {cp * 1e3:.1f} ms, work {work * 1e3:.0f} ms, list-scheduling(4) {ls4 * 1e3:.1f} ms"
    )
    unbounded = (["tf.sequential"] if cfg.sequential_real_sleeps else []) + CONCURRENT
    chosen = entries(unbounded) + entries(CONCURRENT, SLOTS)
    log(f"[sleepy] real time: {len(chosen)} runners x {cfg.repeats_sleep} repeats")
    real = measure(graph, chosen, cfg.repeats_sleep)
    chosen_v = entries(TF_MODES) + entries(TF_SLOTTED, SLOTS)
    log(f"[sleepy] virtual time (MockClock): {len(chosen_v)} runners")
    virtual = measure(graph, chosen_v, cfg.repeats_virtual, virtual=True)
    return {
        "tasks": len(graph),
        "edges": graph.edges,
        "layers": len(graph.layers()),
        "source": graph.source,
        "critical_path_s": cp,
        "work_s": work,
        "lower_bound_4_s": max(cp, work / SLOTS),
        "list_schedule_4_s": ls4,
        "real": _makespan_rows(real, graph, cp, ls4),
        "virtual": _makespan_rows(virtual, graph, cp, ls4),
    }


def section_real(cfg: Config) -> dict[str, Any]:
    folder = workloads.workflows_dir()
    graphs = workloads.real_workflows()
    if not graphs:
        log("[real] no workflow files found (../shared/workflows or $TRIOFORGE_WORKFLOWS_DIR)")
        return {"folder": None, "workflows": {}}
    out: dict[str, Any] = {"folder": str(folder), "workflows": {}}
    for graph in graphs:
        cp = graph.critical_path()
        ls4 = graph.list_schedule(SLOTS)
        fast = workloads.scaled(graph, cfg.real_cp_s)
        fast_cp = fast.critical_path()
        fast.layers()
        graph.layers()
        chosen = entries(CONCURRENT)
        log(
            f"[real] {graph.name}: {len(graph)} tasks, {graph.edges} edges, "
            f"CP {cp:.1f} s scaled to {fast_cp:.3f} s; {len(chosen)} runners x "
            f"{cfg.repeats_sleep} repeats"
        )
        real = measure(fast, chosen, cfg.repeats_sleep)
        chosen_v = entries(TF_MODES) + entries(TF_SLOTTED, SLOTS)
        virtual = measure(graph, chosen_v, cfg.repeats_virtual, virtual=True)
        virtual_rows = _makespan_rows(virtual, graph, cp, ls4)
        for name, s in virtual.items():
            virtual_rows[name]["deterministic"] = len({m.makespan for m in s}) == 1
        out["workflows"][graph.name] = {
            "file": graph.source,
            "tasks": len(graph),
            "edges": graph.edges,
            "layers": len(graph.layers()),
            "critical_path_s": cp,
            "work_s": graph.total_work(),
            "list_schedule_4_s": ls4,
            "scale_factor": fast_cp / cp,
            "scaled_critical_path_s": fast_cp,
            "real": _makespan_rows(real, fast, fast_cp),
            "virtual": virtual_rows,
        }
    return out


def section_layering(cfg: Config) -> dict[str, Any]:
    log(f"[layering] {cfg.layering_tasks:,} tasks x {cfg.layering_repeats} repeats")
    result = layering.run(cfg.layering_tasks, cfg.layering_repeats, log=log)
    gc.collect()
    return result


def scale_runs(shape: tuple[int, int], names: Sequence[str], repeats: int) -> dict[str, Any]:
    """``repeats`` subprocess runs of each runner on a layered graph, round-robin."""
    script = HERE / "scalecheck.py"
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in [*names[k:], *names[:k]]:
            argv = [sys.executable, str(script), "--layers", str(shape[0])]
            argv += ["--width", str(shape[1]), "--runner", name]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise RuntimeError(f"scalecheck.py ({name}) exited with {proc.returncode}")
            d = json.loads(proc.stdout.strip().splitlines()[-1])
            samples[name].append(d)
            log(
                f"    {name}: {d['wall_s']:.2f} s, GC {d['gc_s']:.2f} s, peak RSS "
                f"{d['peak_rss'] / 2**20:.0f} MiB"
            )
    out: dict[str, Any] = {"tasks": shape[0] * shape[1], "shape": list(shape), "runners": {}}
    for name, runs in samples.items():
        phase_keys = runs[0]["phases"].keys()
        out["runners"][name] = {
            "samples": runs,
            "wall_median_s": statistics.median(d["wall_s"] for d in runs),
            "gc_median_s": statistics.median(d["gc_s"] for d in runs),
            "peak_rss_median": statistics.median(d["peak_rss"] for d in runs),
            "peak_rss_max": max(d["peak_rss"] for d in runs),
            "peak_rss_before_run": statistics.median(d["peak_rss_before_run"] for d in runs),
            "phases_median": {
                k: statistics.median(d["phases"][k] for d in runs) for k in phase_keys
            },
        }
    return out


def section_scale(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = cfg.scale_shape[0] * cfg.scale_shape[1]
    log(f"[scale] {n:,} layered tasks, one subprocess per run, {cfg.scale_repeats} repeats")
    out["100k"] = scale_runs(
        cfg.scale_shape, ["tf.dataflow", "trio.nursery", "trio.dataflow"], cfg.scale_repeats
    )
    if cfg.million_repeats:
        n = cfg.million_shape[0] * cfg.million_shape[1]
        log(f"[scale] {n:,} layered tasks, {cfg.million_repeats} repeats")
        out["1m"] = scale_runs(
            cfg.million_shape, ["tf.dataflow", "trio.nursery"], cfg.million_repeats
        )
    return out


def section_durable(cfg: Config, tmp_root: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"filesystem": durable.filesystem(tmp_root), "library": {}, "cli": {}}
    for graph in noop_graphs(cfg):
        for slots in (None, 8) if cfg.durable_limited else (None,):
            key = f"{graph.name}" + ("" if slots is None else f"[{slots}]")
            log(
                f"[durable] execute_dataflow {key}, {len(graph):,} tasks, store vs none, "
                f"{cfg.durable_repeats} repeats"
            )
            s = durable.measure_library(
                graph, slots, cfg.durable_repeats, tmp_root, log, gc.collect
            )
            none = statistics.median(s["none"])
            store = statistics.median(s["store"])
            out["library"][key] = {
                "tasks": len(graph),
                "max_concurrency": slots,
                "samples_s": s,
                "none_median_s": none,
                "store_median_s": store,
                "ratio": store / none,
            }
    for n in cfg.cli_sizes:
        log(f"[durable] trioforge run, {n:,} shell tasks, --store vs --no-store")
        d = durable.measure_cli(n, cfg.cli_repeats, tmp_root, log)
        d["no_store_median_s"] = statistics.median(d["samples_s"]["no_store"])
        d["store_median_s"] = statistics.median(d["samples_s"]["store"])
        d["ratio"] = d["store_median_s"] / d["no_store_median_s"]
        out["cli"][str(n)] = d
    return out


# -- main --------------------------------------------------------------------------------------


def find_available() -> None:
    AVAILABLE.clear()
    optional = {"anyio.layers": "anyio", "dask.sync": "dask", "dask.threaded": "dask"}
    names = {r.name for r in runners.RUNNERS} | set(userpath.USER_BY_NAME)
    for name in sorted(names):
        module = optional.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                log(f"WARNING: {module} is not installed; skipping {name}")
                continue
        AVAILABLE.add(name)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CI mode (< 4 min)")
    mode.add_argument("--full", action="store_true", help="the whole spec (default)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections out of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="override every repeat count (development)"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=HERE,
        help="where results.md and results.json go (default: benchmarks/)",
    )
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="where the durable section puts its stores and YAML files (default: the "
        "system's temporary folder; use a real disk, the store fsyncs)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.repeats is not None:
        r = args.repeats
        cfg = replace(
            cfg,
            repeats_noop=r,
            repeats_sleep=r,
            repeats_virtual=r,
            layering_repeats=r,
            scale_repeats=r,
            million_repeats=min(r, cfg.million_repeats),
            durable_repeats=r,
            cli_repeats=r,
        )
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {sorted(unknown)}")
    info = rep.machine_info(workloads.REPO_ROOT)
    find_available()
    log(
        f"trioforge benchmarks, {cfg.mode} mode, on {info['cpu_model']} "
        f"({info['cores']} cores), Python {info['python']}, trio {info['trio']}, "
        f"rustworkx {info['rustworkx']}; load average {info['load_average_start']}"
    )
    started = time.perf_counter()
    results: dict[str, Any] = {"mode": cfg.mode, "config": asdict(cfg)}
    steps: list[tuple[str, Callable[[Config], dict[str, Any]]]] = [
        ("user", section_user),
        ("cached", section_cached),
        ("sleepy", section_sleepy),
        ("real", section_real),
        ("layering", section_layering),
        ("scale", section_scale),
        ("durable", lambda c: section_durable(c, args.tmp_dir)),
    ]
    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / ".results.partial.json"
    for name, step in steps:
        if name in only:
            t0 = time.perf_counter()
            results[name] = step(cfg)
            log(f"  ({name}: {time.perf_counter() - t0:.0f} s)")
            # What is done so far survives a crash in a later section.
            partial.write_text(json.dumps(results) + "\n", encoding="utf-8")
    results["elapsed_s"] = time.perf_counter() - started
    rep.finish_info(info, workloads.REPO_ROOT)
    if info["sources_changed_during_run"]:
        log(
            "WARNING: trioforge's sources changed while the benchmarks ran (commit "
            f"{info['git_commit']} -> {info['git_commit_end']}); this process kept the code it "
            "imported first, the subprocesses imported the new one"
        )
    found = targets.evaluate(results, cfg.mode)

    print()
    for title, headers, rows in tables.all_tables(results, found):
        print(title)
        print(rep.text_table(headers, rows))
        print()
    passed = sum(t.passed is True for t in found)
    failed = sum(t.passed is False for t in found)
    print(
        f"{passed} targets passed, {failed} failed, {len(found) - passed - failed} not "
        f"measured or report-only; {results['elapsed_s']:.0f} s in all. (Missed targets do "
        "not fail this script.)"
    )

    tables.write_markdown(out_dir / "results.md", results, found, cfg, info, argv)
    payload = {
        "machine": info,
        "results": results,
        "targets": [asdict(t) | {"verdict": t.verdict} for t in found],
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    partial.unlink(missing_ok=True)
    print(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
