"""FaultPlan validation and the faults() strategy: bounds, draws and shrinking."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings

import trioforge as tf
from trioforge.testing import FaultPlan, faults

NO_DB = settings(database=None, max_examples=2000, deadline=None)
NO_SHRINK = settings(NO_DB, phases=[Phase.generate])


async def _noop(ctx: tf.TaskContext) -> None:
    return None


def chain(*ids: str) -> tf.Workflow:
    """A workflow whose tasks run one after the other, in the order given."""
    wf = tf.Workflow("chain")
    for before, task_id in zip((None, *ids), ids, strict=False):
        wf.add_task(tf.Task(task_id, _noop, depends_on=() if before is None else (before,)))
    return wf


def test_empty_plan_has_no_faults() -> None:
    """The default plan names no task and no cancel."""
    plan = FaultPlan()
    assert frozenset() == plan.faulty
    assert plan.cancel_at is None
    assert plan.fault_of("a") is None


def test_plan_converts_iterables_and_answers_fault_of() -> None:
    """Any iterable of ids becomes a frozenset; fault_of names each task's fault."""
    plan = FaultPlan(fail_before=["a"], fail_after=("b",), hang={"c"}, cancel_at=2)
    assert frozenset({"a"}) == plan.fail_before
    assert frozenset({"a", "b", "c"}) == plan.faulty
    assert [plan.fault_of(t) for t in ("a", "b", "c", "d")] == [
        "fail_before",
        "fail_after",
        "hang",
        None,
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [("fail_before", "fail_after"), ("fail_before", "hang"), ("fail_after", "hang")],
)
def test_a_task_takes_at_most_one_fault(first: str, second: str) -> None:
    """A task id in two sets is refused, naming both fields and the id."""
    kwargs: dict[str, Any] = {first: {"pay"}, second: {"pay", "ship"}}
    with pytest.raises(ValueError, match=r"^task 'pay' is in both") as info:
        FaultPlan(**kwargs)
    assert f"FaultPlan.{first}" in str(info.value)
    assert f"FaultPlan.{second}" in str(info.value)


@pytest.mark.parametrize("field", ["fail_before", "fail_after", "hang"])
def test_a_lone_string_is_refused(field: str) -> None:
    """FaultPlan(hang="pay") would mean {'p', 'a', 'y'}: it is a TypeError naming the str."""
    with pytest.raises(TypeError, match="got the str 'pay'"):
        FaultPlan(**{field: "pay"})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", 3, None])
def test_ids_must_be_non_empty_strings(bad: object) -> None:
    """An id that is not a non-empty str is refused, naming the field and the value."""
    with pytest.raises(
        TypeError, match=rf"^FaultPlan.hang must hold non-empty str task ids, got {bad!r}$"
    ):
        FaultPlan(hang={bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.5, math.inf, math.nan])
def test_cancel_at_must_be_finite_and_not_negative(bad: float) -> None:
    """cancel_at out of range is a ValueError naming the field and the value."""
    with pytest.raises(
        ValueError, match=r"^FaultPlan.cancel_at must be a finite number >= 0, got "
    ):
        FaultPlan(cancel_at=bad)


@pytest.mark.parametrize("bad", [True, "1", [1]])
def test_cancel_at_must_be_a_number(bad: object) -> None:
    """cancel_at of the wrong type is a TypeError naming the field and the value."""
    expected = f"FaultPlan.cancel_at must be a number of seconds or None, got {bad!r}"
    with pytest.raises(TypeError) as info:
        FaultPlan(cancel_at=bad)  # type: ignore[arg-type]
    assert expected == str(info.value)


def test_plans_are_frozen_values() -> None:
    """Plans compare and hash by value and cannot be changed."""
    assert FaultPlan(hang={"a"}) == FaultPlan(hang=frozenset({"a"}))
    assert hash(FaultPlan(hang={"a"})) == hash(FaultPlan(hang={"a"}))
    with pytest.raises(AttributeError):
        FaultPlan().cancel_at = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_faults": -1}, ValueError, "max_faults must be an int >= 0, got -1"),
        ({"max_faults": 1.5}, ValueError, "max_faults must be an int >= 0, got 1.5"),
        ({"hangs": 1}, TypeError, "hangs must be a bool, got 1"),
        ({"cancel": None}, TypeError, "cancel must be a bool, got None"),
        ({"max_cancel_at": -1.0}, ValueError, "max_cancel_at must be a finite number >= 0"),
        ({"max_cancel_at": math.inf}, ValueError, "max_cancel_at must be a finite number >= 0"),
    ],
)
def test_faults_checks_its_bounds_up_front(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A bad bound is refused when the strategy is made, not when it is drawn from."""
    with pytest.raises(error, match=match):
        faults(chain("a"), **kwargs)


def test_faults_needs_a_workflow() -> None:
    """faults() of something else than a Workflow is a TypeError."""
    with pytest.raises(TypeError, match=r"workflow must be a trioforge\.Workflow"):
        faults(["a", "b"])  # type: ignore[arg-type]


WF = chain("a", "b", "c", "d", "e")


@given(plan=faults(WF, max_faults=2, max_cancel_at=5.0))
def test_drawn_plans_stay_within_bounds(plan: FaultPlan) -> None:
    """Drawn plans name only the workflow's tasks, at most max_faults, cancel within bound."""
    assert plan.faulty <= set(WF)
    assert len(plan.faulty) <= 2
    assert plan.cancel_at is None or 0.0 <= plan.cancel_at <= 5.0


@given(plan=faults(WF, hangs=False, cancel=False))
def test_drawn_plans_respect_hangs_and_cancel_flags(plan: FaultPlan) -> None:
    """hangs=False and cancel=False mean no hang and no cancel_at are ever drawn."""
    assert frozenset() == plan.hang
    assert plan.cancel_at is None


@given(plan=faults(WF, max_faults=0))
def test_max_faults_zero_draws_only_cancels(plan: FaultPlan) -> None:
    """With max_faults=0 no task gets a fault (cancel_at does not count toward the bound)."""
    assert frozenset() == plan.faulty


def test_every_kind_and_a_cancel_can_be_drawn() -> None:
    """Each fault kind, several faults at once and a cancel are all reachable."""
    for kind in ("fail_before", "fail_after", "hang"):

        def has_kind(plan: FaultPlan, kind: str = kind) -> bool:
            return bool(getattr(plan, kind))

        find(faults(WF), has_kind, settings=NO_SHRINK)
    find(faults(WF), lambda p: len(p.faulty) == 3, settings=NO_SHRINK)
    find(faults(WF), lambda p: p.cancel_at is not None, settings=NO_SHRINK)


def test_shrinks_to_no_fault_and_no_cancel() -> None:
    """The simplest plan of all is the empty plan."""
    assert FaultPlan() == find(faults(WF), lambda p: True, settings=NO_DB)


def test_shrinks_toward_fewer_faults() -> None:
    """Asked for a plan that touches 'c' or 'e', hypothesis returns one fault, the simplest."""
    found = find(faults(WF), lambda p: bool(p.faulty & {"c", "e"}), settings=NO_DB)
    assert FaultPlan(fail_before={"c"}) == found


def test_shrinks_toward_the_simplest_kind() -> None:
    """Asked for two tasks that do not fail before their body, it returns two fail_after faults."""
    found = find(faults(WF), lambda p: len(p.fail_after | p.hang) >= 2, settings=NO_DB)
    assert FaultPlan(fail_after={"a", "b"}) == found


def test_shrinks_toward_no_cancel_then_an_early_one() -> None:
    """A cancel is kept only when needed, and then shrinks to time 0."""
    found = find(faults(WF), lambda p: p.cancel_at is not None, settings=NO_DB)
    assert FaultPlan(cancel_at=0.0) == found


def test_a_workflow_without_tasks_draws_only_cancels() -> None:
    """An empty workflow gives plans without faults."""
    found = find(faults(tf.Workflow("empty")), lambda p: p.cancel_at is not None, settings=NO_DB)
    assert FaultPlan(cancel_at=0.0) == found
