"""Durable runs: what recording a run in the SQLite store costs.

Library: ``execute_dataflow`` on no-op workloads, with ``store=SQLiteRunStore(path)``
(a new file per run) and without a store, both on the user's path (the
``Workflow`` is built inside the timed region, like ``userpath.py``; the store
is opened and closed inside it too, ``async with``).

Command line: ``python -m trioforge run FILE --quiet`` on a generated YAML
file of N shell tasks ``cmd: ["true"]`` with ``--store PATH`` (a new file per
run) and with ``--no-store``; the timed region is the whole process
(interpreter start, import, load, run, task logs). Everything lives in a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from userpath import build_workflow
from workloads import Graph

import trioforge as tf

perf = time.perf_counter


def _store_class() -> type[Any]:
    """The SQLite store, wherever this version of trioforge exports it."""
    try:
        from trioforge.store import SQLiteRunStore  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return tf.SQLiteRunStore
    return SQLiteRunStore  # type: ignore[no-any-return,unused-ignore]


def library_once(graph: Graph, slots: int | None, store_path: Path | None) -> float:
    """One user-path ``execute_dataflow`` run, optionally recorded in a new store file."""
    n = len(graph)

    async def main() -> None:
        wf = build_workflow(graph)
        if store_path is None:
            result = await tf.WorkflowExecutor(wf, max_concurrency=slots).execute_dataflow()
        else:
            async with _store_class()(store_path) as store:
                executor = tf.WorkflowExecutor(wf, max_concurrency=slots, store=store)
                result = await executor.execute_dataflow()
        if len(result.completed) != n:
            raise RuntimeError(f"completed {len(result.completed)} of {n}")

    t0 = perf()
    trio.run(main)
    return perf() - t0


def measure_library(
    graph: Graph,
    slots: int | None,
    repeats: int,
    tmp_root: Path | None,
    log: Callable[[str], None],
    collect: Callable[[], object],
) -> dict[str, list[float]]:
    """``repeats`` runs with and without a store, alternating (the order flips every round)."""
    samples: dict[str, list[float]] = {"none": [], "store": []}
    folder = Path(tempfile.mkdtemp(prefix="tf-bench-store-", dir=tmp_root))
    try:
        for r in range(repeats):
            order = ["none", "store"] if r % 2 == 0 else ["store", "none"]
            for kind in order:
                path = folder / f"runs-{r}.db" if kind == "store" else None
                collect()
                samples[kind].append(library_once(graph, slots, path))
            log(
                f"    repeat {r + 1}/{repeats}: no store {samples['none'][-1]:.3f} s, "
                f"store {samples['store'][-1]:.3f} s"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return samples


def write_shell_workflow(path: Path, n: int) -> None:
    """A YAML workflow of ``n`` independent shell tasks that run ``true``."""
    width = len(str(n - 1))
    lines = [f"name: noop-shell-{n}", "tasks:"]
    for i in range(n):
        lines += [f"  t{i:0{width}d}:", '    cmd: ["true"]']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _env() -> dict[str, str]:
    """The environment for the command, importing the same trioforge as this process."""
    env = dict(os.environ)
    package_parent = str(Path(tf.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    env.pop("TRIOFORGE_STORE", None)
    return env


def cli_once(workflow: Path, store: Path | None) -> float:
    """One ``python -m trioforge run`` of the file; the task logs are removed afterwards."""
    argv = [sys.executable, "-m", "trioforge", "run", str(workflow), "--quiet"]
    argv += ["--no-store"] if store is None else ["--store", str(store)]
    t0 = perf()
    proc = subprocess.run(argv, capture_output=True, text=True, env=_env(), check=False)
    wall = perf() - t0
    shutil.rmtree(workflow.parent / ".trioforge", ignore_errors=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"trioforge run exited with {proc.returncode}: {' '.join(argv)}")
    return wall


def measure_cli(
    n: int, repeats: int, tmp_root: Path | None, log: Callable[[str], None]
) -> dict[str, Any]:
    """``repeats`` command-line runs of ``n`` shell tasks with and without the store."""
    samples: dict[str, list[float]] = {"no_store": [], "store": []}
    folder = Path(tempfile.mkdtemp(prefix="tf-bench-cli-", dir=tmp_root))
    try:
        workflow = folder / f"noop-{n}.yaml"
        write_shell_workflow(workflow, n)
        for r in range(repeats):
            order = ["no_store", "store"] if r % 2 == 0 else ["store", "no_store"]
            for kind in order:
                store = folder / f"runs-{r}.db" if kind == "store" else None
                samples[kind].append(cli_once(workflow, store))
            log(
                f"    repeat {r + 1}/{repeats}: --no-store {samples['no_store'][-1]:.2f} s, "
                f"--store {samples['store'][-1]:.2f} s"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"tasks": n, "samples_s": samples}


def filesystem(path: Path | None) -> str:
    """The filesystem holding ``path`` (the store's fsyncs depend on it), from /proc/mounts."""
    target = Path(path or tempfile.gettempdir()).resolve()
    best = ("", "unknown")
    try:
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            mount, kind = parts[1], parts[2]
            if (target == Path(mount) or Path(mount) in target.parents) and len(mount) > len(
                best[0]
            ):
                best = (mount, kind)
    except OSError:
        pass
    return f"{best[1]} (mounted at {best[0] or '?'}; folder {target})"
