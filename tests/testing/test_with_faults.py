"""with_faults: a faithful copy of a workflow with faults around the real task bodies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
import trio.testing

import trioforge as tf
from trioforge.combinators import SequentialTasks
from trioforge.testing import FaultPlan, FaultyTask, InjectedFault, with_faults


class Calls:
    """Counts how often each body and each compensation ran."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.undone: list[str] = []

    def task(self, task_id: str, seconds: float = 1.0, **options: object) -> tf.Task:
        """A task that records its body, sleeps ``seconds`` and returns its id."""

        async def body(ctx: tf.TaskContext) -> str:
            self.bodies.append(ctx.task_id)
            await trio.sleep(seconds)
            return ctx.task_id

        async def undo(ctx: tf.TaskContext) -> None:
            await trio.lowlevel.checkpoint()
            self.undone.append(ctx.task_id)

        return tf.Task(task_id, body, compensate=undo, **options)  # type: ignore[arg-type]


def diamond(calls: Calls) -> tf.Workflow:
    """A -> (b, c) -> d, plus an edge c -> b added with add_dependency."""
    wf = tf.Workflow("diamond")
    wf.add_task(calls.task("a", timeout=5.0, estimate=1.0))
    wf.add_task(calls.task("b", depends_on=("a",), retries=2))
    wf.add_task(calls.task("c", depends_on=("a",)))
    wf.add_task(calls.task("d", depends_on=("b", "c"), timeout=3.0))
    wf.add_dependency("c", "b")
    return wf


def test_copy_keeps_ids_dependencies_and_options() -> None:
    """Same name, ids in order, dependencies (add_dependency too) and every option."""
    wf = diamond(Calls())
    copy = with_faults(wf, FaultPlan(fail_before={"a"}, fail_after={"b"}, hang={"d"}))
    assert copy is not wf
    assert wf.name == copy.name
    assert list(wf) == list(copy)
    for task_id in wf:
        assert wf.dependencies_of(task_id) == copy.dependencies_of(task_id)
        old, new = wf[task_id], copy[task_id]
        assert isinstance(new, tf.Task)
        assert isinstance(old, tf.Task)
        assert (old.depends_on, old.timeout, old.estimate, old.retries) == (
            new.depends_on,
            new.timeout,
            new.estimate,
            new.retries,
        )
        assert old.has_compensation == new.has_compensation
        assert old._compensate is new._compensate
    assert wf.execution_layers() == copy.execution_layers()


def test_tasks_without_a_fault_are_the_same_objects() -> None:
    """Only the planned tasks are replaced; a faulty Task keeps its function's name."""
    wf = diamond(Calls())
    copy = with_faults(wf, FaultPlan(hang={"c"}))
    assert [wf[t] is copy[t] for t in wf] == [True, True, False, True]
    assert repr(wf["c"]) == repr(copy["c"])
    assert type(copy["c"]) is tf.Task


def test_the_original_is_not_changed() -> None:
    """The original workflow still runs without faults after a faulty copy is made."""
    calls = Calls()
    wf = diamond(calls)
    with_faults(wf, FaultPlan(fail_before=set(wf)))
    result = trio.run(
        tf.WorkflowExecutor(wf).execute_dataflow,
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert result.completed == ["a", "c", "b", "d"]


def test_unknown_task_ids_are_refused() -> None:
    """A plan naming a task the workflow lacks is a ValueError naming the field and a guess."""
    with pytest.raises(
        ValueError,
        match=(
            r"^FaultPlan\.hang names 'dd', which is not a task of workflow 'diamond' "
            r"\(did you mean 'd'\?\)$"
        ),
    ):
        with_faults(diamond(Calls()), FaultPlan(hang={"dd"}))


def test_arguments_are_checked() -> None:
    """A non-workflow or a non-plan is a TypeError."""
    with pytest.raises(TypeError, match=r"workflow must be a trioforge\.Workflow"):
        with_faults("wf", FaultPlan())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="plan must be a FaultPlan"):
        with_faults(diamond(Calls()), {"hang": {"a"}})  # type: ignore[arg-type]


async def test_fail_before_never_runs_the_body_on_any_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_before raises InjectedFault before the body on each of the 3 attempts."""
    calls = Calls()
    wf = tf.Workflow("one")
    wf.add_task(calls.task("x", retries=2))
    executor = tf.WorkflowExecutor(with_faults(wf, FaultPlan(fail_before={"x"})))
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    assert calls.bodies == []
    assert isinstance(info.value.__cause__, InjectedFault)
    assert (info.value.__cause__.task_id, info.value.__cause__.kind) == ("x", "fail_before")
    assert len(executor.audit_log.of_type(tf.EventType.TASK_FAILED)) == 3


async def test_fail_after_runs_the_body_on_every_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_after lets the body finish, then fails; retries cannot mask it."""
    calls = Calls()
    wf = tf.Workflow("one")
    wf.add_task(calls.task("x", retries=2))
    executor = tf.WorkflowExecutor(
        with_faults(wf, FaultPlan(fail_after={"x"})), backoff=tf.Backoff(initial=0, jitter=0)
    )
    with pytest.raises(tf.TaskFailedError, match="after its body returned"):
        await executor.execute()
    assert calls.bodies == ["x", "x", "x"]
    assert calls.undone == []
    assert trio.current_time() == 3.0


async def test_hang_blocks_after_the_body_until_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Hang runs the body (1 s), then blocks until the task's 3 s timeout fires."""
    calls = Calls()
    wf = diamond(calls)
    executor = tf.WorkflowExecutor(with_faults(wf, FaultPlan(hang={"d"})))
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute_dataflow()
    assert isinstance(info.value.__cause__, tf.TaskTimeoutError)
    assert calls.bodies == ["a", "c", "b", "d"]
    assert calls.undone == ["b", "c", "a"]
    # d starts at 3 and times out at 6; three compensations take no time.
    assert trio.current_time() == 6.0


async def test_faults_work_under_the_real_clock() -> None:
    """No virtual clock needed: a hang ends at the task's (real) timeout."""
    wf = tf.Workflow("real")
    wf.add_task(Calls().task("x", seconds=0.0, timeout=0.05))
    executor = tf.WorkflowExecutor(with_faults(wf, FaultPlan(hang={"x"})))
    with pytest.raises(tf.TaskFailedError) as info:
        await executor.execute()
    assert isinstance(info.value.__cause__, tf.TaskTimeoutError)


async def test_a_combinator_is_wrapped_whole(autojump_clock: trio.testing.MockClock) -> None:
    """A fault around a combinator fires after all its children ran; it keeps its options."""
    calls = Calls()
    combo = SequentialTasks("both", [calls.task("c1"), calls.task("c2")], timeout=9.0)
    wf = tf.Workflow("combo")
    wf.add_task(calls.task("first"))
    wf.add_task(attrs_evolve_deps(combo, ("first",)))
    copy = with_faults(wf, FaultPlan(fail_after={"both"}))
    wrapped = copy["both"]
    assert isinstance(wrapped, FaultyTask)
    assert (wrapped.id, tuple(wrapped.depends_on), wrapped.timeout) == ("both", ("first",), 9.0)
    assert wrapped.compensation_timeout == combo.compensation_timeout
    assert wrapped.has_compensation
    assert repr(wf["both"]) == repr(wrapped)
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(copy).execute_dataflow()
    assert info.value.task_id == "both"
    assert calls.bodies == ["first", "c1", "c2"]
    # The combinator did not complete, so only "first" is undone.
    assert calls.undone == ["first"]


def attrs_evolve_deps(combo: SequentialTasks, deps: tuple[str, ...]) -> SequentialTasks:
    """The combinator with ``depends_on`` set."""
    import attrs

    return attrs.evolve(combo, depends_on=deps)


async def test_a_shell_task_is_wrapped_whole(tmp_path: Path) -> None:
    """A shell task's command runs, then the fault fires; its attributes read through."""
    marker = tmp_path / "ran"
    shell = tf.ShellTask(
        "touch",
        run=[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
        log_dir=tmp_path / "logs",
        timeout=30,
    )
    wf = tf.Workflow("shell")
    wf.add_task(shell)
    copy = with_faults(wf, FaultPlan(fail_after={"touch"}))
    wrapped = copy["touch"]
    assert isinstance(wrapped, FaultyTask)
    assert shell.run_command == wrapped.run_command
    assert repr(shell) == repr(wrapped)
    with pytest.raises(tf.TaskFailedError) as info:
        await tf.WorkflowExecutor(copy).execute()
    assert isinstance(info.value.__cause__, InjectedFault)
    assert marker.exists()


async def test_fail_before_a_shell_task_runs_no_command(tmp_path: Path) -> None:
    """fail_before on a shell task: the command never starts."""
    marker = tmp_path / "ran"
    wf = tf.Workflow("shell")
    wf.add_task(
        tf.ShellTask(
            "touch",
            run=[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
            log_dir=tmp_path / "logs",
        )
    )
    with pytest.raises(tf.TaskFailedError):
        await tf.WorkflowExecutor(with_faults(wf, FaultPlan(fail_before={"touch"}))).execute()
    assert not marker.exists()
