"""Reading the tasks of a workflow file into specs: what each task says, checked.

:class:`TaskReader` turns the ``tasks`` mapping into :class:`Spec` values
(command, needs, options, env, templates), recording every problem in the
loader's :class:`Checker`; the loader then checks the graph and builds the
tasks. A task body, an ``env`` or an argv list reached through an alias is
read once (by node id, like every shared node, see ``_yaml_schema``): the
other tasks using it get the first reading under their own id, so 300 tasks
written as ``*body`` cost one reading.

Templates: in a ``run`` script they are refused (an output pasted into shell
code could run as code). In ``cmd`` items they become one argv item each, and
no shell started by trioforge reads them; but the program may
(``[sh, -c, SCRIPT]``), so a template in an item that ``code_items`` says the
program reads as code is refused too, with a message that says how to pass
the value instead.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from ._argv_code import CodeItem, code_items
from ._shell import RESERVED_ENV
from ._templates import OPEN, Reference
from ._yaml_nodes import MappingNode, Node, ScalarNode
from ._yaml_schema import Checker, shown

__all__ = ["Ref", "Spec", "TaskReader"]

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
_CODE_ITEM_HINTS = {
    "program": (
        "a task's output there would choose what runs. Write the program (or script, or "
        'module) in the file and pass the value as an argument, or through env: {{VALUE: "{t}"}}'
    ),
    "code": (
        "a task's output there would be read as code. Pass it as an argument after the code "
        'instead and read it there as "$1" (e.g. [sh, -c, \'echo "$1"\', sh, "{t}"]), or '
        'through env: {{VALUE: "{t}"}} and read $VALUE'
    ),
    "joined": (
        "the program joins its arguments into a command line for a shell, so a task's output "
        'is read as code wherever it is. Pass it through env: {{VALUE: "{t}"}} and check it '
        "in a script before it reaches the command line"
    ),
}


Ref = tuple[Reference, ScalarNode, bool]
"""A template, its scalar, and whether it may name its own task (a ``compensate`` argv)."""


@attrs.define
class Spec:
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
    refs: list[Ref] = attrs.Factory(list)


class TaskReader:
    """Reads the ``tasks`` mapping of one file into :class:`Spec` values."""

    def __init__(self, check: Checker) -> None:
        self.check = check
        # Readings of shared task bodies, env mappings and argv lists, by node id.
        self._bodies: dict[int, Spec | None] = {}
        self._argvs: dict[tuple[int, bool], tuple[tuple[str, ...] | None, list[Ref]]] = {}
        self._envs: dict[int, tuple[list[tuple[str, str]], list[Ref]]] = {}

    def option(self, key: str, value: Node, into: dict[str, Any], where: str) -> None:
        """Read ``timeout``, ``retries``, ``grace_period`` or ``estimate`` into ``into``."""
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

    def tasks(self, node: Node) -> list[Spec]:
        """The specs of the tasks in the ``tasks`` mapping that could be read, in file order."""
        check = self.check
        if not isinstance(node, MappingNode):
            check.add(node, f"'tasks' must be a mapping of task ids to tasks, not {node.kind}")
            return []
        if not node.pairs:
            check.add(node, "'tasks' is empty; a workflow needs at least one task")
            return []
        tasks = check.mapping(node, "tasks", None, item="task id") or {}
        specs: list[Spec] = []
        for task_id, (key, value) in tasks.items():
            if not _TASK_ID.fullmatch(task_id):
                check.add(
                    key,
                    f"task id {shown(task_id)} may use only letters, digits, '_' and '-', "
                    "must not start with '-', and may be at most 128 characters long",
                )
                continue
            spec = self._task(task_id, key, value)
            if spec is not None:
                specs.append(spec)
        return specs

    def _task(self, task_id: str, key: ScalarNode, node: Node) -> Spec | None:
        if not node.shared:
            return self._read_task(task_id, key, node)
        if id(node) not in self._bodies:
            self._bodies[id(node)] = self._read_task(task_id, key, node)
        first = self._bodies[id(node)]
        return None if first is None else attrs.evolve(first, id=task_id, node=key)

    def _read_task(self, task_id: str, key: ScalarNode, node: Node) -> Spec | None:
        check = self.check
        where = f"task {task_id!r}"
        if isinstance(node, ScalarNode) and node.is_null():
            check.add(node, f"{where} is empty; give it 'run' (a script) or 'cmd' (an argv list)")
            return None
        pairs = check.mapping(node, where, _TASK_KEYS)
        if pairs is None:
            return None
        spec = Spec(task_id, key)
        if "run" in pairs and "cmd" in pairs:
            check.add(pairs["cmd"][0], f"{where} has both 'run' and 'cmd'; keep one")
        elif "run" not in pairs and "cmd" not in pairs:
            # A shared body is reported once, where it is written.
            at = node if node.shared else key
            check.add(at, f"{where} needs 'run' (a script for sh -c) or 'cmd' (an argv list)")
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
                self.option(option, pairs[option][1], spec.options, where)
        if "cwd" in pairs:
            cwd_node = pairs["cwd"][1]
            spec.cwd = check.string(cwd_node, f"'cwd' of {where}")
            if spec.cwd is not None and isinstance(cwd_node, ScalarNode):
                for ref in check.templates(cwd_node, f"'cwd' of {where}"):
                    if not check.first(cwd_node, "cwd template", ref.offset):
                        continue
                    check.add_in_scalar(
                        cwd_node,
                        ref.offset,
                        f"templates are expanded only in 'env' values and 'cmd' items, not in "
                        f"'cwd' of {where}",
                    )
        if "env" in pairs:
            env_node = pairs["env"][1]
            if env_node.shared:
                if id(env_node) not in self._envs:
                    self._envs[id(env_node)] = self._env(env_node, where)
                spec.env, refs = self._envs[id(env_node)]
            else:
                spec.env, refs = self._env(env_node, where)
            spec.refs.extend(refs)
        if "description" in pairs:
            check.string(pairs["description"][1], f"'description' of {where}", allow_empty=True)
        return spec

    def _env(self, node: Node, where: str) -> tuple[list[tuple[str, str]], list[Ref]]:
        """A task's ``env``: ``(name, value)`` pairs, and the templates in the values."""
        env: list[tuple[str, str]] = []
        refs: list[Ref] = []
        for var, text, value_node in self.check.env(node, f"env of {where}", RESERVED_ENV):
            refs.extend(
                (ref, value_node, False)
                for ref in self.check.templates(value_node, f"env {var} of {where}")
            )
            env.append((var, text))
        return env, refs

    def _script(self, node: Node, what: str) -> str | None:
        check = self.check
        script = check.string(node, what)
        if script is None:
            return None
        assert isinstance(node, ScalarNode)
        for ref in check.templates(node, what):
            if check.first(node, "script template", ref.offset):
                check.add_in_scalar(
                    node, ref.offset, _SHELL_TEMPLATE_HINT.format(what=what, template=ref.text)
                )
        return script

    def _argv(
        self, node: Node, what: str, spec: Spec, *, own_outputs: bool = False
    ) -> tuple[str, ...] | None:
        if node.shared:
            key = (id(node), own_outputs)
            if key not in self._argvs:
                self._argvs[key] = self._read_argv(node, what, own_outputs)
            argv, refs = self._argvs[key]
        else:
            argv, refs = self._read_argv(node, what, own_outputs)
        spec.refs.extend(refs)
        return argv

    def _read_argv(
        self, node: Node, what: str, own_outputs: bool
    ) -> tuple[tuple[str, ...] | None, list[Ref]]:
        """The argv of a ``cmd`` (or argv ``compensate``/``fallback``) and its templates."""
        check = self.check
        if isinstance(node, ScalarNode) and not node.is_null():
            check.add(node, f"{what} must be a list of arguments, e.g. [python, -m, pytest]")
            return None, []
        items = getattr(node, "items", None)
        if not items:
            check.add(node, f"{what} must be a non-empty list of arguments")
            return None, []
        argv: list[str] = []
        refs: list[Ref] = []
        first_template: dict[int, str] = {}  # by index, for messages
        for index, item in enumerate(items):
            text = check.string(item, f"item {index + 1} of {what}", allow_empty=index > 0)
            if text is None:
                continue
            assert isinstance(item, ScalarNode)
            found = check.templates(item, f"item {index + 1} of {what}")
            if found:
                first_template[index] = found[0].text
                refs.extend((ref, item, own_outputs) for ref in found)
            argv.append(text)
        if len(argv) != len(items):
            return None, refs
        for code in code_items(argv):
            template = first_template.get(code.index, "${{ tasks.ID.outputs.KEY }}")
            self._code_item(items[code.index], code, what, template)
        return tuple(argv), refs

    def _code_item(self, item: Node, code: CodeItem, what: str, template: str) -> None:
        """Refuse a template in an argv item that the program reads as code."""
        assert isinstance(item, ScalarNode)
        offset = item.value.find(OPEN)
        if offset < 0 or not self.check.first(item, "code", code.reads):
            return
        hint = _CODE_ITEM_HINTS[code.kind].format(t=template)
        self.check.add_in_scalar(
            item, offset, f"item {code.index + 1} of {what} is {code.reads}: {hint}"
        )
