"""A real workflow: survey this repository's Python code and write a report.

    python examples/repo_stats.py [ROOT] [--report PATH] [--audit PATH]

The DAG: ``discover`` lists the .py files; one ``scan`` task per top-level
folder counts lines, functions and classes (these run concurrently, each in a
worker thread so the event loop stays free); ``git`` asks git for the commit
count at the same time; ``summarize`` joins them; ``write-report`` writes the
report (its compensation deletes the file if a later step fails); ``verify``
reads it back. It runs with ``execute_dataflow``, prints the layers, the
critical path and each task's time, and streams the audit log as JSON Lines.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import trio

import trioforge as tf


def survey(files: list[Path]) -> dict[str, int]:
    """Count lines, functions and classes in some Python files (runs in a thread)."""
    counts: Counter[str] = Counter()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        counts["files"] += 1
        counts["lines"] += text.count("\n")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            counts["unparsable"] += 1
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                counts["functions"] += 1
            elif isinstance(node, ast.ClassDef):
                counts["classes"] += 1
    return dict(counts)


def build(root: Path, report: Path) -> tf.Workflow:
    """Build the workflow for one repository."""
    groups = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
    wf = tf.Workflow("repo-stats")

    @wf.task(timeout=30)
    async def discover(ctx: tf.TaskContext) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for group in groups:
            files = await trio.to_thread.run_sync(lambda g=group: sorted((root / g).rglob("*.py")))
            found[group] = files
        return found

    def scan_task(group: str) -> tf.Task:
        async def scan(ctx: tf.TaskContext) -> dict[str, int]:
            files = ctx.result_of("discover")[group]
            return await trio.to_thread.run_sync(survey, files)

        return tf.Task(f"scan-{group}", scan, depends_on=["discover"], timeout=60)

    for group in groups:
        wf.add_task(scan_task(group))

    @wf.task(timeout=10)
    async def git(ctx: tf.TaskContext) -> str:
        try:
            done = await trio.run_process(
                ["git", "-C", str(root), "rev-list", "--count", "HEAD"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        except OSError:
            return "git not available"
        return done.stdout.decode().strip() if done.returncode == 0 else "not a git checkout"

    @wf.task(depends_on=[f"scan-{g}" for g in groups] + ["git"])
    async def summarize(ctx: tf.TaskContext) -> dict[str, Any]:
        per_group = {g: ctx.result_of(f"scan-{g}") for g in groups}
        total: Counter[str] = Counter()
        for counts in per_group.values():
            total.update(counts)
        return {"groups": per_group, "total": dict(total), "commits": ctx.result_of("git")}

    async def remove_report(ctx: tf.TaskContext) -> None:
        await trio.Path(report).unlink(missing_ok=True)

    repo_name = root.resolve().name

    @wf.task(depends_on=["summarize"], compensate=remove_report)
    async def write_report(ctx: tf.TaskContext) -> str:
        summary = ctx.result_of("summarize")
        lines = [f"# Python code in {repo_name}", ""]
        lines.append(f"commits: {summary['commits']}")
        lines.append("")
        lines.append("| folder | files | lines | functions | classes |")
        lines.append("|---|---|---|---|---|")
        rows = [*summary["groups"].items(), ("**total**", summary["total"])]
        for name, counts in rows:
            cells = [str(counts.get(k, 0)) for k in ("files", "lines", "functions", "classes")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        await trio.Path(report).write_text("\n".join(lines) + "\n")
        return str(report)

    @wf.task(depends_on=["write_report"])
    async def verify(ctx: tf.TaskContext) -> int:
        text = await trio.Path(ctx.result_of("write_report")).read_text()
        if "| **total** |" not in text:
            raise ValueError(f"{report} has no total row")
        return len(text.splitlines())

    return wf


async def main(root: Path, report: Path, audit: Path) -> int:
    """Run the workflow and print what happened."""
    wf = build(root, report)
    print(f"workflow {wf.name!r}: {len(wf)} tasks")
    for i, layer in enumerate(wf.execution_layers()):
        print(f"  layer {i}: {', '.join(layer)}")
    executor = tf.WorkflowExecutor(wf, workflow_timeout=300, audit_path=audit)
    try:
        result = await executor.execute_dataflow()
    except tf.WorkflowError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        executor.audit_log.close()
    durations = {
        e.task_id: e.duration
        for e in executor.audit_log.of_type(tf.EventType.TASK_COMPLETED)
        if e.task_id is not None and e.duration is not None
    }
    for task_id in result.completed:
        print(f"  {task_id:<24} {durations[task_id] * 1000:8.1f} ms")
    work = sum(durations.values())
    print(
        f"done in {result.duration:.3f}s (sum of task times {work:.3f}s); "
        f"report: {report}; audit log: {audit}"
    )
    print(await trio.Path(report).read_text())
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "root", nargs="?", default=Path(__file__).resolve().parent.parent, type=Path
    )
    parser.add_argument("--report", default=Path(".trioforge/repo-stats.md"), type=Path)
    parser.add_argument("--audit", default=Path(".trioforge/repo-stats.audit.jsonl"), type=Path)
    args = parser.parse_args()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    sys.exit(trio.run(main, args.root, args.report, args.audit))
