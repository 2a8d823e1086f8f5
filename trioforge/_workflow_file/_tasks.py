"""Reading the tasks of a workflow file into specs: what each task says, checked.

:class:`TaskReader` turns the ``tasks`` mapping into :class:`Spec` values
(command, needs, options, env, templates), recording every problem in the
loader's :class:`Checker`; the loader then checks the graph and builds the
tasks. A task body, an ``env``, an env layer merged with ``<<`` or an argv
list reached through an alias is read once (by node id, like every shared
node, see ``_yaml_schema``): the other tasks using it get the first reading,
the same objects, under their own id. So 300 tasks written as ``*body`` cost
one reading, and what the loader and the graph checks do with a shared
reading (convert an env, sort templates by the task they name) they can do
once per object instead of once per task.

Templates: in a ``run`` script they are refused (an output pasted into shell
code could run as code). In ``cmd`` items they become one argv item each, and
no shell started by trioforge reads them; but the program may
(``[sh, -c, SCRIPT]``), so a template in an item that ``code_items`` says the
program reads as code is refused too, with a message that says how to pass
the value instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs

from .._shell import OPEN, RESERVED_ENV, CodeItem, Reference, code_items
from ._inputs import INPUTS_TASK
from ._nodes import MappingNode, Node, ScalarNode
from ._schema import Checker, EnvLayer, Problem, shown

__all__ = ["Ref", "RefGroup", "Spec", "TaskReader", "UsedGroup"]

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
    "resources",
)
#: A program that is an environment variable, ``$NAME`` or ``${NAME}`` (cmd is not a shell).
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)\}|(?P<plain>[A-Za-z_]\w*))")
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

RefGroup = Sequence[Ref]
"""The templates of one reading (an argv, an env layer): one object for all tasks sharing it."""

UsedGroup = tuple[RefGroup, frozenset[int]]
"""A group as one task uses it, with the ids of the value nodes whose templates the task
does not use (env variables of a merged mapping that the task's own env sets again)."""

_WHOLE: frozenset[int] = frozenset()


@attrs.define
class Spec:
    """One task as read from the file, before it is built.

    What the task reads from a shared node (its ``needs``, an argv, its env
    layers, the groups of templates) is the same object in every task that
    shares the node, so the loader can convert it once, by identity.

    Attributes:
        env: the layers of the task's env (see :meth:`Checker.env`), as
            name -> value, the first layer to set a name winning.
        refs: the groups of templates the task's argv and env values hold.
    """

    id: str
    node: ScalarNode
    command: str | tuple[str, ...] | None = None
    needs: list[tuple[str, ScalarNode]] = attrs.Factory(list)
    options: dict[str, Any] = attrs.Factory(dict)
    cwd: str | None = None
    env: list[dict[str, str]] = attrs.Factory(list)
    compensate: str | tuple[str, ...] | None = None
    fallback: str | tuple[str, ...] | None = None
    refs: list[UsedGroup] = attrs.Factory(list)
    resources: dict[str, tuple[int, ScalarNode]] = attrs.Factory(dict)


@attrs.define(eq=False)
class _Layer:
    """One env layer as tasks use it: its values, and its templates by name."""

    layer: EnvLayer  # kept so that its id, the key of the reading, stays unique
    values: dict[str, str]
    templated: dict[str, list[Ref]]
    _flat: list[Ref] | None = None
    _names: dict[int, set[str]] | None = None

    def flat(self) -> list[Ref]:
        """All the layer's templates as one group (made once, on first use)."""
        if self._flat is None:
            self._flat = [ref for refs in self.templated.values() for ref in refs]
        return self._flat

    def unused(self, hidden: set[str]) -> frozenset[int]:
        """The ids of the templated value nodes that only names in ``hidden`` use."""
        if self._names is None:
            self._names = {}
            for name, refs in self.templated.items():
                self._names.setdefault(id(refs[0][1]), set()).add(name)
        names = self._names
        nodes = {id(self.templated[name][0][1]) for name in hidden}
        return frozenset(node for node in nodes if names[node] <= hidden)


class TaskReader:
    """Reads the ``tasks`` mapping of one file into :class:`Spec` values."""

    def __init__(self, check: Checker) -> None:
        self.check = check
        # Readings of shared task bodies, env mappings and argv lists, by node id.
        self._bodies: dict[int, Spec | None] = {}
        self._argvs: dict[tuple[int, bool], tuple[tuple[str, ...] | None, list[UsedGroup]]] = {}
        self._envs: dict[int, tuple[list[dict[str, str]], list[UsedGroup]]] = {}
        # Readings of env layers, by the layer's id (the layer is kept, so ids stay unique).
        self._layers: dict[int, _Layer] = {}
        # The templates of shared scalars, by node id and whether they may name their task.
        self._scalars: dict[tuple[int, bool], list[Ref]] = {}

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

    def pools(self, node: Node, what: str) -> dict[str, tuple[int, ScalarNode]]:
        """A ``resources`` mapping: pool name -> (a whole number >= 1, the name's node)."""
        pairs = self.check.mapping(node, what, None, item="resource pool")
        found: dict[str, tuple[int, ScalarNode]] = {}
        for name, (key, value) in (pairs or {}).items():
            units = self.check.whole(value, f"{name!r} in {what}", minimum=1, maximum=1_000_000)
            if units is not None:
                found[name] = (units, key)
        return found

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
        if task_id in _TASK_KEYS and not isinstance(node, MappingNode):
            # `needs: [a]` two spaces short of its task's other keys is read as a task.
            check.add(
                key,
                f"{where} is not a mapping, and {task_id!r} is a task key: is it indented "
                "too little? Indent it as deep as the other keys of the task it belongs to",
            )
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
        if "resources" in pairs:
            spec.resources = self.pools(pairs["resources"][1], f"'resources' of {where}")
        if "cwd" in pairs:
            cwd_node = pairs["cwd"][1]
            spec.cwd = check.string(cwd_node, f"'cwd' of {where}")
            # A shared cwd's templates are reported once, not looked at once per task.
            if (
                spec.cwd is not None
                and isinstance(cwd_node, ScalarNode)
                and check.first(cwd_node, "cwd templates")
            ):
                for ref in check.templates(cwd_node, f"'cwd' of {where}"):
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

    def _env(self, node: Node, where: str) -> tuple[list[dict[str, str]], list[UsedGroup]]:
        """A task's ``env``: its layers as name -> value, and the groups of templates in them.

        A layer merged from a shared mapping is read once, and its templates
        are one group for every task using it. A task whose own layer sets a
        name that has templates below uses that group without the templates
        of those values (its command never sees them).
        """
        values: list[dict[str, str]] = []
        groups: list[UsedGroup] = []
        layers = self.check.env(node, f"env of {where}", RESERVED_ENV)
        for depth, layer in enumerate(layers):
            if depth == 0 and not node.shared:
                read = self._read_layer(layer, where)  # this task's own: read once anyway
            elif id(layer) in self._layers:
                read = self._layers[id(layer)]
            else:
                read = self._layers[id(layer)] = self._read_layer(layer, where)
            values.append(read.values)
            if not read.templated:
                continue
            hidden: set[str] = set()
            for above in layers[:depth]:
                hidden |= above.names & read.templated.keys()  # in C, over the smaller
            if hidden:
                groups.append((read.flat(), read.unused(hidden)))
            elif depth == 0 and not node.shared:
                # A mapping written in this task only is read for this task
                # only: one group per value is then cheaper than one flat group
                # when a value is a shared scalar full of templates.
                groups.extend((refs, _WHOLE) for refs in read.templated.values())
            else:
                groups.append((read.flat(), _WHOLE))
        return values, groups

    def _read_layer(self, layer: EnvLayer, where: str) -> _Layer:
        values: dict[str, str] = {}
        templated: dict[str, list[Ref]] = {}
        for var, (text, value_node) in layer.values.items():
            values[var] = text
            refs = self._scalar_refs(value_node, f"env {var} of {where}", own_outputs=False)
            if refs:
                templated[var] = refs
        return _Layer(layer, values, templated)

    def _scalar_refs(self, node: ScalarNode, what: str, *, own_outputs: bool) -> list[Ref]:
        """The templates of one scalar: one list for every task that shares the scalar."""
        found = self.check.templates(node, what)  # read once if shared
        if found and any(ref.task == INPUTS_TASK for ref in found):
            # Input templates are put in place by the loader: no task to be upstream of.
            found = [ref for ref in found if ref.task != INPUTS_TASK]
        if not found:
            return []
        if not node.shared:
            return [(ref, node, own_outputs) for ref in found]
        key = (id(node), own_outputs)
        refs = self._scalars.get(key)
        if refs is None:
            refs = self._scalars[key] = [(ref, node, own_outputs) for ref in found]
        return refs

    def _script(self, node: Node, what: str) -> str | None:
        check = self.check
        script = check.string(node, what)
        if script is None:
            return None
        assert isinstance(node, ScalarNode)
        # A shared script's templates are reported once, not looked at once per task.
        if check.first(node, "script templates"):
            for ref in check.templates(node, what):
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
            argv, groups = self._argvs[key]
        else:
            argv, groups = self._read_argv(node, what, own_outputs)
        spec.refs.extend(groups)
        return argv

    def _read_argv(
        self, node: Node, what: str, own_outputs: bool
    ) -> tuple[tuple[str, ...] | None, list[UsedGroup]]:
        """The argv of a ``cmd`` (or argv ``compensate``/``fallback``) and its templates.

        The templates of a shared argv are one group (read once, used by many
        tasks); those of an argv written for one task are one group per item,
        so that an aliased item full of templates stays one shared group.
        """
        check = self.check
        if isinstance(node, ScalarNode) and not node.is_null():
            check.add(node, f"{what} must be a list of arguments, e.g. [python, -m, pytest]")
            return None, []
        items = getattr(node, "items", None)
        if not items:
            check.add(node, f"{what} must be a non-empty list of arguments")
            return None, []
        argv: list[str] = []
        groups: list[list[Ref]] = []
        first_template: dict[int, str] = {}  # by index, for messages
        for index, item in enumerate(items):
            text = check.string(item, f"item {index + 1} of {what}", allow_empty=index > 0)
            if text is None:
                continue
            assert isinstance(item, ScalarNode)
            refs = self._scalar_refs(item, f"item {index + 1} of {what}", own_outputs=own_outputs)
            if refs:
                first_template[index] = refs[0][0].text
                groups.append(refs)
            argv.append(text)
        if node.shared and len(groups) > 1:
            groups = [[ref for refs in groups for ref in refs]]
        used: list[UsedGroup] = [(refs, _WHOLE) for refs in groups]
        if len(argv) != len(items):
            return None, used
        program = _VARIABLE.match(argv[0]) if argv else None
        if program is not None and check.first(node, "program variable"):
            name = program["braced"] or program["plain"]
            check.warnings.append(
                Problem(
                    check.path,
                    *check.position(items[0].start),
                    f"item 1 of {what} is {shown(argv[0])}, which nothing expands (cmd items "
                    f"are passed as they are): write run: '\"${name}\" ...' so that a shell "
                    "expands it, or name the program itself and pass the value through env:",
                )
            )
        for code in code_items(argv):
            template = first_template.get(code.index, "${{ tasks.ID.outputs.KEY }}")
            self._code_item(items[code.index], code, what, template)
        return tuple(argv), used

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
