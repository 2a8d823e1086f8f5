"""The run store's worker thread while the event loop is busy: a known limit, measured.

    python benchmarks/busy_loop_store.py            # ~1-2 min
    python benchmarks/busy_loop_store.py --cap 10   # give up on each measurement after 10 s

Every call of :class:`~trioforge.store.SQLiteRunStore` runs in a worker thread
(``trio.to_thread.run_sync``). That thread needs the GIL for each step of its
work (each SQLite statement releases and takes it back). While the trio thread
always has a runnable task (tasks that compute between checkpoints), it gives
the GIL up only for an instant at each scheduler batch, which also restarts the
worker's 5 ms wait before it may ask for the GIL: so the worker waits far
longer than its work takes.

This script measures, each with and without ``--spinners`` tasks that each
compute ~0.1 ms between checkpoints:

* one ``trio.to_thread.run_sync`` of a function that does nothing;
* one small SQLite commit (4 rows) in a worker thread, as the store does;
* a durable chain of ``--chain`` no-op tasks (each start waits for a commit)
  against the same chain without a store.

Each measurement stops after ``--cap`` seconds (then reported as ``> cap``).
Nothing here fails: it prints what it measured.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

import trioforge as tf
from trioforge.store import SQLiteRunStore

perf = time.perf_counter


async def _spin(stop: trio.Event) -> None:
    """Keep the event loop busy: ~0.1 ms of Python between checkpoints."""
    while not stop.is_set():
        total = 0
        for k in range(2000):
            total += k
        await trio.lowlevel.checkpoint()


async def _timed(spinners: int, cap: float, what: Callable[[], Awaitable[None]]) -> float | None:
    """Seconds ``what`` took while ``spinners`` tasks keep the loop busy; None past ``cap``."""
    stop = trio.Event()
    took: float | None = None
    async with trio.open_nursery() as nursery:
        for _ in range(spinners):
            nursery.start_soon(_spin, stop)
        await trio.sleep(0.05)
        with trio.move_on_after(cap):
            t0 = perf()
            await what()
            took = perf() - t0
        stop.set()
    return took


def _chain(n: int) -> tf.Workflow:
    wf = tf.Workflow("chain")
    for i in range(n):

        async def link(_ctx: tf.TaskContext) -> None:
            return None

        wf.add_task(tf.Task(f"c{i}", link, depends_on=[f"c{i - 1}"] if i else ()))
    return wf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spinners", type=int, default=1, help="busy tasks (default 1)")
    parser.add_argument("--chain", type=int, default=50, help="durable chain length")
    parser.add_argument("--repeats", type=int, default=5, help="thread calls per figure")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per measurement")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tf-busy-"))
    conn = sqlite3.connect(folder / "plain.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (a, b, c)")

    def small_commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, 2.0, "x")] * 4)
        conn.execute("COMMIT")

    def show(label: str, idle: float | None, busy: float | None) -> None:
        def ms(value: float | None) -> str:
            return f"> {args.cap:g} s" if value is None else f"{value * 1e3:.2f} ms"

        print(f"{label:<44} idle {ms(idle):>14}   busy ({args.spinners}) {ms(busy):>14}")

    try:
        for label, fn in (
            ("to_thread.run_sync(nothing)", lambda: None),
            ("small SQLite commit", small_commit),
        ):
            figures = []
            for spinners in (0, args.spinners):

                async def calls(
                    spinners: int = spinners, fn: Callable[[], object] = fn
                ) -> float | None:
                    times = []
                    for _ in range(args.repeats):
                        took = await _timed(
                            spinners, args.cap, lambda: trio.to_thread.run_sync(fn)
                        )
                        if took is None:
                            return None
                        times.append(took)
                    return statistics.median(times)

                figures.append(trio.run(calls))
            show(f"{label} (median of {args.repeats})", *figures)

        for store in (False, True):
            figures = []
            for spinners in (0, args.spinners):

                async def chain(spinners: int = spinners, store: bool = store) -> float | None:
                    async def run() -> None:
                        executor_wf = _chain(args.chain)
                        if not store:
                            await tf.WorkflowExecutor(executor_wf).execute_dataflow()
                            return
                        path = folder / f"runs-{time.monotonic_ns()}-{os.getpid()}.db"
                        async with SQLiteRunStore(path) as s:
                            await tf.WorkflowExecutor(executor_wf, store=s).execute_dataflow()

                    return await _timed(spinners, args.cap, run)

                figures.append(trio.run(chain))
            kind = "with a store" if store else "without a store"
            show(f"chain of {args.chain} no-op tasks, {kind}", *figures)
    finally:
        conn.close()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
