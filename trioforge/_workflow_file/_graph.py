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
  closed a cycle) answers that (see :class:`_Upstream`: direct dependencies
  first, then one walk of the graph serves many answers). When more than
  :data:`MAX_CYCLES` cycles leave no graph, that check is skipped: the file
  has plenty of problems already.

A ``needs`` entry or a template reached through an alias is shared by several
tasks; each of its problems is reported once (see :meth:`Checker.first`),
naming the first task, so a 64 KB file cannot produce millions of them. The
templates come in groups, one object for all the tasks sharing it (an aliased
env of 1,500 templated values, used by 1,500 tasks); a group is sorted once by
the task its templates name, so each task asks one question per task named,
not one per template, and a question already answered with a problem is not
asked again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import rustworkx as rx

from .._core import CycleDetectedError, Dag, compile_dag
from .._shell import Reference
from ._nodes import ScalarNode
from ._schema import Checker, shown
from ._tasks import Ref, RefGroup, UsedGroup

__all__ = ["MAX_CYCLES", "check_graph"]

MAX_CYCLES = 20
_BELOW_BUDGET = 2_000_000
"""Nodes that the descendant sets kept by :class:`_Upstream` may hold in all."""


def check_graph(
    check: Checker,
    ids: Sequence[str],
    needs: Mapping[str, Sequence[tuple[str, ScalarNode]]],
    refs: Mapping[str, Sequence[UsedGroup]],
) -> None:
    """Record every graph problem of the tasks ``ids``.

    Args:
        check: where problems go.
        ids: the task ids, in file order.
        needs: each task's ``needs`` entries with their nodes.
        refs: each task's templates, in groups (one object for every task
            sharing it) of the reference, its scalar, and whether the task may
            name itself (a ``compensate`` argv may); with each group, the ids
            of the scalars whose templates the task does not use.
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
    _check_refs(check, ids, refs, None if dag is None else _Upstream(dag))


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
    ids: Sequence[str],
    refs: Mapping[str, Sequence[UsedGroup]],
    upstream: _Upstream | None,
) -> None:
    """Check that each template names a task, and one the task using it may read."""
    known = set(ids)
    # Each group by the task its templates name (and whether they may name their own).
    indexed: dict[int, tuple[RefGroup, dict[tuple[str, bool], list[Ref]]]] = {}
    reported: set[tuple[int, frozenset[int], str, bool]] = set()
    for task_id, groups in refs.items():
        for group, unused in groups:
            found = indexed.get(id(group))
            if found is None:
                by_name: dict[tuple[str, bool], list[Ref]] = {}
                for entry in group:
                    by_name.setdefault((entry[0].task, entry[2]), []).append(entry)
                found = indexed[id(group)] = (group, by_name)
            for (source, own_ok), named in found[1].items():
                if source in known and (
                    own_ok if source == task_id else upstream is None or upstream(source, task_id)
                ):
                    continue
                if unused and all(id(node) in unused for _ref, node, _own_ok in named):
                    continue
                # Each template is reported once (see Checker.first), so a group's
                # templates naming one task need reporting only once.
                if (id(group), unused, source, own_ok) in reported:
                    continue
                reported.add((id(group), unused, source, own_ok))
                for ref, node, _own_ok in named:
                    if id(node) not in unused and check.first(node, "template", ref.offset):
                        check.add_in_scalar(
                            node, ref.offset, _message(check, ref, task_id, known, ids)
                        )


def _message(
    check: Checker, ref: Reference, task_id: str, known: set[str], ids: Sequence[str]
) -> str:
    if ref.task not in known:
        return (
            f"{ref.text} names task {ref.task!r}, which is not a task in this file"
            f"{check.hint(ref.task, ids)}"
        )
    if ref.task == task_id:
        return (
            f"{ref.text}: task {task_id!r} cannot read its own outputs before it has "
            "run (only its 'compensate' argv can)"
        )
    return (
        f"{ref.text}: task {task_id!r} reads an output of {ref.task!r}, which is "
        f"not upstream of it; add {ref.task!r} to its 'needs'"
    )


class _Upstream:
    """Answers "is task S upstream of task T?" for the templates of every task.

    The executor's :class:`Upstream` walks T's ancestors (once per T) when S
    is not a direct dependency; asked for every task, that is one walk per
    task: 8,000 tasks in a chain, each reading an output of the first, take
    32 million steps. Here a task named a second time gets its descendants
    walked once, so one producer read by many tasks costs one walk, and the
    ancestors of the task being checked are kept while it is, so one task
    reading many producers costs one walk too. Descendant sets are kept up to
    :data:`_BELOW_BUDGET` nodes in all; past that, tasks fall back to walking
    their own ancestors, the executor's way, in memory bounded by the graph.
    """

    def __init__(self, dag: Dag) -> None:
        self._dag = dag
        self._asked: set[int] = set()
        self._below: dict[int, set[int]] = {}
        self._budget = _BELOW_BUDGET
        self._task = -1
        self._direct: set[int] = set()
        self._above: set[int] | None = None

    def __call__(self, source: str, task_id: str) -> bool:
        dag = self._dag
        source_index, task = dag.index[source], dag.index[task_id]
        if task != self._task:
            self._task, self._direct, self._above = task, set(dag.predecessors[task]), None
        if source_index in self._direct:
            return True
        below = self._below.get(source_index)
        if below is not None:
            return task in below
        if self._above is None and source_index in self._asked and self._budget > 0:
            below = self._below[source_index] = set(rx.descendants(dag.graph, source_index))
            self._budget -= len(below)
            return task in below
        self._asked.add(source_index)
        if self._above is None:
            self._above = dag.ancestors(task)
        return source_index in self._above
