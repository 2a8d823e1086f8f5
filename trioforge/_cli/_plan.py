"""What ``trioforge plan`` and ``trioforge graph`` print: pure text from a compiled workflow.

Nothing here runs a task. The plan is the executor's own view of the
workflow: the layers ``execute_parallel`` would run (a task's layer is its
longest chain of ``needs`` from a root, so a layer's tasks can run side by
side), and the critical path the dataflow scheduler prioritises. Graph output
is DOT (Graphviz) or Mermaid; Mermaid node ids are generated (``t1``, ``t2``,
...) because task ids such as ``end`` or ``a-b`` confuse its parser, and the
task id is the label.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from .._core import Workflow, pools_for

__all__ = ["command_text", "count", "render_dot", "render_mermaid", "render_plan", "spec_duration"]

_MAX_PER_LAYER = 25


def command_text(task: object) -> str:
    """The command a YAML task runs, as one line (empty for other kinds of task)."""
    inner = getattr(task, "task", task)
    command = getattr(inner, "run_command", None)
    if isinstance(command, str):
        lines = [" ".join(line.split()) for line in command.splitlines()]
        return "; ".join(line for line in lines if line)
    if isinstance(command, tuple):
        return shlex.join(command)
    return ""


def spec_duration(seconds: float) -> str:
    """A duration as a workflow file writes it, one format for all: ``30s``, ``1m``, ``1h5m30s``.

    Whole seconds are split into hours, minutes and seconds (units that are
    zero left out); a fraction of a second is kept as decimals (``1.5s``).
    """
    if seconds != int(seconds) or seconds < 1:
        return f"{seconds:g}s"
    rest = int(seconds)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value
    ]
    return "".join(parts)


def _details(task: object) -> str:
    parts: list[str] = []
    timeout = getattr(getattr(task, "task", task), "timeout", None)
    if timeout is not None:
        parts.append(f"timeout {spec_duration(timeout)}")
    retries = getattr(task, "retries", None)
    if retries:
        parts.append(f"retries {retries}")
    if getattr(task, "fallback", None) is not None:
        parts.append("fallback")
    if getattr(task, "has_compensation", False):
        parts.append("compensate")
    return ", ".join(parts)


def render_plan(
    workflow: Workflow,
    *,
    max_parallel: int,
    schedule: str = "dataflow",
    resources: Mapping[str, int] | None = None,
) -> str:
    """Layers, what runs side by side, the critical path, and who waits on which pool, as text.

    Raises:
        ResourceError: a task names a pool that ``resources`` lacks, or needs
            more units than its pool has: what a run would refuse before it starts.
    """
    demands = [(tid, getattr(task, "resources", None)) for tid, task in workflow.tasks.items()]
    pools_for(resources or {}, demands)
    layers = workflow.execution_layers()
    tasks = workflow.tasks
    width = max(len(layer) for layer in layers)
    lines = [
        f"{workflow.name}: {count(len(tasks), 'task')} in {count(len(layers), 'layer')}; "
        f"up to {min(width, max_parallel)} at once (max_parallel {max_parallel}, "
        f"schedule {schedule})",
        "",
    ]
    pad = min(max(len(tid) for tid in tasks), 30)
    for number, layer in enumerate(layers, 1):
        together = f" ({len(layer)} tasks can run in parallel)" if len(layer) > 1 else ""
        lines.append(f"layer {number}{together}")
        for task_id in layer[:_MAX_PER_LAYER]:
            task = tasks[task_id]
            needs = workflow.dependencies_of(task_id)
            line = f"  {task_id:<{pad}}  {command_text(task)}"
            notes = _details(task)
            if needs:
                shown = ", ".join(needs[:5]) + (f", +{len(needs) - 5}" if len(needs) > 5 else "")
                notes = f"needs {shown}" + (f"; {notes}" if notes else "")
            if notes:
                line += f"    [{notes}]"
            lines.append(line.rstrip())
        if len(layer) > _MAX_PER_LAYER:
            lines.append(f"  ... and {len(layer) - _MAX_PER_LAYER} more")
    path, total = workflow.critical_path()
    estimated = all(getattr(tasks[t], "estimate", None) is not None for t in path)
    cost = f"estimated {spec_duration(total)}" if estimated else count(len(path), "task")
    shown_path = path if len(path) <= 12 else [*path[:6], "...", *path[-5:]]
    lines += ["", f"critical path ({cost}): {' -> '.join(shown_path)}"]
    if schedule == "sequential":
        lines.append("schedule sequential: tasks run one at a time, in dependency order")
    lines += _pools(workflow, resources or {})
    return "\n".join(lines) + "\n"


def _pools(workflow: Workflow, capacities: Mapping[str, int]) -> list[str]:
    """``pool NAME (CAPACITY): TASK (UNITS), ...`` per pool: who waits on which pool."""
    users: dict[str, dict[int, list[str]]] = {name: {} for name in capacities}
    for task_id, task in workflow.tasks.items():
        for name, units in (getattr(task, "resources", None) or {}).items():
            users.setdefault(name, {}).setdefault(units, []).append(task_id)
    if not users:
        return []
    lines = ["", "resource pools (a task starts only when each pool it names has room):"]
    for name, by_units in users.items():
        capacity = capacities.get(name)
        parts = []
        for units in sorted(by_units):
            names = by_units[units]
            shown = ", ".join(names[:8]) + (f", +{len(names) - 8}" if len(names) > 8 else "")
            parts.append(f"{shown} ({units} each)" if len(names) > 1 else f"{shown} ({units})")
        size = "undefined" if capacity is None else str(capacity)
        lines.append(f"  pool {name} ({size}): {', '.join(parts) or 'no task'}")
    return lines


def count(number: int, noun: str) -> str:
    """``"1 task"``, ``"2 tasks"``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _edges(workflow: Workflow) -> list[tuple[str, str]]:
    return [(dep, tid) for tid in workflow for dep in workflow.dependencies_of(tid)]


def render_dot(workflow: Workflow) -> str:
    """The DAG in Graphviz DOT; an edge points from a task to the tasks that need it."""
    lines = [f"digraph {_quote(workflow.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {_quote(tid)};" for tid in workflow]
    lines += [f"  {_quote(a)} -> {_quote(b)};" for a, b in _edges(workflow)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(workflow: Workflow) -> str:
    """The DAG as a Mermaid flowchart; an edge points from a task to the tasks that need it."""
    ids = {tid: f"t{n}" for n, tid in enumerate(workflow, 1)}
    lines = ["flowchart LR"]
    lines += [f'  {ids[tid]}["{tid.replace(chr(34), "#quot;")}"]' for tid in workflow]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in _edges(workflow)]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
