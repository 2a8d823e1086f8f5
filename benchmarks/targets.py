"""The targets of issue 12 ("Targets" section), each with its measured figure and PASS/FAIL.

One :class:`Target` per line of the issue's list, in its order (a line that
names several figures gives several rows). Rows the issue asks to *report*
without a threshold have the verdict ``INFO``; a target whose section did
not run (or that quick mode skips) is ``N/A``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GIB = 2**30
MIB = 2**20


@dataclass
class Target:
    name: str
    measured: float | None
    threshold: str
    passed: bool | None
    detail: str = ""
    report_only: bool = False

    @property
    def verdict(self) -> str:
        if self.report_only and self.measured is not None:
            return "INFO"
        if self.passed is None:
            return "N/A"
        return "PASS" if self.passed else "FAIL"


def _missing(name: str, threshold: str, why: str) -> Target:
    return Target(name, None, threshold, None, why)


def _noop_targets(user: dict[str, Any] | None) -> list[Target]:
    out: list[Target] = []
    labels = {"flat": "flat 10k", "layered": "layered 100x100"}
    for wl, label in labels.items():
        block = (user or {}).get(wl)
        for method, key in (
            ("execute_dataflow", "tf.dataflow"),
            ("execute_parallel", "tf.parallel"),
        ):
            name_bare = f"{label}, as users run it: {method} / bare trio nursery"
            name_anyio = f"{label}, as users run it: {method} / anyio on trio"
            if block is None:
                out += [
                    _missing(name_bare, "<= 1.4", "section 'user' not run"),
                    _missing(name_anyio, "<= 0.5", "section 'user' not run"),
                ]
                continue
            r = block["runners"]
            tf_t = r[key]["per_task_s"]
            bare = r.get("trio.nursery", {}).get("per_task_s")
            anyio_t = r.get("anyio.layers", {}).get("per_task_s")
            out.append(
                Target(
                    name_bare,
                    None if bare is None else tf_t / bare,
                    "<= 1.4",
                    None if bare is None else tf_t / bare <= 1.4,
                    "" if bare is None else f"{tf_t * 1e6:.2f} vs {bare * 1e6:.2f} us/task",
                )
            )
            out.append(
                Target(
                    name_anyio,
                    None if anyio_t is None else tf_t / anyio_t,
                    "<= 0.5",
                    None if anyio_t is None else tf_t / anyio_t <= 0.5,
                    "anyio not installed"
                    if anyio_t is None
                    else f"{tf_t * 1e6:.2f} vs {anyio_t * 1e6:.2f} us/task",
                )
            )
    return out


def _scale_targets(scale: dict[str, Any] | None) -> list[Target]:
    out: list[Target] = []
    k100 = (scale or {}).get("100k")
    n1 = "100,000 tasks layered: execute_dataflow / bare trio nursery"
    n2 = "100,000 tasks layered: peak RSS with the audit log on (MiB)"
    if k100 is None:
        out += [_missing(n1, "<= 1.5", "section 'scale' not run")]
        out += [_missing(n2, "<= 150 MiB", "section 'scale' not run")]
    else:
        tf_r = k100["runners"]["tf.dataflow"]
        bare = k100["runners"]["trio.nursery"]
        ratio = tf_r["wall_median_s"] / bare["wall_median_s"]
        out.append(
            Target(
                n1,
                ratio,
                "<= 1.5",
                ratio <= 1.5,
                f"{tf_r['wall_median_s']:.3f} s vs {bare['wall_median_s']:.3f} s "
                f"({len(tf_r['samples'])} runs each)",
            )
        )
        rss = tf_r["peak_rss_max"]
        out.append(
            Target(
                n2,
                rss / MIB,
                "<= 150 MiB",
                rss <= 150 * MIB,
                f"largest of the runs (median {tf_r['peak_rss_median'] / MIB:.1f}); bare "
                f"nursery {bare['peak_rss_max'] / MIB:.1f} MiB; before the run "
                f"{tf_r['peak_rss_before_run'] / MIB:.1f} MiB (interpreter, imports, the "
                "workload's description)",
            )
        )
    m1 = (scale or {}).get("1m")
    n3 = "1,000,000 tasks layered: completes under execute_dataflow"
    n4 = "1,000,000 tasks layered: peak RSS with the audit log on (MiB, goal)"
    if m1 is None:
        why = "skipped (quick mode)" if scale is not None else "section 'scale' not run"
        out += [_missing(n3, "completes", why), _missing(n4, "<= 1024 MiB", why)]
    else:
        tf_r = m1["runners"]["tf.dataflow"]
        bare = m1["runners"]["trio.nursery"]
        n = m1["tasks"]
        t_tf = tf_r["wall_median_s"]
        t_bare = bare["wall_median_s"]
        out.append(
            Target(
                n3,
                t_tf,
                "completes",
                True,
                f"{t_tf:.2f} s, {t_tf / n * 1e6:.2f} us/task vs bare nursery "
                f"{t_bare / n * 1e6:.2f} us/task ({t_tf / t_bare:.2f}x); GC "
                f"{tf_r['gc_median_s']:.2f} s",
            )
        )
        rss = tf_r["peak_rss_max"]
        out.append(
            Target(
                n4,
                rss / MIB,
                "<= 1024 MiB",
                rss <= GIB,
                f"bare nursery {bare['peak_rss_max'] / MIB:.0f} MiB; before the run "
                f"{tf_r['peak_rss_before_run'] / MIB:.0f} MiB",
            )
        )
    return out


def _makespan_targets(sleepy: dict[str, Any] | None, real: dict[str, Any] | None) -> list[Target]:
    out: list[Target] = []
    name = "sleepy: makespan/CP of execute_dataflow - hand-written trio dataflow loop"
    if sleepy is None:
        out.append(_missing(name, "<= 0.005", "section 'sleepy' not run"))
    else:
        tf_r = sleepy["real"]["tf.dataflow"]["ratio_cp"]
        hand = sleepy["real"]["trio.dataflow"]["ratio_cp"]
        out.append(
            Target(
                name,
                tf_r - hand,
                "<= 0.005",
                tf_r - hand <= 0.005,
                f"{tf_r:.4f} vs {hand:.4f} (each from the start of its build to its last task)",
            )
        )
    wfs = (real or {}).get("workflows") or {}
    worst_name = "real traces: worst makespan/CP of execute_dataflow - hand-written loop"
    geo_name = "real traces: geomean makespan/CP of execute_dataflow"
    if not wfs:
        why = "section 'real' not run" if real is None else "no workflow files found"
        out += [_missing(worst_name, "<= 0.02", why), _missing(geo_name, "<= 1.03", why)]
        return out
    diffs = {
        n: w["real"]["tf.dataflow"]["ratio_cp"] - w["real"]["trio.dataflow"]["ratio_cp"]
        for n, w in wfs.items()
    }
    worst = max(diffs, key=lambda n: diffs[n])
    count = f"{len(wfs)} traces (the issue's set has 14)"
    out.append(
        Target(
            worst_name,
            diffs[worst],
            "<= 0.02",
            diffs[worst] <= 0.02,
            f"worst: {worst}; {count}",
        )
    )
    ratios = [w["real"]["tf.dataflow"]["ratio_cp"] for w in wfs.values()]
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    hand = [w["real"]["trio.dataflow"]["ratio_cp"] for w in wfs.values()]
    geo_hand = math.exp(sum(math.log(r) for r in hand) / len(hand))
    out.append(
        Target(
            geo_name,
            geo,
            "<= 1.03",
            geo <= 1.03,
            f"hand-written loop {geo_hand:.4f}; {count}",
        )
    )
    return out


def _durable_targets(dur: dict[str, Any] | None) -> list[Target]:
    out: list[Target] = []
    lib = (dur or {}).get("library", {})
    for wl, label in (("flat", "flat 10k"), ("layered", "layered 100x100")):
        name = f"durable, {label}: execute_dataflow with store / without, per task"
        d = lib.get(wl)
        if d is None:
            out.append(_missing(name, "<= 3", "section 'durable' not run"))
        else:
            n = d["tasks"]
            out.append(
                Target(
                    name,
                    d["ratio"],
                    "<= 3",
                    d["ratio"] <= 3,
                    f"{d['store_median_s'] / n * 1e6:.1f} vs {d['none_median_s'] / n * 1e6:.1f} "
                    "us/task, no concurrency limit",
                )
            )
        d8 = lib.get(f"{wl}[8]")
        name8 = f"durable, {label}, max_concurrency=8: with store / without (report)"
        if d8 is None:
            why = "skipped (quick mode)" if dur is not None else "section 'durable' not run"
            out.append(_missing(name8, "report", why))
        else:
            n = d8["tasks"]
            out.append(
                Target(
                    name8,
                    d8["ratio"],
                    "report",
                    None,
                    f"{d8['store_median_s'] / n * 1e6:.1f} vs {d8['none_median_s'] / n * 1e6:.1f} "
                    "us/task (batches of at most 8 tasks)",
                    report_only=True,
                )
            )
    cli = (dur or {}).get("cli", {})
    for n, threshold in ((1_000, None), (10_000, 1.25)):
        d = cli.get(str(n))
        name = f"durable, trioforge run {n:,} shell tasks: wall with store / --no-store"
        if threshold is None:
            name += " (report)"
        if d is None:
            why = "skipped (quick mode)" if dur is not None else "section 'durable' not run"
            out.append(_missing(name, "report" if threshold is None else "<= 1.25", why))
            continue
        detail = f"{d['store_median_s']:.2f} s vs {d['no_store_median_s']:.2f} s"
        if threshold is None:
            out.append(Target(name, d["ratio"], "report", None, detail, report_only=True))
        else:
            out.append(Target(name, d["ratio"], "<= 1.25", d["ratio"] <= threshold, detail))
    return out


def _layering_target(lay: dict[str, Any] | None) -> Target:
    name = "10^6-task layering: execution_layers / raw rustworkx"
    if lay is None:
        return _missing(name, "<= 2", "section 'layering' not run")
    note = (
        ""
        if lay["tasks"] >= 1_000_000
        else f"measured on {lay['tasks']:,} tasks (quick mode), the target is on 1,000,000"
    )
    return Target(name, lay["ratio"], "<= 2", lay["ratio"] <= 2, note)


def evaluate(results: dict[str, Any], mode: str) -> list[Target]:
    """Every target of the issue, in its order, from one run's results."""
    found = _noop_targets(results.get("user"))
    found += _scale_targets(results.get("scale"))
    found += _makespan_targets(results.get("sleepy"), results.get("real"))
    found += _durable_targets(results.get("durable"))
    found.append(_layering_target(results.get("layering")))
    if mode == "quick":
        for t in found:
            if t.detail:
                t.detail = f"{t.detail}; quick mode (few samples)"
            else:
                t.detail = "quick mode (few samples)"
    return found
