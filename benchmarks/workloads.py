"""Benchmark workloads: seeded synthetic DAGs, the real workflow traces, and graph maths.

A :class:`Graph` is plain data (ids, dependency indices, durations) that every
runner turns into its own representation outside the timed region. The graph
maths here (layers, critical path, list scheduling) is independent of
trioforge, so the benchmark does not grade trioforge with its own ruler.
"""

from __future__ import annotations

import heapq
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SEED_FLAT = 1
SEED_LAYERED = 2
SEED_SLEEPY = 3
SEED_LAYERING = 4
SEED_SCALE = 5


@dataclass(frozen=True)
class Graph:
    """A DAG as plain data.

    Attributes:
        name: workload name.
        ids: task ids by index.
        deps: for each task, the indices of the tasks it depends on.
        durations: seconds each task sleeps, or None for no-op tasks.
        source: where the graph came from (a file, or the generator and seed).
    """

    name: str
    ids: list[str]
    deps: list[list[int]]
    durations: list[float] | None = None
    source: str = ""
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def edges(self) -> int:
        return sum(len(d) for d in self.deps)

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.ids]
        for node, preds in enumerate(self.deps):
            for p in preds:
                succ[p].append(node)
        return succ

    def topological_order(self) -> list[int]:
        """Kahn's algorithm, smallest index first among ready nodes (files are not sorted)."""
        cached = self._cache.get("topo")
        if cached is not None:
            return cached  # type: ignore[return-value]
        remaining = [len(d) for d in self.deps]
        succ = self.successors()
        ready = [n for n, c in enumerate(remaining) if c == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for s in succ[node]:
                remaining[s] -= 1
                if remaining[s] == 0:
                    heapq.heappush(ready, s)
        if len(order) != len(self.ids):
            raise ValueError(f"{self.name}: the graph has a cycle")
        self._cache["topo"] = order
        return order

    def layers(self) -> list[list[int]]:
        """Nodes grouped by longest distance (in edges) from a root."""
        cached = self._cache.get("layers")
        if cached is not None:
            return cached  # type: ignore[return-value]
        level = [0] * len(self.ids)
        for node in self.topological_order():
            preds = self.deps[node]
            if preds:
                level[node] = 1 + max(level[p] for p in preds)
        layers: list[list[int]] = [[] for _ in range(max(level) + 1)]
        for node, lv in enumerate(level):
            layers[lv].append(node)
        self._cache["layers"] = layers
        return layers

    def critical_path(self, durations: Sequence[float] | None = None) -> float:
        """Earliest finish of the last task with unlimited slots (forward sweep).

        ``durations`` replaces the graph's own (e.g. measured ones).
        """
        if durations is None:
            durations = self.durations
        assert durations is not None
        finish = [0.0] * len(self.ids)
        for node in self.topological_order():
            preds = self.deps[node]
            start = max(finish[p] for p in preds) if preds else 0.0
            finish[node] = start + durations[node]
        return max(finish)

    def total_work(self) -> float:
        assert self.durations is not None
        return sum(self.durations)

    def remaining_paths(self) -> list[float]:
        """Each task's duration plus the longest chain of durations below it."""
        assert self.durations is not None
        durations = self.durations
        succ = self.successors()
        remaining = list(durations)
        for node in reversed(self.topological_order()):
            if succ[node]:
                remaining[node] = durations[node] + max(remaining[s] for s in succ[node])
        return remaining

    def list_schedule(self, slots: int) -> float:
        """Makespan of offline critical-path list scheduling with ``slots`` slots.

        Simulated: whenever a slot is free, start the ready task with the
        longest remaining path (its duration plus the longest chain below
        it; ties to the lower index). All tasks finishing at the same instant
        are retired before slots are refilled.
        """
        assert self.durations is not None
        durations = self.durations
        priority = self.remaining_paths()
        succ = self.successors()
        remaining = [len(d) for d in self.deps]
        ready = [(-priority[n], n) for n, c in enumerate(remaining) if c == 0]
        heapq.heapify(ready)
        running: list[tuple[float, int]] = []
        now = 0.0
        done = 0
        while done < len(self.ids):
            while ready and len(running) < slots:
                _, node = heapq.heappop(ready)
                heapq.heappush(running, (now + durations[node], node))
            now, node = heapq.heappop(running)
            finished = [node]
            while running and running[0][0] == now:
                finished.append(heapq.heappop(running)[1])
            for node in finished:
                done += 1
                for s in succ[node]:
                    remaining[s] -= 1
                    if remaining[s] == 0:
                        heapq.heappush(ready, (-priority[s], s))
        return now


def _ids(prefix: str, n: int) -> list[str]:
    width = len(str(n - 1))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def flat(n: int = 10_000) -> Graph:
    return Graph("flat", _ids("f", n), [[] for _ in range(n)], source=f"{n} independent no-ops")


def chain(n: int = 10_000) -> Graph:
    deps = [[i - 1] if i else [] for i in range(n)]
    return Graph("chain", _ids("c", n), deps, source=f"{n} no-ops in a line")


def layered(
    layers: int = 100, width: int = 100, fan_in: int = 3, seed: int = SEED_LAYERED
) -> Graph:
    rng = random.Random(seed)
    n = layers * width
    # One int object per index, shared by every dependency list that names it, so
    # that the description stays small next to what the runners build from it.
    index = list(range(n))
    deps: list[list[int]] = []
    for layer in range(layers):
        for _ in range(width):
            if layer == 0:
                deps.append([])
            else:
                base = (layer - 1) * width
                deps.append(sorted(index[base + k] for k in rng.sample(range(width), fan_in)))
    return Graph(
        "layered",
        _ids("l", n),
        deps,
        source=f"{layers} layers x {width}, each task on {fan_in} random tasks of the layer "
        f"before (seed {seed})",
    )


def random_earlier_deps(n: int, max_deps: int, rng: random.Random) -> list[list[int]]:
    """Task i depends on 0..max_deps distinct random tasks among 0..i-1."""
    deps: list[list[int]] = []
    for i in range(n):
        k = rng.randint(0, min(max_deps, i))
        deps.append(sorted(rng.sample(range(i), k)) if k else [])
    return deps


def sleepy(n: int = 200, seed: int = SEED_SLEEPY) -> Graph:
    rng = random.Random(seed)
    deps = random_earlier_deps(n, 3, rng)
    durations = [rng.uniform(0.001, 0.050) for _ in range(n)]
    return Graph(
        "sleepy",
        _ids("s", n),
        deps,
        durations,
        source=f"{n} tasks, 0-3 random earlier deps, 1-50 ms sleeps (seed {seed})",
    )


def random_dag_ids(n: int, seed: int, max_deps: int = 3) -> tuple[list[str], list[list[str]]]:
    """Plain id lists for the layering and scale checks: 0..max_deps random earlier deps."""
    rng = random.Random(seed)
    ids = _ids("n", n)
    deps = random_earlier_deps(n, max_deps, rng)
    return ids, [[ids[d] for d in ds] for ds in deps]


def workflows_dir() -> Path | None:
    """``../shared/workflows`` relative to the repo root, else $TRIOFORGE_WORKFLOWS_DIR."""
    candidates = [REPO_ROOT.parent / "shared" / "workflows"]
    env = os.environ.get("TRIOFORGE_WORKFLOWS_DIR")
    if env:
        candidates.append(Path(env))
    for path in candidates:
        if path.is_dir() and any(path.glob("*.json")):
            return path
    return None


def load_workflow(path: Path) -> Graph:
    data = json.loads(path.read_text(encoding="utf-8"))
    tasks: Sequence[dict[str, object]] = data["tasks"]
    ids = [str(t["id"]) for t in tasks]
    index = {tid: i for i, tid in enumerate(ids)}
    deps = [sorted({index[str(d)] for d in t["deps"]}) for t in tasks]  # type: ignore[attr-defined]
    durations = [float(t["runtime_s"]) for t in tasks]  # type: ignore[arg-type]
    return Graph(str(data.get("name", path.stem)), ids, deps, durations, source=path.name)


def real_workflows() -> list[Graph]:
    folder = workflows_dir()
    if folder is None:
        return []
    return [load_workflow(p) for p in sorted(folder.glob("*.json"))]


def scaled(graph: Graph, target_cp: float) -> Graph:
    """The same graph with every duration scaled so the critical path is ``target_cp``."""
    factor = target_cp / graph.critical_path()
    assert graph.durations is not None
    return Graph(
        graph.name,
        graph.ids,
        graph.deps,
        [d * factor for d in graph.durations],
        source=f"{graph.source}, runtimes x {factor:.6g}",
    )
