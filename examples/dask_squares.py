"""DaskTask on a LocalCluster: data moves worker to worker, a long step stops when cancelled.

Run: pip install 'trioforge[dask]' && python examples/dask_squares.py
"""

import time

import trio
from distributed import Client, LocalCluster

import trioforge
from trioforge.dask import DaskTask, cancelled


def extract(upstream):
    return list(range(1_000))


def square(upstream):
    return [x * x for x in upstream["extract"]]


def total(upstream):
    # A long computation that stops between steps when its task is cancelled.
    acc = 0
    for chunk in range(0, len(upstream["square"]), 100):
        if cancelled():
            return None
        acc += sum(upstream["square"][chunk : chunk + 100])
        time.sleep(0.01)
    return acc


async def report(ctx):
    print("total:", ctx.result_of("total"))


def build(client):
    wf = trioforge.Workflow("squares")
    # fetch=False: the list stays on the workers; `square` receives it there.
    wf.add_task(DaskTask("extract", extract, client=client, fetch=False))
    wf.add_task(DaskTask("square", square, client=client, depends_on=["extract"], fetch=False))
    wf.add_task(DaskTask("total", total, client=client, depends_on=["square"], timeout=60))
    wf.add_task(trioforge.Task("report", report, depends_on=["total"]))
    return wf


if __name__ == "__main__":  # worker processes re-import this file
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        executor = trioforge.WorkflowExecutor(build(client))
        trio.run(executor.execute_dataflow)
