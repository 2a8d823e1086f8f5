"""The runner's single-attempt fast path behaves exactly like the general attempt loop.

``TaskRunner.run_node`` runs a plain ``Task`` (no timeout, no retries; in a
durable run, once its start is committed) inline, repeating the bookkeeping of
the general path on purpose (it is the per-task hot path). Both paths must be
indistinguishable from outside: the same audit stream, results, attempts,
errors and compensations, and in a durable run the same events in the store.
Each workflow drawn here is run twice under the virtual clock, once as it is
(fast path) and once with the fast path switched off, and everything
observable is compared.

Every task sleeps a distinct power of two (in units of 2**-20 s): a task's end
time is then the sum of the distinct durations along one chain of tasks, which
no other task can share, so no two events happen at the same virtual time and
trio's (deliberately random) order among simultaneous events cannot make two
correct runs differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trioforge as tf
from trioforge._core import _runner as runner_module
from trioforge._core._events import AuditEvent
from trioforge._core._runner import Run
from trioforge.store import Lease, RunRecord
from trioforge.testing import dag_specs

UNIT = 2.0**-20
POLICIES = [tf.FailurePolicy.FAIL_FAST, tf.FailurePolicy.CONTINUE_INDEPENDENT]


def build(
    edges: dict[str, tuple[str, ...]], failing: frozenset[str], undone: list[str]
) -> tf.Workflow:
    """A workflow of plain Tasks with distinct power-of-two durations and compensations."""
    wf = tf.Workflow("differential")
    for index, (task_id, deps) in enumerate(edges.items()):
        duration = UNIT * 2**index

        async def body(
            ctx: tf.TaskContext, duration: float = duration, deps: tuple[str, ...] = deps
        ) -> Any:
            await trio.sleep(duration)
            if ctx.task_id in failing:
                raise ValueError(f"{ctx.task_id} failed")
            return {dep: ctx.result_of(dep) for dep in sorted(deps)} | {"me": ctx.task_id}

        async def undo(ctx: tf.TaskContext) -> None:
            undone.append(ctx.task_id)

        wf.add_task(tf.Task(task_id, body, depends_on=deps, compensate=undo))
    return wf


class MemoryStore:
    """A run store in memory, on the trio thread (deterministic under the virtual clock)."""

    def __init__(self) -> None:
        self.committed: list[tuple[Any, ...]] = []

    async def create_run(self, record: RunRecord) -> None:
        await trio.lowlevel.checkpoint()

    async def acquire_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        await trio.lowlevel.checkpoint()
        return Lease(run_id, owner, 1e12)

    async def renew_lease(self, run_id: str, owner: str, ttl: float) -> Lease:
        await trio.lowlevel.checkpoint()
        return Lease(run_id, owner, 1e12)

    async def release_lease(self, run_id: str, owner: str) -> None:
        await trio.lowlevel.checkpoint()

    async def task_durations(self, workflow: str, *, runs: int = 20) -> dict[str, float]:
        await trio.lowlevel.checkpoint()
        return {}

    async def commit(
        self, run_id: str, events: Sequence[AuditEvent], *args: Any, **kw: Any
    ) -> None:
        await trio.lowlevel.checkpoint()
        self.committed.extend(event_fields(e) for e in events)


def event_fields(e: AuditEvent) -> tuple[Any, ...]:
    """What an event says, but the run id (each run has its own)."""
    return (
        e.clock,
        str(e.type),
        e.task_id or "",
        e.layer,
        e.attempt,
        e.duration,
        e.error,
        e.detail,
    )


def observe(
    edges: dict[str, tuple[str, ...]],
    failing: frozenset[str],
    mode: tf.Schedule,
    policy: tf.FailurePolicy,
    *,
    fast: bool,
    durable: bool = False,
) -> dict[str, Any]:
    """Run once and return everything a caller can observe, in comparable form."""
    undone: list[str] = []
    store = MemoryStore() if durable else None
    executor = tf.WorkflowExecutor(
        build(edges, failing, undone),
        failure_policy=policy,
        store=store,  # type: ignore[arg-type]
    )
    method = {
        "sequential": "execute",
        "layers": "execute_parallel",
        "dataflow": "execute_dataflow",
    }
    outcome: dict[str, Any] = {}

    async def main() -> None:
        try:
            result = await getattr(executor, method[mode])()
        except tf.WorkflowError as exc:
            outcome["error"] = (type(exc).__name__, str(exc), repr(exc.__cause__))
            outcome["error_completed"] = getattr(exc, "completed", None)
            outcome["error_skipped"] = getattr(exc, "skipped", None)
        else:
            outcome["results"] = result.results
            outcome["completed"] = result.completed
            outcome["attempts"] = result.attempts
            outcome["duration"] = result.duration

    original = Run.settle

    def settle_without_fast_path(self: Run) -> None:
        original(self)
        self.plain = False

    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(Run, "settle", settle_without_fast_path)
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    outcome["undone"] = undone
    outcome["events"] = sorted(event_fields(e) for e in executor.audit_log.events)
    if store is not None:
        outcome["stored"] = sorted(store.committed)
        assert outcome["stored"] == outcome["events"]
    return outcome


@given(
    spec=dag_specs(max_tasks=14),
    data=st.data(),
    mode=st.sampled_from(["sequential", "layers", "dataflow"]),
    policy=st.sampled_from(POLICIES),
    durable=st.booleans(),
)
def test_fast_and_general_paths_are_indistinguishable(
    spec: Any, data: st.DataObject, mode: tf.Schedule, policy: tf.FailurePolicy, durable: bool
) -> None:
    """Same events, results, attempts, errors and compensations with and without the fast path.

    Durable runs too: their tasks take the fast path once their starts are
    committed, and the store gets every event of the audit log.
    """
    edges = {task_id: tuple(spec.dependencies[task_id]) for task_id in spec.dependencies}
    failing = frozenset(data.draw(st.sets(st.sampled_from(sorted(edges))), label="failing"))
    fast = observe(edges, failing, mode, policy, fast=True, durable=durable)
    general = observe(edges, failing, mode, policy, fast=False, durable=durable)
    assert fast == general


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "durable"])
def test_the_fast_path_is_taken_and_switching_it_off_works(durable: bool) -> None:
    """The test compares two code paths: the general loop runs only when switched on."""
    calls: list[str] = []
    original = runner_module._run_attempts

    async def counted(run: Run, node: int, *args: Any) -> Any:
        calls.append(run.dag.ids[node])
        return await original(run, node, *args)

    edges: dict[str, tuple[str, ...]] = {"a": (), "b": ("a",)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_module, "_run_attempts", counted)
        observe(edges, frozenset(), "dataflow", POLICIES[0], fast=True, durable=durable)
        assert calls == []
        general = observe(edges, frozenset(), "dataflow", POLICIES[0], fast=False, durable=durable)
        assert calls == ["a", "b"]
    assert general["completed"] == ["a", "b"]
