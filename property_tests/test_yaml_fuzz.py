"""A fuzzer for the YAML loader: mutations of the repository's own workflow files.

Each example starts from one of the example and fixture files, read as YAML
and changed in its structure (a value replaced by another type, a key added
or renamed, nesting, anchors and ``<<`` merges, huge numbers, unicode) and
then in its text (bytes inserted, deleted or replaced, lines duplicated,
dropped or re-indented). The loader must return a workflow or raise the
documented :class:`~trioforge.WorkflowFileError`, nothing else, and take a
bounded CPU time per kilobyte.

The ``ci`` profile runs a few hundred files, ``nightly`` tens of thousands
(set here from ``HYPOTHESIS_PROFILE``, as the shared profiles run fewer).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trioforge import Workflow, WorkflowFileError, load_workflow

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/fixtures/*.yaml")])
TEXTS = [path.read_bytes() for path in CORPUS]
EXAMPLES = {"dev": 40, "ci": 300, "nightly": 20_000}.get(
    os.environ.get("HYPOTHESIS_PROFILE", "dev"), 40
)
SECONDS_PER_KB = 0.25
"""CPU seconds a file may take per kilobyte (it takes milliseconds), past a fixed 2 s."""

KEYS = [
    "run", "cmd", "needs", "env", "timeout", "retries", "cwd", "compensate", "fallback",
    "estimate", "grace_period", "description", "tasks", "defaults", "max_parallel", "name",
    "keep_going", "x-shared", "<<", "depends_on", "", "é", "a" * 300,
]  # fmt: skip
HUGE = ["1e999", "-1", "0x" + "f" * 80, ".inf", ".nan", "1_000_000", "0o777", "1:30"]
TEXTS_INSIDE = [
    "${{ tasks.a.outputs.x }}", "${{", "}}", "\u2028", "\u202e", "\ufeff", "🙂", "a\tb",
    "[", "&a", "*a", "~", "yes", "on", "2001-01-01",
]  # fmt: skip
INSERTS = [
    b": ", b"- ", b"[", b"]", b"{", b"}", b",", b"? ", b"&a ", b"*a", b"<<: *a", b"!!str ",
    b"!!python/object:os.system ", b"!!binary ", b"!custom ", b"\t", b"\r", b"\r\n", b"\n  ",
    "\u2028".encode(), "\ufeff".encode(), b"\xff", b"\xc3", b"\x00", b"%YAML 1.1\n", b"---\n",
    b"...\n", b"|\n", b">-\n", b"'", b'"', b"#", b"${{ tasks.a.outputs.x }}",
    "é🙂".encode(), b"\\",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(HUGE + TEXTS_INSIDE),
    st.text(max_size=30),
    # Past the 4,300 digits Python converts, and long texts.
    st.builds(str.__mul__, st.sampled_from(["9", "0", "x", "é"]), st.integers(4000, 6000)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def structural(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one value replaced, one key added or removed, or one level nested.

    Shrinks toward the unchanged document.
    """
    path: list[Any] = []
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(
            st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node)))
        )
        path.append(key)
        node = node[key]
    change = draw(st.sampled_from(["replace", "add", "remove", "nest"]))
    if not path:
        return {"tasks": document} if change == "nest" else draw(values)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if change == "replace":
        parent[last] = draw(values)
    elif change == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from(KEYS))] = draw(values)
    elif change == "remove":
        del parent[last]
    else:
        parent[last] = [parent[last]] if draw(st.booleans()) else {"x": parent[last]}
    return document


def _anchor_and_merge(text: str, at: int, to: int) -> str:
    """Anchor the value of one ``key: value`` line and merge or alias it from another."""
    lines = text.split("\n")
    keyed = [
        index
        for index, line in enumerate(lines)
        if ": " in line and not line.lstrip().startswith("#")
    ]
    if len(keyed) < 2:
        return text
    source, target = keyed[at % len(keyed)], keyed[to % len(keyed)]
    key, _sep, value = lines[source].partition(": ")
    lines[source] = f"{key}: &fz {value}"
    indent = lines[target][: len(lines[target]) - len(lines[target].lstrip())]
    if at % 2:
        lines.insert(target + 1, f"{indent}<<: *fz")
    else:
        other_key = lines[target].partition(": ")[0]
        lines[target] = f"{other_key}: *fz"
    return "\n".join(lines)


@st.composite
def textual(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few byte or line edits; shrinks toward fewer edits."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        at = draw(st.integers(min_value=0, max_value=len(buffer)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "line", "indent", "merge"]))
        if edit == "insert":
            buffer[at:at] = draw(st.one_of(st.sampled_from(INSERTS), st.binary(max_size=8)))
        elif edit == "delete":
            del buffer[at : at + draw(st.integers(min_value=1, max_value=20))]
        elif edit == "replace" and at < len(buffer):
            buffer[at] = draw(st.integers(min_value=0, max_value=255))
        elif edit in ("line", "indent"):
            lines = bytes(buffer).split(b"\n")
            index = at % len(lines)
            if edit == "indent":
                lines[index] = (
                    b" " * draw(st.integers(min_value=0, max_value=9)) + lines[index].lstrip()
                )
            elif draw(st.booleans()):
                lines.insert(
                    index, lines[draw(st.integers(min_value=0, max_value=len(lines) - 1))]
                )
            else:
                del lines[index]
            buffer = bytearray(b"\n".join(lines))
        elif edit == "merge":
            text = bytes(buffer).decode("utf-8", errors="replace")
            to = draw(st.integers(min_value=0, max_value=10_000))
            buffer = bytearray(_anchor_and_merge(text, at, to).encode())
    return bytes(buffer)


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """One corpus file, changed in its structure, then in its text; shrinks toward the file."""
    data = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        try:
            document = yaml.safe_load(data)
        except yaml.YAMLError:
            break
        document = draw(structural(document))
        flow = draw(st.booleans())
        data = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True).encode()
    return draw(textual(data))


@given(mutated_files())
@settings(max_examples=EXAMPLES)
def test_a_mutated_workflow_file_loads_or_gets_a_workflow_file_error(data: bytes) -> None:
    """A mutated file is a Workflow or a WorkflowFileError, in bounded time per kilobyte."""
    started = time.process_time()
    error: WorkflowFileError | None = None
    try:
        workflow = load_workflow("fuzz/w.yaml", text=data)
    except WorkflowFileError as exc:
        error = exc
    elapsed = time.process_time() - started
    if error is None:
        event("loaded")
        assert isinstance(workflow, Workflow)
    else:
        event("WorkflowFileError")
        assert error.problems
        assert all(problem.line >= 1 and problem.column >= 1 for problem in error.problems)
    assert elapsed < 2 + SECONDS_PER_KB * len(data) / 1024, (elapsed, len(data))


def test_the_corpus_is_the_repositorys_workflow_files() -> None:
    """The fuzzer starts from every example and fixture file, all of which load or fail cleanly."""
    assert len(CORPUS) >= 10
    names = {path.name for path in CORPUS}
    assert {"ci.yaml", "release.yaml", "invalid.yaml"} <= names
