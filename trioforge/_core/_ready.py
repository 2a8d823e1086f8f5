"""The ready queue: which tasks may start now, and which first (no trio).

Like cargo's job queue: each node keeps a count of unfinished dependencies;
:meth:`ReadyQueue.finish` decrements the counts of a finished node's
dependents and returns the ones that reached zero. Ready nodes wait in a heap
ordered by priority (highest first; ties go to the node added to the workflow
first), so when there are more ready tasks than free slots the one with the
most work hanging below it starts first. Everything is O(V + E) over a run,
plus O(log V) per pop.

Named resource pools (:class:`Pools`) add a second condition to "may start":
every pool a task names must have room for what it asks. Priority order still
holds among the tasks that fit: :meth:`ReadyQueue.pop_fitting` pops the
highest-priority ready node for which a predicate holds and leaves the ones it
passed over in the heap, in their order. Given ``fits_beside``, the first node
it passes over may be overtaken once, and then keeps a reservation: a node
below it is taken only if it fits with that node's demand set aside. So
smaller demands that keep arriving cannot overtake a big one forever (without
it, a big demand waits until the pool drains, which may be never while small
ones keep coming), and the one overtaking allowed keeps the pool busy when
the big demand is about to fit anyway. Both stay pure and synchronous; the
scheduler takes a task's units when it starts it and gives them back when it
ends, however it ends.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

from ._errors import WorkflowError

__all__ = ["Demand", "Pools", "ReadyQueue", "ResourceError", "demand_of", "pools_for"]

#: What one task takes from the pools: ``(pool, units)`` pairs, sorted by pool.
Demand = tuple[tuple[str, int], ...]


class ResourceError(WorkflowError, ValueError):
    """Raised before a run starts when a task asks for a pool that cannot serve it.

    Either the pool is unknown to the executor, or the task asks for more
    units than the pool has; a pool definition that is not a name and a whole
    number >= 1 also raises it (``task_id`` None).

    Attributes:
        task_id: the task (None for a bad pool definition).
        pool: the pool's name.
    """

    def __init__(self, message: str, *, task_id: str | None, pool: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.pool = pool


def _units(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def demand_of(task_id: str, resources: Mapping[str, int] | None) -> Demand:
    """A task's ``resources`` mapping as a :data:`Demand` (checked: names and units >= 1).

    Raises:
        ResourceError: a pool name that is not a non-empty str, or units that
            are not a whole number >= 1.
    """
    if not resources:
        return ()
    if not isinstance(resources, Mapping):
        raise ResourceError(
            f"task {task_id!r}: resources must be a mapping of pool name to units, "
            f"got {resources!r}",
            task_id=task_id,
            pool="",
        )
    demand = []
    for pool, units in resources.items():
        if not isinstance(pool, str) or not pool:
            raise ResourceError(
                f"task {task_id!r}: a pool name must be a non-empty str, got {pool!r}",
                task_id=task_id,
                pool=str(pool),
            )
        if _units(units) is None:
            raise ResourceError(
                f"task {task_id!r}: pool {pool!r} units must be a whole number >= 1, "
                f"got {units!r}",
                task_id=task_id,
                pool=pool,
            )
        demand.append((pool, units))
    return tuple(sorted(demand))


class Pools:
    """Named pools of units: their capacities and the units in use (no trio).

    Args:
        capacities: each pool's name and how many units it has (>= 1).

    Raises:
        ResourceError: a name that is not a non-empty str, or a capacity that
            is not a whole number >= 1.
    """

    __slots__ = ("capacity", "in_use")

    def __init__(self, capacities: Mapping[str, int]) -> None:
        for pool, units in capacities.items():
            if not isinstance(pool, str) or not pool or _units(units) is None:
                raise ResourceError(
                    f"resource pool {pool!r}: expected a non-empty name and a capacity that "
                    f"is a whole number >= 1, got {units!r}",
                    task_id=None,
                    pool=str(pool),
                )
        self.capacity: dict[str, int] = dict(capacities)
        self.in_use: dict[str, int] = dict.fromkeys(capacities, 0)

    def check(self, task_id: str, demand: Demand) -> None:
        """Raise :class:`ResourceError` unless ``demand`` could ever be served.

        Raises:
            ResourceError: an unknown pool, or more units than the pool has.
        """
        for pool, units in demand:
            capacity = self.capacity.get(pool)
            if capacity is None:
                known = ", ".join(map(repr, sorted(self.capacity))) or "none"
                raise ResourceError(
                    f"task {task_id!r} needs resource pool {pool!r}, which is not defined "
                    f"(pools: {known})",
                    task_id=task_id,
                    pool=pool,
                )
            if units > capacity:
                raise ResourceError(
                    f"task {task_id!r} needs {units} units of resource pool {pool!r}, "
                    f"which has only {capacity}",
                    task_id=task_id,
                    pool=pool,
                )

    def fits(self, demand: Demand) -> bool:
        """Whether every pool of ``demand`` has room for it now."""
        in_use, capacity = self.in_use, self.capacity
        return all(in_use[pool] + units <= capacity[pool] for pool, units in demand)

    def fits_beside(self, reserved: Demand, demand: Demand) -> bool:
        """Whether ``demand`` fits now with the units of ``reserved`` set aside (kept for it)."""
        in_use, capacity = self.in_use, self.capacity
        held = dict(reserved)
        return all(
            in_use[pool] + units + held.get(pool, 0) <= capacity[pool] for pool, units in demand
        )

    def take(self, demand: Demand) -> None:
        """Mark ``demand`` in use (the caller checked :meth:`fits`)."""
        for pool, units in demand:
            self.in_use[pool] += units

    def give(self, demand: Demand) -> None:
        """Give back what :meth:`take` marked in use."""
        for pool, units in demand:
            self.in_use[pool] -= units

    def idle(self) -> bool:
        """Whether no unit of any pool is in use."""
        return not any(self.in_use.values())


class ReadyQueue:
    """Dependency counts and a priority heap of ready nodes.

    Args:
        predecessors: for each node, the nodes it depends on (only counted).
        successors: for each node, the nodes that depend on it: a sequence
            indexed by node, or a function of the node.
        priorities: for each node, its priority (higher pops first); None
            pops in node order.
        counts: each node's number of dependencies, instead of counting
            ``predecessors`` (the list is kept and counted down).
    """

    __slots__ = ("_heap", "_overtaken", "_priorities", "_remaining", "_skipped", "_successors")

    def __init__(
        self,
        predecessors: Sequence[Sequence[int]] | None,
        successors: Sequence[Sequence[int]] | Callable[[int], Sequence[int]],
        priorities: Sequence[float] | None = None,
        *,
        counts: list[int] | None = None,
    ) -> None:
        if counts is None:
            if predecessors is None:
                raise TypeError("ReadyQueue needs predecessors or counts")
            counts = [len(p) for p in predecessors]
        self._remaining = counts
        self._successors: Callable[[int], Sequence[int]] = (
            successors if callable(successors) else successors.__getitem__
        )
        self._priorities = priorities
        self._heap: list[tuple[float, int]] = []
        self._skipped: set[int] = set()
        self._overtaken: set[int] = set()  # passed over once by pop_fitting: now reserving

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
            for succ in successors(node):
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

    def pop_entry(self) -> tuple[float, int]:
        """Remove and return the top ``(-priority, node)`` entry (see :meth:`pop`).

        Entries compare as the queue orders them: the smaller comes first.

        Raises:
            IndexError: no node is ready.
        """
        return heapq.heappop(self._heap)

    def peek_entry(self) -> tuple[float, int]:
        """The top ``(-priority, node)`` entry, left in the queue.

        Raises:
            IndexError: no node is ready.
        """
        return self._heap[0]

    def pop_fitting(
        self,
        fits: Callable[[int], bool],
        fits_beside: Callable[[int, int], bool] | None = None,
    ) -> int | None:
        """Remove and return the highest-priority ready node for which ``fits(node)`` holds.

        The nodes passed over stay ready, in their order. Returns None when no
        ready node fits (or none is ready). With ``fits_beside``, the first
        node passed over may be overtaken once; after that it keeps a
        reservation: a node below it is taken only if ``fits_beside(first,
        node)`` (it fits beside what ``first`` waits for), so ``first`` starts
        as soon as the units it needs come back, not never.
        """
        heap = self._heap
        passed: list[tuple[float, int]] = []
        found: int | None = None
        first: int | None = None
        check = fits  # then, once the first node passed over reserves: fits beside it
        while heap:
            item = heapq.heappop(heap)
            node = item[1]
            if check(node):
                found = node
                break
            passed.append(item)
            if first is None and fits_beside is not None:
                first = node
                if node in self._overtaken:
                    check = partial(fits_beside, node)
        if first is not None and found is not None:
            self._overtaken.add(first)
        if found is not None:
            self._overtaken.discard(found)
        for item in passed:
            heapq.heappush(heap, item)
        return found

    def finish(self, node: int) -> list[int]:
        """Mark ``node`` as succeeded; return its dependents that became ready.

        The returned nodes are not pushed: the caller starts them at once or
        pushes them when slots are scarce.
        """
        remaining = self._remaining
        ready: list[int] = []
        for succ in self._successors(node):
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
            for succ in successors(stack.pop()):
                if succ not in skipped:
                    skipped.add(succ)
                    found.append(succ)
                    stack.append(succ)
        return found

    def is_skipped(self, node: int) -> bool:
        """Whether ``node`` was skipped because something it depends on failed."""
        return node in self._skipped


def pools_for(
    capacities: Mapping[str, int], tasks: Iterable[tuple[str, Mapping[str, int] | None]]
) -> tuple[Pools, list[Demand]] | None:
    """The pools of a run and each task's demand, checked; None when no task names a pool.

    Args:
        capacities: the executor's pools.
        tasks: ``(task_id, resources)`` per task, in node order.

    Raises:
        ResourceError: a bad pool definition, an unknown pool, or a task that
            needs more units than its pool has (checked before anything runs).
    """
    pools = Pools(capacities)
    pairs = [(task_id, demand_of(task_id, resources)) for task_id, resources in tasks]
    if not any(demand for _, demand in pairs):
        return None
    for task_id, demand in pairs:
        pools.check(task_id, demand)
    return pools, [demand for _, demand in pairs]
