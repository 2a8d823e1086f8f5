"""Whatever it is fed, the YAML loader returns a Workflow or raises WorkflowFileError."""

from __future__ import annotations

import json
import string
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trioforge import Workflow, WorkflowFileError, load_workflow
from trioforge._workflow_file._loader import MAX_PROBLEMS


def check(text: str | bytes) -> WorkflowFileError | None:
    """Load ``text``; anything but a Workflow or a WorkflowFileError fails the test."""
    error: WorkflowFileError | None = None
    try:
        workflow = load_workflow("prop/w.yaml", text=text)
    except WorkflowFileError as exc:
        error = exc
    if error is None:
        assert isinstance(workflow, Workflow)
        assert len(workflow) >= 1
        return None
    assert error.problems
    assert len(error.problems) <= MAX_PROBLEMS
    for problem in error.problems:
        assert problem.line >= 1
        assert problem.column >= 1
        assert problem.message
    return error


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


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    """Number-like text: up to 6,000 digits, with leading zeros, ``_``, a sign or a unit.

    Python refuses to convert more than 4,300 digits to an int. Shrinks toward
    a single digit with nothing around it.
    """
    lengths = st.one_of(st.integers(1, 30), st.integers(4200, 6000))  # short, or past 4,300
    text = draw(st.sampled_from("0159")) * draw(lengths)
    if draw(st.booleans()):
        text = "0" * draw(lengths) + text
    if draw(st.booleans()):
        text = "_".join(text[i : i + 3] for i in range(0, len(text), 3))
    prefix = draw(st.sampled_from(["", "+", "-", " "]))
    suffix = draw(st.sampled_from(["", "", "", "s", "ms", "m", "h", "d", ".5", "e5", "1h"]))
    return prefix + text + suffix


_NUMBER_FIELDS = [
    "max_parallel: {}\ntasks: {{a: {{run: x}}}}",
    "timeout: {}\ntasks: {{a: {{run: x}}}}",
    "compensation_timeout: {}\ntasks: {{a: {{run: x}}}}",
    "defaults: {{retries: {}}}\ntasks: {{a: {{run: x}}}}",
    "defaults: {{grace_period: {}}}\ntasks: {{a: {{run: x}}}}",
    "tasks: {{a: {{run: x, retries: {}}}}}",
    "tasks: {{a: {{run: x, estimate: {}}}}}",
    "tasks: {{a: {{run: x, fallback: y, retries: {}}}}}",
]


@given(st.sampled_from(_NUMBER_FIELDS), number_texts())
@example(_NUMBER_FIELDS[0], "9" * 5000)  # int() refuses more than 4300 digits
@example(_NUMBER_FIELDS[5], "0" * 4300 + "1")
@example(_NUMBER_FIELDS[1], "1" + "0" * 400)  # float() gives inf
@settings(deadline=None)
def test_huge_numbers_in_numeric_settings(template: str, number: str) -> None:
    """Any number in any numeric setting: a value or a short problem, never a crash."""
    error = check(template.format(number))
    for problem in error.problems if error is not None else ():
        assert len(problem.message) < 300, problem


_NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=6)
_VALUES = st.one_of(
    st.sampled_from(["x", "1", "90s", "nope", "", "${{ tasks.t0.outputs.k }}", "${{ x }}"]),
    number_texts(),
)
_ROLES = ["body", "merge", "env", "needs", "cmd", "run", "timeout"]


@st.composite
def shared_alias_files(draw: st.DrawFn) -> str:
    """A file where one anchored value, good or bad, is used by up to 80 tasks.

    The anchored value is a task body, a ``<<`` source, an env mapping, a
    ``needs`` list, an argv list or a scalar, with up to 40 entries (unknown
    keys, bad names, templates, huge numbers). Shrinks toward fewer uses and
    fewer, simpler entries.
    """
    role = draw(st.sampled_from(_ROLES))
    size = draw(st.integers(min_value=1, max_value=40))
    uses = draw(st.integers(min_value=1, max_value=80))
    keys = draw(st.lists(st.one_of(st.sampled_from(_KEYS), _NAMES), min_size=size, max_size=size))
    values = draw(st.lists(_VALUES, min_size=size, max_size=size))
    pairs = ", ".join(
        f"{json.dumps(k)}: {json.dumps(v)}" for k, v in zip(keys, values, strict=True)
    )
    items = ", ".join(
        json.dumps(v) for v in [draw(st.sampled_from(["sh", "bash", "python"])), "-c", *values]
    )
    anchored = {
        "body": f"{{{pairs}}}",
        "merge": f"{{{pairs}}}",
        "env": f"{{{pairs}}}",
        "needs": f"[{', '.join(json.dumps(k) for k in keys)}]",
        "cmd": f"[{items}]",
        "run": json.dumps(values[0]),
        "timeout": json.dumps(values[0]),
    }[role]
    use = {
        "body": "*s",
        "merge": "{<<: *s, run: x}",
        "env": "{run: x, env: *s}",
        "needs": "{run: x, needs: *s}",
        "cmd": "{cmd: *s}",
        "run": "{run: *s}",
        "timeout": "{run: x, timeout: *s}",
    }[role]
    lines = [f"x-shared: &s {anchored}", "tasks:"]
    lines += [f"  t{i}: {use}" for i in range(uses)]
    return "\n".join(lines) + "\n"


@given(shared_alias_files())
@settings(deadline=None)
def test_problems_grow_with_the_text_not_with_the_aliases(text: str) -> None:
    """However often a value is aliased, its problems are reported once: fewer than characters."""
    error = check(text)
    if error is not None:
        assert len(error.problems) + error.omitted < len(text)


_PROGRAMS = st.sampled_from(
    ["sh", "bash", "python3", "node", "perl", "ruby", "env", "sudo", "timeout", "pwsh", "ssh", "x"]
)
_ARGV_WORDS = st.sampled_from(
    ["-c", "-lc", "-e", "-m", "--eval", "-S", "-u", "-s", "-o", "--", "-", "5", "A=1", "sh", "x"]
)
_TEMPLATES = st.sampled_from(["${{ tasks.a.outputs.k }}", "${{ x }}"])


@given(_PROGRAMS, st.lists(st.one_of(_ARGV_WORDS, _TEMPLATES, st.text(max_size=6)), max_size=8))
@example("python3", ["-c"])  # an option without its argument once named an item past the end
@settings(deadline=None)
def test_argv_of_shells_and_interpreters(program: str, words: list[str]) -> None:
    """Any argv of a shell, an interpreter or a wrapper: a Workflow or a WorkflowFileError."""
    items = ", ".join(json.dumps(word) for word in [program, *words])
    check(f"tasks:\n  a: {{run: x}}\n  b: {{needs: [a], cmd: [{items}]}}\n")
