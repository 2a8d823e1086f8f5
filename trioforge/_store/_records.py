"""The run store's values and errors: what a backend stores and hands back.

Everything here is plain data (frozen attrs classes) plus the two errors a
caller has to handle, so a backend (SQLite today, PostgreSQL later) and its
users (the executor, the CLI, the report) agree on one vocabulary and nothing
else.

A run's *definition* is a JSON-able snapshot of the workflow as it was when
the run started. A backend needs only two things from it: ``"tasks"``, a list
of ``{"id": ..., "depends_on": [...]}`` in definition order (the task rows and
the report's DAG come from it); everything else (timeouts, the YAML source,
...) is kept as given. :func:`definition_snapshot` builds one from a
:class:`Workflow`; :func:`definition_hash` fingerprints it so a resume can tell
whether the workflow changed since the run started.

Timestamps are seconds since the epoch (``time.time()``): runs outlive the
process that started them, so ``trio.current_time()`` means nothing here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._core import WorkflowError
from ._codec import decode_result, decode_state

if TYPE_CHECKING:
    from .._core._workflow import Workflow

__all__ = [
    "RUN_STATUSES",
    "TASK_STATES",
    "Lease",
    "LeaseLostError",
    "RunLockedError",
    "RunNotFoundError",
    "RunRecord",
    "RunStoreError",
    "StoreContentError",
    "StoredRun",
    "TaskRecord",
    "canonical_json",
    "definition_hash",
    "definition_snapshot",
    "iso_time",
    "json_hash",
    "validate_definition",
]

#: Every status a run can have. ``interrupted`` is reported for a run still
#: marked ``running`` whose driver is gone (no live lease).
RUN_STATUSES = frozenset(
    {"running", "completed", "failed", "cancelled", "timed_out", "interrupted"}
)
#: Every state a task can be in.
TASK_STATES = frozenset({"pending", "running", "completed", "failed", "skipped", "cancelled"})


def iso_time(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC text (None stays None)."""
    if seconds is None:
        return None
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC).isoformat()


class RunStoreError(WorkflowError):
    """Raised when a run store cannot do what was asked (a newer schema, a failed write)."""


class StoreContentError(RunStoreError, ValueError):
    """The store holds a value this trioforge cannot read: damaged, or written by a newer one."""


class RunNotFoundError(RunStoreError, LookupError):
    """Raised when a run id is not in the store.

    Attributes:
        run_id: the id that was looked up.
        store: where the store lives (a file path for SQLite).
    """

    def __init__(self, run_id: str, store: str) -> None:
        super().__init__(f"no run {run_id!r} in the run store {store}")
        self.run_id = run_id
        self.store = store


class RunLockedError(RunStoreError):
    """Raised when another process drives the run (its lease is live), or a lease was lost.

    :meth:`RunStore.acquire_lease` raises it while someone else holds an
    unexpired lease; :meth:`RunStore.renew_lease` raises it when the caller's
    lease was taken over or released, so the caller must stop driving the run.

    Attributes:
        run_id: the run.
        holder: who holds the lease now (None if nobody does).
        expires_at: when the holder's lease expires, in seconds since the epoch
            (None if nobody holds it).
        lost_by: on a lost lease, the owner that lost it; None on a refusal.
    """

    def __init__(
        self,
        run_id: str,
        holder: str | None,
        expires_at: float | None,
        *,
        now: float | None = None,
        lost_by: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.holder = holder
        self.expires_at = expires_at
        self.lost_by = lost_by
        until = ""
        if expires_at is not None:
            until = f" until {iso_time(expires_at)}"
            if now is not None:
                until += f" (in {max(expires_at - now, 0.0):.0f}s)"
        if lost_by is not None:
            if holder is None:
                message = f"{lost_by} lost the lease on run {run_id!r}: it was released"
            else:
                message = (
                    f"{lost_by} lost the lease on run {run_id!r}: it is now held by "
                    f"{holder}{until}; stop driving this run"
                )
        else:
            message = (
                f"run {run_id!r} is being driven by {holder} (lease held{until}); "
                "only one process may drive a run: wait for it to finish, or stop "
                "it and retry once its lease has expired"
            )
        super().__init__(message)


class LeaseLostError(RunLockedError):
    """Raised when a driver finds that another driver has taken its run's lease over.

    The heartbeat's renewal raises it, and so does a commit: every commit
    carries the lease owner as a fencing token and is refused, in its own
    transaction, when the owner no longer holds the lease. The driver that
    gets it stops at once and does *not* roll back: the tasks it completed
    now belong to the new driver, which restores or re-runs them. The
    attributes are those of :class:`RunLockedError`; ``lost_by`` is always set.
    """


def _check_status(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    allowed = RUN_STATUSES if attribute.name == "status" else TASK_STATES
    if value not in allowed:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(sorted(allowed))}, got {value!r}"
        )


def _check_definition(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    validate_definition(value)


def validate_definition(value: Any) -> None:
    """Check that ``value`` is a definition snapshot (see the module docs).

    Raises:
        ValueError: it is not a dict with ``"tasks"``, a list of ``{"id": str, ...}``.
    """
    tasks = value.get("tasks") if isinstance(value, Mapping) else None
    if not isinstance(tasks, list) or not all(
        (type(t) is dict or isinstance(t, Mapping)) and isinstance(t.get("id"), str) for t in tasks
    ):
        raise ValueError(
            'definition must be a dict with "tasks": a list of {"id": str, "depends_on": '
            f"[str, ...]}}, got {value!r:.200}"
        )


@attrs.frozen
class RunRecord:
    """One run: which workflow, as defined when it started, and how it went.

    Build a new one with :meth:`start`.

    Attributes:
        id: the run id (the ``workflow_id`` of its audit events).
        workflow: the workflow's name.
        definition_hash: :func:`definition_hash` of ``definition``.
        definition: the JSON-able snapshot of the workflow (see the module docs).
        status: ``running``, ``completed``, ``failed``, ``cancelled``, ``timed_out``,
            or ``interrupted`` (stored as running, but no live lease backs it).
        started_at: when the run started, in seconds since the epoch.
        finished_at: when it ended, or None while it has not.
        definition_json: ``definition`` as the canonical JSON text its hash
            was computed from, when :meth:`start` made the record (a store
            writes it as it is instead of encoding the definition again);
            None otherwise. Not compared.
    """

    id: str
    workflow: str
    definition_hash: str
    definition: dict[str, Any] = attrs.field(hash=False, validator=_check_definition)
    status: str = attrs.field(default="running", validator=_check_status)
    started_at: float = 0.0
    finished_at: float | None = None
    definition_json: str | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def start(
        cls,
        run_id: str,
        definition: dict[str, Any],
        *,
        started_at: float,
        workflow: str | None = None,
    ) -> RunRecord:
        """A ``running`` record for a new run; ``workflow`` defaults to ``definition["name"]``."""
        name = workflow if workflow is not None else definition.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(
                f'workflow must be a non-empty str (or definition["name"]), got {name!r}'
            )
        text = canonical_json(definition)
        return cls(run_id, name, json_hash(text), definition, "running", started_at, None, text)

    @property
    def task_ids(self) -> list[str]:
        """The task ids of the definition, in definition order."""
        return [t["id"] for t in self.definition["tasks"]]

    @property
    def dependencies(self) -> dict[str, list[str]]:
        """Each task's direct dependencies, by id, in definition order."""
        return {t["id"]: list(t.get("depends_on", ())) for t in self.definition["tasks"]}

    def to_json(self) -> dict[str, Any]:
        """``{id, workflow, status, started_at, finished_at}``, times as ISO 8601 UTC text."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at),
        }


@attrs.frozen
class TaskRecord:
    """Where one task of a run stands.

    Attributes:
        run_id: the run.
        task_id: the task.
        state: ``pending``, ``running``, ``completed``, ``failed``, ``skipped`` or
            ``cancelled``.
        attempts: how many attempts have started, across every process that drove the run
            (counting an attempt whose start was reserved and may have begun before
            a crash: see ``RunStore.commit``).
        started_at: when the latest attempt started (epoch seconds), or None.
        finished_at: when the latest attempt ended (epoch seconds), or None.
        error: ``"Type: message"`` of the latest failure, None once it completed.
        result_json: the task's result as JSON text, or None.
        result_restorable: whether decoding ``result_json`` gives back the
            result the task returned (False when it was not JSON or changed
            on the way, e.g. a tuple that became a list).
        duration: seconds the latest finished attempt took (``trio`` clock).
        compensated: whether the task's compensation ran successfully.
        ctx_state_json: the task's ``ctx.state`` as tagged JSON (see
            :doc:`store`) when it was last recorded, or None.
        ctx_state_restorable: True when ``ctx_state_json`` decodes to the
            task's ``ctx.state``; False when the task had a state that could
            not be stored faithfully (or, in a run recorded before states were
            stored, had started); None when no state was recorded (the task
            never used ``ctx.state``, or has not started).
    """

    run_id: str
    task_id: str
    state: str = attrs.field(validator=_check_status)
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result_json: str | None = None
    result_restorable: bool = False
    duration: float | None = None
    compensated: bool = False
    ctx_state_json: str | None = None
    ctx_state_restorable: bool | None = None

    def result(self) -> Any:
        """The stored result, decoded.

        Raises:
            ValueError: the task has no restorable result.
        """
        if self.state != "completed" or not self.result_restorable or self.result_json is None:
            raise ValueError(
                f"task {self.task_id!r} of run {self.run_id!r} has no restorable result "
                f"(state {self.state}, restorable {self.result_restorable})"
            )
        return decode_result(self.result_json)

    def ctx_state(self) -> dict[str, Any]:
        """The stored ``ctx.state``, decoded.

        Raises:
            ValueError: the task has no restorable state, or it cannot be
                decoded in this process (an exception type that is not loaded).
        """
        if not self.ctx_state_restorable or self.ctx_state_json is None:
            raise ValueError(
                f"task {self.task_id!r} of run {self.run_id!r} has no restorable ctx.state "
                f"(restorable {self.ctx_state_restorable})"
            )
        return decode_state(self.ctx_state_json)

    def to_json(self) -> dict[str, Any]:
        """``{id, state, attempts, started_at, finished_at, compensated}``.

        Times are ISO 8601 UTC text; ``compensated`` is true for a task whose
        completion was rolled back (its ``state`` stays ``completed``).
        """
        return {
            "id": self.task_id,
            "state": self.state,
            "attempts": self.attempts,
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at),
            "compensated": self.compensated,
        }


@attrs.frozen
class StoredRun:
    """A run as loaded from a store: its record and every task's record.

    Attributes:
        record: the run.
        tasks: every task's record by id, in definition order (tasks that
            appeared only in events come last).
    """

    record: RunRecord
    tasks: dict[str, TaskRecord] = attrs.field(hash=False)

    @property
    def id(self) -> str:
        """The run id."""
        return self.record.id

    def in_state(self, *states: str) -> list[str]:
        """The ids of the tasks in any of ``states``, in definition order."""
        return [tid for tid, task in self.tasks.items() if task.state in states]

    def completed_results(self) -> dict[str, Any]:
        """The decoded result of every completed task whose result is restorable."""
        return {
            tid: task.result()
            for tid, task in self.tasks.items()
            if task.state == "completed" and task.result_restorable
        }

    def unrestorable(self) -> list[str]:
        """Completed tasks whose result could not be stored faithfully."""
        return [
            tid
            for tid, task in self.tasks.items()
            if task.state == "completed" and not task.result_restorable
        ]

    def unrestorable_states(self) -> list[str]:
        """Completed tasks, not compensated, whose ``ctx.state`` could not be stored faithfully.

        A resume restores them with an empty ``ctx.state``, so their
        compensation cannot see what they recorded there.
        """
        return [
            tid
            for tid, task in self.tasks.items()
            if task.state == "completed"
            and not task.compensated
            and task.ctx_state_restorable is False
        ]

    def to_json(self) -> dict[str, Any]:
        """``{id, workflow, status, tasks: [TaskRecord.to_json(), ...]}``."""
        out = self.record.to_json()
        del out["started_at"], out["finished_at"]
        out["tasks"] = [task.to_json() for task in self.tasks.values()]
        return out


@attrs.frozen
class Lease:
    """The right to drive one run, held until ``expires_at`` unless renewed.

    Attributes:
        run_id: the run.
        owner: who holds it (``host:pid:token``).
        expires_at: when it lapses, in seconds since the epoch.
        taken_over_from: the previous holder when this lease replaced an
            expired or dead one's; None otherwise.
    """

    run_id: str
    owner: str
    expires_at: float
    taken_over_from: str | None = None


def definition_snapshot(workflow: Workflow, **extra: Any) -> dict[str, Any]:
    """A JSON-able snapshot of ``workflow``'s definition, for :meth:`RunRecord.start`.

    ``{"name", "tasks": [{"id", "depends_on", and "timeout", "retries",
    "estimate" where set}], **extra}``. Pass e.g. ``source=`` the YAML text or
    ``path=`` the file, so a change to them changes the hash.
    """
    return snapshot_with(workflow, None, extra)


def snapshot_with(
    workflow: Workflow, spec: Callable[[Any], str] | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`definition_snapshot`, each task's entry with ``"spec": spec(task)`` if given.

    In one pass over the tasks (a large workflow's snapshot is built before
    each durable run).
    """
    tasks: list[dict[str, Any]] = []
    append = tasks.append
    for task_id, task, depends_on in workflow._dependency_lists():
        entry: dict[str, Any] = {"id": task_id, "depends_on": depends_on}
        for name in ("timeout", "retries", "estimate"):
            value = getattr(task, name, None)
            if value is not None:
                entry[name] = value
        if spec is not None:
            entry["spec"] = spec(task)
        append(entry)
    snapshot: dict[str, Any] = {"name": workflow.name, "tasks": tasks}
    snapshot.update(extra)
    return snapshot


def canonical_json(definition: Mapping[str, Any]) -> str:
    """The definition as canonical JSON text: sorted keys, no spaces, not ASCII-escaped."""
    try:
        # No cycle check per container (a tenth of the time for a large workflow): a
        # cyclic value still fails, as a RecursionError, made a ValueError here.
        return json.dumps(
            definition,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            check_circular=False,
        )
    except RecursionError:
        raise ValueError("the definition is nested too deeply (or refers to itself)") from None


def definition_hash(definition: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of the definition as canonical JSON (sorted keys, no spaces)."""
    return json_hash(canonical_json(definition))


def json_hash(text: str) -> str:
    """``"sha256:<hex>"`` of ``text`` (:func:`canonical_json`'s) as UTF-8."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
