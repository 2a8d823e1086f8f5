"""The graph checks of a workflow file: unknown ``needs``, cycles, and templates' upstream tasks.

They run on the tasks that passed the schema checks and record problems in
the same :class:`Checker`, so a file with a typo in one task and a cycle
elsewhere reports both.

* An unknown ``needs`` entry is reported with a "did you mean" and left out
  of the graph, so the cycle search sees only real edges.
* A cycle comes from the library's own :func:`compile_dag` as a
  :class:`CycleDetectedError` with ``.cycle``; we map it back to the ``needs``
  entry that closes it, drop that edge and compile again, so independent
  cycles are all reported (at most :data:`MAX_CYCLES`; each retry is O(V+E)).
* Each ``${{ tasks.X.outputs.K }}`` must name a task upstream of the one
  using it: a depth-first search up ``needs`` from the user, lazily, stopping
  as soon as the named task is found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._dag import compile_dag
from ._errors import CycleDetectedError
from ._templates import Reference
from ._yaml_nodes import ScalarNode
from ._yaml_schema import Checker, suggestion

__all__ = ["MAX_CYCLES", "check_graph"]

MAX_CYCLES = 20


def check_graph(
    check: Checker,
    ids: Sequence[str],
    needs: Mapping[str, Sequence[tuple[str, ScalarNode]]],
    refs: Mapping[str, Sequence[tuple[Reference, ScalarNode, bool]]],
) -> None:
    """Record every graph problem of the tasks ``ids``.

    Args:
        check: where problems go.
        ids: the task ids, in file order.
        needs: each task's ``needs`` entries with their nodes.
        refs: each task's templates: the reference, its scalar, and whether
            the task may name itself (a ``compensate`` argv may).
    """
    known = set(ids)
    deps: dict[str, list[str]] = {}
    needs_nodes: dict[tuple[str, str], ScalarNode] = {}
    for task_id in ids:
        mine: list[str] = []
        for dep, node in needs.get(task_id, ()):
            if dep not in known:
                check.add(
                    node,
                    f"task {task_id!r} needs {dep!r}, which is not a task in this file"
                    f"{suggestion(dep, ids)}",
                )
                continue
            mine.append(dep)
            needs_nodes.setdefault((task_id, dep), node)
        deps[task_id] = mine
    _cycles(check, ids, deps, needs_nodes)
    for task_id, task_refs in refs.items():
        _check_refs(check, task_id, task_refs, known, ids, deps)


def _cycles(
    check: Checker,
    ids: Sequence[str],
    deps: dict[str, list[str]],
    needs_nodes: dict[tuple[str, str], ScalarNode],
) -> None:
    remaining = {tid: list(d) for tid, d in deps.items()}
    for _ in range(MAX_CYCLES):
        try:
            compile_dag("workflow", ids, [remaining[tid] for tid in ids])
        except CycleDetectedError as exc:
            # The first task on the cycle depends on the last one.
            cycle = exc.cycle
            first, last = cycle[0], cycle[-1]
            if (first, last) not in needs_nodes:  # pragma: no cover - the documented order
                cycle = list(reversed(cycle))
                first, last = cycle[0], cycle[-1]
            path = " -> ".join([first, *reversed(cycle[1:]), first])
            check.add(
                needs_nodes[(first, last)],
                f"dependency cycle: {path} (each task needs the next one, so none can start)",
            )
            remaining[first] = [d for d in remaining[first] if d != last]
        else:
            return


def _check_refs(
    check: Checker,
    task_id: str,
    refs: Sequence[tuple[Reference, ScalarNode, bool]],
    known: set[str],
    ids: Sequence[str],
    deps: dict[str, list[str]],
) -> None:
    upstream = _Upstream(task_id, deps)
    for ref, node, own_ok in refs:
        if ref.task not in known:
            check.add_in_scalar(
                node,
                ref.offset,
                f"{ref.text} names task {ref.task!r}, which is not a task in this file"
                f"{suggestion(ref.task, ids)}",
            )
        elif ref.task == task_id and not own_ok:
            check.add_in_scalar(
                node,
                ref.offset,
                f"{ref.text}: task {task_id!r} cannot read its own outputs before it has run "
                "(only its 'compensate' argv can)",
            )
        elif ref.task != task_id and ref.task not in upstream:
            check.add_in_scalar(
                node,
                ref.offset,
                f"{ref.text}: task {task_id!r} reads an output of {ref.task!r}, which is "
                f"not upstream of it; add {ref.task!r} to its 'needs'",
            )


class _Upstream:
    """``x in upstream``: is ``x`` reachable from the task through ``needs``? (searched lazily)."""

    def __init__(self, task_id: str, deps: dict[str, list[str]]) -> None:
        self._deps = deps
        self._seen: set[str] = set()
        self._frontier: list[str] = list(deps.get(task_id, ()))

    def __contains__(self, task_id: object) -> bool:
        seen = self._seen
        frontier = self._frontier
        while task_id not in seen and frontier:
            node = frontier.pop()
            if node not in seen:
                seen.add(node)
                frontier.extend(self._deps.get(node, ()))
        return task_id in seen
