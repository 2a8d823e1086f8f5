"""ShellTask: a workflow task that runs a command, with a log file and outputs.

Each attempt appends to one log file per task, ``LOG_DIR/RUN_ID/TASK.log``
(``.trioforge/logs`` beside the workflow file when loaded from YAML), with a
header line per attempt; the command's stdout and stderr are both written
straight into it by the operating system, so nothing is buffered in
trioforge and the log is complete even if trioforge is killed.

Outputs: the command gets ``TRIOFORGE_OUTPUT``, the path of an empty file;
``key=value`` lines written there become the result's ``outputs`` once the
command succeeded. Templates (``${{ tasks.ID.outputs.KEY }}``) are expanded
in argv items and environment values only, each into exactly one value that
no shell trioforge starts ever parses. A template in shell text, or in an
argv item the program reads as code (``sh -c``, ``python -c``, argv[0]; see
``_argv_code``), is refused when the task is made.

Commands, envs and the text of argv items and env values are checked once
per value, not once per task (see ``_env``).

Processes are run by :func:`run_in_group` (see ``_process_group``): their
own process group, SIGTERM then SIGKILL on cancellation, and no survivor.
That one step is ``ShellTask._launch``; a subclass whose commands run
elsewhere (``trioforge run --dask``) replaces it and inherits the rest: the
argv and environment, the log lines, the outputs and the errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

import attrs
import trio

from .._core import TaskContext, WorkflowError, _to_ids, count, seconds
from ._env import (
    _to_optional_command,
    task_env,
    to_command,
    to_env,
)
from ._files import (
    _append,
    _open_log,
    _prepare,
    _write,
    read_outputs,
    run_folder,
    task_file_stem,
)
from ._process_group import ProcessGroups, ProcessStartError, run_in_group
from ._result import ShellCommandError, ShellResult
from ._templates import MissingOutputError, expand

__all__ = ["ShellTask"]


def _to_path(value: str | os.PathLike[str] | None) -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    return Path(value)


def _to_dir(value: str | os.PathLike[str]) -> Path:
    path = value if isinstance(value, Path) else Path(value)
    return path if path.is_absolute() else path.absolute()


@attrs.frozen(repr=False)
class ShellTask:
    """A task that runs a command: ``sh -e -c SCRIPT`` or an argv list.

    The command runs in its own process group with stdin closed and stdout
    and stderr in the task's log file. Its environment is the inherited one,
    plus ``env``, plus ``TRIOFORGE_OUTPUT`` (outputs file), ``TRIOFORGE_ATTEMPT``,
    ``TRIOFORGE_TASK_ID``, ``TRIOFORGE_RUN_ID``, ``TRIOFORGE_PHASE`` (``run``,
    ``fallback`` or ``compensate``), ``TRIOFORGE_PYTHON`` (the interpreter
    running trioforge) and ``TRIOFORGE_DRIVER`` (which trioforge process
    started it, for the cleanup after a crash). The result is a
    :class:`ShellResult`.

    Args:
        id: unique id within the workflow.
        run: a script for ``sh -e -c`` (str; the first failing command fails
            the task) or an argv list (no shell).
            Templates are allowed in argv items, never in a script.
        depends_on: ids of the tasks that must succeed first.
        timeout: seconds the command may run; None uses the executor's default.
        retries: retries after a failure; None uses the executor's default.
        estimate: expected seconds, for critical-path priority.
        cwd: working directory; None for the current one.
        env: extra environment variables, as a mapping or as ``(name, value)``
            pairs (another task's ``env``); values may hold templates.
        compensate: a command (script or argv) run during rollback.
        grace_period: seconds between SIGTERM and SIGKILL when cancelled.
        log_dir: logs go to ``log_dir/RUN_ID/NAME.log`` (a relative folder is
            made absolute when the task is made).
        name: the workflow task this command belongs to, for logs and
            ``TRIOFORGE_TASK_ID``; defaults to ``id``.
        role: ``"run"``, or ``"fallback"`` for a task's fallback command.
        process_groups: registry of running process groups, so that all of
            them can be killed at once (the command line uses it on a second
            Ctrl-C).
        consumers: for each output key, the tasks whose templates use it, so
            that an output too large to pass on names who would have used it
            (the YAML loader fills it in).

    Raises:
        ValueError: an empty command, a template in a script, a malformed
            template, or a bad or reserved environment variable name.
        TypeError: an env value that is not a str, or env items that are
            not ``(name, value)`` pairs.
    """

    id: str
    run_command: str | tuple[str, ...] = attrs.field(alias="run", converter=to_command)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=seconds(), kw_only=True)
    retries: int | None = attrs.field(default=None, validator=count(), kw_only=True)
    estimate: float | None = attrs.field(
        default=None, validator=seconds(positive=False), kw_only=True
    )
    cwd: Path | None = attrs.field(default=None, converter=_to_path, kw_only=True)
    env: tuple[tuple[str, str], ...] = attrs.field(default=None, converter=to_env, kw_only=True)
    compensate_command: str | tuple[str, ...] | None = attrs.field(
        default=None, alias="compensate", converter=_to_optional_command, kw_only=True
    )
    grace_period: float = attrs.field(default=5.0, validator=seconds(optional=False), kw_only=True)
    log_dir: Path = attrs.field(default=Path(".trioforge/logs"), converter=_to_dir, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)
    role: str = attrs.field(
        default="run", validator=attrs.validators.in_(("run", "fallback")), kw_only=True
    )
    process_groups: ProcessGroups | None = attrs.field(
        default=None, kw_only=True, eq=False, hash=False
    )
    consumers: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, kw_only=True, eq=False, hash=False, repr=False
    )
    #: Where the command runs, after the label of each attempt's first log line.
    _where: ClassVar[str] = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(f"id must be a non-empty str, got {self.id!r}")

    def __repr__(self) -> str:
        deps = f", depends_on={list(self.depends_on)!r}" if self.depends_on else ""
        return f"ShellTask({self.id!r}, {self.describe()!r}{deps})"

    @property
    def task_name(self) -> str:
        """The workflow task this command belongs to (``name``, else ``id``)."""
        return self.name if self.name is not None else self.id

    @property
    def has_compensation(self) -> bool:
        """Whether a ``compensate`` command was given."""
        return self.compensate_command is not None

    def describe(self, command: str | tuple[str, ...] | None = None) -> str:
        """The command as one line of text (argv items quoted as a shell would need)."""
        import shlex

        command = self.run_command if command is None else command
        if isinstance(command, str):
            return command
        return shlex.join(command)

    async def run(self, ctx: TaskContext) -> ShellResult:
        """Run the command once; return its result or raise :class:`ShellCommandError`."""
        folder = run_folder(self.log_dir, ctx.workflow_id)
        name = self.task_name
        stem = task_file_stem(name)
        log_path = folder / f"{stem}.log"
        suffix = ".fallback" if self.role == "fallback" else ""
        outputs_path = folder / f"{stem}{suffix}.outputs"
        _prepare(folder, outputs_path)
        label = f"{self.role} attempt {ctx.attempt}" if self.role == "run" else self.role
        started = trio.current_time()
        returncode = await self._execute(
            self.run_command, ctx, log_path, outputs_path, label, phase=self.role
        )
        what = f"task {name!r}" if self.role == "run" else f"the fallback of task {name!r}"
        if returncode != 0:
            raise ShellCommandError(
                name, _status(what, returncode), returncode=returncode, log_path=log_path
            )
        try:
            outputs = read_outputs(outputs_path, consumers=self.consumers)
        except ValueError as exc:
            _append(log_path, f"[trioforge] error: {exc}\n")
            raise ShellCommandError(
                name, f"{what}: {exc}", returncode=None, log_path=log_path
            ) from exc
        return ShellResult(
            task_id=name,
            returncode=0,
            outputs=outputs,
            log_path=log_path,
            duration=trio.current_time() - started,
            attempt=ctx.attempt,
            fallback=self.role == "fallback",
        )

    async def compensate(self, ctx: TaskContext) -> None:
        """Run the ``compensate`` command (bounded by the task's timeout), if there is one."""
        if self.compensate_command is None:
            await trio.lowlevel.checkpoint()
            return
        folder = run_folder(self.log_dir, ctx.workflow_id)
        name = self.task_name
        stem = task_file_stem(name)
        log_path = folder / f"{stem}.log"
        outputs_path = folder / f"{stem}.compensate.outputs"  # not the task's own outputs
        _prepare(folder, outputs_path)
        limit = self.timeout if self.timeout is not None else float("inf")
        with trio.move_on_after(limit) as scope:
            returncode = await self._execute(
                self.compensate_command,
                ctx,
                log_path,
                outputs_path,
                "compensate",
                phase="compensate",
            )
        what = f"the compensation of task {name!r}"
        if scope.cancelled_caught:
            raise ShellCommandError(
                name, f"{what} timed out after {limit:g}s", returncode=None, log_path=log_path
            )
        if returncode != 0:
            raise ShellCommandError(
                name, _status(what, returncode), returncode=returncode, log_path=log_path
            )

    async def _execute(
        self,
        command: str | tuple[str, ...],
        ctx: TaskContext,
        log_path: Path,
        outputs_path: Path,
        label: str,
        *,
        phase: str,
    ) -> int:
        """Run ``command`` once, with its lines in the log; return its exit status.

        The step that starts the process and waits for it is :meth:`_launch`.
        """
        name = self.task_name
        log_fd = _open_log(log_path)
        try:
            _write(log_fd, f"[trioforge] {label}{self._where}: {self.describe(command)}\n")
            try:
                argv, env = self._command_line(command, ctx, outputs_path, phase)
            except WorkflowError as exc:
                _write(log_fd, f"[trioforge] error: {exc}\n")
                raise
            started = trio.current_time()
            try:
                returncode = await self._launch(
                    argv,
                    env=env,
                    log_path=log_path,
                    log_fd=log_fd,
                    note=lambda text: _write(log_fd, f"\n[trioforge] {text}\n"),
                )
            except ProcessStartError as exc:
                _write(log_fd, f"[trioforge] {exc}\n")
                raise ShellCommandError(
                    name, f"task {name!r}: {exc}", returncode=None, log_path=log_path
                ) from exc
            elapsed = trio.current_time() - started
            _write(log_fd, f"\n[trioforge] {_status('exited', returncode)} after {elapsed:.2f}s\n")
            return returncode
        finally:
            os.close(log_fd)

    def _command_line(
        self,
        command: str | tuple[str, ...],
        ctx: TaskContext,
        outputs_path: Path,
        phase: str,
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and the environment of ``command`` (all but ``TRIOFORGE_DRIVER``).

        Raises:
            WorkflowError: a template names an output its task did not write.
        """
        name = self.task_name

        def lookup(source: str, key: str) -> str:
            result = ctx.result_of(source)
            outputs = getattr(result, "outputs", None)
            if not isinstance(outputs, Mapping) or key not in outputs:
                available = list(outputs) if isinstance(outputs, Mapping) else []
                raise MissingOutputError(name, source, key, available=available)
            return str(outputs[key])

        if isinstance(command, str):
            argv = ["/bin/sh", "-e", "-c", command]
        else:
            argv = [expand(item, lookup) for item in command]
        extra = {key: expand(value, lookup) for key, value in self.env}
        own = task_env(
            output=os.fspath(outputs_path),
            attempt=ctx.attempt,
            task_id=name,
            run_id=ctx.workflow_id,
            phase=phase,
        )
        return argv, {**os.environ, **extra, **own}

    async def _launch(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        log_fd: int,
        note: Callable[[str], object],
    ) -> int:
        """Start the command, wait for it and return its exit status: the step a subclass replaces.

        Here: a local process group (:func:`run_in_group`), which adds
        ``TRIOFORGE_DRIVER`` to ``env``. A replacement must do the same
        (``with_driver``), check :func:`may_start` before it starts the
        command, stop the command when cancelled, and raise
        :class:`ProcessStartError` when the command could not be run.

        Args:
            argv: the program and its arguments.
            env: the complete environment but ``TRIOFORGE_DRIVER``.
            log_path: the task's log file, which ``log_fd`` has open.
            log_fd: where the command's stdout and stderr go.
            note: writes a line of text to the log (say, a signal sent).
        """
        return await run_in_group(
            argv,
            cwd=self.cwd,
            env=env,
            output=log_fd,
            grace_period=self.grace_period,
            groups=self.process_groups,
            note=note,
        )


def _status(what: str, returncode: int) -> str:
    if returncode < 0:
        import signal

        try:
            signame = signal.Signals(-returncode).name
        except ValueError:
            signame = f"signal {-returncode}"
        return f"{what} was killed by {signame}"
    if what == "exited":
        return f"exited with status {returncode}"
    return f"{what} exited with status {returncode}"
