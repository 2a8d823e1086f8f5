"""Loading a YAML workflow file: every problem at once, each with its line and column.

Three passes over the node tree (see ``_yaml_nodes`` for how it is read):

1. the schema: top-level keys, defaults, and each task's keys, types,
   durations, commands and templates, through a :class:`Checker` that records
   problems instead of raising;
2. the graph, on the tasks that passed (see ``_yaml_graph``): unknown
   ``needs``, cycles, and templates that name tasks which are not upstream.

Only when no problem was found are the tasks built (:class:`ShellTask`, and a
:class:`FallbackTask` around it when there is a ``fallback``), so a loaded
workflow always runs what the file says. All problems come out together as
one :class:`WorkflowFileError`; no other exception leaves :func:`load_workflow_file`
for any input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ._errors import WorkflowError
from ._executor import WorkflowExecutor
from ._fallback import FallbackTask
from ._process_group import ProcessGroups
from ._schedulers import FailurePolicy
from ._shell import RESERVED_ENV, ShellTask
from ._task import WorkflowTask
from ._templates import Reference
from ._workflow import Workflow
from ._yaml_graph import check_graph
from ._yaml_nodes import (
    MappingNode,
    Node,
    ScalarNode,
    SourceError,
    compose,
    decode,
    gc_paused,
    read_bytes,
)
from ._yaml_schema import Checker, Problem

__all__ = ["WorkflowFile", "WorkflowFileError", "load_workflow", "load_workflow_file"]

_TOP_KEYS = (
    "name",
    "description",
    "max_parallel",
    "timeout",
    "keep_going",
    "compensation_timeout",
    "env",
    "defaults",
    "tasks",
)
_DEFAULT_KEYS = ("timeout", "retries", "grace_period")
_TASK_KEYS = (
    "run",
    "cmd",
    "needs",
    "description",
    "timeout",
    "retries",
    "cwd",
    "env",
    "compensate",
    "fallback",
    "estimate",
    "grace_period",
)
_TASK_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
_SHELL_TEMPLATE_HINT = (
    "templates are not expanded in {what}: a task's output pasted into shell code could run "
    'as code. Pass it through env instead, e.g. env: {{VALUE: "{template}"}}, '
    'and use "$VALUE" in the script'
)


class WorkflowFileError(WorkflowError, ValueError):
    """Raised when a workflow file cannot be read or is not a valid workflow.

    ``str()`` lists every problem, one per line, as ``FILE:LINE:COL: message``.

    Attributes:
        problems: every problem found, in file order.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


@attrs.frozen(eq=False)
class WorkflowFile:
    """A loaded workflow file: the :class:`Workflow` and the settings around it.

    Attributes:
        path: the file.
        name: the workflow's name (``name:``, else the file name without suffix).
        description: the ``description:``, if any.
        workflow: the tasks, ready to run.
        max_parallel: ``max_parallel:``, or None (the command line then uses
            the number of CPUs).
        timeout: the whole run's limit in seconds (``timeout:``), or None.
        keep_going: ``keep_going:``; when true a failure skips only what
            depends on it.
        compensation_timeout: the limit for the whole rollback, in seconds.
        log_dir: where task logs go (``.trioforge/logs`` beside the file).
        process_groups: the registry of the tasks' running process groups.
    """

    path: Path
    name: str
    description: str | None
    workflow: Workflow
    max_parallel: int | None
    timeout: float | None
    keep_going: bool
    compensation_timeout: float
    log_dir: Path
    process_groups: ProcessGroups

    def executor(self, **overrides: Any) -> WorkflowExecutor:
        """A :class:`WorkflowExecutor` set up as the file says; keyword arguments override."""
        options: dict[str, Any] = {
            "max_concurrency": self.max_parallel or os.cpu_count() or 1,
            "workflow_timeout": self.timeout,
            "compensation_timeout": self.compensation_timeout,
            "failure_policy": (
                FailurePolicy.CONTINUE_INDEPENDENT if self.keep_going else FailurePolicy.FAIL_FAST
            ),
        }
        options.update(overrides)
        return WorkflowExecutor(self.workflow, **options)


@attrs.define
class _Spec:
    """One task as read from the file, before it is built."""

    id: str
    node: ScalarNode
    command: str | tuple[str, ...] | None = None
    needs: list[tuple[str, ScalarNode]] = attrs.Factory(list)
    options: dict[str, Any] = attrs.Factory(dict)
    cwd: str | None = None
    env: list[tuple[str, str]] = attrs.Factory(list)
    compensate: str | tuple[str, ...] | None = None
    fallback: str | tuple[str, ...] | None = None
    refs: list[tuple[Reference, ScalarNode, bool]] = attrs.Factory(list)


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
) -> WorkflowFile:
    """Load a YAML workflow file with its settings (see :class:`WorkflowFile`).

    Args:
        path: the file.
        text: the file's content, if you have it already.
        log_dir: where task logs go; default ``.trioforge/logs`` beside the file.

    Raises:
        WorkflowFileError: the file cannot be read or is not a valid workflow.
    """
    file = Path(path)
    display = os.fspath(path)
    try:
        if text is None:
            source = decode(read_bytes(file))
        elif isinstance(text, bytes):
            source = decode(text)
        else:
            source = decode(text.encode("utf-8", errors="surrogatepass"))
        root = compose(source)
    except SourceError as exc:
        raise WorkflowFileError([Problem(display, exc.line, exc.column, exc.message)]) from None
    folder = file.parent
    logs = Path(log_dir) if log_dir is not None else folder / ".trioforge" / "logs"
    try:
        with gc_paused():
            return _Loader(display, source, folder, logs).load(root, file)
    except RecursionError:  # pragma: no cover - the reader nests no deeper than MAX_DEPTH
        problem = Problem(display, 1, 1, "the YAML is nested too deeply")
        raise WorkflowFileError([problem]) from None


class _Loader:
    def __init__(self, display: str, source: str, folder: Path, log_dir: Path) -> None:
        self.check = Checker(display, source)
        self.folder = folder
        self.log_dir = log_dir
        self._cwds: dict[str, Path] = {}

    def load(self, root: Node | None, file: Path) -> WorkflowFile:
        check = self.check
        if root is None:
            check.problems.append(
                Problem(check.path, 1, 1, "the file is empty; a workflow needs a 'tasks' mapping")
            )
            raise WorkflowFileError(check.problems)
        top = check.mapping(root, "the workflow", _TOP_KEYS, extensions=True)
        if top is None:
            raise WorkflowFileError(check.problems)
        name = file.stem or "workflow"
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
        env: list[tuple[str, str]] = []
        if "env" in top:
            for var, value, node in check.env(top["env"][1], "the workflow's env", RESERVED_ENV):
                for ref in check.templates(node, f"env {var}"):
                    check.add_in_scalar(
                        node,
                        ref.offset,
                        "templates cannot be used in the workflow's env (no task is upstream "
                        "of every task); put this variable in the env of the task that needs it",
                    )
                env.append((var, value))
        defaults = self._defaults(top["defaults"][1] if "defaults" in top else None)
        specs: list[_Spec] = []
        if "tasks" not in top:
            check.add(root, "the workflow has no 'tasks' mapping")
        else:
            specs = self._tasks(top["tasks"][1])
        if specs:
            check_graph(
                check,
                [spec.id for spec in specs],
                {spec.id: spec.needs for spec in specs},
                {spec.id: spec.refs for spec in specs if spec.refs},
            )
        if check.problems:
            raise WorkflowFileError(check.problems)
        groups = ProcessGroups()
        workflow = Workflow(name)
        for spec in specs:
            workflow.add_task(self._build(spec, env, defaults, groups, compensation_timeout))
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
        )

    def _defaults(self, node: Node | None) -> dict[str, Any]:
        defaults: dict[str, Any] = {"timeout": None, "retries": 0, "grace_period": 5.0}
        if node is None:
            return defaults
        pairs = self.check.mapping(node, "defaults", _DEFAULT_KEYS)
        for key, (_key_node, value) in (pairs or {}).items():
            self._option(key, value, defaults, "defaults")
        return defaults

    def _option(self, key: str, value: Node, into: dict[str, Any], where: str) -> None:
        check = self.check
        what = f"{key} in {where}"
        if key == "timeout":
            into[key] = check.duration(value, what, allow_none=True)
        elif key == "retries":
            retries = check.whole(value, what, minimum=0, maximum=100)
            if retries is not None:
                into[key] = retries
        elif key in ("grace_period", "estimate"):
            seconds = check.duration(value, what)
            if seconds is not None:
                into[key] = seconds

    def _tasks(self, node: Node) -> list[_Spec]:
        check = self.check
        if not isinstance(node, MappingNode):
            check.add(node, f"'tasks' must be a mapping of task ids to tasks, not {node.kind}")
            return []
        if not node.pairs:
            check.add(node, "'tasks' is empty; a workflow needs at least one task")
            return []
        tasks = check.mapping(node, "tasks", None, item="task id") or {}
        specs: list[_Spec] = []
        for task_id, (key, value) in tasks.items():
            if not _TASK_ID.fullmatch(task_id):
                check.add(
                    key,
                    f"task id {task_id!r} may use only letters, digits, '_' and '-', must not "
                    "start with '-', and may be at most 128 characters long",
                )
                continue
            spec = self._task(task_id, key, value)
            if spec is not None:
                specs.append(spec)
        return specs

    def _task(self, task_id: str, key: ScalarNode, node: Node) -> _Spec | None:
        check = self.check
        where = f"task {task_id!r}"
        if isinstance(node, ScalarNode) and node.is_null():
            check.add(node, f"{where} is empty; give it 'run' (a script) or 'cmd' (an argv list)")
            return None
        pairs = check.mapping(node, where, _TASK_KEYS)
        if pairs is None:
            return None
        spec = _Spec(task_id, key)
        if "run" in pairs and "cmd" in pairs:
            check.add(pairs["cmd"][0], f"{where} has both 'run' and 'cmd'; keep one")
        elif "run" not in pairs and "cmd" not in pairs:
            check.add(key, f"{where} needs 'run' (a script for sh -c) or 'cmd' (an argv list)")
        if "run" in pairs:
            spec.command = self._script(pairs["run"][1], f"'run' of {where}")
        elif "cmd" in pairs:
            spec.command = self._argv(pairs["cmd"][1], f"'cmd' of {where}", spec)
        for extra in ("compensate", "fallback"):
            if extra in pairs:
                value = pairs[extra][1]
                what = f"'{extra}' of {where}"
                command = (
                    self._argv(value, what, spec, own_outputs=extra == "compensate")
                    if not isinstance(value, ScalarNode)
                    else self._script(value, what)
                )
                setattr(spec, extra, command)
        if "needs" in pairs:
            spec.needs = check.string_list(pairs["needs"][1], f"'needs' of {where}")
        for option in ("timeout", "retries", "grace_period", "estimate"):
            if option in pairs:
                # "timeout: none" sets None: no limit, even when defaults set one.
                self._option(option, pairs[option][1], spec.options, where)
        if "cwd" in pairs:
            cwd_node = pairs["cwd"][1]
            spec.cwd = check.string(cwd_node, f"'cwd' of {where}")
            if spec.cwd is not None and isinstance(cwd_node, ScalarNode):
                for ref in check.templates(cwd_node, f"'cwd' of {where}"):
                    check.add_in_scalar(
                        cwd_node,
                        ref.offset,
                        f"templates are expanded only in 'env' values and 'cmd' items, not in "
                        f"'cwd' of {where}",
                    )
        if "env" in pairs:
            for var, text, value_node in check.env(
                pairs["env"][1], f"env of {where}", RESERVED_ENV
            ):
                for ref in check.templates(value_node, f"env {var} of {where}"):
                    spec.refs.append((ref, value_node, False))
                spec.env.append((var, text))
        if "description" in pairs:
            check.string(pairs["description"][1], f"'description' of {where}", allow_empty=True)
        return spec

    def _script(self, node: Node, what: str) -> str | None:
        check = self.check
        script = check.string(node, what)
        if script is None:
            return None
        assert isinstance(node, ScalarNode)
        refs = check.templates(node, what)
        for ref in refs:
            check.add_in_scalar(
                node, ref.offset, _SHELL_TEMPLATE_HINT.format(what=what, template=ref.text)
            )
        return script

    def _argv(
        self, node: Node, what: str, spec: _Spec, *, own_outputs: bool = False
    ) -> tuple[str, ...] | None:
        check = self.check
        if isinstance(node, ScalarNode) and not node.is_null():
            check.add(node, f"{what} must be a list of arguments, e.g. [python, -m, pytest]")
            return None
        items = getattr(node, "items", None)
        if not items:
            check.add(node, f"{what} must be a non-empty list of arguments")
            return None
        argv: list[str] = []
        for index, item in enumerate(items):
            text = check.string(item, f"item {index + 1} of {what}", allow_empty=index > 0)
            if text is None:
                continue
            assert isinstance(item, ScalarNode)
            for ref in check.templates(item, f"item {index + 1} of {what}"):
                spec.refs.append((ref, item, own_outputs))
            argv.append(text)
        return tuple(argv) if len(argv) == len(items) else None

    def _build(
        self,
        spec: _Spec,
        env: list[tuple[str, str]],
        defaults: dict[str, Any],
        groups: ProcessGroups,
        compensation_timeout: float,
    ) -> WorkflowTask:
        options = {**defaults, **spec.options}
        cwd = self.folder
        if spec.cwd is not None:
            cwd = self._cwds.get(spec.cwd) or self._cwds.setdefault(spec.cwd, cwd / spec.cwd)
        merged = dict(env)
        merged.update(spec.env)
        assert spec.command is not None
        common: dict[str, Any] = {
            "timeout": options["timeout"],
            "cwd": cwd,
            "env": merged,
            "grace_period": options["grace_period"],
            "log_dir": self.log_dir,
            "name": spec.id,
            "process_groups": groups,
        }
        needs = list(dict.fromkeys(dep for dep, _node in spec.needs))
        if spec.fallback is None:
            return ShellTask(
                spec.id,
                spec.command,
                depends_on=needs,
                retries=options["retries"],
                estimate=options.get("estimate"),
                compensate=spec.compensate,
                **common,
            )
        main = ShellTask(spec.id, spec.command, compensate=spec.compensate, **common)
        fallback = ShellTask(f"{spec.id}.fallback", spec.fallback, role="fallback", **common)
        return FallbackTask(
            spec.id,
            main,
            fallback,
            depends_on=needs,
            retries=options["retries"],
            estimate=options.get("estimate"),
            compensation_timeout=compensation_timeout,
        )
