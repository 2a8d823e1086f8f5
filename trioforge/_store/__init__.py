"""The run store: durable runs.

What it holds: the :class:`RunStore` protocol (``_protocol``), apart from its
SQLite adapter (``_sqlite`` over ``_database``, ``_schema``); the records
it speaks in (``_records``); the tagged-JSON codec for results and
``ctx.state`` with a registry of result types (``_codec``); leases
(``_lease``, over the pure owner helpers in ``_owner``); group commit
(``_writer``); and the durable-run logic the executor calls: the definition
snapshot, restoring a stored run, recording a live one (``_durable``), and
driving a run under its lease with fenced commits (``_driving``). A run is
stored as the log of its events, which a load folds into task records
(``_log``).

May import: ``_core`` only. Imported by: the executor, the shell (to register
``ShellResult`` with the codec), the report, the command line and the public
``trioforge.store``.
"""

from ._codec import register_result_type as register_result_type
from ._driving import ResumeRequest as ResumeRequest
from ._driving import RewindError as RewindError
from ._driving import driving as driving
from ._durable import DefinitionChangedError as DefinitionChangedError
from ._durable import Resumption as Resumption
from ._durable import definition_of as definition_of
from ._durable import recording as recording
from ._durable import restore as restore
from ._lease import hold_lease as hold_lease
from ._lease import keep_lease as keep_lease
from ._owner import lease_owner as lease_owner
from ._protocol import RunStore as RunStore
from ._records import Lease as Lease
from ._records import LeaseLostError as LeaseLostError
from ._records import RunLockedError as RunLockedError
from ._records import RunNotFoundError as RunNotFoundError
from ._records import RunRecord as RunRecord
from ._records import RunStoreError as RunStoreError
from ._records import StoreContentError as StoreContentError
from ._records import StoredRun as StoredRun
from ._records import TaskRecord as TaskRecord
from ._records import definition_hash as definition_hash
from ._records import definition_snapshot as definition_snapshot
from ._records import iso_time as iso_time
from ._sqlite import SQLiteRunStore as SQLiteRunStore
from ._sqlite import default_store_path as default_store_path
from ._writer import RunRecorder as RunRecorder

__all__ = [
    "DefinitionChangedError",
    "Lease",
    "LeaseLostError",
    "ResumeRequest",
    "Resumption",
    "RewindError",
    "RunLockedError",
    "RunNotFoundError",
    "RunRecord",
    "RunRecorder",
    "RunStore",
    "RunStoreError",
    "SQLiteRunStore",
    "StoreContentError",
    "StoredRun",
    "TaskRecord",
    "default_store_path",
    "definition_hash",
    "definition_of",
    "definition_snapshot",
    "driving",
    "hold_lease",
    "iso_time",
    "keep_lease",
    "lease_owner",
    "recording",
    "register_result_type",
    "restore",
]
