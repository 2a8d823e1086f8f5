"""Loading a YAML workflow file: every problem at once, each with its line and column.

Two passes over the node tree (see ``_yaml_nodes`` for how it is read):

1. the schema: top-level keys, defaults, and each task's keys, types,
   durations, commands and templates, through a :class:`Checker` that records
   problems instead of raising;
2. the graph, on the tasks that passed (see ``_yaml_graph``): unknown
   ``needs``, cycles, and templates that name tasks which are not upstream.

Only when no problem was found are the tasks built (:class:`ShellTask`, and a
:class:`FallbackTask` around it when there is a ``fallback``), so a loaded
workflow always runs what the file says. All problems come out together as
one :class:`WorkflowFileError` (the first :data:`MAX_PROBLEMS` in file order,
and how many more); no other exception leaves :func:`load_workflow_file` for
any input.

Each task is read by ``TaskReader`` (see ``_yaml_tasks``): shared bodies are
read once, and templates are refused where a program reads code. Building
keeps that: a value read from a shared node (an aliased env, argv, script or
``needs``) is one object in every spec, and it is converted for
:class:`ShellTask` once per object (``_Loader._once``), which checks it once
and lets every task hold the same checked value. Checking it once per task
made 1,500 tasks sharing a 1,500-variable env take seconds, not milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from .._core import Workflow, WorkflowTask
from .._fallback import FallbackTask
from .._shell import (
    RESERVED_ENV,
    ProcessGroups,
    ShellTask,
    checked_text,
    layered_env,
    to_command,
    to_env,
)
from ._cluster import read_dask
from ._file import MAX_PROBLEMS, WorkflowFile, WorkflowFileError
from ._graph import check_graph
from ._input_checks import read_inputs, resolve_inputs
from ._inputs import InputSpec, substitute
from ._nodes import (
    Node,
    ScalarNode,
    SourceError,
    compose,
    decode,
    gc_paused,
)
from ._pooled import PooledFallbackTask, PooledShellTask
from ._schema import Checker, Problem, effective_env
from ._source import read_source, tab_message
from ._tasks import Spec, TaskReader

__all__ = [
    "MAX_PROBLEMS",
    "WorkflowFile",
    "WorkflowFileError",
    "load_workflow",
    "load_workflow_file",
]

_TOP_KEYS = (
    "name",
    "inputs",
    "retention",
    "description",
    "max_parallel",
    "timeout",
    "keep_going",
    "compensation_timeout",
    "env",
    "defaults",
    "tasks",
    "resources",
    "dask",
)
_DEFAULT_KEYS = ("timeout", "retries", "grace_period")


def load_workflow(path: str | os.PathLike[str], *, text: str | bytes | None = None) -> Workflow:
    """Load a YAML workflow file and return its :class:`Workflow`.

    Args:
        path: the file. Relative ``cwd:`` values are resolved against its folder.
        text: the file's content, if you have it already (an editor buffer, a
            test); ``path`` is then used only for messages and folders.

    Raises:
        WorkflowFileError: the file cannot be read or is not a valid workflow;
            ``.problems`` lists everything that is wrong.
    """
    return load_workflow_file(path, text=text).workflow


def load_workflow_file(
    path: str | os.PathLike[str],
    *,
    text: str | bytes | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    inputs: Mapping[str, str] | None = None,
) -> WorkflowFile:
    """Load a YAML workflow file with its settings (see :class:`WorkflowFile`).

    Args:
        path: the file.
        text: the file's content, if you have it already.
        log_dir: where task logs go; default ``.trioforge/logs`` beside the file.
        inputs: values of the file's ``inputs:`` (``--input KEY=VALUE``); a
            key the file does not declare, or a declared input with no
            default missing here, is a problem. None (to check a file
            without running it): defaults, and empty values for the rest.

    Raises:
        WorkflowFileError: the file cannot be read or is not a valid workflow.
    """
    file = Path(path)
    display = os.fspath(path)
    source = ""
    try:
        if text is None:
            source = decode(read_source(file))
        elif isinstance(text, bytes):
            source = decode(text)
        else:
            source = decode(text.encode("utf-8", errors="surrogatepass"))
        root = compose(source)
    except SourceError as exc:
        message = tab_message(source, exc)
        raise WorkflowFileError([Problem(display, exc.line, exc.column, message)]) from None
    folder = file.parent
    logs = Path(log_dir) if log_dir is not None else folder / ".trioforge" / "logs"
    try:
        with gc_paused():
            return _Loader(display, source, folder, logs).load(root, file, inputs)
    except RecursionError:  # pragma: no cover - the reader nests no deeper than MAX_DEPTH
        problem = Problem(display, 1, 1, "the YAML is nested too deeply")
        raise WorkflowFileError([problem]) from None


_T = TypeVar("_T")
_SHORT = 256
"""Argv items and env values up to this long are checked where they are used: a shared
one costs at most this much per use, and most are not shared. Longer ones are checked
once per object, so a long aliased value is not scanned once per task."""


def _unique_needs(needs: list[tuple[str, ScalarNode]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(dep for dep, _node in needs))


class _Loader:
    def __init__(self, display: str, source: str, folder: Path, log_dir: Path) -> None:
        self.check = Checker(display, source)
        self.folder = folder
        self.log_dir = log_dir
        self.inputs: dict[str, str] = {}
        # What ShellTask would make of it, made once, not once per task (a getcwd each).
        self._task_log_dir = log_dir.absolute()
        self._cwds: dict[str, Path] = {}
        self.tasks = TaskReader(self.check)
        # What each read value became when built, by identity (see ``_once``).
        self._built: dict[int, tuple[Any, Any]] = {}
        self._base_env: tuple[tuple[str, str], ...] = ()

    def _once(self, value: Any, build: Callable[[Any], _T]) -> _T:
        """``build(value)``, computed once per object: shared reads are one object.

        A value read from a node that tasks share (an aliased env, argv or
        ``needs``) is one object in all their specs, so converting it here
        once, instead of once per task, keeps building linear in the file's
        size. The value is kept with its result, so its id is not reused.
        """
        found = self._built.get(id(value))
        if found is None:
            found = self._built[id(value)] = (value, build(value))
        return cast(_T, found[1])

    def _command(self, command: str | tuple[str, ...]) -> str | tuple[str, ...]:
        """A spec's command, checked; a long argv item is checked once in the file."""
        if not isinstance(command, str) and self.inputs:
            command = tuple(substitute(item, self.inputs) for item in command)
        if isinstance(command, str) or max(map(len, command)) <= _SHORT:
            return to_command(command)
        return to_command(tuple(self._text(item) for item in command))

    def _task_env(self, layers: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
        """The workflow's env under a task's layers, each layer checked once in the file.

        The first layer is what the task's env mapping says: when that mapping
        is shared, so is the whole list (see ``_build``); the merged layers
        below it may be shared on their own.
        """
        if not layers:
            return self._base_env
        checked = [self._once(layer, self._env_layer) for layer in layers[:0:-1]]
        return layered_env(self._base_env, *checked, self._env_layer(layers[0]))

    def _env_layer(self, layer: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """One env layer, checked; a long value is checked once in the file."""
        if self.inputs:
            layer = {name: substitute(text, self.inputs) for name, text in layer.items()}
        if max(map(len, layer.values()), default=0) <= _SHORT:
            return to_env(layer)
        return to_env({name: self._text(text) for name, text in layer.items()})

    def _text(self, text: str) -> str:
        """An argv item or env value, checked (once per object if long, see ``_SHORT``)."""
        return text if len(text) <= _SHORT else self._once(text, checked_text)

    def load(  # noqa: PLR0915 - one pass over the top-level keys, in file order
        self, root: Node | None, file: Path, given: Mapping[str, str] | None = None
    ) -> WorkflowFile:
        check = self.check
        if root is None:
            check.problems.append(
                Problem(check.path, 1, 1, "the file is empty; a workflow needs a 'tasks' mapping")
            )
            raise WorkflowFileError(check.problems)
        top = check.mapping(root, "the workflow", _TOP_KEYS, extensions=True)
        if top is None:
            raise WorkflowFileError(check.problems)
        self._inputs(top, given)
        # A file name that is not UTF-8 (ok\xff.yaml) gives a stem with surrogates, which
        # no store, JSON line or terminal can take: U+FFFD stands for each bad byte.
        stem = os.fsencode(file.stem).decode("utf-8", errors="replace")
        name = stem or "workflow"
        if "name" in top:
            name = check.string(top["name"][1], "name") or name
        description = None
        if "description" in top:
            description = check.string(top["description"][1], "description", allow_empty=True)
        max_parallel = None
        if "max_parallel" in top:
            max_parallel = check.whole(
                top["max_parallel"][1], "max_parallel", minimum=1, maximum=100_000
            )
        timeout = None
        if "timeout" in top:
            timeout = check.duration(top["timeout"][1], "timeout", allow_none=True)
        keep_going = False
        if "keep_going" in top:
            keep_going = bool(check.boolean(top["keep_going"][1], "keep_going"))
        compensation_timeout = 600.0
        if "compensation_timeout" in top:
            compensation_timeout = (
                check.duration(top["compensation_timeout"][1], "compensation_timeout")
                or compensation_timeout
            )
        retention = self._retention(top["retention"][1]) if "retention" in top else None
        dask = read_dask(check, top["dask"][1]) if "dask" in top else None
        env: dict[str, str] = {}
        if "env" in top:
            layers = check.env(top["env"][1], "the workflow's env", RESERVED_ENV)
            for var, (value, node) in effective_env(layers).items():
                for ref in check.templates(node, f"env {var}"):
                    check.add_in_scalar(
                        node,
                        ref.offset,
                        "templates cannot be used in the workflow's env (no task is upstream "
                        "of every task); put this variable in the env of the task that needs it",
                    )
                env[var] = value
        defaults = self._defaults(top["defaults"][1] if "defaults" in top else None)
        tasks: list[Spec] = []
        if "tasks" not in top:
            check.add(root, "the workflow has no 'tasks' mapping")
        else:
            tasks = self.tasks.tasks(top["tasks"][1])
        pools = {}
        if "resources" in top:
            pools = self.tasks.pools(top["resources"][1], "the workflow's resources")
        for spec in tasks:
            _check_demand(check, spec, pools)
        if tasks:
            check_graph(
                check,
                [spec.id for spec in tasks],
                {spec.id: spec.needs for spec in tasks},
                {spec.id: spec.refs for spec in tasks if spec.refs},
            )
        if check.problems:
            raise WorkflowFileError(check.problems)
        groups = ProcessGroups()
        workflow = Workflow(name)
        self._base_env = to_env(env)
        for spec in tasks:
            workflow.add_task(
                self._build(spec, defaults, groups, compensation_timeout, _Users(spec.id, tasks))
            )
        return WorkflowFile(
            path=file,
            name=name,
            description=description,
            workflow=workflow,
            max_parallel=max_parallel,
            timeout=timeout,
            keep_going=keep_going,
            compensation_timeout=compensation_timeout,
            log_dir=self.log_dir,
            process_groups=groups,
            resources={name: units for name, (units, _node) in pools.items()},
            inputs=self.inputs if "inputs" in top else None,
            retention=retention,
            warnings=tuple(check.warnings),
            dask=dask,
        )

    def _inputs(
        self, top: dict[str, tuple[ScalarNode, Node]], given: Mapping[str, str] | None
    ) -> dict[str, InputSpec]:
        """Read ``inputs:`` (before the tasks, whose templates name them) and their values."""
        check = self.check
        specs: dict[str, InputSpec] = {}
        if "inputs" in top:
            specs = read_inputs(check, top["inputs"][1])
            check.inputs = specs
        self.inputs = resolve_inputs(
            check, specs, given, top["inputs"][0] if "inputs" in top else None
        )
        return specs

    def _retention(self, node: Node) -> tuple[int | None, float | None] | None:
        """``retention: {keep: N, older_than: DURATION}``."""
        check = self.check
        pairs = check.mapping(node, "retention", ("keep", "older_than"))
        if pairs is None:
            return None
        keep = None
        if "keep" in pairs:
            keep = check.whole(pairs["keep"][1], "retention keep", minimum=1, maximum=10**9)
        older_than = None
        if "older_than" in pairs:
            older_than = check.duration(pairs["older_than"][1], "retention older_than")
        if keep is None and older_than is None:
            return None
        return keep, older_than

    def _defaults(self, node: Node | None) -> dict[str, Any]:
        defaults: dict[str, Any] = {"timeout": None, "retries": 0, "grace_period": 5.0}
        if node is None:
            return defaults
        pairs = self.check.mapping(node, "defaults", _DEFAULT_KEYS)
        for key, (_key_node, value) in (pairs or {}).items():
            self.tasks.option(key, value, defaults, "defaults")
        return defaults

    def _build(
        self,
        spec: Spec,
        defaults: dict[str, Any],
        groups: ProcessGroups,
        compensation_timeout: float,
        consumers: Mapping[str, tuple[str, ...]],
    ) -> WorkflowTask:
        options = {**defaults, **spec.options}
        cwd = self.folder
        if spec.cwd is not None:
            cwd = self._cwds.get(spec.cwd) or self._cwds.setdefault(spec.cwd, cwd / spec.cwd)
        assert spec.command is not None
        common: dict[str, Any] = {
            "timeout": options["timeout"],
            "cwd": cwd,
            "env": self._once(spec.env, self._task_env),
            "grace_period": options["grace_period"],
            "log_dir": self._task_log_dir,
            "name": spec.id,
            "process_groups": groups,
            "consumers": consumers,
        }
        command = self._once(spec.command, self._command)
        compensate = (
            None if spec.compensate is None else self._once(spec.compensate, self._command)
        )
        needs = self._once(spec.needs, _unique_needs)
        if spec.fallback is None and spec.resources:
            return PooledShellTask(
                spec.id,
                command,
                depends_on=needs,
                retries=options["retries"],
                estimate=options.get("estimate"),
                compensate=compensate,
                pools=_pairs(spec),
                **common,
            )
        if spec.fallback is None:
            return ShellTask(
                spec.id,
                command,
                depends_on=needs,
                retries=options["retries"],
                estimate=options.get("estimate"),
                compensate=compensate,
                **common,
            )
        main = ShellTask(spec.id, command, compensate=compensate, **common)
        fallback_command = self._once(spec.fallback, self._command)
        fallback = ShellTask(f"{spec.id}.fallback", fallback_command, role="fallback", **common)
        return (PooledFallbackTask if spec.resources else FallbackTask)(
            spec.id,
            main,
            fallback,
            depends_on=needs,
            retries=options["retries"],
            estimate=options.get("estimate"),
            compensation_timeout=compensation_timeout,
            **({"pools": _pairs(spec)} if spec.resources else {}),
        )


class _Users(Mapping[str, tuple[str, ...]]):
    """The tasks whose templates use each output of one task, found only when asked.

    Only an error message asks (an output too large to pass on), so the
    search over every task's templates costs nothing in a run that does not
    need it; computing it up front would cost tasks x templates.
    """

    def __init__(self, producer: str, specs: list[Spec]) -> None:
        self._producer = producer
        self._specs = specs

    def _users(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, dict[str, None]] = {}
        groups: dict[int, set[str]] = {}  # a shared group is looked at once
        for spec in self._specs:
            for group, _unused in spec.refs:
                keys = groups.get(id(group))
                if keys is None:
                    keys = groups[id(group)] = {
                        ref.key for ref, _scalar, _own in group if ref.task == self._producer
                    }
                for key in keys:
                    found.setdefault(key, {})[spec.id] = None
        return {key: tuple(users) for key, users in found.items()}

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._users()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._users())

    def __len__(self) -> int:
        return len(self._users())


def _pairs(spec: Spec) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((name, units) for name, (units, _node) in spec.resources.items()))


def _check_demand(check: Checker, spec: Spec, pools: dict[str, tuple[int, ScalarNode]]) -> None:
    """A problem where a task names a pool the workflow lacks, or asks more than it has."""
    for name, (units, node) in spec.resources.items():
        if name not in pools:
            known = ", ".join(map(repr, sorted(pools))) or "none"
            check.add(
                node,
                f"task {spec.id!r} needs resource pool {name!r}, which the workflow's "
                f"'resources' does not define (defined: {known})",
            )
        elif units > pools[name][0]:
            check.add(
                node,
                f"task {spec.id!r} needs {units} units of resource pool {name!r}, which has "
                f"only {pools[name][0]}",
            )
