"""Keeping the folder clean: `.trioforge/.gitignore`, `trioforge prune`, retention (14.5)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import trio
from cli_helpers import cli

from trioforge._store._owner import lease_owner
from trioforge.store import RunRecord, SQLiteRunStore

FILE = "name: w\ntasks:\n  t: {run: 'true'}\n"


def _run_ids(folder: Path) -> list[str]:
    result = cli("runs", "--json", "--limit", "1000", cwd=folder)
    assert result.returncode == 0, result.stderr
    return [run["id"] for run in json.loads(result.stdout)]


def test_the_trioforge_folder_ignores_itself(tmp_path: Path) -> None:
    """After a run `.trioforge/.gitignore` holds `*`, so git status shows nothing of it."""
    (tmp_path / "w.yaml").write_text(FILE)
    assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    assert "*" in (tmp_path / ".trioforge" / ".gitignore").read_text().splitlines()
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.splitlines() == ["?? w.yaml"]


def test_prune_keeps_the_newest_runs_and_removes_the_logs_of_the_rest(tmp_path: Path) -> None:
    """`prune --keep 2` removes the older runs and their log folders; --dry-run removes nothing."""
    (tmp_path / "w.yaml").write_text(FILE)
    for _ in range(4):
        assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    ids = _run_ids(tmp_path)
    assert len(ids) == 4
    dry = cli("prune", "--keep", "2", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 run(s) and 2 log folder(s)" in dry.stdout
    assert _run_ids(tmp_path) == ids
    result = cli("prune", "--keep", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "removed 2 run(s) and 2 log folder(s)" in result.stdout
    assert _run_ids(tmp_path) == ids[:2]
    logs = {p.name for p in (tmp_path / ".trioforge" / "logs").iterdir()}
    assert logs == set(ids[:2])


def test_prune_older_than_removes_only_old_runs(tmp_path: Path) -> None:
    """`--older-than 1h` keeps runs that started a moment ago."""
    (tmp_path / "w.yaml").write_text(FILE)
    assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    result = cli("prune", "--older-than", "1h", cwd=tmp_path)
    assert "removed 0 run(s)" in result.stdout
    assert len(_run_ids(tmp_path)) == 1


def test_prune_never_removes_a_live_run(tmp_path: Path) -> None:
    """A run whose lease a live process holds stays, whatever --keep says."""
    store = tmp_path / ".trioforge" / "runs.db"

    async def make() -> None:
        async with SQLiteRunStore(store) as opened:
            for number in range(2):
                record = RunRecord.start(
                    f"w-{number}", {"name": "w", "tasks": []}, started_at=time.time() - 10 + number
                )
                await opened.create_run(record)
            await opened.acquire_lease("w-0", lease_owner(), 600)  # this live process

    trio.run(make)
    result = cli("prune", "--keep", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(_run_ids(tmp_path)) == ["w-0", "w-1"]


def test_run_applies_the_files_retention(tmp_path: Path) -> None:
    """`retention: {keep: 2}` leaves the newest two runs after each run."""
    (tmp_path / "w.yaml").write_text("retention: {keep: 2}\n" + FILE)
    for _ in range(3):
        assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    assert len(_run_ids(tmp_path)) == 2


def test_run_applies_the_pyproject_retention(tmp_path: Path) -> None:
    """pyproject.toml's `[tool.trioforge] retention = {keep = 1}` applies if the file is silent."""
    (tmp_path / "pyproject.toml").write_text("[tool.trioforge]\nretention = {keep = 1}\n")
    (tmp_path / "w.yaml").write_text(FILE)
    for _ in range(2):
        assert cli("run", "w.yaml", "--quiet", cwd=tmp_path).returncode == 0
    assert len(_run_ids(tmp_path)) == 1


def test_delete_runs_skips_a_run_whose_lease_is_held(tmp_path: Path) -> None:
    """The store's delete_runs removes free runs, skips a leased one and unknown ids."""

    async def main() -> tuple[list[str], list[str]]:
        async with SQLiteRunStore(tmp_path / "runs.db") as opened:
            for run_id in ("a", "b"):
                definition = {"name": "w", "tasks": []}
                await opened.create_run(RunRecord.start(run_id, definition, started_at=1.0))
            await opened.acquire_lease("a", lease_owner(), 600)
            deleted = await opened.delete_runs(["a", "b", "missing"])
            left = [run.id for run in await opened.list_runs(10)]
        return deleted, left

    assert trio.run(main) == (["b"], ["a"])
