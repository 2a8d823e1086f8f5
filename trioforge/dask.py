"""Run workflow tasks on a Dask cluster (the optional ``trioforge[dask]`` extra).

trioforge keeps the DAG, the scheduling, timeouts, retries, rollback, audit
events and the run store; a ``distributed`` cluster runs the task bodies.
See the "Scaling out with Dask" page of the docs.

Public API:

* :func:`run`: await ``fn(*args, **kwargs)`` run on the cluster, from trio.
* :class:`DaskTask`: a workflow task whose body runs on a worker.
* :class:`RemoteResult`: a ``DaskTask(..., fetch=False)`` result kept on the cluster.
* :func:`cancelled`: on a worker, whether the running call was cancelled.
* :func:`run_shell` / :func:`run_shell_on_worker`: shell commands on a
  worker, killed there when cancelled.
"""

from ._dask._remote import RemoteCancelledError, cancel_event_name, cancelled, run
from ._dask._shell import run_shell, run_shell_on_worker
from ._dask._task import DaskTask, RemoteResult

__all__ = [
    "DaskTask",
    "RemoteCancelledError",
    "RemoteResult",
    "cancel_event_name",
    "cancelled",
    "run",
    "run_shell",
    "run_shell_on_worker",
]
