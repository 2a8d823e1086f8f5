"""ShellTask and the process-group runner, in-process, with real commands."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from cli_helpers import dead_soon

import trioforge._shell._env as _shell
from trioforge import (
    MissingOutputError,
    ShellCommandError,
    ShellResult,
    ShellTask,
    TaskContext,
    TaskFailedError,
    Workflow,
    WorkflowExecutor,
)
from trioforge._shell._files import read_outputs, task_file_stem
from trioforge._shell._process_group import ProcessGroups, run_in_group
from trioforge.combinators import FallbackTask


def ctx(task_id: str = "t", attempt: int = 1) -> TaskContext:
    return TaskContext(task_id, "run-1", attempt=attempt)


async def test_result_holds_outputs_and_the_environment_is_set(tmp_path: Path) -> None:
    """The command sees TRIOFORGE_* and env; key=value lines become the result's outputs."""
    script = (
        'echo "attempt=$TRIOFORGE_ATTEMPT" >> "$TRIOFORGE_OUTPUT"; '
        'echo "task=$TRIOFORGE_TASK_ID" >> "$TRIOFORGE_OUTPUT"; '
        'echo "run=$TRIOFORGE_RUN_ID" >> "$TRIOFORGE_OUTPUT"; '
        'echo "phase=$TRIOFORGE_PHASE" >> "$TRIOFORGE_OUTPUT"; '
        'echo "greeting=$GREETING" >> "$TRIOFORGE_OUTPUT"; '
        'echo "where=$(pwd)" >> "$TRIOFORGE_OUTPUT"; '
        'read line || echo "stdin=closed" >> "$TRIOFORGE_OUTPUT"; echo to the log'
    )
    task = ShellTask("t", script, env={"GREETING": "hi there"}, cwd=tmp_path, log_dir=tmp_path)
    result = await task.run(ctx(attempt=2))
    assert isinstance(result, ShellResult)
    assert result.outputs == {
        "attempt": "2",
        "task": "t",
        "run": "run-1",
        "phase": "run",
        "greeting": "hi there",
        "where": str(tmp_path),
        "stdin": "closed",
    }
    assert result.returncode == 0
    assert result.attempt == 2
    assert result.log_path == tmp_path / "run-1" / "t.log"
    assert "to the log" in result.log_path.read_text()


async def test_non_zero_exit_raises_with_task_status_and_log(tmp_path: Path) -> None:
    """A failing command raises ShellCommandError naming the task, the status and the log."""
    task = ShellTask("build", "echo oops >&2; exit 7", log_dir=tmp_path)
    with pytest.raises(ShellCommandError) as info:
        await task.run(ctx("build"))
    error = info.value
    assert error.task_id == "build"
    assert error.returncode == 7
    assert error.log_path == tmp_path / "run-1" / "build.log"
    assert "task 'build' exited with status 7" in str(error)
    assert "build.log" in str(error)
    assert "oops" in error.log_path.read_text()


async def test_a_missing_program_or_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A command that cannot start fails with a message saying why."""
    missing = ShellTask("m", ["no-such-program-xyz"], log_dir=tmp_path)
    with pytest.raises(ShellCommandError, match="command not found: 'no-such-program-xyz'"):
        await missing.run(ctx("m"))
    nowhere = ShellTask("n", ["true"], cwd=tmp_path / "nope", log_dir=tmp_path)
    with pytest.raises(ShellCommandError, match=r"working directory .* does not exist"):
        await nowhere.run(ctx("n"))


async def test_cancellation_terminates_the_process_group(tmp_path: Path) -> None:
    """Cancelling a running command sends SIGTERM to its group: background children die too."""
    pid_file = tmp_path / "child.pid"
    task = ShellTask("t", f"sleep 1000 & echo $! > {pid_file}; wait", log_dir=tmp_path)
    with trio.move_on_after(5) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(task.run, ctx())
            # The pid comes from another process: there is no event to wait on.
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert dead_soon(int(pid_file.read_text()))
    assert "SIGTERM to process group" in (tmp_path / "run-1" / "t.log").read_text()


async def test_sigterm_is_followed_by_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    """A command that ignores SIGTERM gets SIGKILL once the grace period is over."""
    pid_file = tmp_path / "leader.pid"
    script = f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.05; done"
    task = ShellTask("t", script, grace_period=0.3, log_dir=tmp_path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.run, ctx())
        # Cancel only once the trap is set (the pid is written after it).
        with trio.fail_after(15):
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110
                await trio.sleep(0.01)
        cancelled = trio.current_time()
        nursery.cancel_scope.cancel()
    elapsed = trio.current_time() - cancelled
    assert 0.25 <= elapsed < 3
    assert dead_soon(int(pid_file.read_text()))
    assert "SIGKILL to process group" in (tmp_path / "run-1" / "t.log").read_text()


async def test_kill_all_stops_running_groups_and_refuses_new_commands(tmp_path: Path) -> None:
    """ProcessGroups.kill_all SIGKILLs what runs now; afterwards nothing starts."""
    groups = ProcessGroups()
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    try:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append(
                await run_in_group(
                    ["sleep", "30"],
                    cwd=None,
                    env=os.environ,
                    output=fd,
                    grace_period=5,
                    groups=groups,
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            # Registration follows the child's exec: no event to wait on.
            while not len(groups):  # noqa: ASYNC110
                await trio.sleep(0.01)
            assert groups.kill_all() == 1
        assert statuses == [-signal.SIGKILL]
        assert len(groups) == 0
        task = ShellTask("late", ["true"], process_groups=groups, log_dir=tmp_path)
        with pytest.raises(ShellCommandError, match="not started"):
            await task.run(ctx("late"))
    finally:
        os.close(fd)


async def test_compensate_runs_its_command_with_the_task_environment(tmp_path: Path) -> None:
    """`compensate` runs with the task's env, in phase `compensate`."""
    marker = tmp_path / "undo.txt"
    task = ShellTask(
        "t",
        "true",
        env={"WHAT": "rollback"},
        compensate=["sh", "-c", f'echo "$WHAT $TRIOFORGE_PHASE" > {marker}'],
        log_dir=tmp_path,
    )
    assert task.has_compensation
    await task.compensate(ctx())
    assert marker.read_text() == "rollback compensate\n"
    await ShellTask("u", "true", log_dir=tmp_path).compensate(ctx("u"))  # nothing to undo


def test_templates_are_refused_in_shell_text_and_checked_in_argv() -> None:
    """A template in a script, a malformed template or a reserved variable is a ValueError."""
    with pytest.raises(ValueError, match="not expanded in shell text"):
        ShellTask("t", "echo ${{ tasks.a.outputs.b }}")
    with pytest.raises(ValueError, match="unknown template expression"):
        ShellTask("t", ["echo", "${{ env.HOME }}"])
    with pytest.raises(ValueError, match="set by trioforge"):
        ShellTask("t", ["true"], env={"TRIOFORGE_OUTPUT": "x"})
    with pytest.raises(ValueError, match="must not be empty"):
        ShellTask("t", "   ")


def test_read_outputs_accepts_key_value_lines_only(tmp_path: Path) -> None:
    """Blank lines are skipped, the last value of a key wins, anything else is an error."""
    path = tmp_path / "out"
    path.write_text("a=1\n\nb=x=y\na=2\n")
    assert read_outputs(path) == {"a": "2", "b": "x=y"}
    assert read_outputs(tmp_path / "missing") == {}
    path.write_text("a=1\nno equals sign\n")
    with pytest.raises(ValueError, match="line 2 is not key=value"):
        read_outputs(path)
    path.write_bytes(b"a=\xff\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_outputs(path)


def test_read_outputs_ends_lines_at_newline_only(tmp_path: Path) -> None:
    """Form feeds, file separators, NEL and U+2028/9 stay in a value; CRLF ends a line."""
    path = tmp_path / "out"
    value = "x\x0cy\x1cz\x1d\x1e\x85w\u2028v\u2029u"
    path.write_text(f"a={value}\nb=2\r\n", encoding="utf-8", newline="")
    assert read_outputs(path) == {"a": value, "b": "2"}


async def test_task_ids_that_are_not_file_names_stay_in_the_run_folder(tmp_path: Path) -> None:
    """Ids like `a/b` or `/abs` get files of their own inside the run's folder."""
    logs = tmp_path / "logs"
    for task_id in ("a/b", "/abs", ".."):
        task = ShellTask(task_id, 'echo "k=v" >> "$TRIOFORGE_OUTPUT"', log_dir=logs)
        result = await task.run(ctx(task_id))
        assert result.outputs == {"k": "v"}
        assert result.log_path.parent == logs / "run-1"
        assert result.log_path.is_file()
    assert sorted(p.name for p in (logs / "run-1").glob("*.log")) == sorted(
        f"{task_file_stem(i)}.log" for i in ("a/b", "/abs", "..")
    )
    assert len({task_file_stem(i) for i in ("a/b", "a_b", "a.b")}) == 3
    assert not (tmp_path / "abs.log").exists()


async def test_a_compensation_writes_outputs_to_a_file_of_its_own(tmp_path: Path) -> None:
    """$TRIOFORGE_OUTPUT in `compensate` is not the task's outputs file."""
    task = ShellTask(
        "t",
        'echo "k=task" >> "$TRIOFORGE_OUTPUT"',
        compensate='echo "k=undo" >> "$TRIOFORGE_OUTPUT"',
        log_dir=tmp_path,
    )
    await task.run(ctx())
    await task.compensate(ctx())
    assert read_outputs(tmp_path / "run-1" / "t.outputs") == {"k": "task"}
    assert read_outputs(tmp_path / "run-1" / "t.compensate.outputs") == {"k": "undo"}


async def test_a_bad_outputs_file_fails_the_task(tmp_path: Path) -> None:
    """A command that writes garbage to $TRIOFORGE_OUTPUT fails even though it exited 0."""
    task = ShellTask("t", 'echo "just text" >> "$TRIOFORGE_OUTPUT"', log_dir=tmp_path)
    with pytest.raises(ShellCommandError, match="line 1 is not key=value") as info:
        await task.run(ctx())
    assert info.value.returncode is None


async def test_a_template_naming_an_unwritten_output_fails_the_task(tmp_path: Path) -> None:
    """At run time, a template whose output was never written is a MissingOutputError."""
    wf = Workflow("w")
    wf.add_task(ShellTask("a", 'echo "other=1" >> "$TRIOFORGE_OUTPUT"', log_dir=tmp_path))
    wf.add_task(
        ShellTask(
            "b",
            ["echo", "${{ tasks.a.outputs.version }}"],
            depends_on=["a"],
            log_dir=tmp_path,
        )
    )
    with pytest.raises(TaskFailedError) as info:
        await WorkflowExecutor(wf).execute_dataflow()
    error = info.value.failures["b"]
    assert isinstance(error, MissingOutputError)
    assert "wrote no output 'version'" in str(error)
    assert "it wrote: 'other'" in str(error)


async def test_fallback_runs_only_after_the_last_retry(tmp_path: Path) -> None:
    """With retries 2 and a fallback: three tries of the command, then the fallback."""
    counter = tmp_path / "tries"
    main = ShellTask("p", f"echo x >> {counter}; exit 1", log_dir=tmp_path)
    fallback = ShellTask(
        "p.fallback",
        'echo "skipped=yes" >> "$TRIOFORGE_OUTPUT"',
        name="p",
        role="fallback",
        log_dir=tmp_path,
    )
    wf = Workflow("w")
    wf.add_task(FallbackTask("p", main, fallback, retries=2))
    executor = WorkflowExecutor(wf)
    result = await executor.execute_dataflow()
    assert counter.read_text().split() == ["x", "x", "x"]
    assert result.attempts == {"p": 3}
    produced = result.results["p"]
    assert produced.fallback
    assert produced.outputs == {"skipped": "yes"}
    retries = executor.audit_log.types(task_id="p").count("WorkflowTaskRetrying")
    assert retries == 2


async def test_fallback_compensation_undoes_the_command_that_completed(tmp_path: Path) -> None:
    """When the command itself succeeded, rollback runs its compensation."""
    undo = tmp_path / "undo"
    main = ShellTask("p", "true", compensate=f"echo p >> {undo}", log_dir=tmp_path)
    fallback = ShellTask("p.fallback", "true", name="p", role="fallback", log_dir=tmp_path)
    wf = Workflow("w")
    wf.add_task(FallbackTask("p", main, fallback, retries=1))
    wf.add_task(ShellTask("boom", "exit 1", depends_on=["p"], log_dir=tmp_path))
    with pytest.raises(TaskFailedError):
        await WorkflowExecutor(wf).execute_dataflow()
    assert undo.read_text() == "p\n"


async def test_a_failing_line_fails_the_script(tmp_path: Path) -> None:
    """Scripts run with `sh -e`: a failing command stops the script and fails the task."""
    marker = tmp_path / "after"
    task = ShellTask("t", f"false\ntouch {marker}", log_dir=tmp_path)
    with pytest.raises(ShellCommandError, match="exited with status 1"):
        await task.run(ctx())
    assert not marker.exists()


async def test_kill_all_reaches_a_command_that_is_still_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill_all during a slow Popen (before the group is registered) still kills the command."""
    real_popen = subprocess.Popen

    class SlowPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.5)  # a slow fork, in trio's worker thread
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", SlowPopen)
    groups = ProcessGroups()
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    try:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append(
                await run_in_group(
                    ["sleep", "30"],
                    cwd=None,
                    env=os.environ,
                    output=fd,
                    grace_period=30,
                    groups=groups,
                )
            )

        started = trio.current_time()
        with trio.move_on_after(15):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(one)
                await trio.sleep(0.2)  # inside the 0.5 s Popen
                assert groups.kill_all() == 0  # nothing registered yet
        elapsed = trio.current_time() - started
    finally:
        os.close(fd)
    assert statuses == [-signal.SIGKILL]
    assert elapsed < 10  # not the command's 30 s


async def test_a_cancelled_task_refused_by_kill_all_ends_as_cancelled(tmp_path: Path) -> None:
    """After kill_all, a task whose scope is cancelled already is cancelled, not failed."""
    groups = ProcessGroups()
    groups.kill_all()
    task = ShellTask("late", ["true"], process_groups=groups, log_dir=tmp_path)
    with trio.CancelScope() as scope:
        scope.cancel()
        await task.run(ctx("late"))
    assert scope.cancelled_caught


def test_shell_task_refuses_templates_in_code_items() -> None:
    """Built from Python too, a ShellTask refuses a template in an argv item read as code."""
    with pytest.raises(ValueError, match="could run an output as code"):
        ShellTask("t", ["sh", "-c", "echo ${{ tasks.a.outputs.x }}"])
    assert ShellTask("t", ["echo", "${{ tasks.a.outputs.x }}"]).id == "t"


def test_a_command_and_env_taken_from_another_task_are_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task's checked run and env serve other tasks and attrs.evolve as they are."""
    checked: list[str] = []
    real = _shell._check_templates

    def counting(text: str) -> None:
        checked.append(text)
        real(text)

    monkeypatch.setattr(_shell, "_check_templates", counting)
    template = "${{ tasks.p.outputs.k }}"
    task = ShellTask("a", ["echo", template], env={"A": template}, depends_on=["p"])
    assert len(checked) == 3  # the two argv items and the env value
    again = attrs.evolve(task, id="b")
    other = ShellTask("c", task.run_command, env=task.env, depends_on=["p"])
    assert len(checked) == 3
    assert again.env is task.env
    assert other.run_command is task.run_command
    assert ShellTask("d", "true", env=[("A", "1"), ("A", "2")]).env == (("A", "2"),)
    with pytest.raises(TypeError, match="a mapping or"):
        ShellTask("e", "true", env=["AB"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        ShellTask("f", "true", env=[("A-B", "1")])
