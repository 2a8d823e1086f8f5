"""Plain-text and Markdown tables, number formats and machine information."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = Sequence[str]

_NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?(s|ms|us|MiB|%))?$|^-$|^N/A$")


def _numeric_columns(headers: Row, rows: Sequence[Row]) -> list[bool]:
    """A column is right-aligned when every cell in it is a number (or '-')."""
    return [
        i > 0 and all(_NUMERIC.match(row[i].strip()) for row in rows if i < len(row))
        for i in range(len(headers))
    ]


def text_table(headers: Row, rows: Sequence[Row]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    numeric = _numeric_columns(headers, rows)

    def line(cells: Row) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def md_table(headers: Row, rows: Sequence[Row]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    head = "| " + " | ".join(esc(h) for h in headers) + " |"
    numeric = _numeric_columns(headers, rows)
    align = "|" + "|".join("--:" if num else ":--" for num in numeric) + "|"
    body = ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join([head, align, *body])


def ms(seconds: float | None, digits: int = 1) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.{digits}f}"


def us(seconds: float | None, digits: int = 2) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.{digits}f}"


def ratio(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:,.1f}"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")


def trioforge_digest() -> str:
    """A short hash of the imported trioforge package's sources (detects edits mid-run)."""
    import trioforge

    folder = Path(trioforge.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def machine_info(root: Path) -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "load_average_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "trio": _version("trio"),
        "rustworkx": _version("rustworkx"),
        "trioforge": _version("trioforge"),
        "anyio": _version("anyio"),
        "dask": _version("dask"),
        "gc_enabled": gc.isenabled(),
        "gc_thresholds": list(gc.get_threshold()),
        "git_commit": _git_commit(root),
        "trioforge_path": _trioforge_path(),
        "trioforge_sources_start": trioforge_digest(),
    }


def _trioforge_path() -> str:
    import trioforge

    return str(Path(trioforge.__file__).resolve().parent)


def finish_info(info: dict[str, Any], root: Path) -> None:
    """Record the end-of-run state, and whether trioforge's sources changed during the run."""
    info["load_average_end"] = list(os.getloadavg())
    info["git_commit_end"] = _git_commit(root)
    info["trioforge_sources_end"] = trioforge_digest()
    info["sources_changed_during_run"] = (
        info["trioforge_sources_start"] != info["trioforge_sources_end"]
    )
