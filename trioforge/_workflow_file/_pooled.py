"""Tasks of a workflow file that hold units of named resource pools (``resources:``).

The scheduler reads a task's optional ``resources`` attribute (pool name ->
units). :class:`~trioforge.ShellTask` and :class:`~trioforge.FallbackTask`
have none, so a task whose file entry says ``resources:`` is built as one of
these subclasses instead: the same task plus its pools, which also appear in
its ``repr`` (and so in the run store's definition, where a change to them is
noticed by ``resume``).
"""

from __future__ import annotations

import attrs

from .._fallback import FallbackTask
from .._shell import ShellTask

__all__ = ["PooledFallbackTask", "PooledShellTask"]

Pairs = tuple[tuple[str, int], ...]


@attrs.frozen(repr=False)
class PooledShellTask(ShellTask):
    """A :class:`~trioforge.ShellTask` that holds ``pools`` while it runs."""

    pools: Pairs = attrs.field(default=(), kw_only=True)

    @property
    def resources(self) -> dict[str, int]:
        """Units of each named resource pool the task holds while it runs."""
        return dict(self.pools)

    def __repr__(self) -> str:
        return f"{ShellTask.__repr__(self)[:-1]}, resources={dict(self.pools)!r})"


@attrs.frozen
class PooledFallbackTask(FallbackTask):
    """A :class:`~trioforge.FallbackTask` that holds ``pools`` while it runs."""

    pools: Pairs = attrs.field(default=(), kw_only=True)

    @property
    def resources(self) -> dict[str, int]:
        """Units of each named resource pool the task holds while it runs."""
        return dict(self.pools)
