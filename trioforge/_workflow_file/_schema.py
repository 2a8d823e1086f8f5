"""The workflow file's reader: :class:`Checker`, the typed node reads plus environments.

An ``env`` is read as layers (what it says, then each mapping it merges) that
callers combine the same way, so 1,500 tasks with ``env: {<<: *common, A:
b}`` check the variables of ``common`` once.
"""

from __future__ import annotations

from collections.abc import KeysView, Sequence

import attrs

from .._shell import ENV_NAME
from ._inputs import scan_with_inputs
from ._nodes import MappingNode, Node, ScalarNode, SequenceNode
from ._reads import NodeReader, Problem, once_per_shared_node, shown, usual_tag

__all__ = ["Checker", "EnvLayer", "Problem", "effective_env", "shown"]


@attrs.frozen(eq=False)
class EnvLayer:
    """One layer of an env, as :meth:`Checker.env` reads it.

    Attributes:
        values: the usable variables: name -> (value, value node).
        names: every name the layer gives, usable or not; the layers below
            do not give these (a bad one is a problem, not a fallback).
    """

    values: dict[str, tuple[str, ScalarNode]]
    names: KeysView[str]


def effective_env(layers: Sequence[EnvLayer]) -> dict[str, tuple[str, ScalarNode]]:
    """The usable variables that ``layers`` give, the first layer to name one winning."""
    env: dict[str, tuple[str, ScalarNode]] = {}
    named: set[str] = set()
    for layer in layers:
        env.update((name, pair) for name, pair in layer.values.items() if name not in named)
        named.update(layer.names)
    return env


class _AnyInput(dict[str, object]):
    """Every input name is declared: an unknown one is the templates' check to report."""

    def __contains__(self, key: object) -> bool:
        return True


_ANY_INPUT = _AnyInput()


def _usable_env(name: str, value: Node, reserved: frozenset[str]) -> bool:
    """Whether a variable passes every check :meth:`Checker.env` and the templates make."""
    return (
        ENV_NAME.fullmatch(name) is not None
        and name not in reserved
        and isinstance(value, ScalarNode)
        and usual_tag(value.tag)
        and not value.is_null()
        and "\0" not in value.value
        and not scan_with_inputs(value.value, _ANY_INPUT)[1]
    )


class Checker(NodeReader):
    """Reads a workflow file's nodes, collecting every problem (see :class:`NodeReader`)."""

    @once_per_shared_node
    def env(self, node: Node, what: str, reserved: frozenset[str]) -> list[EnvLayer]:
        """Environment variables, as layers where the first layer to name a variable wins.

        The first layer is what the mapping itself says; then comes one layer
        per mapping it merges with ``<<`` (with that mapping's own merges
        resolved). A merged mapping is checked once however many envs merge
        it, and callers combine the layers with dictionary operations, so 300
        tasks with ``env: {<<: *common, A: b}`` check ``common`` once.

        A merged variable with a problem is reported, as before merges were
        layered, only by an env that uses it (no layer above names it): its
        usable part, if any, then comes as a small layer of this env's own,
        just above the merged layer.
        """
        if not isinstance(node, MappingNode):
            self.add(node, f"{what} must be a mapping of keys to values, not {node.kind}")
            return []
        written, merges = self._written(node, what, None)
        sources = [
            source
            for merge in merges
            for source in (merge.items if isinstance(merge, SequenceNode) else [merge])
        ]
        layers = [EnvLayer(self._env_values(written, what, reserved), written.keys())]
        for source in sources:
            merged, pending = self._merged_env(source, what, reserved)
            used = {
                name: pair
                for name, pair in pending.items()
                if not any(name in above.names for above in layers)
            }
            if used:
                values = self._env_values(used, what, reserved)
                if values:  # a template was malformed: the value is still used
                    layers.append(EnvLayer(values, values.keys()))
                for name in used.keys() - values.keys():
                    del pending[name]  # reported now; any later use would only repeat it
            layers.append(merged)
        return layers

    @once_per_shared_node
    def _merged_env(
        self, node: Node, what: str, reserved: frozenset[str]
    ) -> tuple[EnvLayer, dict[str, tuple[ScalarNode, Node]]]:
        """The layer of a merged mapping, and its variables that have a problem.

        The problems are not reported here: whether they are depends on the
        env that merges the mapping (see :meth:`env`, which removes a variable
        from the second dictionary once its problem is reported).
        """
        pairs = self._merges.pairs(node, what)
        values: dict[str, tuple[str, ScalarNode]] = {}
        pending: dict[str, tuple[ScalarNode, Node]] = {}
        for name, (key, value) in pairs.items():
            if _usable_env(name, value, reserved):
                assert isinstance(value, ScalarNode)
                values[name] = (value.value, value)
            else:
                pending[name] = (key, value)
        return EnvLayer(values, pairs.keys()), pending

    def _env_values(
        self, pairs: dict[str, tuple[ScalarNode, Node]], what: str, reserved: frozenset[str]
    ) -> dict[str, tuple[str, ScalarNode]]:
        """The usable variables of ``pairs``; bad names and values are problems."""
        values: dict[str, tuple[str, ScalarNode]] = {}
        for name, (key, value) in pairs.items():
            if not ENV_NAME.fullmatch(name):
                if self.first(key, "env name"):
                    self.add(
                        key, f"{shown(name)} in {what} is not a valid environment variable name"
                    )
                continue
            if name in reserved:
                if self.first(key, "env name"):
                    self.add(key, f"{name} is set by trioforge; it cannot be set in {what}")
                continue
            scalar = self._env_value(value, f"the value of {name} in {what}")
            if scalar is not None:
                values[name] = (scalar.value, scalar)
        return values

    @once_per_shared_node
    def _env_value(self, node: Node, what: str) -> ScalarNode | None:
        """The scalar of one environment value, if it is a usable one."""
        scalar = self.scalar(node, what)
        if scalar is None:
            return None
        if scalar.is_null():
            self.add(node, f'{what} is empty; write "" if you mean it')
            return None
        if "\0" in scalar.value:
            self.add(node, f"{what} must not hold a NUL character")
            return None
        return scalar
