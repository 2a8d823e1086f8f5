"""The end of ``trioforge run``: the summary table, the speed-up, and what failed, with its log.

Built from a :class:`RunTracker` after the run, so it shows what the audit
events say happened. The speed-up compares the run's wall time (less the
rollback's) with the sum of the time every attempt of every task took: what
the same work would have cost one task at a time. For a failed task, the
last :data:`TAIL_LINES` lines of its log are shown (read from the end of the
file, so a huge log costs nothing, and without control characters), which is
usually all a person needs to see why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._core import format_duration
from .._shell import display_path
from .._shell._files import open_regular
from ._progress import STYLES, RunTracker, TaskRecord, short_error

__all__ = ["TAIL_LINES", "clean_line", "print_failures", "print_summary", "tail"]

TAIL_LINES = 20
_ROWS_IF_LARGE = 50
_TAIL_BYTES = 64 * 1024
#: C0 and C1 control characters but tab: a task's log must not drive the terminal.
#: (Colour and cursor sequences, ``ESC [ ... letter``, go as a whole.)
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a text file (empty if it cannot be read).

    Control characters (escape sequences, carriage returns) are removed, so
    printing the lines cannot move the cursor or change the terminal.
    """
    try:
        with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - _TAIL_BYTES))
            data = file.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    if not text:
        return []
    return [clean_line(line) for line in text.removesuffix("\n").split("\n")[-lines:]]


def clean_line(line: str) -> str:
    """``line`` without control characters (but tab), so printing it cannot drive a terminal."""
    return _CONTROL.sub("", line)


def _status(record: TaskRecord, results: Mapping[str, Any] | None) -> str:
    status = record.status
    if record.earlier:
        return "ok (before the resume)"
    if (
        status == "ok"
        and results is not None
        and getattr(results.get(record.task_id), "fallback", False)
    ):
        status = "ok (fallback)"
    if record.rollback is not None:
        status += f", {'rolled back' if record.rollback == 'compensated' else record.rollback}"
    return status


def print_summary(
    console: Console,
    tracker: RunTracker,
    *,
    results: Mapping[str, Any] | None = None,
    schedule: str,
    max_parallel: int,
) -> None:
    """Print the table of tasks and the wall time against the summed task time."""
    records = list(tracker.records.values())
    shown = records
    if len(records) > _ROWS_IF_LARGE:
        shown = [r for r in records if r.status != "ok" or r.rollback is not None]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("task", no_wrap=True)
    table.add_column("status")
    table.add_column("attempts", justify="right")
    table.add_column("time", justify="right")
    for record in shown:
        symbol, style = STYLES.get(record.status, ("•", ""))
        table.add_row(
            Text(record.task_id),
            Text(f"{symbol} {_status(record, results)}", style=style),
            str(record.attempts),
            format_duration(record.busy) if record.attempts and not record.earlier else "-",
        )
    if shown:
        console.print(table)
    hidden = len(records) - len(shown)
    if hidden:
        console.print(f"... and {hidden} more tasks, all ok")
    busy = sum(r.busy for r in records)
    wall = tracker.duration
    if wall is not None:
        # The rollback is part of the wall time but not of the task time.
        working = wall - tracker.rollback
        rollback = f" (rollback {format_duration(tracker.rollback)})" if tracker.rollback else ""
        console.print(
            f"wall time {format_duration(wall)}{rollback}, task time {format_duration(busy)} "
            f"({schedule}, max_parallel {max_parallel})",
            highlight=False,
        )
        if working > 0 and busy > 0:
            less = " without the rollback" if tracker.rollback else ""
            console.print(
                f"speed-up {busy / working:.1f}x = task time {format_duration(busy)} / "
                f"wall time{less} {format_duration(working)}",
                highlight=False,
            )


def print_failures(console: Console, tracker: RunTracker, *, lines: int = TAIL_LINES) -> None:
    """For each failed or timed-out task, a header and the last ``lines`` lines of its log.

    The header is the one place the log's path is printed.
    """
    for record in tracker.records.values():
        if (
            record.status not in ("failed", "timed out")
            and record.rollback != "compensation failed"
        ):
            continue
        path = tracker.log_path(record.task_id)
        where = f" (log: {display_path(path)})" if path is not None else ""
        what = record.status if record.status in ("failed", "timed out") else record.rollback
        console.print(
            Text.assemble(
                ("── ", "red"), (record.task_id, "bold red"), (f" {what}{where}", "red")
            ),
            highlight=False,
        )
        if record.error:
            console.print(Text(short_error(record.error)), highlight=False)
        excerpt = tail(path, lines) if path is not None and lines > 0 else []
        if excerpt:
            console.print(Text(f"last {len(excerpt)} lines of the log:", style="dim"))
            for line in excerpt:
                console.print(Text("  " + line), highlight=False, soft_wrap=True)
