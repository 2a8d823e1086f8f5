"""The run report: one self-contained HTML file with an SVG timeline and DAG.

:func:`render_report` turns a stored run and its events into a page that
needs nothing else: no JavaScript, no stylesheet or font to fetch, no URL but
the SVG namespace. Hovering works through SVG ``<title>`` elements, which
every browser shows as a tooltip.

The page is also well-formed XML (every element closed, only XML's own
entities, no control characters), so tests and tools can parse it with
``xml.etree``, and every piece of user text (task ids, errors, the workflow
name) goes through one escaping function. The numbers come from
:func:`build_timeline`; this module only draws them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from html import escape
from urllib.parse import quote

from .._core import AuditEvent, format_duration
from .._store import StoredRun, iso_time
from ._data import Attempt, TaskDetail, Timeline, build_timeline

__all__ = ["render_page", "render_report"]

SVG_NS = "http://www.w3.org/2000/svg"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

# Timeline geometry, in pixels.
_WIDTH = 1100
_LEFT = 56
_RIGHT = 16
_AXIS = 26
_LANE = 24
_BAR = 18
_CHAR = 6.6  # average width of a character of the 11px label font
# DAG geometry.
_NODE_W = 168
_NODE_H = 28
_COL_GAP = 64
_ROW_GAP = 14
_PAD = 10

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.summary dt { color: #666; }
dl.summary dd { margin: 0; font-variant-numeric: tabular-nums; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -1px; border: 1px solid #0003; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; }
.axis line { stroke: #ddd; }
.axis text, .lane-label { fill: #777; }
.bar { stroke: #0004; stroke-width: 1; }
.bar.critical, .node.critical rect { stroke: #111; stroke-width: 2.5; }
.label { fill: #fff; pointer-events: none; }
.legend i.critical-key { background: #fff; border: 2.5px solid #111; }
.resume { stroke: #6a1b9a; stroke-dasharray: 4 3; }
.completed { fill: #2e7d32; background: #2e7d32; }
.failed { fill: #c62828; background: #c62828; }
.timed_out { fill: #ef6c00; background: #ef6c00; }
.cancelled { fill: #8d8d8d; background: #8d8d8d; }
.running { fill: #1565c0; background: #1565c0; }
.interrupted { fill: #6a1b9a; background: #6a1b9a; }
.skipped { fill: #cfcfcf; background: #cfcfcf; }
.pending { fill: #fff; background: #fff; }
.node text { fill: #fff; pointer-events: none; }
.node.pending text, .node.skipped text { fill: #333; }
.node rect { stroke: #0005; stroke-width: 1; }
.edge { fill: none; stroke: #999; stroke-width: 1.2; }
.edge.critical { stroke: #111; stroke-width: 2.5; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 12px 3px 0; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.state i { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
td.error { color: #a00; white-space: pre-wrap; max-width: 60em; }
pre.log { background: #f6f6f6; border: 1px solid #ddd; padding: 8px; overflow-x: auto;
  white-space: pre-wrap; max-width: 110em; }
p.error { color: #a00; white-space: pre-wrap; }
"""
_LEGEND = ("completed", "failed", "timed_out", "cancelled", "running", "interrupted")


def text(value: object) -> str:
    """Escape any text for HTML and XML: ANSI colours dropped, control characters replaced."""
    cleaned = _NOT_XML.sub("\ufffd", _ANSI.sub("", str(value)))
    return escape(cleaned, quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}"


def render_report(
    run: StoredRun,
    events: Sequence[AuditEvent],
    *,
    now: float | None = None,
) -> str:
    """The report of one run as a self-contained HTML page.

    Args:
        run: the run, from :meth:`~trioforge.store.RunStore.load`.
        events: its events, from :meth:`~trioforge.store.RunStore.load_events`.
        now: for a live run, the time (epoch seconds) its running attempts
            are drawn up to; defaults to the last event's time.

    The page has a summary (workflow, run id, status, wall time against the
    sum of task times), a Gantt timeline with one bar per attempt, the
    critical path, the DAG, and a table of tasks.
    """
    return render_page(run, events, now=now)


def render_page(
    run: StoredRun,
    events: Sequence[AuditEvent],
    *,
    now: float | None = None,
    details: Sequence[TaskDetail] = (),
) -> str:
    """:func:`render_report`, with a section per failed or retried task (the command line's).

    Args:
        run: the run, from :meth:`~trioforge.store.RunStore.load`.
        events: its events, from :meth:`~trioforge.store.RunStore.load_events`.
        now: for a live run, the time (epoch seconds) its running attempts
            are drawn up to; defaults to the last event's time.
        details: the failed and retried tasks' errors, log excerpts, log
            links, full logs and outputs, in the order to show them.

    The page has a summary (workflow, run id, status, wall time against the
    sum of task times), a Gantt timeline with one bar per attempt, the
    critical path, the DAG, and a table of tasks; with ``details``, a
    section per failed or retried task (a full log folds away in a
    ``<details>`` element, which needs no script).
    """
    timeline = build_timeline(run, events, now=now)
    record = run.record
    critical = set(timeline.critical_path)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8"/>',
        f"<title>{text(record.workflow)} \u2013 run {text(record.id)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{text(record.workflow)}</h1>",
        _summary(run, timeline),
        "<h2>Timeline</h2>",
        _legend(),
        _gantt(timeline, critical),
        "<h2>Critical path</h2>",
        _critical_path(timeline),
        "<h2>Dependency graph</h2>",
        _dag(run, timeline, critical),
        "<h2>Tasks</h2>",
        _table(run, timeline),
        *_details(details),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(run: StoredRun, timeline: Timeline) -> str:
    record = run.record
    rows = [
        ("run", record.id),
        ("status", record.status),
        ("started", iso_time(record.started_at) or ""),
        ("finished", iso_time(record.finished_at) or "\u2013"),
        ("wall time", format_duration(timeline.wall) if timeline.wall > 0 else "0s"),
        ("sum of task times", format_duration(timeline.busy) if timeline.busy > 0 else "0s"),
        ("speed-up", f"\u00d7{timeline.speedup:.2f}"),
        ("tasks", _counts(run)),
    ]
    items = "".join(f"<dt>{text(k)}</dt><dd>{text(v)}</dd>" for k, v in rows)
    return f'<dl class="summary">{items}</dl>'


def _counts(run: StoredRun) -> str:
    counts: dict[str, int] = {}
    for task in run.tasks.values():
        counts[task.state] = counts.get(task.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"


def _legend() -> str:
    spans = "".join(
        f'<span><i class="{name}"></i>{name.replace("_", " ")}</span>' for name in _LEGEND
    )
    key = '<span><i class="critical-key"></i>black outline: critical path</span>'
    return f'<p class="legend">{spans}{key}</p>'


def _tick_step(span: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most 10 ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / 10
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def _gantt(timeline: Timeline, critical: set[str]) -> str:
    plot = _WIDTH - _LEFT - _RIGHT
    span = timeline.wall if timeline.wall > 0 else 1.0
    height = _AXIS + max(timeline.lanes, 1) * _LANE + 8

    def x(t: float) -> float:
        return _LEFT + (t - timeline.start) / span * plot

    out = [
        f'<svg xmlns="{SVG_NS}" class="gantt" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img">',
        '<g class="axis">',
    ]
    step = _tick_step(span)
    ticks = int(span / step + 1e-9)
    for i in range(ticks + 1):
        px = _num(_LEFT + i * step / span * plot)
        out.append(
            f'<line x1="{px}" y1="{_AXIS - 6}" x2="{px}" y2="{height - 4}"/>'
            f'<text x="{px}" y="{_AXIS - 10}" text-anchor="middle">'
            f"{text(format_duration(i * step) if i else '0')}</text>"
        )
    out.append("</g>")
    for lane in range(timeline.lanes):
        y = _AXIS + lane * _LANE + _BAR - 4
        out.append(f'<text class="lane-label" x="4" y="{y}">lane {lane + 1}</text>')
    counts: dict[str, int] = {}
    for attempt in timeline.attempts:
        counts[attempt.task_id] = max(counts.get(attempt.task_id, 0), attempt.number)
    out.extend(
        _bar(attempt, x, critical, several=counts[attempt.task_id] > 1, t0=timeline)
        for attempt in timeline.attempts
    )
    for when in timeline.resumes:
        px = _num(x(when))
        out.append(
            f'<line class="resume" x1="{px}" y1="{_AXIS - 6}" x2="{px}" y2="{height - 4}">'
            f"<title>resumed at {text(iso_time(when))}</title></line>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _bar(
    attempt: Attempt,
    x: Callable[[float], float],
    critical: set[str],
    *,
    several: bool,
    t0: Timeline,
) -> str:
    left = x(attempt.start)
    width = max(x(attempt.end) - left, 1.5)
    y = _AXIS + attempt.lane * _LANE
    classes = f"bar {attempt.outcome}" + (" critical" if attempt.task_id in critical else "")
    label = attempt.task_id + (f" #{attempt.number}" if several else "")
    lines = [
        f"{attempt.task_id} \u2013 attempt {attempt.number}: {attempt.outcome.replace('_', ' ')}",
        f"start: +{format_duration(max(attempt.start - t0.start, 0.0))} "
        f"({iso_time(attempt.start)})",
        f"duration: {format_duration(attempt.duration)}",
    ]
    if attempt.error:
        lines.append(f"error: {attempt.error}")
    bar = (
        f'<rect class="{classes}" x="{_num(left)}" y="{y}" width="{_num(width)}" '
        f'height="{_BAR}" rx="3" data-task="{text(attempt.task_id)}" '
        f'data-attempt="{attempt.number}"><title>{text(chr(10).join(lines))}</title></rect>'
    )
    room = int((width - 6) / _CHAR)
    if room >= 3:
        shown = label if len(label) <= room else label[: room - 1] + "\u2026"
        bar += f'<text class="label" x="{_num(left + 3)}" y="{y + _BAR - 5}">{text(shown)}</text>'
    return bar


def _critical_path(timeline: Timeline) -> str:
    if not timeline.critical_path:
        return "<p>No task took any time.</p>"
    chain = " \u2192 ".join(f"<code>{text(tid)}</code>" for tid in timeline.critical_path)
    share = timeline.critical_time / timeline.wall * 100 if timeline.wall > 0 else 0.0
    return (
        f'<p class="critical-path">{chain}<br/>'
        f"{text(format_duration(timeline.critical_time))} of task time along the chain "
        f"({share:.0f}% of the wall time).</p>"
    )


def _dag(run: StoredRun, timeline: Timeline, critical: set[str]) -> str:
    layers = timeline.layers or [timeline.ids]
    width = _PAD * 2 + len(layers) * _NODE_W + (len(layers) - 1) * _COL_GAP
    rows = max(len(layer) for layer in layers) if layers else 1
    height = _PAD * 2 + rows * _NODE_H + (rows - 1) * _ROW_GAP
    where: dict[str, tuple[float, float]] = {}
    for col, layer in enumerate(layers):
        for row, tid in enumerate(layer):
            where[tid] = (_PAD + col * (_NODE_W + _COL_GAP), _PAD + row * (_NODE_H + _ROW_GAP))
    on_path = set(zip(timeline.critical_path, timeline.critical_path[1:], strict=False))
    out = [
        f'<svg xmlns="{SVG_NS}" class="dag" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for before, after in timeline.edges:
        if before not in where or after not in where:
            continue
        x1, y1 = where[before]
        x2, y2 = where[after]
        sx, sy = x1 + _NODE_W, y1 + _NODE_H / 2
        ex, ey = x2, y2 + _NODE_H / 2
        mid = (sx + ex) / 2
        cls = "edge critical" if (before, after) in on_path else "edge"
        out.append(
            f'<path class="{cls}" d="M{_num(sx)},{_num(sy)} C{_num(mid)},{_num(sy)} '
            f'{_num(mid)},{_num(ey)} {_num(ex)},{_num(ey)}" data-from="{text(before)}" '
            f'data-to="{text(after)}"/>'
        )
    for tid, (nx, ny) in where.items():
        task = run.tasks.get(tid)
        state = task.state if task is not None else "pending"
        cls = f"node {state}" + (" critical" if tid in critical else "")
        room = int((_NODE_W - 12) / _CHAR)
        shown = tid if len(tid) <= room else tid[: room - 1] + "\u2026"
        tip = f"{tid}: {state}"
        if task is not None and task.attempts > 1:
            tip += f" after {task.attempts} attempts"
        out.append(
            f'<g class="{cls}" data-task="{text(tid)}"><title>{text(tip)}</title>'
            f'<rect class="{state}" x="{_num(nx)}" y="{_num(ny)}" width="{_NODE_W}" '
            f'height="{_NODE_H}" rx="5"/>'
            f'<text x="{_num(nx + 6)}" y="{_num(ny + _NODE_H / 2 + 4)}">{text(shown)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _table(run: StoredRun, timeline: Timeline) -> str:
    busy: dict[str, float] = {}
    for attempt in timeline.attempts:
        busy[attempt.task_id] = busy.get(attempt.task_id, 0.0) + attempt.duration
    rows = [
        "<table><thead><tr><th>task</th><th>state</th><th>attempts</th>"
        "<th>time</th><th>error</th></tr></thead><tbody>"
    ]
    for tid in timeline.ids:
        task = run.tasks.get(tid)
        state = task.state if task is not None else "pending"
        if task is not None and task.compensated:
            state += " (compensated)"
        attempts = task.attempts if task is not None else 0
        spent = busy.get(tid)
        error = task.error if task is not None and task.error else ""
        rows.append(
            f"<tr><td><code>{text(tid)}</code></td>"
            f'<td class="state"><i class="{text(state.split()[0])}"></i>{text(state)}</td>'
            f'<td class="num">{attempts}</td>'
            f'<td class="num">{text(format_duration(spent)) if spent else ""}</td>'
            f'<td class="error">{text(error)}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _details(details: Sequence[TaskDetail]) -> list[str]:
    """A section per failed or retried task: error, log link, last lines, outputs, full log."""
    if not details:
        return []
    parts = ["<h2>Failed and retried tasks</h2>"]
    for detail in details:
        parts.append(
            f'<h3 id="task-{text(detail.task_id)}"><code>{text(detail.task_id)}</code></h3>'
        )
        if detail.error:
            parts.append(f'<p class="error">{text(detail.error)}</p>')
        if detail.log_link is not None:
            link = text(quote(detail.log_link))
            parts.append(f'<p>log: <a href="{link}">{text(detail.log_link)}</a></p>')
        if detail.tail:
            lines = "\n".join(text(line) for line in detail.tail)
            parts.append(f"<p>last {len(detail.tail)} lines of the log:</p>")
            parts.append(f'<pre class="log">{lines}</pre>')
        if detail.outputs:
            rows = "".join(
                f"<tr><td><code>{text(key)}</code></td><td><code>{text(value)}</code></td></tr>"
                for key, value in detail.outputs
            )
            parts.append(
                f"<table><thead><tr><th>output</th><th>value</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
            )
        if detail.log is not None:
            parts.append(
                f'<details><summary>full log</summary><pre class="log">{text(detail.log)}</pre>'
                "</details>"
            )
    return parts
