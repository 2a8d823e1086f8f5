"""The files a shareable report draws on: each failed or retried task's log and outputs.

The report itself (``_report``) draws data; this module reads it from disk
for ``trioforge report``: the last lines of the log (control characters
removed), the whole log with ``--logs``, what the task wrote to
``$TRIOFORGE_OUTPUT`` and a link to the log relative to the report file, so
the report and the ``.trioforge`` folder can be moved together.

A run's logs are in ``logs/RUN`` beside the store, or in ``.trioforge/logs/RUN``
beside the workflow file its definition names (the same folder unless
``--store`` put the store elsewhere); a custom ``--log-dir`` is not recorded,
and its logs are not found.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from .._report import TaskDetail
from .._shell import run_folder
from .._shell._files import read_outputs, read_regular, task_file_stem
from .._store import StoredRun
from ._summary import TAIL_LINES, tail

__all__ = ["MAX_EMBEDDED", "task_details"]

#: Bytes of one log embedded by ``report --logs``; the rest is left out, with a note.
MAX_EMBEDDED = 16 * 1024 * 1024


def _folders(run: StoredRun, store: Path) -> list[Path]:
    folders = [run_folder(store.parent / "logs", run.id)]
    path = run.record.definition.get("path")
    if isinstance(path, str) and path:
        folders.append(run_folder(Path(path).parent / ".trioforge" / "logs", run.id))
    return folders


def _link(path: Path, report_dir: Path) -> str:
    return PurePath(os.path.relpath(path.absolute(), report_dir.absolute())).as_posix()


def _outputs(folder: Path, stem: str, run: StoredRun, task_id: str) -> tuple[tuple[str, str], ...]:
    try:
        written = read_outputs(folder / f"{stem}.outputs")
    except ValueError:
        written = {}
    if not written:
        try:
            written = dict(getattr(run.tasks[task_id].result(), "outputs", {}) or {})
        except (ValueError, KeyError, TypeError):
            written = {}
    return tuple((str(key), str(value)) for key, value in written.items())


def _full_log(path: Path) -> str | None:
    try:
        data = read_regular(path, MAX_EMBEDDED + 1)
    except OSError:
        return None
    text = data[:MAX_EMBEDDED].decode("utf-8", errors="replace")
    if len(data) > MAX_EMBEDDED:
        text += f"\n[trioforge] ... the log goes on past {MAX_EMBEDDED // (1024 * 1024)} MiB"
    return text


def task_details(
    run: StoredRun,
    store: Path,
    report_dir: Path,
    *,
    embed_logs: bool = False,
    lines: int = TAIL_LINES,
) -> list[TaskDetail]:
    """A :class:`TaskDetail` for each task of ``run`` that failed or needed more than one attempt.

    Args:
        run: the run.
        store: the run store's path (its logs are beside it).
        report_dir: the folder the report is written to (links are relative to it).
        embed_logs: include each such task's whole log.
        lines: how many of the log's last lines to show.
    """
    details = []
    folders = _folders(run, store)
    for task_id, task in run.tasks.items():
        if task.state != "failed" and task.attempts <= 1 and not task.error:
            continue
        stem = task_file_stem(task_id)
        folder = next((f for f in folders if (f / f"{stem}.log").is_file()), None)
        if folder is None:
            details.append(TaskDetail(task_id, error=task.error))
            continue
        log = folder / f"{stem}.log"
        details.append(
            TaskDetail(
                task_id,
                error=task.error,
                log_link=_link(log, report_dir),
                tail=tuple(tail(log, lines)),
                log=_full_log(log) if embed_logs else None,
                outputs=_outputs(folder, stem, run, task_id),
            )
        )
    return details
