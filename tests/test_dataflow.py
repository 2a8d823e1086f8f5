"""execute_dataflow: no layer barrier, bounded slots, priority, failure policies, retries."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from helpers import CONCURRENT_MODES, MODES, Recorder, run_mode, workflow

import trioforge as tf


async def test_ready_task_starts_while_unrelated_slow_task_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task whose prerequisites finished starts while a slow task of the same layer runs."""
    rec = Recorder()
    wf = workflow(rec.task("a", 0.1), rec.task("slow", 1.0), rec.task("c", 0.1, deps=("a",)))
    start = trio.current_time()
    result = await tf.WorkflowExecutor(wf).execute_dataflow()
    assert rec.starts["c"] - start == pytest.approx(0.1)
    assert result.duration == pytest.approx(1.0)


async def test_makespan_is_the_critical_path(autojump_clock: trio.testing.MockClock) -> None:
    """With unbounded slots the virtual makespan equals the critical path exactly."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 1.0, estimate=1.0),
        rec.task("b", 5.0, estimate=5.0),
        rec.task("c", 3.0, deps=("a",), estimate=3.0),
        rec.task("d", 1.0, deps=("b", "c"), estimate=1.0),
        rec.task("e", 4.0, deps=("c",), estimate=4.0),
    )
    result = await tf.WorkflowExecutor(wf).execute_dataflow()
    path, length = wf.critical_path()
    assert (path, length) == (["a", "c", "e"], 8.0)
    assert result.duration == length
    layered = await tf.WorkflowExecutor(wf).execute_parallel()
    # Layers [a, b], [c], [d, e]: the barrier costs 5 + 3 + 4.
    assert layered.duration == 12.0


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_max_concurrency_is_never_exceeded(
    autojump_clock: trio.testing.MockClock, mode: str, limit: int
) -> None:
    """At most max_concurrency tasks run at once, and the slots are used."""
    rec = Recorder()
    tasks = [rec.task(f"t{i}", 0.1 * (1 + i % 3)) for i in range(10)]
    tasks += [rec.task(f"u{i}", 0.1, deps=(f"t{i}", f"t{9 - i}")) for i in range(10)]
    await run_mode(tf.WorkflowExecutor(workflow(*tasks), max_concurrency=limit), mode)
    assert rec.max_running == limit
    assert len(rec.ends) == 20


async def test_priority_picks_longest_remaining_path_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With one slot, the chain z1->z2->z3 runs before independent a and b."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 1.0),
        rec.task("b", 1.0),
        rec.task("z1", 1.0),
        rec.task("z2", 1.0, deps=("z1",)),
        rec.task("z3", 1.0, deps=("z2",)),
    )
    result = await tf.WorkflowExecutor(wf, max_concurrency=1).execute_dataflow()
    # z1 (remaining path 3) and z2 (2) outrank a and b (1); z3 then ties with
    # a and b, and ties go to the task added first.
    assert result.completed == ["z1", "z2", "a", "b", "z3"]


async def test_estimate_outranks_a_longer_chain_of_short_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task estimated at 60 s starts before a chain of two 1 s tasks."""
    rec = Recorder()
    wf = workflow(
        rec.task("c1", 1.0, estimate=1.0),
        rec.task("c2", 1.0, deps=("c1",), estimate=1.0),
        rec.task("long", 2.0, estimate=60.0),
    )
    result = await tf.WorkflowExecutor(wf, max_concurrency=1).execute_dataflow()
    assert result.completed == ["long", "c1", "c2"]


async def test_bounded_dataflow_starts_next_task_the_moment_a_slot_frees(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With two slots, list scheduling finishes a 3-chain plus two 1 s tasks in 3 s."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 1.0),
        rec.task("b", 1.0),
        rec.task("z1", 1.0),
        rec.task("z2", 1.0, deps=("z1",)),
        rec.task("z3", 1.0, deps=("z2",)),
    )
    result = await tf.WorkflowExecutor(wf, max_concurrency=2).execute_dataflow()
    assert result.duration == 3.0


@pytest.mark.parametrize("mode", MODES)
async def test_continue_independent_runs_unaffected_branches(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """CONTINUE_INDEPENDENT skips exactly the failed task's transitive dependents."""
    rec = Recorder()
    boom = ValueError("b failed")
    wf = workflow(
        rec.task("a", 0.1),
        rec.task("b", 0.1, deps=("a",), fail=boom),
        rec.task("c", 0.1, deps=("b",)),
        rec.task("d", 0.1, deps=("c", "x")),
        rec.task("x", 0.5),
        rec.task("y", 0.3, deps=("x",)),
        rec.task("z", 0.1, deps=("a",)),
    )
    executor = tf.WorkflowExecutor(wf, failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT)
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(executor, mode)
    error = info.value
    assert error.failures == {"b": boom}
    assert error.__cause__ is boom
    assert sorted(error.skipped) == ["c", "d"]
    assert sorted(error.completed) == ["a", "x", "y", "z"]
    assert set(rec.starts) == {"a", "b", "x", "y", "z"}
    assert rec.cancelled == []
    skipped_events = executor.audit_log.of_type("WorkflowTaskSkipped")
    assert sorted(e.task_id or "" for e in skipped_events) == ["c", "d"]
    # Rollback covers every completed task, dependents first.
    assert sorted(rec.compensated) == ["a", "x", "y", "z"]
    assert rec.compensated.index("y") < rec.compensated.index("x")
    assert rec.compensated.index("z") < rec.compensated.index("a")


async def test_continue_independent_collects_every_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Several independent failures are all reported; the first one is the cause."""
    rec = Recorder()
    e1, e2 = ValueError("first"), OSError("second")
    wf = workflow(rec.task("p", 0.1, fail=e1), rec.task("q", 0.2, fail=e2), rec.task("r", 0.3))
    executor = tf.WorkflowExecutor(wf, failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT)
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert info.value.failures == {"p": e1, "q": e2}
    assert info.value.task_id == "p"
    assert info.value.__cause__ is e1
    assert "r" in rec.ends


@pytest.mark.parametrize("mode", MODES)
async def test_retries_until_success(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """A task that fails twice then succeeds, with retries=2, completes on attempt 3."""
    attempts: list[int] = []

    async def flaky(ctx: tf.TaskContext) -> str:
        attempts.append(ctx.attempt)
        await trio.sleep(0.1)
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt}")
        return "ok"

    wf = workflow(tf.Task("flaky", flaky, retries=2))
    backoff = tf.Backoff(initial=1.0, multiplier=2.0, maximum=10.0, jitter=0.0)
    executor = tf.WorkflowExecutor(wf, backoff=backoff)
    start = trio.current_time()
    result = await run_mode(executor, mode)
    assert attempts == [1, 2, 3]
    assert result.results == {"flaky": "ok"}
    assert result.attempts == {"flaky": 3}
    # Three 0.1 s attempts with waits of 1 s and 2 s between them.
    assert trio.current_time() - start == pytest.approx(3.3)
    events = [(e.type, e.attempt) for e in executor.audit_log.for_task("flaky")]
    assert events == [
        ("WorkflowTaskStarted", 1),
        ("WorkflowTaskFailed", 1),
        ("WorkflowTaskRetrying", 2),
        ("WorkflowTaskStarted", 2),
        ("WorkflowTaskFailed", 2),
        ("WorkflowTaskRetrying", 3),
        ("WorkflowTaskStarted", 3),
        ("WorkflowTaskCompleted", 3),
    ]


async def test_retries_exhausted_reports_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When every attempt fails, the failure is the last attempt's exception."""
    errors: list[Exception] = []

    async def broken(ctx: tf.TaskContext) -> None:
        errors.append(RuntimeError(f"attempt {ctx.attempt}"))
        raise errors[-1]

    executor = tf.WorkflowExecutor(workflow(tf.Task("broken", broken)), retries=3)
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert len(errors) == 4
    assert info.value.__cause__ is errors[-1]


async def test_timeout_counts_as_a_failed_attempt(autojump_clock: trio.testing.MockClock) -> None:
    """A timed-out attempt is retried like a failure."""

    async def slow_then_fast(ctx: tf.TaskContext) -> int:
        await trio.sleep(5 if ctx.attempt == 1 else 0.5)
        return ctx.attempt

    task = tf.Task("t", slow_then_fast, timeout=1, retries=1)
    executor = tf.WorkflowExecutor(workflow(task), backoff=tf.Backoff(initial=0, jitter=0))
    result = await executor.execute_dataflow()
    assert result.results == {"t": 2}
    assert executor.audit_log.types(task_id="t")[:2] == [
        "WorkflowTaskStarted",
        "WorkflowTaskTimedOut",
    ]


async def test_cancellation_is_never_retried(autojump_clock: trio.testing.MockClock) -> None:
    """A run cancelled during a task does not retry it."""
    attempts: list[int] = []

    async def slow(ctx: tf.TaskContext) -> None:
        attempts.append(ctx.attempt)
        await trio.sleep(10)

    executor = tf.WorkflowExecutor(workflow(tf.Task("slow", slow)), retries=5, workflow_timeout=1)
    with pytest.raises(tf.WorkflowTimeoutError):
        await executor.execute_dataflow()
    assert attempts == [1]
    assert "WorkflowTaskRetrying" not in executor.audit_log.types()


def test_retry_jitter_is_reproducible_with_a_seed() -> None:
    """Two executors with the same seed draw the same retry delays."""

    def delays(seed: int) -> list[str | None]:
        async def always_fails(ctx: tf.TaskContext) -> None:
            raise ValueError

        executor = tf.WorkflowExecutor(
            workflow(tf.Task("x", always_fails)),
            retries=4,
            seed=seed,
            backoff=tf.Backoff(initial=0.1, jitter=1.0),
        )

        async def main() -> None:
            with pytest.raises(tf.TaskFailedError):
                await executor.execute_dataflow()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        return [e.detail for e in executor.audit_log.of_type("WorkflowTaskRetrying")]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """Delays double from `initial` and never exceed `maximum`."""
    import random

    backoff = tf.Backoff(initial=0.5, multiplier=2, maximum=3, jitter=0)
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert tf.Backoff(initial=1, maximum=5, jitter=0).delay(10_000, rng) == 5


async def test_nothing_runs_after_dataflow_returns(autojump_clock: trio.testing.MockClock) -> None:
    """When execute_dataflow raises, no task it started is still running."""
    rec = Recorder()
    tasks = [rec.task(f"t{i}", 0.1 * (i + 1)) for i in range(8)]
    tasks.append(rec.task("bad", 0.25, fail=ValueError()))
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(workflow(*tasks), max_concurrency=3).execute_dataflow()
    assert rec.running == 0
    await trio.sleep(5)
    assert rec.running == 0


async def test_layers_with_slots_start_highest_priority_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """execute_parallel with one slot starts the head of the longest chain first in its layer."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 1.0),
        rec.task("b", 1.0),
        rec.task("z1", 1.0),
        rec.task("z2", 1.0, deps=("z1",)),
        rec.task("z3", 1.0, deps=("z2",)),
    )
    executor = tf.WorkflowExecutor(wf, max_concurrency=1)
    result = await executor.execute_parallel()
    assert result.completed == ["z1", "a", "b", "z2", "z3"]
    assert rec.max_running == 1


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_failed_tasks_give_back_their_slot(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """With one slot and CONTINUE_INDEPENDENT, every task after a failure still gets the slot."""
    rec = Recorder()
    wf = workflow(
        rec.task("f1", 0.1, fail=ValueError("one")),
        rec.task("f2", 0.1, fail=ValueError("two")),
        rec.task("ok1", 0.1),
        rec.task("ok2", 0.1),
        rec.task("after", 0.1, deps=("ok1",)),
    )
    executor = tf.WorkflowExecutor(
        wf, max_concurrency=1, failure_policy=tf.FailurePolicy.CONTINUE_INDEPENDENT
    )
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(executor, mode)
    assert set(info.value.failures) == {"f1", "f2"}
    assert sorted(info.value.completed) == ["after", "ok1", "ok2"]
    assert rec.max_running == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("slots", [None, 2])
async def test_trio_tasks_are_named_after_workflow_tasks(
    autojump_clock: trio.testing.MockClock, mode: str, slots: int | None
) -> None:
    """Each spawned trio task carries its workflow task's id (trio's task tree reads well)."""
    names: dict[str, str] = {}
    wf = tf.Workflow()

    async def body(ctx: tf.TaskContext) -> None:
        names[ctx.task_id] = trio.lowlevel.current_task().name
        await trio.sleep(0.1)

    for task_id, deps in [("a", ()), ("b", ("a",)), ("c", ("a",))]:
        wf.add_task(tf.Task(task_id, body, depends_on=deps))
    await run_mode(tf.WorkflowExecutor(wf, max_concurrency=slots), mode)
    if mode == "execute":
        # One task at a time, awaited in the run's own trio task.
        assert len(set(names.values())) == 1
    else:
        assert names == {"a": "a", "b": "b", "c": "c"}


async def test_a_run_that_lost_a_task_is_never_reported_as_success(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a scheduler bug dropped a task, the run raises and rolls back instead of completing."""
    from trioforge._core import _ready

    rec = Recorder()
    wf = workflow(rec.task("a", 0.1), rec.task("b", 0.1))
    original = _ready.ReadyQueue.roots
    monkeypatch.setattr(_ready.ReadyQueue, "roots", lambda self: original(self)[:1])
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(RuntimeError, match=r"ended without running \['b'\]"):
        await executor.execute_dataflow()
    assert rec.compensated == ["a"]
    assert executor.audit_log.types()[-1] == "WorkflowFailed"
