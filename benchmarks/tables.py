"""The tables of a benchmark run (plain text and Markdown) and ``results.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import reporting as rep
import runners
import userpath
from targets import Target

SLOTS = 4
Table = tuple[str, list[str], list[list[str]]]


def _ratio_to(d: dict[str, Any], other: dict[str, Any] | None) -> str:
    if other is None:
        return "-"
    return rep.ratio(d["per_task_s"] / other["per_task_s"], 2)


def user_tables(user: dict[str, Any]) -> list[Table]:
    """Headline: per-task cost on the user's path, ratios, and where the time goes."""
    out: list[Table] = []
    for wl, block in user.items():
        r = block["runners"]
        bare = r.get("trio.nursery")
        anyio_r = r.get("anyio.layers")
        rows = []
        for name, d in r.items():
            ph = d["phases_median"]
            gc_s = ph.get("gc_s", 0.0)
            rows.append(
                [
                    name,
                    rep.ms(d["wall_median_s"]),
                    rep.us(d["per_task_s"]),
                    _ratio_to(d, bare),
                    _ratio_to(d, anyio_r),
                    rep.ms(gc_s),
                    f"{gc_s / d['wall_median_s'] * 100:.0f}%",
                    f"{ph.get('gc_collections', 0):.0f} / {ph.get('gc_gen2', 0):.0f}",
                ]
            )
        title = (
            f"As users run it: {wl} ({block['tasks']:,} no-op tasks, {block['edges']:,} edges, "
            f"{block['layers']} layers), build + run, GC on"
        )
        headers = [
            "runner",
            "wall ms",
            "us/task",
            "/ bare nursery",
            "/ anyio",
            "GC ms",
            "GC share",
            "collections / gen 2",
        ]
        out.append((title, headers, rows))
    rows = []
    for wl, block in user.items():
        for name, d in block["runners"].items():
            ph = d["phases_median"]
            n = block["tasks"]

            def cell(key: str, ph: dict[str, float] = ph, n: int = n) -> str:
                if f"{key}_s" not in ph:
                    return "-"
                return f"{rep.us(ph[f'{key}_s'] / n)} ({rep.us(ph.get(f'{key}_gc_s', 0) / n)})"

            prep = cell("build") if "build_s" in ph else cell("prep")
            rows.append([wl, name, prep, cell("compile"), cell("run"), rep.us(d["per_task_s"])])
    out.append(
        (
            "Where the user's time goes: us/task per phase (of which GC), medians",
            ["workload", "runner", "build / prep", "compile", "run", "wall"],
            rows,
        )
    )
    return out


def cached_table(cached: dict[str, Any]) -> Table:
    names: list[str] = []
    for wl in cached.values():
        for name in wl["runners"]:
            if name not in names:
                names.append(name)
    headers = ["runner"]
    for wl_name in cached:
        headers += [f"{wl_name} wall ms", f"{wl_name} us/task"]
    rows = []
    for name in names:
        row = [name]
        for wl in cached.values():
            d = wl["runners"].get(name)
            row += (
                ["-", "-"] if d is None else [rep.ms(d["wall_median_s"]), rep.us(d["per_task_s"])]
            )
        rows.append(row)
    compile_row = ["(tf: first Workflow.validate, untimed)"]
    audit_row = ["(tf.dataflow: first audit_log.events read, untimed)"]
    for wl in cached.values():
        compile_row += [rep.ms(wl["trioforge_compile_s"]), "-"]
        read = wl["runners"].get("tf.dataflow", {}).get("audit_read_median_s")
        audit_row += [rep.ms(read), rep.us(None if read is None else read / wl["tasks"])]
    rows += [compile_row, audit_row]
    title = (
        "SECOND TABLE, not what users pay: warmed, prebuilt and cached workflow, one shared "
        "no-op function, the peers' structures built before the clock (the old method)"
    )
    return title, headers, rows


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
            row += [rep.ratio(d.get("ratio_cp_actual"), 4), rep.ms(d.get("sleep_overshoot_s"), 3)]
        rows.append(row)
    return headers, rows


def sleepy_tables(s: dict[str, Any]) -> list[Table]:
    h, r = makespan_table(s["real"])
    title = (
        f"Sleepy, real sleeps (CP {s['critical_path_s'] * 1e3:.1f} ms, work "
        f"{s['work_s'] * 1e3:.0f} ms, list-sched({SLOTS}) {s['list_schedule_4_s'] * 1e3:.1f} ms); "
        "makespan from the start of each runner's build to its last task"
    )
    hv, rv = makespan_table(s["virtual"])
    return [(title, h, r), ("Sleepy, virtual time (MockClock)", hv, rv)]


def _diff(block: dict[str, Any]) -> str:
    if "tf.dataflow" not in block or "trio.dataflow" not in block:
        return "-"
    return f"{block['tf.dataflow']['ratio_cp'] - block['trio.dataflow']['ratio_cp']:+.4f}"


def real_tables(real: dict[str, Any]) -> list[Table]:
    wfs = real["workflows"]
    if not wfs:
        return []
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
    info_headers = ["workflow", "tasks", "edges", "layers", "CP s", "work s"]
    info_headers += [f"list-sched({SLOTS}) s", "scale"]
    short = {name: name.split("-")[0] for name in wfs}
    out: list[Table] = [("Real workflows", info_headers, info_rows)]
    cols = ["runner"] + [short[n] for n in wfs]
    for clock in ("real", "virtual"):
        names: list[str] = []
        for w in wfs.values():
            for n in w[clock]:
                if n not in names:
                    names.append(n)
        rows = [
            [n] + [rep.ratio(w[clock].get(n, {}).get("ratio_cp"), 4) for w in wfs.values()]
            for n in names
        ]
        if clock == "real":
            rows.append(["tf.dataflow - trio.dataflow"] + [_diff(w["real"]) for w in wfs.values()])
            cp_s = next(iter(wfs.values()))["scaled_critical_path_s"]
            title = (
                f"Real workflows, real sleeps (CP scaled to {cp_s:.2f} s): makespan (from the "
                "start of the build) / CP"
            )
        else:
            title = "Real workflows, virtual time (MockClock): makespan / CP"
        out.append((title, cols, rows))
    rows = [
        [n] + [rep.ratio(w["real"].get(n, {}).get("ratio_cp_actual"), 4) for w in wfs.values()]
        for n in next(iter(wfs.values()))["real"]
    ]
    out.append(
        (
            "Real workflows, real sleeps: makespan / CP of the measured sleep durations "
            "(timer overshoot removed)",
            cols,
            rows,
        )
    )
    return out


def layering_table(lay: dict[str, Any]) -> Table:
    med = lay["median_s"]
    rx_t = med["rustworkx"]
    rows = [
        [
            "Workflow.execution_layers() (first call: compiles)",
            f"{med['trioforge']:.3f}",
            rep.ratio(med["trioforge"] / rx_t, 2),
        ],
        ["rustworkx from plain id lists", f"{rx_t:.3f}", "1.00"],
        [
            "rustworkx + sort each layer by id",
            f"{med['rustworkx_sorted']:.3f}",
            rep.ratio(med["rustworkx_sorted"] / rx_t, 2),
        ],
        ["(building the Workflow, untimed)", f"{lay['build_median_s']:.3f}", "-"],
    ]
    title = f"Layering {lay['tasks']:,} tasks ({lay['edges']:,} edges, {lay['layers']} layers)"
    return title, ["", "median s", "/ rustworkx"], rows


def scale_table(key: str, block: dict[str, Any]) -> Table:
    n = block["tasks"]
    names = list(block["runners"])
    rows: list[list[str]] = []

    def row(label: str, fn: Any) -> None:
        rows.append([label, *(fn(block["runners"][name]) for name in names)])

    def ph(key: str) -> Any:
        return lambda d: f"{d['phases_median'][key]:.3f}" if key in d["phases_median"] else "-"

    bare = block["runners"].get("trio.nursery")
    row("runs", lambda d: str(len(d["samples"])))
    row("wall s (median)", lambda d: f"{d['wall_median_s']:.3f}")
    row("us/task", lambda d: rep.us(d["wall_median_s"] / n))
    row(
        "/ bare nursery",
        lambda d: (
            "-" if bare is None else rep.ratio(d["wall_median_s"] / bare["wall_median_s"], 2)
        ),
    )
    row(
        "  build / prep s",
        lambda d: ph("build_s")(d) if "build_s" in d["phases_median"] else ph("prep_s")(d),
    )
    row("  compile s", ph("compile_s"))
    row("  run s", ph("run_s"))
    row("GC s (median)", lambda d: f"{d['gc_median_s']:.3f}")
    row(
        "GC collections / gen 2",
        lambda d: "{} / {}".format(
            sum(d["samples"][0]["gc_collections"]), d["samples"][0]["gc_collections"][2]
        ),
    )
    row("peak RSS before the run MiB", lambda d: rep.mib(d["peak_rss_before_run"]))
    row("peak RSS MiB (median)", lambda d: rep.mib(d["peak_rss_median"]))
    row("peak RSS MiB (largest)", lambda d: rep.mib(d["peak_rss_max"]))
    shape = block["shape"]
    title = (
        f"Scale: {n:,} layered no-op tasks ({shape[0]} layers x {shape[1]:,}, 3 deps each), "
        "user's path, one subprocess per run"
    )
    return title, ["", *names], rows


def durable_tables(dur: dict[str, Any]) -> list[Table]:
    rows = []
    for key, d in dur["library"].items():
        n = d["tasks"]
        rows.append(
            [
                key,
                str(d["max_concurrency"] or "none"),
                rep.ms(d["none_median_s"]),
                rep.ms(d["store_median_s"]),
                rep.us(d["none_median_s"] / n),
                rep.us(d["store_median_s"] / n),
                rep.ratio(d["ratio"], 2),
            ]
        )
    out: list[Table] = [
        (
            "Durable runs, library: execute_dataflow with store=SQLiteRunStore(path) vs none "
            f"(user's path, store opened and closed in the timed region; {dur['filesystem']})",
            [
                "workload",
                "max_concurrency",
                "no store ms",
                "store ms",
                "no store us/task",
                "store us/task",
                "store / none",
            ],
            rows,
        )
    ]
    rows = [
        [
            f"{int(n):,}",
            f"{d['no_store_median_s']:.2f}",
            f"{d['store_median_s']:.2f}",
            rep.ratio(d["ratio"], 2),
            f"{(d['ratio'] - 1) * 100:+.0f}%",
        ]
        for n, d in dur["cli"].items()
    ]
    out.append(
        (
            "Durable runs, command line: `python -m trioforge run FILE --quiet` on N shell "
            'tasks `cmd: ["true"]`, --store PATH vs --no-store (whole process)',
            ["tasks", "--no-store s", "--store s", "store / no store", "extra wall"],
            rows,
        )
    )
    return out


def targets_table(found: list[Target]) -> Table:
    rows = [
        [
            t.name,
            "-" if t.measured is None else f"{t.measured:.4f}",
            t.threshold,
            t.verdict,
            t.detail,
        ]
        for t in found
    ]
    return "Targets (issue 12)", ["target", "measured", "threshold", "result", "detail"], rows


def all_tables(results: dict[str, Any], found: list[Target]) -> list[Table]:
    out: list[Table] = []
    if "user" in results:
        out += user_tables(results["user"])
    if "scale" in results:
        for key, block in results["scale"].items():
            out.append(scale_table(key, block))
    if "durable" in results:
        out += durable_tables(results["durable"])
    if "sleepy" in results:
        out += sleepy_tables(results["sleepy"])
    if "real" in results:
        out += real_tables(results["real"])
    if "layering" in results:
        out.append(layering_table(results["layering"]))
    if "cached" in results:
        out.append(cached_table(results["cached"]))
    out.append(targets_table(found))
    return out


def _machine_rows(info: dict[str, Any]) -> list[list[str]]:
    changed = (
        f"; CHANGED during the run to {info['trioforge_sources_end']} "
        f"(commit {info['git_commit_end']})"
        if info["sources_changed_during_run"]
        else ""
    )
    return [
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
            f"{info['trioforge_sources_start']} ({info['trioforge_path']}){changed}",
        ],
        ["GC", f"enabled={info['gc_enabled']}, thresholds {info['gc_thresholds']}"],
    ]


METHOD = """\
* **The user's path** (the headline tables, the scale check, the makespans and the durable
  runs): the timed region starts before `tf.Workflow(...)` is built and ends when the result
  is back. Each task is its own coroutine function (a closure made in a loop: a new function
  object per task). Every peer pays the same way: its closures and its own structures
  (dependency counters and successor lists, the `graphlib.TopologicalSorter`, the Dask graph
  dict) are built inside its timed region. Only the workload's plain description (ids,
  dependency indices, the layer lists of the layered peers) exists beforehand: it stands for
  the user's source code.
* Each measurement is one fresh `trio.run` / `asyncio.run` / `anyio.run` (or one `dask.get`
  call); the scale check runs each measurement in a fresh subprocess. The garbage collector
  is on, with default thresholds, for everybody (never `gc.disable`); `gc.collect()` runs
  before each measurement, outside the timed region; `gc.callbacks` time every collection
  inside it (*GC ms*, *GC share*; the callbacks themselves cost two calls per collection).
* Repeats: {repeats_noop} per runner on the no-op workloads (after one untimed warm-up run
  each, so imports and first-call caches are not timed), {repeats_sleep} with real sleeps,
  {repeats_virtual} in virtual time, {scale_repeats} per runner at 100,000 tasks,
  {million_repeats} at 1,000,000, {durable_repeats} for the durable library runs and
  {cli_repeats} per command-line variant. Every figure is a median; runners take turns
  (round-robin, in a new seeded random order every round, so no runner always follows the
  same one), so ratios come from the same run and background load spreads over all of them.
* *wall* is the whole `trio.run` / `asyncio.run` / `anyio.run` / `dask.get` call (loop start
  and stop included for everybody); per task is wall / tasks. *makespan* is measured inside
  the loop from before the runner's build / preparation to its last task's end (in virtual
  time: `trio.current_time()` under `MockClock(autojump_threshold=0)`, where building takes
  no time). CP is the critical path (forward sweep); list-sched({slots}) simulates offline
  critical-path list scheduling. *"/ CP of measured sleeps"* divides by the critical path of
  how long each sleep really took (it removes trio's ~0.6 ms timer overshoot per sleep).
* Workloads (fixed seeds): flat = 10,000 independent no-ops; layered = 100 layers x 100,
  each task on 3 random tasks of the layer before; 100,000 = 100 layers x 1,000 and
  1,000,000 = 100 layers x 10,000, same rule; sleepy = 200 tasks, 0-3 random earlier
  dependencies, 1-50 ms sleeps; the real traces have their runtimes scaled so the critical
  path is {real_cp_s} s.
* Bare nursery (`trio.nursery`): the tasks' closures, then `async with trio.open_nursery()`
  per layer (one nursery for the flat workload). `trio.dataflow`: the hand-written
  dependency-counting loop (one nursery; each finished task `start_soon`s the dependents
  whose counter reaches zero), the floor of a dataflow scheduler on trio.
* trioforge's in-memory audit log (`WorkflowExecutor.audit_log`) is on in every trioforge
  run: `WorkflowExecutor` has no option to turn it off (`trioforge/_audit.py`: the log always
  keeps the events; sinks are extra), so there is only the "audit log on" figure.
* Peak RSS: the subprocess's own `VmHWM` (`/proc/self/status`), the whole process
  (interpreter, imports, the workload's description, the run). `getrusage(RUSAGE_CHILDREN)`
  in the driver is not used: on Linux a child started by `subprocess` inherits the driver's
  high-water mark at `exec`.
* Durable library runs: a new store file per run, opened (`async with SQLiteRunStore(path)`)
  and closed inside the timed region, default `synchronous="full"`. Command line: the whole
  `python -m trioforge run FILE --quiet` process with `--store NEW_PATH` or `--no-store`,
  default `--max-parallel` (the CPUs), task logs written beside the file (removed between
  runs).
* Layering: a new `Workflow` per repeat, built outside the timed region; the timed call is its
  first `execution_layers()` (the compile included). rustworkx's time covers the id -> index
  dict, the edge list, the `PyDiGraph`, `topological_generations` and mapping back to ids.
* The SECOND TABLE keeps the old method for comparison: a workflow built and compiled once
  before the clock, reused across repeats, with one no-op function shared by all tasks; a
  warm-up run; the peers' layer lists and bodies prepared beforehand.
"""


def write_markdown(
    path: Path,
    results: dict[str, Any],
    found: list[Target],
    cfg: Any,
    info: dict[str, Any],
    argv: Sequence[str],
) -> None:
    lines = [
        "# trioforge benchmark results",
        "",
        f"Mode: **{cfg.mode}** (`python benchmarks/run.py {' '.join(argv)}`), "
        f"{info['date']}, took {results['elapsed_s']:.0f} s. The machine may be shared "
        "with other work: see the load averages.",
        "",
        "## Machine",
        "",
        rep.md_table(["", ""], _machine_rows(info)),
        "",
    ]
    for title, headers, rows in all_tables(results, found):
        lines += [f"## {title}", "", rep.md_table(headers, rows), ""]
    lines += [
        "## Method",
        "",
        METHOD.format(slots=SLOTS, **{k: v for k, v in vars(cfg).items()}),
        "What each runner's timed region contains (user's path):",
        "",
    ]
    for r in userpath.USER_RUNNERS:
        lines.append(f"* `{r.name}` ({r.label}): {r.timed}.")
    lines += ["", "Second table (old method):", ""]
    for r in runners.RUNNERS:
        lines.append(f"* `{r.name}` ({r.label}): {r.timed}.")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
