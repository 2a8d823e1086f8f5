"""The ready queue: which tasks may start now, and which first (no trio).

Like cargo's job queue: each node keeps a count of unfinished dependencies;
:meth:`ReadyQueue.finish` decrements the counts of a finished node's
dependents and returns the ones that reached zero. Ready nodes wait in a heap
ordered by priority (highest first; ties go to the node added to the workflow
first), so when there are more ready tasks than free slots the one with the
most work hanging below it starts first. Everything is O(V + E) over a run,
plus O(log V) per pop.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

__all__ = ["ReadyQueue"]


class ReadyQueue:
    """Dependency counts and a priority heap of ready nodes.

    Args:
        predecessors: for each node, the nodes it depends on.
        successors: for each node, the nodes that depend on it.
        priorities: for each node, its priority (higher pops first); None
            pops in node order.
    """

    __slots__ = ("_heap", "_priorities", "_remaining", "_skipped", "_successors")

    def __init__(
        self,
        predecessors: Sequence[Sequence[int]],
        successors: Sequence[Sequence[int]],
        priorities: Sequence[float] | None = None,
    ) -> None:
        self._remaining = [len(p) for p in predecessors]
        self._successors = successors
        self._priorities = priorities
        self._heap: list[tuple[float, int]] = []
        self._skipped: set[int] = set()

    def __len__(self) -> int:
        """How many ready nodes are waiting to be popped."""
        return len(self._heap)

    def roots(self) -> list[int]:
        """The nodes with no dependencies, in node order."""
        return [node for node, count in enumerate(self._remaining) if count == 0]

    def restore(self, done: set[int]) -> list[int]:
        """Count ``done`` nodes (finished in an earlier process) as finished.

        Returns the nodes that are ready to start, in node order: those not
        in ``done`` whose dependencies are all finished.
        """
        remaining = self._remaining
        successors = self._successors
        for node in done:
            for succ in successors[node]:
                remaining[succ] -= 1
        ready = [n for n, count in enumerate(remaining) if count == 0 and n not in done]
        for node in done:
            # Never ready again, even if a dependency of it runs in this process.
            remaining[node] = -1
        return ready

    def push(self, node: int) -> None:
        """Add a ready node to the heap."""
        priority = 0.0 if self._priorities is None else self._priorities[node]
        heapq.heappush(self._heap, (-priority, node))

    def pop(self) -> int:
        """Remove and return the ready node with the highest priority.

        Raises:
            IndexError: no node is ready.
        """
        return heapq.heappop(self._heap)[1]

    def finish(self, node: int) -> list[int]:
        """Mark ``node`` as succeeded; return its dependents that became ready.

        The returned nodes are not pushed: the caller starts them at once or
        pushes them when slots are scarce.
        """
        remaining = self._remaining
        ready: list[int] = []
        for succ in self._successors[node]:
            count = remaining[succ] - 1
            remaining[succ] = count
            if count == 0:
                ready.append(succ)
        return ready

    def skip_dependents(self, node: int) -> list[int]:
        """Mark every transitive dependent of a failed ``node`` as skipped.

        Returns the newly skipped nodes in discovery order (none of them can
        have started, since each waits on ``node``).
        """
        skipped = self._skipped
        found: list[int] = []
        stack = [node]
        successors = self._successors
        while stack:
            for succ in successors[stack.pop()]:
                if succ not in skipped:
                    skipped.add(succ)
                    found.append(succ)
                    stack.append(succ)
        return found

    def is_skipped(self, node: int) -> bool:
        """Whether ``node`` was skipped because something it depends on failed."""
        return node in self._skipped
