"""WorkflowExecutor: the three modes, failures, timeouts, cancellation and rollback."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from helpers import CONCURRENT_MODES, MODES, Recorder, run_mode, workflow

import trioforge as tf


def diamond(rec: Recorder) -> tf.Workflow:
    return workflow(
        rec.task("a", 0.1, result=1),
        rec.task("b", 0.2, deps=("a",)),
        rec.task("c", 0.3, deps=("a",)),
        rec.task("d", 0.1, deps=("b", "c")),
    )


async def test_execute_parallel(autojump_clock: trio.testing.MockClock) -> None:
    """execute_parallel runs a diamond layer by layer and returns every result."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(diamond(rec))
    start = trio.current_time()
    result = await executor.execute_parallel()
    assert result.results == {"a": 1, "b": "b", "c": "c", "d": "d"}
    assert result.completed == ["a", "b", "c", "d"]
    assert result.duration == pytest.approx(0.5)
    assert rec.starts == pytest.approx(
        {"a": start, "b": start + 0.1, "c": start + 0.1, "d": start + 0.4}
    )
    layers = [
        (e.type, e.layer)
        for e in executor.audit_log.events
        if e.type in ("WorkflowTaskParallelStarted", "WorkflowTaskParallelCompleted")
    ]
    assert layers == [
        ("WorkflowTaskParallelStarted", 0),
        ("WorkflowTaskParallelCompleted", 0),
        ("WorkflowTaskParallelStarted", 1),
        ("WorkflowTaskParallelCompleted", 1),
        ("WorkflowTaskParallelStarted", 2),
        ("WorkflowTaskParallelCompleted", 2),
    ]
    assert rec.running == 0


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
async def test_independent_tasks_run_concurrently(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Two independent 0.1 s tasks finish at 0.1 s, not 0.2 s."""
    rec = Recorder()
    wf = workflow(rec.task("x", 0.1), rec.task("y", 0.1))
    result = await run_mode(tf.WorkflowExecutor(wf), mode)
    assert result.duration == pytest.approx(0.1)
    assert rec.max_running == 2


async def test_sequential_execute_runs_one_at_a_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Sequential execute runs tasks one after another in topological order."""
    rec = Recorder()
    result = await tf.WorkflowExecutor(diamond(rec)).execute()
    assert result.completed == ["a", "b", "c", "d"]
    assert result.duration == pytest.approx(0.7)
    assert rec.max_running == 1


async def test_layer_barrier_delays_the_next_layer(autojump_clock: trio.testing.MockClock) -> None:
    """In execute_parallel a dependent starts exactly when its whole layer has ended."""
    rec = Recorder()
    wf = workflow(rec.task("a", 0.1), rec.task("slow", 0.3), rec.task("c", 0.1, deps=("a",)))
    start = trio.current_time()
    await tf.WorkflowExecutor(wf).execute_parallel()
    assert rec.starts["c"] - start == pytest.approx(0.3)


@pytest.mark.parametrize("mode", MODES)
async def test_result_of_reads_upstream_results(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A task reads the results of direct and transitive dependencies."""
    wf = tf.Workflow()

    @wf.task()
    async def a(ctx: tf.TaskContext) -> int:
        return 2

    @wf.task(depends_on=["a"])
    async def b(ctx: tf.TaskContext) -> int:
        return int(ctx.result_of("a")) * 10

    @wf.task(depends_on=["b"])
    async def c(ctx: tf.TaskContext) -> int:
        return int(ctx.result_of("a")) + int(ctx.result_of("b"))

    result = await run_mode(tf.WorkflowExecutor(wf), mode)
    assert result.results == {"a": 2, "b": 20, "c": 22}


async def test_result_of_refuses_tasks_that_are_not_upstream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Asking for a sibling's result fails clearly instead of depending on timing."""
    wf = tf.Workflow()

    @wf.task()
    async def a(ctx: tf.TaskContext) -> int:
        return 1

    @wf.task()
    async def b(ctx: tf.TaskContext) -> int:
        await trio.sleep(1)
        return int(ctx.result_of("a"))

    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(wf).execute_dataflow()
    cause = info.value.__cause__
    assert isinstance(cause, tf.ResultNotAvailableError)
    assert "not an upstream dependency" in str(cause)
    assert (cause.task_id, cause.requested) == ("b", "a")


@pytest.mark.parametrize("mode", MODES)
async def test_failure_stops_later_layers_and_rolls_back(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A failure cancels running siblings, starts nothing new and compensates completed tasks."""
    rec = Recorder()
    boom = ValueError("boom")
    wf = workflow(
        rec.task("a", 0.1),
        rec.task("b", 0.1, deps=("a",)),
        rec.task("c", 0.2, deps=("a",), fail=boom),
        rec.task("d", 0.5, deps=("a",)),
        rec.task("e", 0.1, deps=("c",)),
        rec.task("f", 0.2, deps=("b",)),
    )
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(executor, mode)
    error = info.value
    assert error.task_id == "c"
    assert error.__cause__ is boom
    assert error.failures == {"c": boom}
    assert "e" not in rec.starts
    assert rec.running == 0
    # b completed before c failed (sequential runs b first too); f never ran or was cancelled.
    assert set(error.completed) == {"a", "b"}
    # Reverse dependency order: b before a; each exactly once.
    assert rec.compensated == ["b", "a"]
    if mode != "execute":
        assert "d" in rec.cancelled
    types = executor.audit_log.types()
    assert types[-1] == "WorkflowFailed"
    assert types.count("WorkflowTaskCompensated") == 2


@pytest.mark.parametrize("mode", MODES)
async def test_rollback_order_is_reverse_dependency_order(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Each task is compensated only after every completed task that depends on it."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 0.1),
        rec.task("b", 0.1, deps=("a",)),
        rec.task("c", 0.3, deps=("a",)),
        rec.task("d", 0.1, deps=("b", "c")),
        rec.task("z", 0.1, deps=("d",), fail=RuntimeError("late failure")),
    )
    with pytest.raises(tf.TaskFailedError):
        await run_mode(tf.WorkflowExecutor(wf), mode)
    order = rec.compensated
    assert sorted(order) == ["a", "b", "c", "d"]
    for task_id in order:
        for dep in wf.dependencies_of(task_id):
            assert order.index(task_id) < order.index(dep)


class CustomError(Exception):
    pass


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "exc",
    [
        ValueError("v"),
        CustomError("custom"),
        ExceptionGroup("group", [OSError("disk"), KeyError("k")]),
        TimeoutError("its own timeout"),
        tf.WorkflowError("a nested workflow failed"),
    ],
    ids=["ValueError", "custom", "ExceptionGroup", "TimeoutError", "WorkflowError"],
)
async def test_every_exception_becomes_a_task_failure(
    autojump_clock: trio.testing.MockClock, mode: str, exc: Exception
) -> None:
    """Any Exception from a task is kept as is in failures and chained as the cause."""
    rec = Recorder()
    wf = workflow(rec.task("ok", 0.1), rec.task("bad", 0.1, deps=("ok",), fail=exc))
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(tf.WorkflowExecutor(wf), mode)
    assert info.value.__cause__ is exc
    assert info.value.failures == {"bad": exc}
    assert rec.compensated == ["ok"]


class NotAnException(BaseException):
    pass


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, NotAnException])
async def test_base_exceptions_propagate_after_rollback(
    autojump_clock: trio.testing.MockClock, mode: str, exc_type: type[BaseException]
) -> None:
    """KeyboardInterrupt, SystemExit and other BaseExceptions are never turned into failures."""
    rec = Recorder()
    wf = workflow(rec.task("ok", 0.1), rec.task("bad", 0.1, deps=("ok",), fail=exc_type()))
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(exc_type):
        await run_mode(executor, mode)
    assert rec.compensated == ["ok"]
    assert executor.audit_log.types()[-1] == "WorkflowCancelled"
    assert executor.audit_log.events[-1].error == exc_type.__name__


@pytest.mark.parametrize("mode", MODES)
async def test_task_timeout(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """A task running past its own timeout fails with TaskTimeoutError, never succeeds."""
    rec = Recorder()
    wf = workflow(rec.task("a", 0.1), rec.task("slow", 10, deps=("a",), timeout=0.5))
    executor = tf.WorkflowExecutor(wf)
    start = trio.current_time()
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(executor, mode)
    cause = info.value.__cause__
    assert isinstance(cause, tf.TaskTimeoutError)
    assert (cause.task_id, cause.timeout) == ("slow", 0.5)
    assert "slow" not in rec.ends
    assert trio.current_time() - start == pytest.approx(0.6)
    assert executor.audit_log.types(task_id="slow") == [
        "WorkflowTaskStarted",
        "WorkflowTaskTimedOut",
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_default_task_timeout_applies_to_tasks_without_their_own(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """task_timeout bounds tasks without a timeout; a task's own timeout wins."""
    rec = Recorder()
    wf = workflow(rec.task("own", 2.0, timeout=3.0), rec.task("default", 2.0))
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(tf.WorkflowExecutor(wf, task_timeout=1.0), mode)
    assert info.value.task_id == "default"
    assert isinstance(info.value.__cause__, tf.TaskTimeoutError)
    assert info.value.__cause__.timeout == 1.0
    if mode == "execute":
        assert rec.ends["own"] == pytest.approx(2.0 + rec.starts["own"])


async def test_task_that_swallows_its_timeout_is_still_timed_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task that catches the cancel of its own deadline and returns is not a success."""
    wf = tf.Workflow()

    @wf.task(timeout=1)
    async def stubborn(ctx: tf.TaskContext) -> str:
        try:
            await trio.sleep(5)
        except trio.Cancelled:
            return "pretend success"
        return "never"

    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(wf).execute_parallel()
    assert isinstance(info.value.__cause__, tf.TaskTimeoutError)


@pytest.mark.parametrize("mode", MODES)
async def test_workflow_timeout(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """workflow_timeout stops the run, rolls back and raises WorkflowTimeoutError."""
    rec = Recorder()
    wf = workflow(rec.task("a", 1.0), rec.task("b", 10.0, deps=("a",)))
    executor = tf.WorkflowExecutor(wf, workflow_timeout=2.5)
    start = trio.current_time()
    with pytest.raises(tf.WorkflowTimeoutError) as info:
        await run_mode(executor, mode)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert info.value.completed == ["a"]
    assert info.value.running == ["b"]
    assert rec.compensated == ["a"]
    assert rec.cancelled == ["b"]
    assert executor.audit_log.types()[-1] == "WorkflowTimedOut"
    assert rec.running == 0


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_mid_run(autojump_clock: trio.testing.MockClock, mode: str) -> None:
    """cancel() from another task stops the run, rolls back and raises WorkflowCancelledError."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 1.0),
        rec.task("b", 5.0, deps=("a",)),
        rec.task("c", 5.0, deps=("a",)),
        rec.task("d", 1.0, deps=("b", "c")),
    )
    executor = tf.WorkflowExecutor(wf)
    outcome: list[BaseException] = []

    async def run() -> None:
        try:
            await run_mode(executor, mode)
        except tf.WorkflowCancelledError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(2.0)
        executor.cancel("user pressed stop")
    assert len(outcome) == 1
    error = outcome[0]
    assert isinstance(error, tf.WorkflowCancelledError)
    assert error.reason == "user pressed stop"
    assert error.completed == ["a"]
    assert rec.compensated == ["a"]
    assert "d" not in rec.starts
    assert rec.running == 0
    cancelled = executor.audit_log.of_type(tf.EventType.TASK_CANCELLED)
    expected = {"b"} if mode == "execute" else {"b", "c"}
    assert {e.task_id for e in cancelled} == expected
    assert executor.audit_log.events[-1].type == "WorkflowCancelled"
    assert executor.audit_log.events[-1].detail == "user pressed stop"


async def test_cancel_without_a_run_does_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """cancel() when nothing runs leaves the next run alone."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(workflow(rec.task("a", 0.1)))
    executor.cancel()
    result = await executor.execute_dataflow()
    assert result.completed == ["a"]


@pytest.mark.parametrize("mode", MODES)
async def test_enclosing_cancel_scope_reraises_cancelled_after_rollback(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """A cancel from the caller's scope rolls back and lets trio.Cancelled propagate."""
    rec = Recorder()
    wf = workflow(rec.task("a", 1.0), rec.task("b", 5.0, deps=("a",)))
    executor = tf.WorkflowExecutor(wf)
    reached_after = False
    with trio.move_on_after(2.0) as scope:
        await run_mode(executor, mode)
        reached_after = True
    assert scope.cancelled_caught
    assert not reached_after
    assert rec.compensated == ["a"]
    assert rec.cancelled == ["b"]
    assert rec.running == 0
    last = executor.audit_log.events[-1]
    assert last.type == "WorkflowCancelled"
    assert last.error == "Cancelled"


async def test_rollback_still_runs_when_caller_cancels_during_rollback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Compensations are shielded: an outer cancel arriving mid-rollback does not cut them.

    The run had already failed, so the failure (not the late cancel) is what propagates.
    """
    done: list[str] = []
    wf = tf.Workflow()

    async def slow_undo(ctx: tf.TaskContext) -> None:
        await trio.sleep(1.0)
        done.append(ctx.task_id)

    async def ok(ctx: tf.TaskContext) -> None:
        return None

    async def fail(ctx: tf.TaskContext) -> None:
        raise ValueError("x")

    wf.add_task(tf.Task("a", ok, compensate=slow_undo))
    wf.add_task(tf.Task("b", ok, compensate=slow_undo, depends_on=["a"]))
    wf.add_task(tf.Task("c", fail, depends_on=["b"]))
    with trio.move_on_after(0.5), pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(wf).execute_dataflow()
    assert done == ["b", "a"]


@pytest.mark.parametrize("mode", MODES)
async def test_failing_compensation_is_recorded_and_the_rest_still_run(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """One compensation raising does not stop the others or hide the task failure."""
    undone: list[str] = []

    async def ok(ctx: tf.TaskContext) -> None:
        return None

    async def undo(ctx: tf.TaskContext) -> None:
        await trio.lowlevel.checkpoint()
        if ctx.task_id == "b":
            raise OSError("cannot undo b")
        undone.append(ctx.task_id)

    async def fail(ctx: tf.TaskContext) -> None:
        raise ValueError("original")

    wf = tf.Workflow()
    wf.add_task(tf.Task("a", ok, compensate=undo))
    wf.add_task(tf.Task("b", ok, compensate=undo, depends_on=["a"]))
    wf.add_task(tf.Task("c", ok, compensate=undo, depends_on=["b"]))
    wf.add_task(tf.Task("d", fail, depends_on=["c"]))
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.TaskFailedError) as info:
        await run_mode(executor, mode)
    assert isinstance(info.value.__cause__, ValueError)
    assert undone == ["c", "a"]
    assert list(info.value.compensation_failures) == ["b"]
    assert "compensation failed for 'b'" in str(info.value)
    failed = executor.audit_log.of_type("WorkflowTaskCompensationFailed")
    assert [(e.task_id, e.error) for e in failed] == [("b", "OSError: cannot undo b")]


async def test_compensation_timeout_bounds_rollback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rollback gives up after compensation_timeout and records what was not undone."""

    async def ok(ctx: tf.TaskContext) -> None:
        return None

    async def hang(ctx: tf.TaskContext) -> None:
        await trio.sleep_forever()

    async def fail(ctx: tf.TaskContext) -> None:
        raise ValueError("x")

    wf = tf.Workflow()
    wf.add_task(tf.Task("a", ok, compensate=hang))
    wf.add_task(tf.Task("b", ok, compensate=hang, depends_on=["a"]))
    wf.add_task(tf.Task("c", fail, depends_on=["b"]))
    executor = tf.WorkflowExecutor(wf, compensation_timeout=3.0)
    start = trio.current_time()
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_parallel()
    assert trio.current_time() - start == pytest.approx(3.0)
    assert set(info.value.compensation_failures) == {"a", "b"}
    assert all(isinstance(e, TimeoutError) for e in info.value.compensation_failures.values())


@pytest.mark.parametrize("mode", MODES)
async def test_tasks_without_compensation_are_not_compensated(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Rollback only records compensations for tasks that have one."""
    rec = Recorder()
    wf = workflow(
        rec.task("a", 0.1, compensate=False),
        rec.task("b", 0.1, deps=("a",)),
        rec.task("c", 0.1, deps=("b",), fail=ValueError()),
    )
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.TaskFailedError):
        await run_mode(executor, mode)
    assert [e.task_id for e in executor.audit_log.of_type("WorkflowTaskCompensated")] == ["b"]


@pytest.mark.parametrize("mode", MODES)
async def test_audit_events_pair_up_and_carry_timestamps(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    """Every started task has exactly one ending event; events carry both clocks."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(diamond(rec))
    before = dt.datetime.now(dt.UTC)
    result = await run_mode(executor, mode)
    events = executor.audit_log.events
    assert events[0].type == "WorkflowStarted"
    assert events[-1].type == "WorkflowCompleted"
    assert events[-1].duration == pytest.approx(result.duration)
    for task_id in ["a", "b", "c", "d"]:
        assert executor.audit_log.types(task_id=task_id) == [
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
        ]
    clocks = [e.clock for e in events]
    assert clocks == sorted(clocks)
    for event in events:
        assert event.workflow_id == result.workflow_id
        assert event.timestamp.tzinfo is dt.UTC
        assert event.timestamp >= before - dt.timedelta(seconds=1)
        data = event.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert dt.datetime.fromisoformat(data["timestamp"]) == event.timestamp
        assert data["type"] == event.type


async def test_audit_log_streams_json_lines(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """audit_path appends one JSON object per event, readable while the run goes on."""
    path = tmp_path / "audit" / "run.jsonl"
    seen_mid_run: list[int] = []
    wf = tf.Workflow()

    @wf.task()
    async def first(ctx: tf.TaskContext) -> None:
        await trio.sleep(0.1)

    @wf.task(depends_on=["first"])
    async def second(ctx: tf.TaskContext) -> None:
        seen_mid_run.append(len(path.read_text().splitlines()))

    executor = tf.WorkflowExecutor(wf, audit_path=path)
    await executor.execute_dataflow()
    executor.audit_log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == executor.audit_log.types()
    # By the time "second" ran, the start event, first's two events and its own start were on disk.
    assert seen_mid_run == [4]


async def test_results_and_context_fields(autojump_clock: trio.testing.MockClock) -> None:
    """The context names the task, the run and the attempt."""
    seen: list[tuple[str, str, int]] = []
    wf = tf.Workflow("named")

    @wf.task()
    async def only(ctx: tf.TaskContext) -> None:
        seen.append((ctx.task_id, ctx.workflow_id, ctx.attempt))

    result = await tf.WorkflowExecutor(wf).execute()
    assert seen == [("only", result.workflow_id, 1)]
    assert result.workflow_id.startswith("named-")


async def test_each_run_gets_its_own_workflow_id(autojump_clock: trio.testing.MockClock) -> None:
    """Running the same executor twice gives two run ids and a log of both runs."""
    rec = Recorder()
    executor = tf.WorkflowExecutor(workflow(rec.task("a")))
    first = await executor.execute()
    second = await executor.execute_parallel()
    assert first.workflow_id != second.workflow_id
    assert executor.audit_log.types().count("WorkflowCompleted") == 2


async def test_definition_errors_are_raised_before_anything_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A workflow with a missing dependency fails before any task starts."""
    rec = Recorder()
    wf = workflow(rec.task("a"), rec.task("b", deps=("nope",)))
    executor = tf.WorkflowExecutor(wf)
    with pytest.raises(tf.MissingDependencyError):
        await executor.execute_parallel()
    assert rec.starts == {}
    assert len(executor.audit_log) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_timeout": 0}, "task_timeout must be"),
        ({"workflow_timeout": -1}, "workflow_timeout must be"),
        ({"compensation_timeout": math.nan}, "compensation_timeout must be"),
        ({"max_concurrency": 0}, "max_concurrency must be"),
        ({"retries": -1}, "retries must be"),
    ],
)
def test_executor_validates_its_arguments(kwargs: dict[str, object], message: str) -> None:
    """Bad executor arguments are refused with the argument's name."""
    with pytest.raises(ValueError, match=message):
        tf.WorkflowExecutor(tf.Workflow(), **kwargs)  # type: ignore[arg-type]


def test_parallel_speedup_on_the_real_clock() -> None:
    """On the real clock, five independent 0.2 s tasks take far less than 1 s in parallel."""

    async def main() -> float:
        rec = Recorder()
        wf = workflow(*(rec.task(f"t{i}", 0.2) for i in range(5)))
        start = time.perf_counter()
        await tf.WorkflowExecutor(wf).execute_parallel()
        return time.perf_counter() - start

    elapsed = trio.run(main)
    assert 0.2 <= elapsed < 0.8


def test_audit_log_turns_recorded_fields_into_events_in_order() -> None:
    """Recorded fields become AuditEvents in order when read; bad ones are refused."""
    log = tf.AuditLog()
    log.record_fields(("WorkflowStarted", "w-1", 1.0, 100.0, None, None, None, None, None, "w"))
    log.record_fields(("WorkflowTaskStarted", "w-1", 2.0, 101.0, "a", None, 1, None, None, None))
    assert len(log) == 2
    log.record(tf.AuditEvent(tf.EventType.WORKFLOW_COMPLETED, "w-1", 3.0, 102.0, duration=2.0))
    assert len(log) == 3
    assert [(e.type, e.clock, e.task_id) for e in log.events] == [
        (tf.EventType.WORKFLOW_STARTED, 1.0, None),
        (tf.EventType.TASK_STARTED, 2.0, "a"),
        (tf.EventType.WORKFLOW_COMPLETED, 3.0, None),
    ]
    assert log.events[1].attempt == 1
    with pytest.raises(ValueError, match="10 fields, got 3"):
        log.record_fields(("WorkflowTaskStarted", "w-1", 2.0))
    assert len(log) == 3
