"""Any workflow file validates in bounded time and memory: hints, merges, aliases.

The pathological files are generated in ``tmp_path`` and validated by
``python -m trioforge validate`` in a subprocess whose address space is
limited with ``RLIMIT_AS`` (set in ``preexec_fn``, so this process is not
limited); the bounds are generous, the defects they catch took minutes or
gigabytes.
"""

from __future__ import annotations

import difflib
import os
import random
import resource
import string
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trioforge
from trioforge._workflow_file._hints import HintBudget, suggestion
from trioforge._workflow_file._merges import Merges, is_merge_key
from trioforge._workflow_file._nodes import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    compose,
)

MEMORY = 512 * 1024 * 1024
"""Address space of the validating process: a few times what a 1 MB file needs."""

SECONDS = 20.0
"""Wall-clock bound of one validation (they take 1-3 s; the defects took minutes)."""


@attrs.frozen
class Validated:
    """What ``trioforge validate`` did: exit code, output, wall-clock seconds."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def validate(path: Path) -> Validated:
    """Run ``python -m trioforge validate PATH`` under the memory limit and time it."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    package_root = str(Path(trioforge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "trioforge", "validate", path.name],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=3 * SECONDS,
        check=False,
        preexec_fn=_limit_memory,
    )
    seconds = time.monotonic() - started
    return Validated(result.returncode, result.stdout, result.stderr, seconds)


def assert_within_budget(result: Validated) -> None:
    """Exit 0 or 2, no traceback or internal error, and within :data:`SECONDS`."""
    assert result.returncode in (0, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.seconds < SECONDS, result.seconds


def random_id(rng: random.Random, size: int = 64) -> str:
    """``size`` random lowercase letters."""
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(size))


def test_needs_with_hints_among_many_long_ids_validate_in_seconds(tmp_path: Path) -> None:
    """1,000 tasks with 64-letter ids each needing an unknown id (150 KB): seconds, not minutes."""
    rng = random.Random(3)
    lines = ["tasks:"]
    lines += [f"  {random_id(rng)}: {{run: x, needs: [{random_id(rng)}]}}" for _ in range(1000)]
    path = tmp_path / "needs.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = validate(path)
    assert_within_budget(result)
    assert result.returncode == 2
    assert "which is not a task in this file" in result.stderr


def test_unknown_keys_near_many_ids_validate_in_seconds(tmp_path: Path) -> None:
    """Unknown needs one or two edits from 1,500 near-identical ids: the hints stay cheap."""
    rng = random.Random(4)
    base = random_id(rng, 60)
    ids = sorted({base[:i] + rng.choice("xyz") + base[i + 1 :] for i in range(60)})
    ids += [f"{base}{n:04d}" for n in range(1500 - len(ids))]
    lines = ["tasks:"]
    for index, task in enumerate(ids):
        wrong = f"{base}{(index * 7919) % 10_000:04d}"[::-1]
        lines.append(f"  {task}: {{run: x, needs: [{wrong}, {task[:-1]}q]}}")
    path = tmp_path / "near.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 150_000
    assert_within_budget(validate(path))


def test_an_alias_bomb_validates_in_seconds(tmp_path: Path) -> None:
    """Ten levels of ten aliases each (10**10 strings if expanded) in cmd, env and needs."""
    lines = ["x-l0: &l0 [a, b, c, d, e, f, g, h, i, j]"]
    lines += [f"x-l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)]
    lines += ["x-e: &e {A: '1', B: *l9}", "tasks:"]
    lines += [f"  t{i}: {{cmd: *l9, env: *e, needs: *l9}}" for i in range(2000)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = validate(path)
    assert_within_budget(result)
    assert result.returncode == 2


def test_the_hint_of_a_typo_is_still_found() -> None:
    """The bounded hint finds what the full table found: typos, swaps, and difflib's matches."""
    ids = ["build", "tests", "lint", "package", "compensate", "release-notes"]
    assert suggestion("tset", ids) == " (did you mean 'tests'?)"
    assert suggestion("buidl", ids) == " (did you mean 'build'?)"
    assert suggestion("compensation", ids) == " (did you mean 'compensate'?)"
    assert suggestion("depends_on", ["needs", "run"]) == " (did you mean 'needs'?)"
    assert suggestion("zzzz", ids) == ""


def test_a_spent_budget_gives_no_hint_but_synonyms() -> None:
    """Once a file's hint budget is spent, hints stop, except a synonym's."""
    budget = HintBudget(10)
    ids = [f"task{i}" for i in range(100)]
    assert suggestion("tsak1", ids, budget) == ""
    assert budget.left <= 0
    assert suggestion("deps", ["needs"], budget) == " (did you mean 'needs'?)"


def _full_table_hint(word: str, choices: list[str]) -> str:
    """The hint as the unbounded code gave it: a full edit-distance table, then difflib."""

    def edits(a: str, b: str) -> int:
        before: list[int] = []
        previous = list(range(len(b) + 1))
        for i, char in enumerate(a, 1):
            current = [i] + [0] * len(b)
            for j, other in enumerate(b, 1):
                cost = 0 if char == other else 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                    current[j] = min(current[j], before[j - 2] + 1)
            before, previous = previous, current
        return previous[-1]

    limit = 0 if len(word) <= 2 else 1 if len(word) <= 3 else 2
    best = min(((edits(word, choice), choice) for choice in choices), default=(limit + 1, ""))
    if 0 < best[0] <= limit:
        return f" (did you mean {best[1]!r}?)"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@given(
    st.text("abcdez_", min_size=1, max_size=12),
    st.lists(st.text("abcdez_", min_size=1, max_size=12), max_size=12),
)
@settings(deadline=None)
def test_the_bounded_hint_is_the_full_tables_hint(word: str, choices: list[str]) -> None:
    """Within its budget, the bounded hint names what the full table and difflib named."""
    choices = [choice for choice in choices if choice != word]
    assert suggestion(word, choices) == _full_table_hint(word, choices)


def _reference(node: Node) -> dict[str, tuple[ScalarNode, Node]]:
    """YAML's merge as the old loader computed it, recursively: ``S2 | S1 | own``."""
    assert isinstance(node, MappingNode)
    pairs: dict[str, tuple[ScalarNode, Node]] = {}
    own: dict[str, tuple[ScalarNode, Node]] = {}
    for key, value in node.pairs:
        if is_merge_key(key):
            for source in value.items if isinstance(value, SequenceNode) else [value]:
                pairs = _reference(source) | pairs
        elif isinstance(key, ScalarNode):
            own.setdefault(key.value, (key, value))
    return pairs | own


@st.composite
def merge_dags(draw: st.DrawFn) -> str:
    """A YAML file of anchored mappings, each merging earlier ones; shrinks to fewer, smaller."""
    count = draw(st.integers(min_value=1, max_value=8))
    lines = []
    for index in range(count):
        keys = draw(st.lists(st.sampled_from("abcdef"), max_size=4))
        pairs = [f"{key}: v{index}" for key in keys]
        merged = (
            draw(st.lists(st.integers(min_value=0, max_value=index - 1), max_size=3))
            if index
            else []
        )
        if merged:
            aliases = ", ".join(f"*m{source}" for source in merged)
            at = draw(st.integers(min_value=0, max_value=len(pairs)))
            pairs.insert(
                at,
                f"<<: [{aliases}]" if len(merged) > 1 or draw(st.booleans()) else f"<<: {aliases}",
            )
        lines.append(f"m{index}: &m{index} {{{', '.join(pairs)}}}")
    return "\n".join(lines) + "\n"


@given(merge_dags())
@settings(deadline=None)
def test_merges_resolve_as_yaml_does(text: str) -> None:
    """Every mapping's pairs, their order and winners, and the kept ones, are YAML's merge."""
    root = compose(text)
    assert isinstance(root, MappingNode)
    reported: list[str] = []
    merges = Merges(lambda node, message: reported.append(message))
    for _key, node in root.pairs:
        expected = _reference(node)
        assert [(k, v[1].start) for k, v in expected.items()] == [
            (k, v[1].start) for k, v in merges.pairs(node, "m").items()
        ]
        kept = merges.kept(
            node,
            "m",
            frozenset("ace"),
            extensions=False,
            dropped=lambda key: None,
        )
        assert {k: v for k, v in expected.items() if k in "ace"} == kept
        assert list(kept) == [k for k in expected if k in "ace"]
    assert reported == []


def test_a_chain_of_25000_merges_resolves_in_linear_memory() -> None:
    """Every link of a 25,000-link chain read as a task body, and its end in full: small, fast."""
    links = 25_000
    lines = ["m0: &m0 {K0: v}"]
    lines += [f"m{i}: &m{i} {{<<: *m{i - 1}, K{i}: v, run: x}}" for i in range(1, links)]
    root = compose("\n".join(lines))
    assert isinstance(root, MappingNode)
    merges = Merges(lambda node, message: None)
    started = time.process_time()
    dropped = 0

    def count(key: ScalarNode) -> None:
        nonlocal dropped
        dropped += 1

    for _key, node in root.pairs:
        assert set(
            merges.kept(node, "t", frozenset({"run"}), extensions=False, dropped=count)
        ) <= {"run"}
    everything = merges.pairs(root.pairs[-1][1], "env")
    elapsed = time.process_time() - started
    assert len(everything) == links + 1
    assert dropped == links
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("links", [12_000, 25_000])
def test_a_chain_of_merged_envs_validates_under_the_memory_limit(
    tmp_path: Path, links: int
) -> None:
    """`mK: &mK {<<: *mK-1, KK: v}` x 25,000 (1 MB) merged into one env: seconds, under 512 MB."""
    lines = ["x-chain:", "  m0: &m0 {K0: v}"]
    lines += [f"  m{i}: &m{i} {{<<: *m{i - 1}, K{i}: v}}" for i in range(1, links)]
    lines += ["tasks:", f"  t: {{run: x, env: {{<<: *m{links - 1}}}}}"]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = validate(path)
    assert_within_budget(result)
    assert result.returncode == 0


def test_a_chain_of_task_bodies_merging_each_other_validates_in_seconds(tmp_path: Path) -> None:
    """12,000 tasks, each merging the one before and adding an unknown key: under 512 MB."""
    lines = ["tasks:", "  m0: &m0 {run: x}"]
    lines += [f"  m{i}: &m{i} {{<<: *m{i - 1}, K{i}: v}}" for i in range(1, 12_000)]
    path = tmp_path / "tasks.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = validate(path)
    assert_within_budget(result)
    assert result.returncode == 2
    assert "unknown key 'K1' in task 'm1'" in result.stderr
