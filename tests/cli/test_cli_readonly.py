"""Reading a store without write access: runs, show and report work; resume says what it needs.

The tests run as root in CI, and root ignores file permissions. So the
commands run under ``setpriv`` without the capabilities that let root
override them (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``): the kernel then
checks the owner's mode bits, and a file and folder of mode 0444/0555 are
really read-only to the command. Run as another user, no ``setpriv`` is needed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import _env, cli

WORKFLOW = "name: ro\ntasks:\n  a:\n    run: 'true'\n  b:\n    needs: [a]\n    run: exit 3\n"
NO_OVERRIDE = "-dac_override,-dac_read_search"


def _as_unprivileged(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m trioforge ARGS`` subject to file permissions even when we are root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root needs setpriv (util-linux) to drop DAC override")
        prefix = [setpriv, f"--inh-caps={NO_OVERRIDE}", f"--bounding-set={NO_OVERRIDE}"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "trioforge", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A store with one failed run, in a folder made read-only (restored afterwards)."""
    (tmp_path / "ro.yaml").write_text(WORKFLOW)
    ran = cli("run", "ro.yaml", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    match = re.search(r"^run id: (\S+)$", ran.stdout, re.MULTILINE)
    assert match is not None
    folder = tmp_path / ".trioforge"
    store = folder / "runs.db"
    store.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield store, match.group(1)
    finally:
        folder.chmod(0o755)
        store.chmod(0o644)


def test_a_read_only_store_can_still_be_listed_shown_and_reported(
    locked_store: tuple[Path, str], tmp_path: Path
) -> None:
    """runs, show and report succeed on a store and folder nobody may write to."""
    store, run_id = locked_store
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    runs = _as_unprivileged("runs", "--store", str(store), cwd=tmp_path)
    shown = _as_unprivileged("show", run_id, "--store", str(store), cwd=tmp_path)
    report = _as_unprivileged("report", run_id, "--store", str(store), "-o", "-", cwd=tmp_path)
    assert (runs.returncode, runs.stderr) == (0, "")
    assert run_id in runs.stdout
    assert (shown.returncode, shown.stderr) == (0, "")
    assert "1 done, 0 pending, 1 failed" in shown.stdout
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("<!DOCTYPE html>")
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


def test_resume_says_it_needs_write_access(locked_store: tuple[Path, str], tmp_path: Path) -> None:
    """A resume of a read-only store exits 2 with one line that says it needs write access."""
    store, run_id = locked_store
    refused = _as_unprivileged("resume", run_id, "--store", str(store), cwd=tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert "resume needs write access to the run store" in line


def test_reading_leaves_the_files_journal_mode_alone(tmp_path: Path) -> None:
    """`show` of a store in rollback-journal mode does not switch it to WAL (a write)."""
    (tmp_path / "ro.yaml").write_text(WORKFLOW)
    ran = cli("run", "ro.yaml", cwd=tmp_path)
    match = re.search(r"^run id: (\S+)$", ran.stdout, re.MULTILINE)
    assert match is not None
    store = tmp_path / ".trioforge" / "runs.db"
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA journal_mode = DELETE").fetchone()
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    shown = cli("show", match.group(1), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    with sqlite3.connect(store) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
