"""Whatever it is fed, the YAML loader returns a Workflow or raises WorkflowFileError."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from trioforge import Workflow, WorkflowFileError, load_workflow


def check(text: str | bytes) -> None:
    """Load ``text``; anything but a Workflow or a WorkflowFileError fails the test."""
    error: WorkflowFileError | None = None
    try:
        workflow = load_workflow("prop/w.yaml", text=text)
    except WorkflowFileError as exc:
        error = exc
    if error is None:
        assert isinstance(workflow, Workflow)
        assert len(workflow) >= 1
        return
    assert error.problems
    for problem in error.problems:
        assert problem.line >= 1
        assert problem.column >= 1
        assert problem.message


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["10m", "1h30m", "90s", "${{ tasks.a.outputs.x }}", "a", "b", "<<"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=25,
)

_KEYS = ["run", "cmd", "needs", "timeout", "retries", "cwd", "env", "compensate", "fallback"]
_TOP = ["name", "max_parallel", "timeout", "keep_going", "env", "defaults", "tasks", "x-any"]


@st.composite
def workflow_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """Documents with the right keys and arbitrary values: they reach the deep checks.

    Shrinks toward fewer tasks, fewer keys, and simpler values.
    """
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "bad id"]), max_size=4, unique=True))
    tasks: dict[str, Any] = {}
    for task_id in ids:
        keys = draw(st.lists(st.sampled_from(_KEYS), max_size=5, unique=True))
        body: dict[str, Any] = {}
        for key in keys:
            body[key] = draw(
                st.one_of(
                    documents,
                    st.lists(st.sampled_from([*ids, "echo", "${{ tasks.a.outputs.k }}"])),
                )
            )
        tasks[task_id] = body
    top: dict[str, Any] = {"tasks": tasks}
    for key in draw(st.lists(st.sampled_from(_TOP), max_size=3, unique=True)):
        top[key] = draw(documents)
    return top


@given(st.text(max_size=400))
@settings(deadline=None)
def test_arbitrary_text(text: str) -> None:
    """Any text at all: a Workflow or a WorkflowFileError, nothing else."""
    check(text)


@given(st.binary(max_size=400))
@settings(deadline=None)
def test_arbitrary_bytes(data: bytes) -> None:
    """Any bytes at all: a Workflow or a WorkflowFileError, nothing else."""
    check(data)


@given(documents)
@settings(deadline=None)
def test_arbitrary_yaml_documents(document: Any) -> None:
    """Any YAML document: a Workflow or a WorkflowFileError, nothing else."""
    check(yaml.safe_dump(document, allow_unicode=True))


@given(workflow_shaped(), st.booleans())
@settings(deadline=None)
def test_workflow_shaped_documents(document: dict[str, Any], flow: bool) -> None:
    """Right keys, arbitrary values, block or flow style: a Workflow or a WorkflowFileError."""
    check(yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True))
