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
  using it. The graph that compiled last (real edges, minus the edges that
  closed a cycle) answers that, with the executor's own :class:`Upstream`
  (direct dependencies first, then the ancestors, computed once per task and
  only when needed). When more than :data:`MAX_CYCLES` cycles leave no graph,
  that check is skipped: the file has plenty of problems already.

A ``needs`` entry or a template reached through an alias is shared by several
tasks; each of its problems is reported once (see :meth:`Checker.first`),
naming the first task, so a 64 KB file cannot produce millions of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._dag import Dag, compile_dag
from ._errors import CycleDetectedError
from ._runner import Upstream
from ._templates import Reference
from ._yaml_nodes import ScalarNode
from ._yaml_schema import Checker, shown

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
    # An aliased ``needs`` list is the same list object for every task using it:
    # split it into known and unknown entries once.
    split: dict[int, list[str]] = {}
    for task_id in ids:
        entries = needs.get(task_id, ())
        mine = split.get(id(entries))
        if mine is None:
            mine = split[id(entries)] = []
            for dep, node in entries:
                if dep in known:
                    mine.append(dep)
                elif check.first(node, "unknown need"):
                    check.add(
                        node,
                        f"task {task_id!r} needs {shown(dep)}, which is not a task in this file"
                        f"{check.hint(dep, ids)}",
                    )
        deps[task_id] = mine
    dag = _cycles(check, ids, deps, needs)
    for task_id, task_refs in refs.items():
        upstream = None if dag is None else Upstream(dag, dag.index[task_id])
        _check_refs(check, task_id, task_refs, known, ids, upstream)


def _cycles(
    check: Checker,
    ids: Sequence[str],
    deps: dict[str, list[str]],
    needs: Mapping[str, Sequence[tuple[str, ScalarNode]]],
) -> Dag | None:
    """Report cycles; the graph without the edges that closed them, if one compiles."""
    remaining = dict(deps)
    for attempt in range(MAX_CYCLES + 1):
        try:
            return compile_dag("workflow", ids, [remaining[tid] for tid in ids])
        except CycleDetectedError as exc:
            if attempt == MAX_CYCLES:
                return None
            # The first task on the cycle depends on the last one.
            cycle = exc.cycle
            first, last = cycle[0], cycle[-1]
            if last not in remaining[first]:  # pragma: no cover - the documented order
                cycle = list(reversed(cycle))
                first, last = cycle[0], cycle[-1]
            path = " -> ".join([first, *reversed(cycle[1:]), first])
            closing = next(node for dep, node in needs[first] if dep == last)
            check.add(
                closing,
                f"dependency cycle: {path} (each task needs the next one, so none can start)",
            )
            remaining[first] = [d for d in remaining[first] if d != last]
    return None  # pragma: no cover - the loop returns


def _check_refs(
    check: Checker,
    task_id: str,
    refs: Sequence[tuple[Reference, ScalarNode, bool]],
    known: set[str],
    ids: Sequence[str],
    upstream: Upstream | None,
) -> None:
    for ref, node, own_ok in refs:
        if ref.task not in known:
            if check.first(node, "template", ref.offset):
                check.add_in_scalar(
                    node,
                    ref.offset,
                    f"{ref.text} names task {ref.task!r}, which is not a task in this file"
                    f"{check.hint(ref.task, ids)}",
                )
        elif ref.task == task_id:
            if not own_ok and check.first(node, "template", ref.offset):
                check.add_in_scalar(
                    node,
                    ref.offset,
                    f"{ref.text}: task {task_id!r} cannot read its own outputs before it has "
                    "run (only its 'compensate' argv can)",
                )
        elif (
            upstream is not None
            and ref.task not in upstream
            and check.first(node, "template", ref.offset)
        ):
            check.add_in_scalar(
                node,
                ref.offset,
                f"{ref.text}: task {task_id!r} reads an output of {ref.task!r}, which is "
                f"not upstream of it; add {ref.task!r} to its 'needs'",
            )
