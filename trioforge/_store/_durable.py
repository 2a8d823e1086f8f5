"""Durable runs: record a run in a :class:`RunStore` and rebuild a run to resume it.

The executor's lifecycle stays the same with or without a store; this module
wraps it. :func:`recording` creates nothing by itself: the caller has created
(or loaded) the run record. While the block runs it

* runs inside the run's lease (held by the caller, ``_driving``), and sends
  the lease owner with every commit as a fencing token;
* has a :class:`RunRecorder` follow the run's audit log, so every event is
  buffered for the store (read back from the log, no object per event), and
  installs ``run.checkpoint``: every attempt's start is committed before its
  body runs (the task runner's spawn gate, or the attempt's own checkpoint),
  or reserved by an earlier commit (a slot-limited scheduler has each commit
  reserve the next tasks' starts: ``run.reserve_starts``),
  and a commit holds every event recorded before it, so a completion is
  durable before anything that depends on it runs. Tasks that complete in the
  same scheduler tick share one commit with the starts of the dependents they
  release;
* flushes what is buffered :data:`FLUSH_INTERVAL` seconds after it was, so
  that another process (``trioforge show``) sees which tasks are running,
  and waits on an event, without waking up, while nothing is buffered;
* flushes once more at the end, shielded and bounded, after the terminal
  event, so the run's final status is recorded however the block ends.

:func:`restore` turns a stored run into the state a resumed :class:`Run`
starts from (the one restore rule; the command line shows what it decided):
the tasks that completed (and were not rolled back, changed in a forced
resume, or named to re-run) keep their results and are not run again, when
every task they depend on is restored too; every other task runs, and a task
that had started before keeps counting its attempts.

A resumed run is the same run, so it also gets back each task's ``ctx.state``
(the scratch dict a task's attempts and its compensation share). The recorder
stores a task's state with every event of the task; restore puts back every
state that was stored faithfully, for the tasks that will run again (their
attempts keep sharing it) and for the restored ones (a later failure
compensates them with what they remembered: which branch a
``FallbackTask`` ran, the ids of what a task created). A restored task with a
compensation whose state could not be stored is compensated with an empty
state; :class:`Resumption` names those tasks, and the resumed run's
``WorkflowStarted`` event says so, so nobody has to guess.

A resume forced through a changed workflow makes the current definition the
run's: the recorder stores it with the first commit, the one that holds the
``WorkflowStarted`` event whose detail records what was forced. A later resume
of the same workflow then needs no force.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .._core import (
    Run,
    Task,
    Workflow,
    WorkflowError,
    has_compensation,
    single_error,
)
from ._protocol import RunStore
from ._records import (
    LeaseLostError,
    RunStoreError,
    StoredRun,
    TaskRecord,
    definition_hash,
    snapshot_with,
)
from ._writer import RunRecorder

__all__ = ["DefinitionChangedError", "Resumption", "definition_of", "recording", "restore"]

#: Seconds between background flushes of buffered events (task starts, say).
FLUSH_INTERVAL = 0.5
#: Seconds the final flush may take before the run gives up on it.
FINAL_FLUSH_TIMEOUT = 30.0

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class DefinitionChangedError(WorkflowError):
    """Raised by ``resume`` when the workflow's definition changed since the run started.

    Attributes:
        run_id: the run that was to be resumed.
        changed: task ids whose definition differs, was added or was removed.
        detail: what changed, in words (``"changed: a; added: b"``).
    """

    def __init__(self, run_id: str, changed: list[str], detail: str) -> None:
        self.run_id = run_id
        self.changed = changed
        self.detail = detail
        super().__init__(
            f"the workflow changed since run {run_id!r} started ({detail}); "
            "resume it with force=True to run it anyway (the changed tasks and "
            "everything downstream of them run again)"
        )


def definition_of(workflow: Workflow, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able definition snapshot of ``workflow``, with each task's spec.

    A task's spec is its ``repr`` (a :class:`Task` names its function, a shell
    task its command), without memory addresses, which differ per process.
    """
    return snapshot_with(workflow, _spec, extra)


def _spec(task: Any) -> str:
    if type(task) is Task:
        fn = task.fn
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    return _ADDRESS.sub("", repr(task))


def check_unchanged(stored: StoredRun, definition: dict[str, Any]) -> None:
    """Raise :class:`DefinitionChangedError` unless ``definition`` is the stored one."""
    change = _change(stored, definition)
    if change is not None:
        raise DefinitionChangedError(stored.id, *change)


def _change(stored: StoredRun, definition: dict[str, Any]) -> tuple[list[str], str] | None:
    """``(task ids, description)`` of how ``definition`` differs from the stored one, or None."""
    if definition_hash(definition) == stored.record.definition_hash:
        return None
    old = {t["id"]: t for t in stored.record.definition.get("tasks", [])}
    new = {t["id"]: t for t in definition.get("tasks", [])}
    changed = [tid for tid in new if tid in old and old[tid] != new[tid]]
    added = [tid for tid in new if tid not in old]
    removed = [tid for tid in old if tid not in new]
    parts = []
    if changed:
        parts.append("changed: " + ", ".join(changed))
    if added:
        parts.append("added: " + ", ".join(added))
    if removed:
        parts.append("removed: " + ", ".join(removed))
    if not parts:
        parts.append("the workflow's settings or source changed, not its tasks")
    return changed + added + removed, "; ".join(parts)


@attrs.frozen
class Resumption:
    """What a resumed run starts from, as the store's one restore rule decided it.

    Attributes:
        run_id: the run.
        restored: the tasks that completed before and do not run again, in
            a topological order.
        rerun: the tasks that will run, in definition order.
        lost_states: restored tasks with a compensation whose ``ctx.state``
            could not be restored (it was not stored faithfully, or names an
            exception type this process has not loaded): if the run is rolled
            back, their compensation sees an empty ``ctx.state``.
        forced: how the workflow changed since the run started, when the
            resume was forced through the change; None when it did not change.
        definition: the definition to store as the run's from now on (the
            current one, when ``forced``); None to keep the stored one.
        attempts: the attempts each restored task took.
        rewound: tasks that completed before and run again because they were
            named to re-run or are downstream of one (``rerun=``), in a
            topological order; their earlier completions are compensated
            first (dependents first) unless ``compensate=False``.
    """

    run_id: str
    restored: list[str]
    rerun: list[str]
    lost_states: list[str] = attrs.Factory(list)
    forced: str | None = None
    definition: dict[str, Any] | None = attrs.field(default=None, hash=False)
    attempts: dict[str, int] = attrs.field(factory=dict, hash=False)
    rewound: list[str] = attrs.Factory(list)

    def describe(self) -> str:
        """The detail of the resumed run's ``WorkflowStarted`` event (without parentheses)."""
        text = f"resumed; {len(self.restored)} tasks restored"
        if self.forced is not None:
            text += f"; definition changed, resumed with force ({self.forced})"
        if self.rewound:
            text += f"; re-running completed tasks {', '.join(self.rewound)}"
        if self.lost_states:
            text += (
                f"; ctx.state not restorable for {', '.join(self.lost_states)}: "
                "a rollback compensates them with an empty state"
            )
        return text


def restore(
    run: Run,
    stored: StoredRun,
    definition: dict[str, Any] | None = None,
    *,
    force: bool = False,
    rerun: Collection[str] = (),
) -> Resumption:
    """Load what ``stored`` finished into the fresh ``run``; return what the resume starts from.

    This is the one restore rule (the command line's progress view uses what
    it returns). Completed tasks whose results were stored faithfully (and
    that were not compensated) are restored, when every task they depend on
    is restored too; they count as completed in this run too, so a later
    failure rolls them back like the rest. A task named in ``rerun``, and on
    a forced resume a task whose definition changed or was added, is not
    restored, so it and everything downstream of it run again. Every task's
    stored ``ctx.state`` that decodes faithfully goes back into ``run.states``.

    Args:
        run: the fresh run (same id as ``stored``), not started yet.
        stored: the run as loaded from the store.
        definition: the current workflow's definition (:func:`definition_of`);
            when given, a change since the run started is refused unless
            ``force``, and a forced change is returned for the recorder to store.
        force: resume even though ``definition`` changed.
        rerun: ids of tasks to run again even though they completed.

    Raises:
        DefinitionChangedError: ``definition`` changed and ``force`` is false.
    """
    unknown = [tid for tid in rerun if tid not in run.dag.index]
    if unknown:
        raise ValueError(f"cannot re-run {', '.join(map(repr, unknown))}: no such task")
    change = None if definition is None else _change(stored, definition)
    if change is not None and not force:
        raise DefinitionChangedError(stored.id, *change)
    index = run.dag.index
    dag = run.dag
    invalid = set(rerun) | (set(change[0]) if change is not None else set())
    done: dict[int, TaskRecord] = {}
    for task_id, record in stored.tasks.items():
        node = index.get(task_id)
        if node is None:
            continue
        if record.attempts:
            run.attempt_base[task_id] = record.attempts
        state = _state_of(record)
        if state is not None:
            run.states[task_id] = state
        if (
            record.state == "completed"
            and record.result_restorable
            and not record.compensated
            and task_id not in invalid
        ):
            done[node] = record
    # A completed task is kept only if everything it depends on is kept too: one
    # whose dependency runs again (rolled back, or its result could not be stored)
    # runs again after it, so every task sees this run's upstream results and the
    # completion order stays a valid reverse-rollback order.
    restored: set[int] = set()
    order: list[str] = []
    lost: list[str] = []
    rewound: list[str] = []
    tainted = {index[tid] for tid in rerun}
    predecessors = dag.predecessors
    for node in dag.topological_order():
        task_id = dag.ids[node]
        if any(p in tainted for p in predecessors[node]):
            tainted.add(node)
        if node in tainted:
            earlier = stored.tasks.get(task_id)
            if earlier is not None and earlier.state == "completed" and not earlier.compensated:
                rewound.append(task_id)
        kept = done.get(node)
        if kept is None or not all(p in restored for p in predecessors[node]):
            continue
        restored.add(node)
        order.append(task_id)
        run.results[task_id] = kept.result()
        if kept.attempts > 1:
            # Its compensation sees the attempt that completed it, as in the first process.
            run.retried[task_id] = kept.attempts
        if (
            task_id not in run.states
            and kept.ctx_state_restorable is not None
            and has_compensation(run.tasks[node])
        ):
            lost.append(task_id)
    run.restored = restored
    run.completed.extend(order)
    return Resumption(
        stored.id,
        order,
        [tid for tid in run.dag.ids if index[tid] not in restored],
        lost,
        None if change is None else change[1],
        None if change is None else definition,
        {tid: stored.tasks[tid].attempts for tid in order},
        rewound,
    )


def _state_of(record: TaskRecord) -> dict[str, Any] | None:
    """The task's stored ``ctx.state`` if it can be restored faithfully here, else None."""
    if not record.ctx_state_restorable:
        return None
    try:
        return record.ctx_state()
    except ValueError:
        return None


@asynccontextmanager
async def recording(
    store: RunStore,
    run: Run,
    *,
    resumed: Resumption | None = None,
    owner: str | None = None,
    on_lost: Callable[[LeaseLostError], None] | None = None,
) -> AsyncIterator[RunRecorder]:
    """Record every event and task state of ``run`` while the block runs.

    The caller holds the run's lease (:func:`~trioforge.hold_lease`) around
    this block, and around loading the run it resumes, so that what it
    restored cannot change under it. ``resumed`` is what :func:`restore`
    returned for a resumed run; a definition it carries (a forced resume) is
    stored with the first commit. ``owner`` is the lease owner every commit
    is fenced with; ``on_lost`` is called when a commit is refused for it.
    """
    definition = None if resumed is None else resumed.definition
    recorder = RunRecorder(
        store,
        run.workflow_id,
        run.results,
        run.states,
        definition=definition,
        owner=owner,
        on_lost=on_lost,
        log=run.audit,
        reserve=run.reserve_starts,
        confirm=run.confirm_reserved,
    )
    run.checkpoint = recorder.flush
    try:
        with single_error():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_flush_every, recorder, FLUSH_INTERVAL)
                try:
                    yield recorder
                finally:
                    nursery.cancel_scope.cancel(reason="the run is over")
    except BaseException:
        # Record the end of the run if we can, but never hide why it ended.
        with (
            contextlib.suppress(RunStoreError),  # the run's own exception says why it ended
            trio.move_on_after(FINAL_FLUSH_TIMEOUT, shield=True) as bound,
        ):
            await recorder.flush(deadline=bound.deadline)
        raise
    else:
        with trio.move_on_after(FINAL_FLUSH_TIMEOUT, shield=True) as scope:
            await recorder.flush(deadline=scope.deadline)
        if scope.cancelled_caught:
            raise RunStoreError(
                f"could not record the end of run {run.workflow_id!r} "
                f"within {FINAL_FLUSH_TIMEOUT:g}s"
            )
    finally:
        run.checkpoint = None
        recorder.detach()


async def _flush_every(recorder: RunRecorder, interval: float) -> None:
    """Flush what is buffered ``interval`` seconds after it was; wait on events when idle."""
    while True:
        await recorder.wait_unflushed()
        await trio.sleep(interval)
        if recorder.unflushed:
            await recorder.flush()
