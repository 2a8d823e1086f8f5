"""trioforge benchmark suite: trioforge's execution modes against what users would pick instead.

Usage::

    python benchmarks/run.py            # the full spec (same as --full)
    python benchmarks/run.py --quick    # what CI runs (nox -s bench): fewer repeats, smaller sizes
    python benchmarks/run.py --only noop,sleepy --repeats 3   # a subset while developing

Sections: ``noop`` (flat / chain / layered no-op workloads: per-task
overhead), ``sleepy`` (makespan against the critical path and list
scheduling, real and virtual time), ``real`` (the recorded workflows of
``../shared/workflows`` or ``$TRIOFORGE_WORKFLOWS_DIR``), ``layering``
(``execution_layers`` vs plain rustworkx) and ``scale`` (100,000 tasks under
``execute_dataflow`` in a subprocess, with peak memory).

Prints a table per section and PASS/FAIL per target, and writes
``benchmarks/results.md`` and ``benchmarks/results.json``. A missed target
never fails the run (exit 0); a crash does (non-zero exit).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
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

import layering  # noqa: E402
import reporting as rep  # noqa: E402
import runners  # noqa: E402
import workloads  # noqa: E402
from runners import BY_NAME, Measurement, Once, Runner  # noqa: E402
from workloads import Graph  # noqa: E402

SECTIONS = ("noop", "sleepy", "real", "layering", "scale")
SLOTS = 4


@dataclass(frozen=True)
class Config:
    mode: str
    repeats_noop: int
    repeats_sleep: int
    repeats_virtual: int
    layering_tasks: int
    layering_repeats: int
    scale_tasks: int
    noop_tasks: int = 10_000
    layered_shape: tuple[int, int] = (100, 100)
    sleepy_tasks: int = 200
    real_cp_s: float = 0.5
    sequential_real_sleeps: bool = True


QUICK = Config(
    "quick",
    repeats_noop=2,
    repeats_sleep=2,
    repeats_virtual=1,
    layering_tasks=100_000,
    layering_repeats=2,
    scale_tasks=100_000,
    sequential_real_sleeps=False,
)
FULL = Config(
    "full",
    repeats_noop=7,
    repeats_sleep=5,
    repeats_virtual=2,
    layering_tasks=1_000_000,
    layering_repeats=5,
    scale_tasks=100_000,
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


def entries(names: Sequence[str], slots: int | None = None) -> list[Entry]:
    return [Entry(BY_NAME[n], slots) for n in names if n in AVAILABLE]


def measure(
    graph: Graph,
    chosen: Sequence[Entry],
    repeats: int,
    *,
    virtual: bool = False,
    warmup: bool = False,
) -> dict[str, list[Measurement]]:
    """Run every entry ``repeats`` times, round-robin (rotating the order each round).

    Each run is a fresh event loop; ``gc.collect()`` runs before each one and
    the collector stays enabled with default thresholds for every runner.
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
        k = r % len(prepared)
        for name, once in prepared[k:] + prepared[:k]:
            actual[:] = [math.nan] * len(graph)
            gc.collect()
            m = once()
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

NOOP_RUNNERS = [
    "tf.sequential",
    "tf.parallel",
    "tf.dataflow",
    "trio.layers",
    "trio.dataflow",
    "asyncio.layers",
    "asyncio.graphlib",
    "anyio.layers",
    "dask.sync",
    "dask.threaded",
]
BASELINES = ["trio.bare", "trio.move_on_after"]
TF_SLOTTED = ["tf.parallel", "tf.dataflow"]
CONCURRENT_DAG_RUNNERS = [
    "tf.parallel",
    "tf.dataflow",
    "trio.layers",
    "trio.dataflow",
    "asyncio.layers",
    "asyncio.graphlib",
    "anyio.layers",
    "dask.threaded",
]
SLOTTED_RUNNERS = [
    "tf.parallel",
    "tf.dataflow",
    "trio.layers",
    "trio.dataflow",
    "asyncio.layers",
    "asyncio.graphlib",
    "anyio.layers",
    "dask.threaded",
]
VIRTUAL_UNBOUNDED = ["tf.sequential", "tf.parallel", "tf.dataflow"]


def section_noop(cfg: Config) -> dict[str, Any]:
    n = cfg.noop_tasks
    graphs = [
        workloads.flat(n),
        workloads.chain(n),
        workloads.layered(*cfg.layered_shape),
    ]
    out: dict[str, Any] = {}
    for graph in graphs:
        chosen = entries(NOOP_RUNNERS) + entries(TF_SLOTTED, SLOTS)
        if graph.edges == 0:
            chosen = entries(BASELINES) + chosen
        log(
            f"[noop] {graph.name}: {len(graph):,} tasks, {graph.edges:,} edges, "
            f"{len(chosen)} runners x {cfg.repeats_noop} repeats"
        )
        runners.build_workflow(graph)
        samples = measure(graph, chosen, cfg.repeats_noop, warmup=True)
        out[graph.name] = {
            "tasks": len(graph),
            "edges": graph.edges,
            "layers": len(graph.layers()),
            "source": graph.source,
            "trioforge_compile_s": runners.COMPILE_S[graph.name],
            "runners": {name: summary(s, len(graph)) for name, s in samples.items()},
        }
        runners.clear_workflow_cache()
    return out


def section_sleepy(cfg: Config) -> dict[str, Any]:
    graph = workloads.sleepy(cfg.sleepy_tasks)
    cp = graph.critical_path()
    work = graph.total_work()
    lower4 = max(cp, work / SLOTS)
    ls4 = graph.list_schedule(SLOTS)
    log(
        f"[sleepy] {len(graph)} tasks, {graph.edges} edges, {len(graph.layers())} layers, "
        f"CP {cp * 1e3:.1f} ms, work {work * 1e3:.0f} ms, list-scheduling(4) {ls4 * 1e3:.1f} ms"
    )
    unbounded = CONCURRENT_DAG_RUNNERS
    if cfg.sequential_real_sleeps:
        unbounded = ["tf.sequential", *unbounded]
    chosen = entries(unbounded) + entries(SLOTTED_RUNNERS, SLOTS)
    log(f"[sleepy] real time: {len(chosen)} runners x {cfg.repeats_sleep} repeats")
    real = measure(graph, chosen, cfg.repeats_sleep)
    chosen_v = entries(VIRTUAL_UNBOUNDED) + entries(TF_SLOTTED, SLOTS)
    log(f"[sleepy] virtual time (MockClock): {len(chosen_v)} runners")
    virtual = measure(graph, chosen_v, cfg.repeats_virtual, virtual=True)

    def rows(samples: dict[str, list[Measurement]]) -> dict[str, Any]:
        result = {}
        for name, s in samples.items():
            d = summary(s, len(graph))
            span = d["makespan_median_s"]
            d["ratio_cp"] = span / cp
            if name.endswith(f"[{SLOTS}]"):
                d["ratio_lower_bound"] = span / lower4
                d["ratio_list_schedule"] = span / ls4
            result[name] = d
        return result

    runners.clear_workflow_cache()
    return {
        "tasks": len(graph),
        "edges": graph.edges,
        "layers": len(graph.layers()),
        "source": graph.source,
        "critical_path_s": cp,
        "work_s": work,
        "lower_bound_4_s": lower4,
        "list_schedule_4_s": ls4,
        "real": rows(real),
        "virtual": rows(virtual),
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
        work = graph.total_work()
        ls4 = graph.list_schedule(SLOTS)
        fast = workloads.scaled(graph, cfg.real_cp_s)
        fast_cp = fast.critical_path()
        chosen = entries(CONCURRENT_DAG_RUNNERS)
        log(
            f"[real] {graph.name}: {len(graph)} tasks, {graph.edges} edges, "
            f"CP {cp:.1f} s scaled to {fast_cp:.3f} s; {len(chosen)} runners x "
            f"{cfg.repeats_sleep} repeats"
        )
        real = measure(fast, chosen, cfg.repeats_sleep)
        chosen_v = entries(VIRTUAL_UNBOUNDED) + entries(TF_SLOTTED, SLOTS)
        virtual = measure(graph, chosen_v, cfg.repeats_virtual, virtual=True)
        real_rows = {}
        for name, s in real.items():
            d = summary(s, len(graph))
            d["ratio_cp"] = d["makespan_median_s"] / fast_cp
            real_rows[name] = d
        virtual_rows = {}
        for name, s in virtual.items():
            d = summary(s, len(graph))
            d["ratio_cp"] = d["makespan_median_s"] / cp
            if name.endswith(f"[{SLOTS}]"):
                d["ratio_list_schedule"] = d["makespan_median_s"] / ls4
            spans = {m.makespan for m in s}
            d["deterministic"] = len(spans) == 1
            virtual_rows[name] = d
        out["workflows"][graph.name] = {
            "file": graph.source,
            "tasks": len(graph),
            "edges": graph.edges,
            "layers": len(graph.layers()),
            "critical_path_s": cp,
            "work_s": work,
            "list_schedule_4_s": ls4,
            "scale_factor": fast_cp / cp,
            "scaled_critical_path_s": fast_cp,
            "real": real_rows,
            "virtual": virtual_rows,
        }
        runners.clear_workflow_cache()
    return out


def section_layering(cfg: Config) -> dict[str, Any]:
    log(f"[layering] {cfg.layering_tasks:,} tasks x {cfg.layering_repeats} repeats")
    result = layering.run(cfg.layering_tasks, cfg.layering_repeats, log=log)
    gc.collect()
    return result


def section_scale(cfg: Config) -> dict[str, Any]:
    script = HERE / "scalecheck.py"
    out: dict[str, Any] = {}
    variants = (
        ("plain", []),
        ("tracemalloc", ["--tracemalloc"]),
        ("trio", ["--runner", "trio"]),
        ("trio_tracemalloc", ["--runner", "trio", "--tracemalloc"]),
    )
    for label, extra in variants:
        log(f"[scale] {cfg.scale_tasks:,} tasks in a subprocess ({label})")
        proc = subprocess.run(
            [sys.executable, str(script), "--tasks", str(cfg.scale_tasks), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise RuntimeError(f"scalecheck.py ({label}) exited with {proc.returncode}")
        out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# -- targets ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    measured: float | None
    threshold: str
    passed: bool | None
    detail: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "N/A"
        return "PASS" if self.passed else "FAIL"


def virtual_exact(ratio: float) -> bool:
    # The MockClock adds floats in a different order than the forward sweep
    # that computes the critical path, so allow float rounding (and say so).
    return abs(ratio - 1.0) <= 1e-9


def _timer_note(d: dict[str, Any], block: dict[str, Any]) -> str:
    note = (
        f"/ CP of measured sleeps {d['ratio_cp_actual']:.4f}, "
        f"sleep overshoot {d['sleep_overshoot_s'] * 1e3:.2f} ms/task"
    )
    hand = block.get("trio.dataflow")
    if hand is not None:
        note += f"; hand-written trio.dataflow {hand['ratio_cp']:.4f}"
    return note


def evaluate(results: dict[str, Any], cfg: Config) -> list[Target]:
    targets: list[Target] = []
    noop = results.get("noop", {}).get("flat")
    if noop:
        r = noop["runners"]
        df = r["tf.dataflow"]["per_task_s"]
        bare = r.get("trio.bare", {}).get("per_task_s")
        if bare:
            targets.append(
                Target(
                    "flat: execute_dataflow per-task / bare trio nursery",
                    df / bare,
                    "<= 1.5",
                    df / bare <= 1.5,
                    f"{df * 1e6:.2f} us vs {bare * 1e6:.2f} us per task",
                )
            )
        anyio_t = r.get("anyio.layers", {}).get("per_task_s")
        targets.append(
            Target(
                "flat: execute_dataflow per-task / anyio task group",
                None if anyio_t is None else df / anyio_t,
                "< 1",
                None if anyio_t is None else df < anyio_t,
                "" if anyio_t is None else f"{df * 1e6:.2f} us vs {anyio_t * 1e6:.2f} us",
            )
        )
        dask_names = [k for k in ("dask.sync", "dask.threaded") if k in r]
        if dask_names:
            best = min(dask_names, key=lambda k: r[k]["per_task_s"])
            dk = r[best]["per_task_s"]
            targets.append(
                Target(
                    "flat: execute_dataflow per-task / Dask (its faster scheduler)",
                    df / dk,
                    "< 1",
                    df < dk,
                    f"{df * 1e6:.2f} us vs {dk * 1e6:.2f} us ({best})",
                )
            )
        else:
            targets.append(
                Target(
                    "flat: execute_dataflow per-task / Dask",
                    None,
                    "< 1",
                    None,
                    "dask not installed",
                )
            )
    sleepy = results.get("sleepy")
    if sleepy:
        d = sleepy["real"]["tf.dataflow"]
        real = d["ratio_cp"]
        targets.append(
            Target(
                "sleepy: dataflow makespan / CP (real time)",
                real,
                "<= 1.03",
                real <= 1.03,
                _timer_note(d, sleepy["real"]),
            )
        )
        virt = sleepy["virtual"]["tf.dataflow"]["ratio_cp"]
        targets.append(
            Target(
                "sleepy: dataflow makespan / CP (virtual time)",
                virt,
                "== 1.0",
                virtual_exact(virt),
                f"ratio - 1 = {virt - 1:.3g}",
            )
        )
        ls = sleepy["real"][f"tf.dataflow[{SLOTS}]"]["ratio_list_schedule"]
        virtual_ls = sleepy["virtual"][f"tf.dataflow[{SLOTS}]"]["ratio_list_schedule"]
        targets.append(
            Target(
                f"sleepy: dataflow[{SLOTS}] makespan / list scheduling (real time)",
                ls,
                "<= 1.05",
                ls <= 1.05,
                f"virtual time: {virtual_ls:.4f}",
            )
        )
    real_wf = results.get("real", {}).get("workflows", {})
    for name, wf in real_wf.items():
        d = wf["real"]["tf.dataflow"]
        v = d["ratio_cp"]
        targets.append(
            Target(
                f"{name}: dataflow makespan / CP (real time)",
                v,
                "<= 1.03",
                v <= 1.03,
                _timer_note(d, wf["real"]),
            )
        )
        vv = wf["virtual"]["tf.dataflow"]["ratio_cp"]
        targets.append(
            Target(
                f"{name}: dataflow makespan / CP (virtual time)",
                vv,
                "== 1.0",
                virtual_exact(vv),
                f"ratio - 1 = {vv - 1:.3g}",
            )
        )
    if "real" in results and not real_wf:
        targets.append(
            Target(
                "real workflows: dataflow makespan / CP",
                None,
                "<= 1.03",
                None,
                "no workflow files found",
            )
        )
    lay = results.get("layering")
    if lay:
        note = (
            ""
            if lay["tasks"] >= 1_000_000
            else (f"measured on {lay['tasks']:,} tasks (quick mode), the spec says 1,000,000")
        )
        targets.append(
            Target(
                f"execution_layers / rustworkx ({lay['tasks']:,} tasks)",
                lay["ratio"],
                "<= 2",
                lay["ratio"] <= 2,
                note,
            )
        )
    return targets


# -- reporting -------------------------------------------------------------------------------


def noop_table(noop: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    names: list[str] = []
    for wl in noop.values():
        for name in wl["runners"]:
            if name not in names:
                names.append(name)
    headers = ["runner"]
    for wl_name in noop:
        headers += [f"{wl_name} wall ms", f"{wl_name} us/task"]
    rows = []
    for name in names:
        row = [name]
        for wl in noop.values():
            d = wl["runners"].get(name)
            row += (
                ["-", "-"] if d is None else [rep.ms(d["wall_median_s"]), rep.us(d["per_task_s"])]
            )
        rows.append(row)
    compile_row = ["(tf: first Workflow.validate, untimed)"]
    audit_row = ["(tf.dataflow: first audit_log.events read, untimed)"]
    for wl in noop.values():
        compile_row += [rep.ms(wl["trioforge_compile_s"]), "-"]
        read = wl["runners"].get("tf.dataflow", {}).get("audit_read_median_s")
        audit_row += [rep.ms(read), rep.us(None if read is None else read / wl["tasks"])]
    rows += [compile_row, audit_row]
    return headers, rows


def makespan_table(
    block: dict[str, Any], *, four: bool = True
) -> tuple[list[str], list[list[str]]]:
    measured = any("ratio_cp_actual" in d for d in block.values())
    headers = ["runner", "makespan ms", "/ CP"]
    if four:
        headers += [f"/ max(CP, work/{SLOTS})", f"/ list-sched({SLOTS})"]
    if measured:
        headers += ["/ CP of measured sleeps", "sleep overshoot ms"]
    rows = []
    for name, d in block.items():
        row = [name, rep.ms(d["makespan_median_s"]), rep.ratio(d["ratio_cp"], 4)]
        if four:
            row += [
                rep.ratio(d.get("ratio_lower_bound"), 4),
                rep.ratio(d.get("ratio_list_schedule"), 4),
            ]
        if measured:
            row += [
                rep.ratio(d.get("ratio_cp_actual"), 4),
                rep.ms(d.get("sleep_overshoot_s"), 3),
            ]
        rows.append(row)
    return headers, rows


def real_tables(real: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    wfs = real["workflows"]
    if not wfs:
        return []
    info_headers = [
        "workflow",
        "tasks",
        "edges",
        "layers",
        "CP s",
        "work s",
        f"list-sched({SLOTS}) s",
        "scale",
    ]
    info_rows = [
        [
            name,
            str(w["tasks"]),
            str(w["edges"]),
            str(w["layers"]),
            f"{w['critical_path_s']:.1f}",
            f"{w['work_s']:,.1f}",
            f"{w['list_schedule_4_s']:,.1f}",
            f"{w['scale_factor']:.5f}",
        ]
        for name, w in wfs.items()
    ]
    short = {name: name.split("-")[0] for name in wfs}
    out = [("Real workflows", info_headers, info_rows)]
    for clock in ("real", "virtual"):
        names: list[str] = []
        for w in wfs.values():
            for n in w[clock]:
                if n not in names:
                    names.append(n)
        headers = ["runner"] + [short[n] for n in wfs]
        rows = [
            [n] + [rep.ratio(w[clock].get(n, {}).get("ratio_cp"), 4) for w in wfs.values()]
            for n in names
        ]
        if clock == "real":
            cp_s = next(iter(wfs.values()))["scaled_critical_path_s"]
            title = f"Real workflows, real sleeps (CP scaled to {cp_s:.2f} s): makespan / CP"
        else:
            title = "Real workflows, virtual time (MockClock): makespan / CP"
        out.append((title, headers, rows))
    rows = [
        [n] + [rep.ratio(w["real"].get(n, {}).get("ratio_cp_actual"), 4) for w in wfs.values()]
        for n in next(iter(wfs.values()))["real"]
    ]
    out.append(
        (
            "Real workflows, real sleeps: makespan / CP of the measured sleep durations "
            "(timer overshoot removed)",
            ["runner"] + [short[n] for n in wfs],
            rows,
        )
    )
    ls_rows = [
        [n]
        + [rep.ratio(w["virtual"].get(n, {}).get("ratio_list_schedule"), 4) for w in wfs.values()]
        for n in (f"tf.parallel[{SLOTS}]", f"tf.dataflow[{SLOTS}]")
    ]
    out.append(
        (
            f"Real workflows, virtual time: {SLOTS}-slot makespan / list scheduling({SLOTS})",
            ["runner"] + [short[n] for n in wfs],
            ls_rows,
        )
    )
    return out


def layering_table(lay: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    med = lay["median_s"]
    rx_t = med["rustworkx"]
    rows = [
        [
            "Workflow.execution_layers() (first call: compiles)",
            f"{med['trioforge']:.3f}",
            rep.ratio(med["trioforge"] / rx_t, 2),
        ],
        [
            "  of which Workflow.validate() (compiles)",
            f"{lay['compile_median_s']:.3f}",
            rep.ratio(lay["compile_median_s"] / rx_t, 2),
        ],
        ["rustworkx from plain id lists", f"{rx_t:.3f}", "1.00"],
        [
            "rustworkx + sort each layer by id",
            f"{med['rustworkx_sorted']:.3f}",
            rep.ratio(med["rustworkx_sorted"] / rx_t, 2),
        ],
    ]
    return ["", "median s", "/ rustworkx"], rows


def scale_table(scale: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    p = scale["plain"]
    t = scale["tracemalloc"]
    b = scale.get("trio")
    bt = scale.get("trio_tracemalloc")

    def both(fmt: Any, key: str) -> list[str]:
        return [fmt(p.get(key)), "-" if b is None else fmt(b.get(key))]

    def mem(x: float | None) -> str:
        return f"{rep.mib(x)} MiB"

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f} s"

    rows = [
        ["tasks / edges", f"{p['tasks']:,} / {p['edges']:,}", f"{p['tasks']:,} / {p['edges']:,}"],
        ["build (untimed)", *both(sec, "build_s")],
        ["Workflow.validate() (compiles)", sec(p["compile_s"]), "-"],
        ["trio.run wall", *both(sec, "execute_s")],
        [
            "per task",
            f"{p['execute_s'] / p['tasks'] * 1e6:.2f} us",
            "-" if b is None else f"{b['execute_s'] / b['tasks'] * 1e6:.2f} us",
        ],
        ["audit events kept in memory", f"{p['audit_events']:,}", "-"],
        ["peak RSS (VmHWM) after imports", *both(mem, "peak_rss_after_imports")],
        ["peak RSS (VmHWM) after building", *both(mem, "peak_rss_after_build")],
        ["peak RSS (VmHWM) after the run", *both(mem, "peak_rss")],
        [
            "tracemalloc peak during (compile +) run",
            mem(t["traced_peak"]),
            "-" if bt is None else mem(bt["traced_peak"]),
        ],
    ]
    return ["", "execute_dataflow", "hand-written trio.dataflow"], rows


def targets_table(targets: list[Target]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [
            t.name,
            "-" if t.measured is None else f"{t.measured:.4f}",
            t.threshold,
            t.verdict,
            t.detail,
        ]
        for t in targets
    ]
    return ["target", "measured", "threshold", "result", "detail"], rows


def all_tables(
    results: dict[str, Any], targets: list[Target]
) -> list[tuple[str, list[str], list[list[str]]]]:
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    if "noop" in results:
        h, r = noop_table(results["noop"])
        tables.append(
            ("No-op workloads: median wall time and per-task overhead (wall / tasks)", h, r)
        )
    if "sleepy" in results:
        s = results["sleepy"]
        h, r = makespan_table(s["real"])
        tables.append(
            (
                f"Sleepy, real sleeps (CP {s['critical_path_s'] * 1e3:.1f} ms, work "
                f"{s['work_s'] * 1e3:.0f} ms, list-sched({SLOTS}) "
                f"{s['list_schedule_4_s'] * 1e3:.1f} ms)",
                h,
                r,
            )
        )
        h, r = makespan_table(s["virtual"])
        tables.append(("Sleepy, virtual time (MockClock)", h, r))
    if "real" in results:
        tables += real_tables(results["real"])
    if "layering" in results:
        h, r = layering_table(results["layering"])
        tables.append(
            (
                f"Layering {results['layering']['tasks']:,} tasks "
                f"({results['layering']['edges']:,} edges, "
                f"{results['layering']['layers']} layers)",
                h,
                r,
            )
        )
    if "scale" in results:
        h, r = scale_table(results["scale"])
        tables.append(("Scale check: no-op tasks with random deps under execute_dataflow", h, r))
    h, r = targets_table(targets)
    tables.append(("Targets", h, r))
    return tables


def write_markdown(
    path: Path,
    results: dict[str, Any],
    targets: list[Target],
    cfg: Config,
    info: dict[str, Any],
    argv: Sequence[str],
) -> None:
    lines = [
        "# trioforge benchmark results",
        "",
        f"Mode: **{cfg.mode}** (`python benchmarks/run.py {' '.join(argv)}`), "
        f"{info['date']}, took {results['elapsed_s']:.0f} s.",
        "",
        "## Machine",
        "",
        rep.md_table(
            ["", ""],
            [
                ["CPU", info["cpu_model"]],
                ["cores", f"{info['cores']} ({info['cores_usable']} usable)"],
                [
                    "load average at start / end",
                    f"{' '.join(f'{x:.2f}' for x in info['load_average_start'])} / "
                    f"{' '.join(f'{x:.2f}' for x in info['load_average_end'])}",
                ],
                ["platform", info["platform"]],
                ["Python", f"{info['python']} ({info['python_implementation']})"],
                ["trio", info["trio"]],
                ["rustworkx", info["rustworkx"]],
                ["anyio", info["anyio"]],
                ["dask", info["dask"]],
                [
                    "trioforge",
                    f"{info['trioforge']}, commit {info['git_commit']}, sources "
                    f"{info['trioforge_sources_start']} ({info['trioforge_path']})"
                    + (
                        f"; CHANGED during the run to {info['trioforge_sources_end']} "
                        f"(commit {info['git_commit_end']})"
                        if info["sources_changed_during_run"]
                        else ""
                    ),
                ],
                ["GC", f"enabled={info['gc_enabled']}, thresholds {info['gc_thresholds']}"],
            ],
        ),
        "",
    ]
    for title, headers, rows in all_tables(results, targets):
        lines += [f"## {title}", "", rep.md_table(headers, rows), ""]
    lines += [
        "## Method",
        "",
        f"* Repeats: {cfg.repeats_noop} per runner on the no-op workloads (after one warm-up "
        f"run each), {cfg.repeats_sleep} with real sleeps, {cfg.repeats_virtual} in virtual "
        "time; every figure is the median. Runners take turns (round-robin, rotating the "
        "order every round), so background load spreads over all of them.",
        "* Every run is a fresh event loop (`trio.run`, `asyncio.run`, `anyio.run`) or a fresh "
        "`dask.get` call. `gc.collect()` runs before each run; the collector stays enabled "
        "with default thresholds for every runner.",
        "* Times are `time.perf_counter()`. *wall* is the whole `trio.run` / `asyncio.run` / "
        "`anyio.run` / `dask.*.get` call (loop start and stop included for everybody); "
        "per-task overhead is wall / tasks. *makespan* is measured inside the loop around the "
        "scheduling code (for dask it is the `get` call); in virtual time it is "
        "`trio.current_time()` under `MockClock(autojump_threshold=0)`.",
        "* Workloads (fixed seeds): flat = 10,000 independent no-ops; chain = 10,000 no-ops in "
        "a line; layered = 100 layers x 100, each task depending on 3 random tasks of the "
        "layer before; sleepy = 200 tasks with 0-3 random earlier dependencies sleeping "
        "1-50 ms (`trio.sleep`, `asyncio.sleep`, `anyio.sleep`, `time.sleep` in dask's "
        "threads). Real workflows: the JSON traces, runtimes scaled so the critical path is "
        f"{cfg.real_cp_s} s for real sleeps, as recorded in virtual time.",
        "* CP is the critical path (earliest finish with unlimited slots, forward sweep). "
        f"list-sched({SLOTS}) is a simulation of offline critical-path list scheduling: "
        "whenever a slot is free, start the ready task with the longest remaining path (its "
        "duration plus the longest chain below it; all tasks ending at the same instant are "
        "retired first). Dask's synchronous scheduler runs the no-op workloads only (its "
        "makespan is the total work); trioforge's sequential mode runs sleepy in virtual time "
        "and, in --full, with real sleeps; the real workflows with real sleeps run the "
        "concurrent runners only.",
        "* With real sleeps every task also measures how long its sleep really took. "
        "*/ CP of measured sleeps* divides the makespan by the critical path recomputed from "
        "those measured durations: it removes the timer's overshoot (an epoll timeout is a "
        "whole number of milliseconds, rounded up, so a `trio.sleep` or `asyncio.sleep` "
        "typically ends 0.5-1 ms late) and leaves what the scheduler itself added. "
        "*sleep overshoot* is the mean of (measured - requested) per task.",
        "* `trio.dataflow` is a hand-written, dependency-counting trio scheduler (about 15 "
        "lines): the least a dependency-driven trio scheduler can cost, i.e. the floor for "
        "`execute_dataflow`; `trio.bare` and `trio.move_on_after` run the flat workload only.",
        f"* `[{SLOTS}]` means at most {SLOTS} tasks at once: `max_concurrency={SLOTS}` for "
        "trioforge (tasks carry `estimate=duration`, so ready tasks start longest remaining "
        "path first), a `CapacityLimiter` / `Semaphore` for the hand-written peers (FIFO), "
        f"`num_workers={SLOTS}` for Dask.",
        "* trioforge's audit log: the default in-memory log is on in every trioforge run. The "
        "no-op table also shows, untimed, how long the first read of "
        "`executor.audit_log.events` takes after a run (the log may keep raw records and build "
        "the event objects when first read, so that cost is not in the run's wall time).",
        '* Virtual time, "exactly 1.0": the MockClock jumps by float differences, so the '
        "target accepts |ratio - 1| <= 1e-9; the JSON has the raw ratio.",
        "",
        "What each runner's timed region contains:",
        "",
    ]
    for r in runners.RUNNERS:
        lines.append(f"* `{r.name}` ({r.label}): {r.timed}.")
    lines += [
        "* layering: see `benchmarks/layering.py`; the `Workflow` is built beforehand and "
        "its compiled-graph cache dropped before each timed `execution_layers()` call, so "
        "every repeat includes the compile. rustworkx's time covers the id -> index dict, the "
        "edge list, the `PyDiGraph`, `topological_generations` and mapping back to ids.",
        "* scale: `benchmarks/scalecheck.py` in a fresh subprocess; peak RSS is that "
        "process's `VmHWM` (`ru_maxrss` of a child started by `subprocess` inherits the "
        "parent's high-water mark at exec on Linux, so it is only kept in the JSON); "
        "tracemalloc (a second subprocess) gives the peak of Python allocations during "
        "compile + run.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


# -- main --------------------------------------------------------------------------------------

AVAILABLE: set[str] = set()


def find_available() -> None:
    AVAILABLE.clear()
    optional = {"anyio.layers": "anyio", "dask.sync": "dask", "dask.threaded": "dask"}
    for r in runners.RUNNERS:
        module = optional.get(r.name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                log(f"WARNING: {module} is not installed; skipping {r.name}")
                continue
        AVAILABLE.add(r.name)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CI mode (~3 min)")
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
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.repeats is not None:
        cfg = Config(
            **{
                **asdict(cfg),
                "repeats_noop": args.repeats,
                "repeats_sleep": args.repeats,
                "repeats_virtual": args.repeats,
                "layering_repeats": args.repeats,
            }
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
        ("noop", section_noop),
        ("sleepy", section_sleepy),
        ("real", section_real),
        ("layering", section_layering),
        ("scale", section_scale),
    ]
    for name, step in steps:
        if name in only:
            t0 = time.perf_counter()
            results[name] = step(cfg)
            log(f"  ({name}: {time.perf_counter() - t0:.0f} s)")
    results["elapsed_s"] = time.perf_counter() - started
    rep.finish_info(info, workloads.REPO_ROOT)
    if info["sources_changed_during_run"]:
        log(
            "WARNING: trioforge's sources changed while the benchmarks ran (commit "
            f"{info['git_commit']} -> {info['git_commit_end']}); this process kept the code it "
            "imported first, the scale subprocesses imported the new one"
        )
    targets = evaluate(results, cfg)

    print()
    for title, headers, rows in all_tables(results, targets):
        print(title)
        print(rep.text_table(headers, rows))
        print()
    passed = sum(t.passed is True for t in targets)
    failed = sum(t.passed is False for t in targets)
    print(
        f"{passed} targets passed, {failed} failed, {len(targets) - passed - failed} not "
        f"measured; {results['elapsed_s']:.0f} s in all. (Missed targets do not fail "
        "this script.)"
    )

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    write_markdown(out_dir / "results.md", results, targets, cfg, info, argv)
    payload = {
        "machine": info,
        "results": results,
        "targets": [asdict(t) | {"verdict": t.verdict} for t in targets],
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
