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

A command, an env and the text of an argv item or env value are checked once
per value, not once per task: what :func:`to_command`, :func:`to_env` and
:func:`checked_text` return is an instance of a private ``str`` or ``tuple``
subclass, and they take such an instance back as is. A workflow file whose
1,500 tasks share one 1,500-variable ``env`` through a YAML alias would
otherwise check 2.25 million variables and hold 2.25 million pairs; the
loader converts each shared value once, and every task holds the same one.
The values are immutable, so a value cannot change after it was checked;
``attrs.evolve`` on a task costs nothing and keeps what was checked.

Processes are run by :func:`run_in_group` (see ``_process_group``): their
own process group, SIGTERM then SIGKILL on cancellation, and no survivor.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from .._core._errors import WorkflowError
from .._core._task import TaskContext, _to_ids
from ._argv_code import code_items
from ._process_group import ProcessGroups, ProcessStartError, run_in_group
from ._templates import MissingOutputError, contains_template, expand, scan

__all__ = [
    "ShellCommandError",
    "ShellResult",
    "ShellTask",
    "checked_text",
    "display_path",
    "layered_env",
    "read_outputs",
    "run_folder",
    "task_file_stem",
    "task_log_path",
    "to_command",
    "to_env",
]

MAX_OUTPUTS_BYTES = 1024 * 1024
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What an environment variable name may be (the YAML loader checks names with it too)."""
_OUTPUT_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
RESERVED_ENV = frozenset(
    {
        "TRIOFORGE_ATTEMPT",
        "TRIOFORGE_DRIVER",
        "TRIOFORGE_OUTPUT",
        "TRIOFORGE_PHASE",
        "TRIOFORGE_PYTHON",
        "TRIOFORGE_RUN_ID",
        "TRIOFORGE_TASK_ID",
    }
)


class ShellCommandError(WorkflowError):
    """Raised when a shell task's command fails: non-zero exit, killed, or not startable.

    Attributes:
        task_id: the workflow task the command belongs to.
        returncode: the exit status (``-N``: killed by signal N), or None if
            the command never ran or failed after exiting 0 (bad outputs).
        log_path: the task's log file.
    """

    def __init__(
        self, task_id: str, message: str, *, returncode: int | None, log_path: Path
    ) -> None:
        super().__init__(f"{message} (log: {display_path(log_path)})")
        self.task_id = task_id
        self.returncode = returncode
        self.log_path = log_path


def _copy(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(mapping)


@attrs.frozen
class ShellResult:
    """What a successful shell task produced; this is the task's result.

    Attributes:
        task_id: the workflow task.
        returncode: always 0 for a result (failures raise :class:`ShellCommandError`).
        outputs: the ``key=value`` pairs the command wrote to ``$TRIOFORGE_OUTPUT``.
        log_path: the task's log file.
        duration: seconds the command ran (``trio.current_time()``).
        attempt: which attempt succeeded.
        fallback: True when this is the result of the task's ``fallback`` command.
    """

    task_id: str
    returncode: int
    outputs: Mapping[str, str] = attrs.field(converter=_copy)
    log_path: Path
    duration: float
    attempt: int
    fallback: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-able data; :meth:`from_json` makes an equal result of it."""
        return {
            "task_id": self.task_id,
            "returncode": self.returncode,
            "outputs": dict(self.outputs),
            "log_path": os.fspath(self.log_path),
            "duration": self.duration,
            "attempt": self.attempt,
            "fallback": self.fallback,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShellResult:
        """The result that :meth:`to_json` described (e.g. restored from a run store).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            task_id=data["task_id"],
            returncode=data["returncode"],
            outputs=data["outputs"],
            log_path=Path(data["log_path"]),
            duration=data["duration"],
            attempt=data["attempt"],
            fallback=data.get("fallback", False),
        )


def run_folder(log_dir: Path, run_id: str) -> Path:
    """The folder holding one run's logs (the run id made safe for a file name)."""
    return log_dir / _UNSAFE.sub("_", run_id)


def task_file_stem(task_id: str) -> str:
    """The start of the names of a task's files: its id, made safe for a file name.

    An id that is not already safe (``a/b``, ``/abs``, ``..``) gets its unsafe
    characters replaced and a short hash of the id, so two ids never share files.
    """
    if not _UNSAFE.search(task_id) and task_id not in (".", ".."):
        return task_id
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', task_id)}-{digest}"


def task_log_path(log_dir: Path, run_id: str, task_id: str) -> Path:
    """Where the log of ``task_id`` in run ``run_id`` is written."""
    return run_folder(log_dir, run_id) / f"{task_file_stem(task_id)}.log"


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``TRIOFORGE_OUTPUT`` file: ``key=value`` lines; blank lines are skipped.

    Raises:
        ValueError: a line is not ``key=value`` with a valid key, the file is
            not UTF-8, holds a NUL character, or is larger than 1 MiB.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_OUTPUTS_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(data) > MAX_OUTPUTS_BYTES:
        raise ValueError("$TRIOFORGE_OUTPUT is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("$TRIOFORGE_OUTPUT is not UTF-8 text") from None
    outputs: dict[str, str] = {}
    # Only "\n" ends a line: splitlines() would also split a value at \x0c,
    # \x1c-\x1e, \x85, U+2028 or U+2029.
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not _OUTPUT_KEY.fullmatch(key):
            raise ValueError(
                f"$TRIOFORGE_OUTPUT line {number} is not key=value with a key of letters, "
                f"digits, '_', '-' or '.': {line[:80]!r}"
            )
        if "\0" in value:
            raise ValueError(f"$TRIOFORGE_OUTPUT line {number} holds a NUL character")
        outputs[key] = value
    return outputs


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when that is shorter to read."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return relative if len(relative) < len(str(path)) else str(path)


class _Script(str):
    """A script that :func:`to_command` checked (see the module notes)."""

    __slots__ = ()


class _Argv(tuple[str, ...]):
    """An argv tuple that :func:`to_command` checked (see the module notes)."""

    __slots__ = ()


class _Text(str):
    """An argv item or env value that :func:`checked_text` checked (see the module notes)."""

    __slots__ = ()


class _Env(tuple[tuple[str, str], ...]):
    """``(name, value)`` pairs that :func:`to_env` checked (see the module notes)."""

    __slots__ = ()


_NO_ENV = _Env()
_first = operator.itemgetter(0)


def to_command(value: str | Sequence[str]) -> str | tuple[str, ...]:
    """The command a :class:`ShellTask` stores for ``value``: a script, or an argv tuple.

    What this returns is taken back as is, unchecked: the tasks of a workflow
    file that share one command (a YAML alias) share one checked value.

    Raises:
        ValueError: an empty command, a template in a script, a malformed
            template, or a template in an argv item the program reads as code.
    """
    if type(value) is _Script or type(value) is _Argv:
        return value
    if isinstance(value, str):
        if not value or value.isspace():  # what value.strip() tells, without a copy
            raise ValueError("a shell command must not be empty")
        if contains_template(value):
            raise ValueError(
                "templates are not expanded in shell text (an output could run as code); "
                "pass the value through env and use $NAME in the script"
            )
        return _Script(value)
    argv = tuple(value)
    if not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
        raise ValueError(f"an argv command must be a non-empty list of str, got {value!r}")
    for item in argv:
        if type(item) is not _Text:
            _check_templates(item)
    for code in code_items(argv):
        if contains_template(argv[code.index]):
            raise ValueError(
                f"argv item {code.index} ({argv[code.index]!r}) is {code.reads}, so a "
                "template there could run an output as code; pass the value as a "
                "separate argument ($1) or through env"
            )
    return _Argv(argv)


def _to_optional_command(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    return None if value is None else to_command(value)


def checked_text(text: str) -> str:
    """``text`` checked as an argv item or an env value is: no NUL, well-formed templates.

    :func:`to_command` and :func:`to_env` take what this returns as is, so an
    argv item or env value that many tasks share (a YAML alias) is scanned for
    templates once, not once per task.

    Raises:
        ValueError: a NUL character or a malformed template.
    """
    if type(text) is _Text:
        return text
    _check_templates(text)
    return _Text(text)


def _check_templates(text: str) -> None:
    if "\0" in text:
        raise ValueError(f"{text!r} holds a NUL character")
    _refs, problems = scan(text)
    if problems:
        raise ValueError(problems[0][1])


EnvLike = Mapping[str, str] | Iterable[tuple[str, str]] | None
"""What ``env`` may be: a mapping, ``(name, value)`` pairs (another task's ``env``), or None."""


def to_env(value: EnvLike) -> tuple[tuple[str, str], ...]:
    """The ``(name, value)`` pairs a :class:`ShellTask` stores for ``env=value``.

    A name given twice as pairs keeps its last value, as in a dict. What this
    returns is taken back as is, unchecked: the tasks of a workflow file that
    share one ``env`` (a YAML alias) share one checked tuple, and
    ``attrs.evolve`` on a task keeps its env.

    Raises:
        ValueError: a name that is not a valid environment variable name or
            is reserved (:data:`RESERVED_ENV`), a NUL character or a
            malformed template in a value.
        TypeError: a value that is not a str, or an item that is not a pair.
    """
    if type(value) is _Env:
        return value
    if value is None:
        return _NO_ENV
    if isinstance(value, Mapping):
        env = dict(value)
    else:
        items = list(value)
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"env must be a mapping or (name, value) pairs, got {item!r}")
        env = dict(items)
    for name, text in env.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
        if name in RESERVED_ENV:
            raise ValueError(f"{name} is set by trioforge and cannot be overridden")
        if not isinstance(text, str):
            raise TypeError(f"env values must be str, got {text!r} for {name}")
        if type(text) is not _Text:
            _check_templates(text)
    return _Env(env.items()) if env else _NO_ENV


def layered_env(*layers: EnvLike) -> tuple[tuple[str, str], ...]:
    """:func:`to_env` of ``layers`` applied in order, a later layer's value winning.

    Layers that :func:`to_env` returned are not checked again, and their
    ``(name, value)`` pairs are reused, not copied: layering checked envs (a
    workflow's env under a task's) costs one dictionary update per variable,
    and tasks layering one big shared env hold references to its pairs.
    """
    checked = [layer for layer in map(to_env, layers) if layer]
    if len(checked) <= 1:
        return checked[0] if checked else _NO_ENV
    env: dict[str, tuple[str, str]] = {}
    for layer in checked:
        env.update(zip(map(_first, layer), layer, strict=True))  # name -> the layer's own pair
    return _Env(env.values())


def _to_path(value: str | os.PathLike[str] | None) -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    return Path(value)


def _to_dir(value: str | os.PathLike[str]) -> Path:
    path = value if isinstance(value, Path) else Path(value)
    return path if path.is_absolute() else path.absolute()


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name != "grace_period":
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.alias} must be a number of seconds > 0, got {value!r}")


def _non_negative_int(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.alias} must be an int >= 0, got {value!r}")


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

    Raises:
        ValueError: an empty command, a template in a script, a malformed
            template, or a bad or reserved environment variable name.
        TypeError: an env value that is not a str, or env items that are
            not ``(name, value)`` pairs.
    """

    id: str
    run_command: str | tuple[str, ...] = attrs.field(alias="run", converter=to_command)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_to_ids, kw_only=True)
    timeout: float | None = attrs.field(default=None, validator=_positive, kw_only=True)
    retries: int | None = attrs.field(default=None, validator=_non_negative_int, kw_only=True)
    estimate: float | None = attrs.field(default=None, validator=_positive, kw_only=True)
    cwd: Path | None = attrs.field(default=None, converter=_to_path, kw_only=True)
    env: tuple[tuple[str, str], ...] = attrs.field(default=None, converter=to_env, kw_only=True)
    compensate_command: str | tuple[str, ...] | None = attrs.field(
        default=None, alias="compensate", converter=_to_optional_command, kw_only=True
    )
    grace_period: float = attrs.field(default=5.0, validator=_positive, kw_only=True)
    log_dir: Path = attrs.field(default=Path(".trioforge/logs"), converter=_to_dir, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)
    role: str = attrs.field(
        default="run", validator=attrs.validators.in_(("run", "fallback")), kw_only=True
    )
    process_groups: ProcessGroups | None = attrs.field(
        default=None, kw_only=True, eq=False, hash=False
    )

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
            outputs = read_outputs(outputs_path)
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
        name = self.task_name

        def lookup(source: str, key: str) -> str:
            result = ctx.result_of(source)
            outputs = getattr(result, "outputs", None)
            if not isinstance(outputs, Mapping) or key not in outputs:
                available = list(outputs) if isinstance(outputs, Mapping) else []
                raise MissingOutputError(name, source, key, available=available)
            return str(outputs[key])

        log_fd = _open_log(log_path)
        try:
            _write(log_fd, f"[trioforge] {label}: {self.describe(command)}\n")
            try:
                if isinstance(command, str):
                    argv = ["/bin/sh", "-e", "-c", command]
                else:
                    argv = [expand(item, lookup) for item in command]
                extra = {key: expand(value, lookup) for key, value in self.env}
            except WorkflowError as exc:
                _write(log_fd, f"[trioforge] error: {exc}\n")
                raise
            env = {
                **os.environ,
                **extra,
                "TRIOFORGE_OUTPUT": os.fspath(outputs_path),
                "TRIOFORGE_ATTEMPT": str(ctx.attempt),
                "TRIOFORGE_TASK_ID": name,
                "TRIOFORGE_RUN_ID": ctx.workflow_id,
                "TRIOFORGE_PHASE": phase,
                "TRIOFORGE_PYTHON": sys.executable,
            }
            started = trio.current_time()
            try:
                returncode = await run_in_group(
                    argv,
                    cwd=self.cwd,
                    env=env,
                    output=log_fd,
                    grace_period=self.grace_period,
                    groups=self.process_groups,
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


def _prepare(folder: Path, outputs_path: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if outputs_path is not None:
        outputs_path.write_bytes(b"")


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def _write(fd: int, text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, text.encode("utf-8", errors="replace"))


def _append(path: Path, text: str) -> None:
    fd = _open_log(path)
    try:
        _write(fd, text)
    finally:
        os.close(fd)
