"""Who may read whose result: a task's upstream, answered lazily.

A context answers ``result_of`` only for tasks upstream of its own. Most
tasks never ask, so the answer is built only on demand: direct dependencies
first, the full set of ancestors only when a farther id is asked about.
"""

from __future__ import annotations

from collections.abc import Container

from ._dag import Dag
from ._task import UpstreamSource

__all__ = ["RunUpstream", "Upstream", "WithSelf"]


class Upstream:
    """Answers "is this id upstream of the node?": direct deps first, ancestors lazily."""

    __slots__ = ("_ancestors", "_dag", "_node")

    def __init__(self, dag: Dag, node: int) -> None:
        self._dag = dag
        self._node = node
        self._ancestors: set[int] | None = None

    def __contains__(self, task_id: object) -> bool:
        index = self._dag.index.get(task_id)  # type: ignore[call-overload]
        if index is None:
            return False
        if index in self._dag.predecessors[self._node]:
            return True
        if self._ancestors is None:
            self._ancestors = self._dag.ancestors(self._node)
        return index in self._ancestors


class RunUpstream(UpstreamSource):
    """The upstream source shared by every context of a run: one :class:`Upstream` on demand."""

    __slots__ = ("_dag",)

    def __init__(self, dag: Dag) -> None:
        self._dag = dag

    def for_task(self, task_id: str) -> Container[str]:
        """The direct and transitive dependencies of ``task_id``."""
        return Upstream(self._dag, self._dag.index[task_id])


class WithSelf:
    """Upstream plus the node itself (a compensation may read its own result)."""

    __slots__ = ("_task_id", "_upstream")

    def __init__(self, task_id: str, upstream: Container[str]) -> None:
        self._task_id = task_id
        self._upstream = upstream

    def __contains__(self, task_id: object) -> bool:
        return task_id == self._task_id or task_id in self._upstream
