"""Workflow definition, validation, ordering and layering."""

from __future__ import annotations

import pytest

import trioforge as tf
from trioforge._core._dag import compile_dag


async def noop(ctx: tf.TaskContext) -> None:
    return None


def build(edges: dict[str, list[str]]) -> tf.Workflow:
    wf = tf.Workflow("t")
    for task_id, deps in edges.items():
        wf.add_task(tf.Task(task_id, noop, depends_on=deps))
    return wf


@pytest.mark.parametrize(
    ("edges", "layers"),
    [
        pytest.param({"a": [], "b": ["a"], "c": ["b"]}, [["a"], ["b"], ["c"]], id="linear"),
        pytest.param(
            {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]},
            [["a"], ["b", "c"], ["d"]],
            id="diamond",
        ),
        pytest.param(
            {"root": [], "z": ["root"], "y": ["root"], "x": ["root"]},
            [["root"], ["x", "y", "z"]],
            id="fan-out",
        ),
        pytest.param(
            {"c": [], "a": [], "b": [], "sink": ["a", "b", "c"]},
            [["a", "b", "c"], ["sink"]],
            id="fan-in",
        ),
        pytest.param(
            {"a": [], "b": ["a"], "x": [], "y": ["x"], "z": ["y"]},
            [["a", "x"], ["b", "y"], ["z"]],
            id="disconnected",
        ),
        pytest.param(
            # d's longest path from a root is a -> b -> c -> d, though it also depends on a.
            {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]},
            [["a"], ["b"], ["c"], ["d"]],
            id="longest-path",
        ),
    ],
)
def test_execution_layers(edges: dict[str, list[str]], layers: list[list[str]]) -> None:
    """Each task's layer is its longest distance from a root, and layers are sorted."""
    assert build(edges).execution_layers() == layers


def test_execution_layers_empty() -> None:
    """An empty workflow cannot be layered."""
    with pytest.raises(tf.EmptyWorkflowError, match="'t' has no tasks"):
        tf.Workflow("t").execution_layers()


def test_execution_layers_cycle() -> None:
    """A cycle is reported with only the tasks on it, as a path."""
    wf = build({"start": [], "a": ["start", "c"], "b": ["a"], "c": ["b"], "end": ["c"]})
    with pytest.raises(tf.CycleDetectedError) as info:
        wf.execution_layers()
    cycle = info.value.cycle
    assert sorted(cycle) == ["a", "b", "c"]
    # Each task on the path depends on the one before it, and the first on the last.
    for before, after in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert before in wf.dependencies_of(after)
    assert str(info.value) == "dependency cycle: " + " -> ".join([*cycle, cycle[0]])


def test_self_dependency_is_a_cycle() -> None:
    """A task that depends on itself is a one-task cycle."""
    wf = build({"a": ["a"]})
    with pytest.raises(tf.CycleDetectedError, match="a -> a") as info:
        wf.validate()
    assert info.value.cycle == ["a"]


def test_missing_dependency_names_task_and_id() -> None:
    """A dependency on an unknown id names both the task and the id, with a hint."""
    wf = build({"fetch": [], "build": ["fecth"]})
    with pytest.raises(tf.MissingDependencyError) as info:
        wf.validate()
    assert info.value.task_id == "build"
    assert info.value.dependency == "fecth"
    assert "did you mean 'fetch'" in str(info.value)


def test_duplicate_task_id() -> None:
    """Adding a second task with the same id raises and keeps the first."""
    wf = build({"a": []})
    first = wf["a"]
    with pytest.raises(tf.DuplicateTaskError, match="'a'"):
        wf.add_task(tf.Task("a", noop))
    assert wf["a"] is first
    assert len(wf) == 1


def test_dependencies_may_be_added_before_their_tasks() -> None:
    """A task may name a dependency that is added later."""
    wf = tf.Workflow()
    wf.add_task(tf.Task("b", noop, depends_on=["a"]))
    wf.add_task(tf.Task("a", noop))
    assert wf.execution_layers() == [["a"], ["b"]]


def test_add_dependency() -> None:
    """add_dependency adds an edge, and the cached layers follow the edit."""
    wf = build({"a": [], "b": []})
    assert wf.execution_layers() == [["a", "b"]]
    wf.add_dependency("b", "a")
    assert wf.execution_layers() == [["b"], ["a"]]
    assert wf.dependencies_of("a") == ["b"]


def test_add_dependency_unknown_task() -> None:
    """add_dependency refuses ids that are not in the workflow."""
    wf = build({"a": []})
    with pytest.raises(tf.UnknownTaskError, match="'nope'"):
        wf.add_dependency("nope", "a")
    with pytest.raises(tf.UnknownTaskError):
        wf.add_dependency("a", "nope")


def test_execution_order_is_topological_and_stable() -> None:
    """execution_order respects every edge and otherwise keeps insertion order."""
    wf = build({"c": [], "b": ["c"], "a": [], "d": ["a", "b"]})
    order = wf.execution_order()
    assert order == ["c", "b", "a", "d"]
    for task_id in order:
        for dep in wf.dependencies_of(task_id):
            assert order.index(dep) < order.index(task_id)


def test_len_contains_iter_getitem() -> None:
    """A workflow is sized, supports `in`, iterates ids and looks tasks up by id."""
    wf = build({"a": [], "b": ["a"]})
    assert len(wf) == 2
    assert "a" in wf
    assert "zz" not in wf
    assert list(wf) == ["a", "b"]
    assert wf["b"].depends_on == ("a",)
    with pytest.raises(tf.UnknownTaskError, match="did you mean 'b'"):
        wf["bb"]


def test_task_decorator_uses_function_name() -> None:
    """@wf.task turns an async function into a Task named after it."""
    wf = tf.Workflow()

    @wf.task()
    async def fetch(ctx: tf.TaskContext) -> int:
        return 1

    @wf.task(depends_on=["fetch"], timeout=5, id="compile-it")
    async def compile_(ctx: tf.TaskContext) -> int:
        return 2

    assert isinstance(fetch, tf.Task)
    assert fetch.id == "fetch"
    assert compile_.id == "compile-it"
    assert compile_.timeout == 5
    assert wf.execution_layers() == [["fetch"], ["compile-it"]]


def test_task_decorator_bare() -> None:
    """@wf.task also works without parentheses."""
    wf = tf.Workflow()

    @wf.task
    async def only(ctx: tf.TaskContext) -> None:
        return None

    assert "only" in wf
    assert only.id == "only"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"id": "", "fn": noop}, TypeError, "id must be a non-empty str"),
        ({"id": "a", "fn": 42}, TypeError, "fn must be an async function"),
        ({"id": "a", "fn": noop, "timeout": 0}, ValueError, "timeout must be a finite"),
        ({"id": "a", "fn": noop, "timeout": "5"}, TypeError, "timeout must be a number"),
        ({"id": "a", "fn": noop, "retries": -1}, ValueError, "retries must be an int >= 0"),
        ({"id": "a", "fn": noop, "estimate": -2.0}, ValueError, "estimate must be a finite"),
        ({"id": "a", "fn": noop, "depends_on": ["ok", 3]}, TypeError, "depends_on must hold"),
    ],
)
def test_task_validation(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    """Task rejects bad arguments with a message naming the field."""
    with pytest.raises(error, match=message):
        tf.Task(**kwargs)  # type: ignore[arg-type]


def test_task_depends_on_single_string() -> None:
    """A lone string in depends_on means that one id, not its characters."""
    assert tf.Task("b", noop, depends_on="abc").depends_on == ("abc",)


def test_add_task_rejects_non_tasks() -> None:
    """add_task names what it expected when given something else."""
    with pytest.raises(TypeError, match="needs a WorkflowTask"):
        tf.Workflow().add_task(object())  # type: ignore[arg-type]


def test_critical_path_uses_estimates() -> None:
    """critical_path follows the chain with the largest total estimate."""
    wf = tf.Workflow()
    wf.add_task(tf.Task("a", noop, estimate=1))
    wf.add_task(tf.Task("slow", noop, depends_on=["a"], estimate=10))
    wf.add_task(tf.Task("fast", noop, depends_on=["a"], estimate=2))
    wf.add_task(tf.Task("end", noop, depends_on=["slow", "fast"], estimate=0.5))
    assert wf.critical_path() == (["a", "slow", "end"], 11.5)


def test_critical_path_without_estimates_counts_tasks() -> None:
    """Without estimates each task counts as one unit."""
    wf = build({"a": [], "b": ["a"], "c": ["b"], "x": []})
    assert wf.critical_path() == (["a", "b", "c"], 3.0)


def test_layering_a_large_workflow_is_fast() -> None:
    """Layering 100,000 tasks takes well under the bound a Python O(V*E) loop would need."""
    import random
    import time

    rng = random.Random(1)
    wf = tf.Workflow()
    for i in range(100_000):
        deps = [f"t{rng.randrange(i)}" for _ in range(min(i, 3))]
        wf.add_task(tf.Task(f"t{i}", noop, depends_on=deps))
    start = time.perf_counter()
    layers = wf.execution_layers()
    elapsed = time.perf_counter() - start
    assert sum(len(layer) for layer in layers) == 100_000
    assert elapsed < 10.0


def test_many_tasks_sharing_a_long_dependency_list_compile_in_linear_time() -> None:
    """1,000 tasks that each need the same 1,000 tasks: about a second, not minutes.

    (Letting rustworkx drop duplicate edges scanned the source's edges on every
    insertion: cubic, about 25 s here.)
    """
    import time

    shared = [f"s{i}" for i in range(1000)]
    ids = shared + [f"t{i}" for i in range(1000)]
    deps: list[list[str]] = [[] for _ in shared] + [shared for _ in range(1000)]
    started = time.process_time()
    dag = compile_dag("wide", ids, [*deps[:-1], [*shared, "s0"]])
    assert time.process_time() - started < 8.0
    assert len(dag.layers) == 2
    # The last task lists "s0" twice: still one edge.
    assert dag.graph.num_edges() == 1000 * 1000
    assert sorted(dag.predecessors[len(ids) - 1]) == list(range(1000))


def test_compiling_holds_no_list_of_every_edge() -> None:
    """A large graph's edges reach rustworkx in chunks: little memory beyond the result."""
    import tracemalloc

    n = 30_000
    ids = [f"t{i}" for i in range(n)]
    width = 300  # 100 layers, each task on 3 tasks of the layer before
    deps = [
        [ids[(i // width - 1) * width + (i + k) % width] for k in range(3)] if i >= width else []
        for i in range(n)
    ]
    tracemalloc.start()
    try:
        dag = compile_dag("wide", ids, deps)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(dag.layers) == n // width
    # ~90,000 edges as one list of tuples took ~9 MB above what the Dag keeps.
    assert peak - current < 2_000_000
