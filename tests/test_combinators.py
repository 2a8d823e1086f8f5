"""Combinators: ParallelTasks, SequentialTasks, ConditionalTask, TryCatchTask, RaceTasks."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from helpers import Recorder, workflow

import trioforge as tf
from trioforge.combinators import (
    ConditionalTask,
    ParallelTasks,
    RaceTasks,
    SequentialTasks,
    TryCatchTask,
)


def test_combinators_are_workflow_tasks() -> None:
    """Every combinator satisfies the WorkflowTask protocol."""
    rec = Recorder()
    child = rec.task("x")
    combinators = [
        ParallelTasks("p", [child]),
        SequentialTasks("s", [child]),
        ConditionalTask("c", lambda ctx: True, child),
        TryCatchTask("t", child, rec.task("y")),
        RaceTasks("r", [child]),
    ]
    for combinator in combinators:
        assert isinstance(combinator, tf.WorkflowTask)


async def test_parallel_tasks_actual_parallel(autojump_clock: trio.testing.MockClock) -> None:
    """ParallelTasks runs its children at the same time: three 1 s children take 1 s."""
    rec = Recorder()
    par = ParallelTasks("par", [rec.task("a", 1.0), rec.task("b", 1.0), rec.task("c", 1.0)])
    wf = workflow(rec.task("before", 0.5), par)
    start = trio.current_time()
    result = await tf.WorkflowExecutor(wf).execute_parallel()
    assert trio.current_time() - start == pytest.approx(1.0)
    assert result.results["par"] == {"a": "a", "b": "b", "c": "c"}
    assert rec.max_running == 4
    assert set(rec.starts.values()) == {start}


async def test_parallel_tasks_fail_fast_leaves_nothing_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing child cancels its siblings; the failure keeps every child error."""
    rec = Recorder()
    boom = ValueError("child failed")
    par = ParallelTasks(
        "par",
        [rec.task("quick", 0.1), rec.task("bad", 0.5, fail=boom), rec.task("slow", 5.0)],
    )
    executor = tf.WorkflowExecutor(workflow(par))
    start = trio.current_time()
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert trio.current_time() - start == pytest.approx(0.5)
    inner = info.value.__cause__
    assert isinstance(inner, tf.TaskFailedError)
    assert inner.task_id == "bad"
    assert inner.failures == {"bad": boom}
    assert inner.__cause__ is boom
    assert rec.cancelled == ["slow"]
    assert rec.running == 0
    # The child that completed inside the failed combinator was undone.
    assert rec.compensated == ["quick"]


async def test_parallel_tasks_rollback_compensates_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When a later task fails, a completed ParallelTasks compensates its children."""
    rec = Recorder()
    par = ParallelTasks("par", [rec.task("a", 0.2), rec.task("b", 0.1)])
    wf = workflow(par, rec.task("after", 0.1, deps=("par",), fail=RuntimeError()))
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(wf).execute()
    assert rec.compensated == ["a", "b"]


async def test_sequential_tasks_order_and_sibling_results(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SequentialTasks runs children in order; each reads earlier siblings and upstream."""
    seen: list[str] = []

    async def first(ctx: tf.TaskContext) -> int:
        seen.append(ctx.task_id)
        return int(ctx.result_of("up")) + 1

    async def second(ctx: tf.TaskContext) -> int:
        seen.append(ctx.task_id)
        return int(ctx.result_of("first")) * 10

    async def up(ctx: tf.TaskContext) -> int:
        return 1

    seq = SequentialTasks(
        "seq", [tf.Task("first", first), tf.Task("second", second)], depends_on=["up"]
    )
    result = await tf.WorkflowExecutor(workflow(tf.Task("up", up), seq)).execute_dataflow()
    assert seen == ["first", "second"]
    assert result.results["seq"] == {"first": 2, "second": 20}


async def test_sequential_child_cannot_read_later_sibling() -> None:
    """A child asking for a sibling that has not run yet gets a clear error."""

    async def early(ctx: tf.TaskContext) -> int:
        return int(ctx.result_of("late"))

    async def late(ctx: tf.TaskContext) -> int:
        return 1

    seq = SequentialTasks("seq", [tf.Task("early", early), tf.Task("late", late)])
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(seq)).execute()
    assert isinstance(info.value.__cause__, tf.ResultNotAvailableError)


async def test_sequential_failure_undoes_completed_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing child stops the sequence, its own error propagates, earlier children undo."""
    rec = Recorder()
    boom = KeyError("k")
    seq = SequentialTasks(
        "seq",
        [
            rec.task("one", 0.1),
            rec.task("two", 0.1),
            rec.task("three", 0.1, fail=boom),
            rec.task("four", 0.1),
        ],
    )
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(seq)).execute()
    assert info.value.__cause__ is boom
    assert "four" not in rec.starts
    assert rec.compensated == ["two", "one"]


@pytest.mark.parametrize(("flag", "expected"), [(True, "yes"), (False, "no")])
async def test_conditional_task_picks_a_branch(flag: bool, expected: str) -> None:
    """ConditionalTask runs only the branch the predicate picks."""
    rec = Recorder()
    cond = ConditionalTask(
        "cond",
        lambda ctx: ctx.result_of("flag"),
        rec.task("yes"),
        rec.task("no"),
        depends_on=["flag"],
    )

    async def flag_fn(ctx: tf.TaskContext) -> bool:
        return flag

    result = await tf.WorkflowExecutor(workflow(tf.Task("flag", flag_fn), cond)).execute()
    assert result.results["cond"] == expected
    assert set(rec.starts) == {expected}


async def test_conditional_task_async_predicate_without_else() -> None:
    """An async predicate works; a false one with no else branch gives None."""
    rec = Recorder()

    async def never(ctx: tf.TaskContext) -> bool:
        await trio.lowlevel.checkpoint()
        return False

    cond = ConditionalTask("cond", never, rec.task("yes"))
    result = await tf.WorkflowExecutor(workflow(cond)).execute()
    assert result.results["cond"] is None
    assert rec.starts == {}


async def test_conditional_task_compensates_the_branch_that_ran() -> None:
    """Rollback of a ConditionalTask compensates the chosen branch only."""
    rec = Recorder()
    cond = ConditionalTask("cond", lambda ctx: False, rec.task("yes"), rec.task("no"))
    wf = workflow(cond, rec.task("after", deps=("cond",), fail=ValueError()))
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(wf).execute()
    assert rec.compensated == ["no"]


async def test_try_catch_runs_fallback_on_failure() -> None:
    """TryCatchTask returns the fallback's result when the task fails; the fallback sees why."""
    rec = Recorder()
    boom = RuntimeError("primary broke")

    async def fallback(ctx: tf.TaskContext) -> str:
        return f"recovered from {ctx.state['error']!r}"

    tc = TryCatchTask("tc", rec.task("primary", fail=boom), tf.Task("fallback", fallback))
    result = await tf.WorkflowExecutor(workflow(tc)).execute()
    assert result.results["tc"] == "recovered from RuntimeError('primary broke')"


async def test_try_catch_passes_through_success() -> None:
    """When the task succeeds the fallback never runs."""
    rec = Recorder()
    tc = TryCatchTask("tc", rec.task("primary", result=5), rec.task("fallback"))
    result = await tf.WorkflowExecutor(workflow(tc)).execute()
    assert result.results["tc"] == 5
    assert set(rec.starts) == {"primary"}


async def test_try_catch_catches_child_timeouts(autojump_clock: trio.testing.MockClock) -> None:
    """A child's own timeout is a failure the fallback handles."""
    rec = Recorder()
    tc = TryCatchTask("tc", rec.task("slow", 10, timeout=1), rec.task("fallback", result="fb"))
    start = trio.current_time()
    result = await tf.WorkflowExecutor(workflow(tc)).execute()
    assert result.results["tc"] == "fb"
    assert trio.current_time() - start == pytest.approx(1.0)


async def test_try_catch_only_catches_listed_types() -> None:
    """An exception outside `catch` is not handled."""
    rec = Recorder()
    boom = KeyError("k")
    tc = TryCatchTask("tc", rec.task("p", fail=boom), rec.task("f"), catch=(ValueError,))
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(tc)).execute()
    assert info.value.__cause__ is boom
    assert "f" not in rec.starts


async def test_try_catch_never_catches_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling a run inside TryCatchTask does not start the fallback."""
    rec = Recorder()
    tc = TryCatchTask("tc", rec.task("p", 10), rec.task("f"))
    executor = tf.WorkflowExecutor(workflow(tc), workflow_timeout=1)
    with pytest.raises(tf.WorkflowTimeoutError):
        await executor.execute()
    assert "f" not in rec.starts
    assert rec.cancelled == ["p"]


async def test_race_tasks_first_success_wins(autojump_clock: trio.testing.MockClock) -> None:
    """RaceTasks returns the fastest successful child's result and cancels the rest."""
    rec = Recorder()
    race = RaceTasks(
        "race",
        [rec.task("fails-fast", 0.1, fail=OSError()), rec.task("wins", 0.5), rec.task("slow", 3)],
    )
    start = trio.current_time()
    result = await tf.WorkflowExecutor(workflow(race)).execute()
    assert result.results["race"] == "wins"
    assert trio.current_time() - start == pytest.approx(0.5)
    assert rec.cancelled == ["slow"]
    assert rec.running == 0


async def test_race_tasks_fail_only_when_all_fail(autojump_clock: trio.testing.MockClock) -> None:
    """RaceTasks fails with every child's failure when no child succeeds."""
    rec = Recorder()
    e1, e2 = OSError("one"), ValueError("two")
    race = RaceTasks("race", [rec.task("a", 0.2, fail=e1), rec.task("b", 0.1, fail=e2)])
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(race)).execute()
    inner = info.value.__cause__
    assert isinstance(inner, tf.TaskFailedError)
    assert inner.failures == {"b": e2, "a": e1}
    assert inner.task_id == "b"


async def test_race_tasks_rollback_compensates_winner_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rolling back a race undoes the winner; cancelled losers had nothing to undo."""
    rec = Recorder()
    race = RaceTasks("race", [rec.task("wins", 0.1), rec.task("loses", 1)])
    wf = workflow(race, rec.task("after", deps=("race",), fail=ValueError()))
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(wf).execute()
    assert rec.compensated == ["wins"]


async def test_nested_combinators(autojump_clock: trio.testing.MockClock) -> None:
    """Combinators nest: a sequence of a parallel block and a race."""
    rec = Recorder()
    nested = SequentialTasks(
        "pipeline",
        [
            ParallelTasks("fetch", [rec.task("f1", 1.0), rec.task("f2", 2.0)]),
            RaceTasks("mirror", [rec.task("m1", 0.5), rec.task("m2", 0.25)]),
        ],
    )
    start = trio.current_time()
    result = await tf.WorkflowExecutor(workflow(nested)).execute_dataflow()
    assert trio.current_time() - start == pytest.approx(2.25)
    assert result.results["pipeline"] == {"fetch": {"f1": "f1", "f2": "f2"}, "mirror": "m2"}


async def test_child_timeout_is_enforced(autojump_clock: trio.testing.MockClock) -> None:
    """A child's timeout holds inside a combinator too."""
    rec = Recorder()
    par = ParallelTasks("par", [rec.task("slow", 10, timeout=2)])
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(par)).execute()
    inner = info.value.__cause__
    assert isinstance(inner, tf.TaskFailedError)
    assert isinstance(inner.__cause__, tf.TaskTimeoutError)


def test_children_must_not_declare_dependencies() -> None:
    """A child with depends_on is refused: dependencies belong on the combinator."""
    rec = Recorder()
    with pytest.raises(ValueError, match="put dependencies on the combinator"):
        ParallelTasks("p", [rec.task("a", deps=("x",))])


def test_children_ids_must_be_unique() -> None:
    """Two children with one id are refused."""
    rec = Recorder()
    with pytest.raises(ValueError, match="share the id 'a'"):
        SequentialTasks("s", [rec.task("a"), rec.task("a")])


def test_combinators_need_children() -> None:
    """An empty ParallelTasks or RaceTasks is refused."""
    with pytest.raises(ValueError, match="at least one"):
        ParallelTasks("p", [])
    with pytest.raises(ValueError, match="at least one"):
        RaceTasks("r", [])


async def _ok(ctx: tf.TaskContext) -> str:
    return ctx.task_id


async def _broken_undo(ctx: tf.TaskContext) -> None:
    raise OSError(f"cannot undo {ctx.task_id}")


async def _fails(ctx: tf.TaskContext) -> None:
    await trio.lowlevel.checkpoint()
    raise ValueError("the real failure")


async def test_parallel_undo_failure_does_not_hide_the_child_failure() -> None:
    """A failing child compensation inside ParallelTasks is reported beside, not instead of."""
    par = ParallelTasks(
        "par", [tf.Task("done", _ok, compensate=_broken_undo), tf.Task("bad", _fails)]
    )
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(par)).execute()
    inner = info.value.__cause__
    assert isinstance(inner, tf.TaskFailedError)
    assert isinstance(inner.__cause__, ValueError)
    assert list(inner.compensation_failures) == ["done"]


async def test_sequential_undo_failure_is_a_note_on_the_child_failure() -> None:
    """SequentialTasks re-raises the child's own error with the undo failure as a note."""
    seq = SequentialTasks(
        "seq", [tf.Task("done", _ok, compensate=_broken_undo), tf.Task("bad", _fails)]
    )
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(seq)).execute()
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    assert str(cause) == "the real failure"
    assert cause.__notes__ == [
        "compensating child 'done' also failed: OSError('cannot undo done')"
    ]


async def test_combinator_rollback_reports_every_child_compensation_failure() -> None:
    """When the workflow rolls back a combinator, every failed child undo is reported."""
    par = ParallelTasks(
        "par",
        [tf.Task("x", _ok, compensate=_broken_undo), tf.Task("y", _ok, compensate=_broken_undo)],
    )

    async def later(ctx: tf.TaskContext) -> None:
        raise RuntimeError("later")

    executor = tf.WorkflowExecutor(workflow(par, tf.Task("later", later, depends_on=["par"])))
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    group = info.value.compensation_failures["par"]
    assert isinstance(group, ExceptionGroup)
    assert sorted(str(e) for e in group.exceptions) == ["cannot undo x", "cannot undo y"]


@pytest.mark.parametrize("kind", [SequentialTasks, ParallelTasks])
async def test_combinator_timeout_undoes_completed_children(
    autojump_clock: trio.testing.MockClock, kind: type[SequentialTasks] | type[ParallelTasks]
) -> None:
    """A combinator that times out compensates its completed children, then fails."""
    rec = Recorder()
    combo = kind("combo", [rec.task("quick", 1), rec.task("slow", 100)], timeout=5)
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(workflow(combo)).execute()
    assert isinstance(info.value.__cause__, tf.TaskTimeoutError)
    assert rec.compensated == ["quick"]
    assert rec.running == 0


@pytest.mark.parametrize("kind", [SequentialTasks, ParallelTasks])
async def test_combinator_cancelled_from_outside_undoes_completed_children(
    autojump_clock: trio.testing.MockClock, kind: type[SequentialTasks] | type[ParallelTasks]
) -> None:
    """A combinator cut off by the caller's cancel scope compensates its completed children."""
    rec = Recorder()
    combo = kind("combo", [rec.task("quick", 1), rec.task("slow", 100)])
    with trio.move_on_after(5) as scope:
        await tf.WorkflowExecutor(workflow(combo)).execute_dataflow()
    assert scope.cancelled_caught
    assert rec.compensated == ["quick"]


async def test_combinator_cancelled_by_executor_undoes_completed_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """executor.cancel() mid-combinator: its completed children are compensated once."""
    rec = Recorder()
    combo = SequentialTasks("combo", [rec.task("quick", 1), rec.task("slow", 100)])
    executor = tf.WorkflowExecutor(workflow(combo))

    async def cancel_later() -> None:
        await trio.sleep(5)
        executor.cancel("stop")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(tf.WorkflowCancelledError):
            await executor.execute()
    assert rec.compensated == ["quick"]


async def test_race_cancelled_from_outside_undoes_the_winner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A race cut off after its winner completed (a loser shielded) undoes the winner."""
    rec = Recorder()

    async def stubborn(ctx: tf.TaskContext) -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(10)

    race = RaceTasks("race", [rec.task("winner", 1), tf.Task("loser", stubborn)])
    with trio.move_on_after(5):
        await tf.WorkflowExecutor(workflow(race)).execute()
    assert rec.compensated == ["winner"]


def test_predicate_must_take_the_context() -> None:
    """ConditionalTask refuses a predicate that takes no context, naming the task and option."""
    rec = Recorder()
    with pytest.raises(TypeError, match="task 'c': predicate must be a function taking"):
        ConditionalTask("c", lambda: True, rec.task("x"))  # type: ignore[arg-type,misc]
