"""``trioforge prune`` and the retention at the end of ``trioforge run``: old runs go.

A run is removed with its row, tasks, events and lease (one store
transaction, :meth:`SQLiteRunStore.delete_runs`), then its log folder. A run
that is being driven now (``running``, with a live lease) is never removed:
the store checks the lease again inside the transaction.

Which runs go: those beyond the newest ``keep``, and those that started more
than ``older_than`` seconds ago (either rule removes a run). The retention
that ``trioforge run`` applies when it ends comes from the file's
``retention:`` mapping, else ``[tool.trioforge] retention`` in the nearest
``pyproject.toml``, else keep the newest :data:`DEFAULT_KEEP` runs; it looks
only at the runs of the workflow just run.

The log folder of a run is ``logs/RUN`` beside the store (where
``.trioforge/runs.db`` puts it), and ``.trioforge/logs/RUN`` beside the
workflow file its definition names, when that differs; a custom
``--log-dir`` is not known to the store and its logs stay.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio
from rich.console import Console

from .._core import DurationError, parse_duration
from .._shell import display_path, run_folder
from .._store import RunRecord, RunStoreError, SQLiteRunStore

if TYPE_CHECKING:
    from .._workflow_file import WorkflowFile

__all__ = [
    "DEFAULT_KEEP",
    "Retention",
    "ignore_folder",
    "prune_runs",
    "retain",
    "retention_from_pyproject",
]

#: Runs kept when nothing says otherwise.
DEFAULT_KEEP = 100
#: Runs looked at, at most, per prune.
_SCANNED = 1_000_000


@attrs.frozen
class Retention:
    """Which runs to keep: the newest ``keep``, none older than ``older_than`` seconds."""

    keep: int | None = DEFAULT_KEEP
    older_than: float | None = None


@attrs.frozen
class Pruned:
    """What a prune removed (or, dry, would remove) and kept."""

    removed: list[RunRecord]
    kept: int
    logs: list[Path]


def _doomed(runs: Sequence[RunRecord], rule: Retention, now: float) -> list[RunRecord]:
    doomed = []
    for index, run in enumerate(runs):  # newest first
        if run.status == "running":
            continue  # live: never
        beyond = rule.keep is not None and index >= rule.keep
        old = rule.older_than is not None and now - run.started_at > rule.older_than
        if beyond or old:
            doomed.append(run)
    return doomed


def _log_folders(store: Path, run: RunRecord) -> list[Path]:
    folders = [run_folder(store.parent / "logs", run.id)]
    path = run.definition.get("path")
    if isinstance(path, str) and path:
        beside = run_folder(Path(path).parent / ".trioforge" / "logs", run.id)
        if beside.resolve() != folders[0].resolve():
            folders.append(beside)
    return [folder for folder in folders if folder.is_dir()]


def prune_runs(
    store: Path, rule: Retention, *, dry_run: bool = False, workflow: str | None = None
) -> Pruned:
    """Remove the runs ``rule`` does not keep (only ``workflow``'s, if given), and their logs."""

    async def main() -> Pruned:
        async with SQLiteRunStore(store) as opened:
            runs = await opened.list_runs(_SCANNED, workflow=workflow)
            doomed = _doomed(runs, rule, time.time())
            if dry_run or not doomed:
                logs = [f for run in doomed for f in _log_folders(store, run)]
                return Pruned(doomed, len(runs) - len(doomed), logs)
            deleted = set(await opened.delete_runs([run.id for run in doomed]))
        removed = [run for run in doomed if run.id in deleted]
        logs = [f for run in removed for f in _log_folders(store, run)]
        for folder in logs:
            shutil.rmtree(folder, ignore_errors=True)
        return Pruned(removed, len(runs) - len(removed), logs)

    return trio.run(main)


def describe(pruned: Pruned, store: Path, *, dry_run: bool) -> str:
    """One line saying what a prune did."""
    verb = "would remove" if dry_run else "removed"
    logs = f" and {len(pruned.logs)} log folder(s)" if pruned.logs else ""
    return (
        f"{verb} {len(pruned.removed)} run(s){logs} from {display_path(store)}; {pruned.kept} kept"
    )


def retention_from_mapping(data: object, where: str) -> Retention:
    """A :class:`Retention` from ``{keep: N, older_than: DURATION}`` (from a TOML table).

    Raises:
        ValueError: the mapping has other keys or values of the wrong kind.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: retention must be a table with keep and older_than")
    unknown = set(data) - {"keep", "older_than"}
    if unknown:
        raise ValueError(f"{where}: unknown retention key(s): {', '.join(sorted(unknown))}")
    keep = data.get("keep", DEFAULT_KEEP if "older_than" not in data else None)
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
        raise ValueError(f"{where}: retention keep must be a whole number >= 1, got {keep!r}")
    older = data.get("older_than")
    older_than = None
    if older is not None:
        try:
            older_than = parse_duration(older if isinstance(older, str) else str(older))
        except DurationError as exc:
            raise ValueError(f"{where}: retention older_than: {exc}") from None
    return Retention(keep, older_than)


def retention_from_pyproject(folder: Path) -> Retention | None:
    """``[tool.trioforge] retention`` of the nearest ``pyproject.toml`` above ``folder``.

    Raises:
        ValueError: the table is malformed (or the file is not TOML).
    """
    for parent in (folder.resolve(), *folder.resolve().parents):
        candidate = parent / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            with open(candidate, "rb") as file:
                data = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{candidate}: {exc}") from None
        table = data.get("tool", {}).get("trioforge", {})
        if "retention" not in table:
            return None
        return retention_from_mapping(table["retention"], f"{candidate} [tool.trioforge]")
    return None


def retain(store: Path, loaded: WorkflowFile, err: Console) -> None:
    """Apply the retention to the runs of ``loaded``'s workflow; never fail the run."""
    try:
        if loaded.retention is not None:
            rule = Retention(*loaded.retention)
        else:
            rule = retention_from_pyproject(loaded.path.parent) or Retention()
        prune_runs(store, rule, workflow=loaded.name)
    except (ValueError, OSError, sqlite3.Error, RunStoreError) as exc:
        err.print(f"trioforge: old runs were not pruned: {exc}", markup=False)


def ignore_folder(path: Path) -> None:
    """Give the ``.trioforge`` folder holding ``path`` a ``.gitignore`` of ``*``, once.

    As pytest's and ruff's caches do: the folder never shows in ``git status``.
    """
    for folder in (path, *path.parents):
        if folder.name == ".trioforge":
            ignore = folder / ".gitignore"
            if not ignore.exists():
                with contextlib.suppress(OSError):
                    folder.mkdir(parents=True, exist_ok=True)
                    ignore.write_text("# Created by trioforge: runs and logs, not sources.\n*\n")
            return
