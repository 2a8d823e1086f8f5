"""Run stores: where durable runs are kept.

``WorkflowExecutor(workflow, store=SQLiteRunStore(path))`` records every run;
``executor.resume(run_id)`` picks one up again. :class:`RunStore` is the
protocol a backend implements; :class:`SQLiteRunStore` is the one trioforge
ships. See the "Durable runs" guide.
"""

from ._store import Lease as Lease
from ._store import LeaseLostError as LeaseLostError
from ._store import Resumption as Resumption
from ._store import RewindError as RewindError
from ._store import RunLockedError as RunLockedError
from ._store import RunNotFoundError as RunNotFoundError
from ._store import RunRecord as RunRecord
from ._store import RunStore as RunStore
from ._store import RunStoreError as RunStoreError
from ._store import SQLiteRunStore as SQLiteRunStore
from ._store import StoredRun as StoredRun
from ._store import TaskRecord as TaskRecord
from ._store import default_store_path as default_store_path

__all__ = [
    "Lease",
    "LeaseLostError",
    "Resumption",
    "RewindError",
    "RunLockedError",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "RunStoreError",
    "SQLiteRunStore",
    "StoredRun",
    "TaskRecord",
    "default_store_path",
]
