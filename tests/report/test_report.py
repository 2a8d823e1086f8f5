"""The HTML run report: timeline model, lanes, critical path, DAG, well-formedness, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioforge._core._events import AuditEvent, EventType
from trioforge._report._data import Attempt, _assign_lanes, build_timeline
from trioforge._report._html import SVG_NS, render_report
from trioforge._store._records import RunRecord, StoredRun, TaskRecord
from trioforge._store._sqlite import SQLiteRunStore

T0 = 1_700_000_000.0
SVG = f"{{{SVG_NS}}}"


def ev(
    kind: EventType,
    task_id: str | None,
    at: float,
    *,
    error: str | None = None,
    run_id: str = "r1",
) -> AuditEvent:
    """An event ``at`` seconds after T0."""
    return AuditEvent(kind, run_id, at, T0 + at, task_id, None, None, None, error, None)


def attempt(
    task_id: str, start: float, end: float, outcome: str = "completed"
) -> list[AuditEvent]:
    kinds = {
        "completed": EventType.TASK_COMPLETED,
        "failed": EventType.TASK_FAILED,
        "timed_out": EventType.TASK_TIMED_OUT,
        "cancelled": EventType.TASK_CANCELLED,
    }
    error = None if outcome == "completed" else f"{outcome} error"
    return [
        ev(EventType.TASK_STARTED, task_id, start),
        ev(kinds[outcome], task_id, end, error=error),
    ]


def stored(
    tasks: dict[str, list[str]],
    states: dict[str, str] | None = None,
    *,
    status: str = "completed",
    finished: float | None = None,
    workflow: str = "wf",
    attempts: dict[str, int] | None = None,
    errors: dict[str, str] | None = None,
) -> StoredRun:
    """A StoredRun whose definition has ``tasks`` (id -> dependencies)."""
    definition = {
        "name": workflow,
        "tasks": [{"id": t, "depends_on": deps} for t, deps in tasks.items()],
    }
    record = RunRecord.start("r1", definition, started_at=T0)
    record = RunRecord(
        record.id,
        record.workflow,
        record.definition_hash,
        record.definition,
        status,
        T0,
        None if finished is None else T0 + finished,
    )
    states = states or {}
    rows = {
        t: TaskRecord(
            "r1",
            t,
            states.get(t, "completed"),
            (attempts or {}).get(t, 1),
            error=(errors or {}).get(t),
        )
        for t in tasks
    }
    return StoredRun(record, rows)


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def diamond_events() -> list[AuditEvent]:
    """The diamond: a 0-1, b 1-2, c 1-4 (failed once 1-2, then 2.5-4), d 4-5."""
    return [
        ev(EventType.WORKFLOW_STARTED, None, 0),
        *attempt("a", 0, 1),
        ev(EventType.TASK_STARTED, "b", 1),
        ev(EventType.TASK_STARTED, "c", 1),
        ev(EventType.TASK_COMPLETED, "b", 2),
        ev(EventType.TASK_FAILED, "c", 2, error="OSError: flaky"),
        ev(EventType.TASK_RETRYING, "c", 2),
        *attempt("c", 2.5, 4),
        *attempt("d", 4, 5),
        ev(EventType.WORKFLOW_COMPLETED, None, 5),
    ]


def parse(html: str) -> ET.Element:
    """Parse the whole page as XML (it is written to be well-formed)."""
    return ET.fromstring(html)


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]


# -- the timeline model ----------------------------------------------------------------------


def test_attempts_pair_starts_with_ends_and_count_retries() -> None:
    """Each start and its task's next end make one attempt; retries are numbered."""
    timeline = build_timeline(stored(DIAMOND), diamond_events())
    got = {(a.task_id, a.number): (a.start - T0, a.end - T0, a.outcome) for a in timeline.attempts}
    assert got == {
        ("a", 1): (0, 1, "completed"),
        ("b", 1): (1, 2, "completed"),
        ("c", 1): (1, 2, "failed"),
        ("c", 2): (2.5, 4, "completed"),
        ("d", 1): (4, 5, "completed"),
    }
    assert [a.error for a in timeline.attempts if a.outcome == "failed"] == ["OSError: flaky"]


def test_wall_time_against_the_sum_of_task_times() -> None:
    """Wall time is start to end; busy time sums every attempt, failed ones included."""
    timeline = build_timeline(stored(DIAMOND, finished=5), diamond_events())
    assert timeline.wall == 5.0
    assert timeline.busy == 1 + 1 + 1 + 1.5 + 1
    assert timeline.speedup == pytest.approx(5.5 / 5)


def test_critical_path_uses_actual_durations() -> None:
    """The longest chain by real time (c's two attempts count) is a, c, d."""
    timeline = build_timeline(stored(DIAMOND), diamond_events())
    assert timeline.critical_path == ["a", "c", "d"]
    assert timeline.critical_time == 1 + 2.5 + 1


def test_critical_path_leaves_out_tasks_that_took_no_time() -> None:
    """Tasks skipped after a failure do not extend the critical path."""
    run = stored(DIAMOND, {"b": "failed", "c": "completed", "d": "skipped"}, status="failed")
    events = [*attempt("a", 0, 1), *attempt("b", 1, 5, "failed"), *attempt("c", 1, 2)]
    assert build_timeline(run, events).critical_path == ["a", "b"]


def test_layers_are_longest_distance_from_a_root() -> None:
    """The DAG's columns are the layers of the definition's graph."""
    tasks = {"a": [], "b": ["a"], "c": [], "d": ["b", "c"], "e": ["a"]}
    timeline = build_timeline(stored(tasks), [])
    assert timeline.layers == [["a", "c"], ["b", "e"], ["d"]]
    assert set(timeline.edges) == {("a", "b"), ("b", "d"), ("c", "d"), ("a", "e")}


def test_resumed_run_ends_the_dead_process_attempts() -> None:
    """Attempts left open when a process died end at its last event and are interrupted."""
    events = [
        ev(EventType.WORKFLOW_STARTED, None, 0),
        *attempt("a", 0, 1),
        ev(EventType.TASK_STARTED, "b", 1),
        ev(EventType.TASK_STARTED, "c", 1.5),
        ev(EventType.WORKFLOW_STARTED, None, 60),  # resumed a minute later
        *attempt("b", 60, 62),
        *attempt("c", 60, 61),
        *attempt("d", 62, 63),
        ev(EventType.WORKFLOW_COMPLETED, None, 63),
    ]
    timeline = build_timeline(stored(DIAMOND, finished=63), events)
    got = {(a.task_id, a.number): (a.start - T0, a.end - T0, a.outcome) for a in timeline.attempts}
    assert {k: got[k] for k in [("b", 1), ("c", 1), ("b", 2)]} == {
        ("b", 1): (1, 1.5, "interrupted"),
        ("c", 1): (1.5, 1.5, "interrupted"),
        ("b", 2): (60, 62, "completed"),
    }
    assert [r - T0 for r in timeline.resumes] == [60]


def test_live_run_draws_running_attempts_up_to_now() -> None:
    """In a live run an open attempt is running and ends at now."""
    events = [*attempt("a", 0, 1), ev(EventType.TASK_STARTED, "b", 1)]
    run = stored(DIAMOND, {"b": "running", "c": "pending", "d": "pending"}, status="running")
    timeline = build_timeline(run, events, now=T0 + 7)
    (b,) = [a for a in timeline.attempts if a.task_id == "b"]
    assert (b.outcome, b.end - T0) == ("running", 7)
    assert timeline.end == T0 + 7


def test_an_open_attempt_of_a_dead_run_is_interrupted() -> None:
    """When the run is not live, an attempt without an end is interrupted at the last event."""
    events = [
        *attempt("a", 0, 1),
        ev(EventType.TASK_STARTED, "b", 1),
        ev(EventType.TASK_STARTED, "c", 3),
    ]
    run = stored(DIAMOND, {"b": "running", "c": "running"}, status="interrupted")
    outcomes = {(a.task_id, a.outcome, a.end - T0) for a in build_timeline(run, events).attempts}
    assert outcomes == {("a", "completed", 1), ("b", "interrupted", 3), ("c", "interrupted", 3)}


def test_lanes_of_the_diamond() -> None:
    """The overlapping b and c get two lanes; later attempts reuse lane 0."""
    timeline = build_timeline(stored(DIAMOND), diamond_events())
    lanes = {(a.task_id, a.number): a.lane for a in timeline.attempts}
    assert lanes == {("a", 1): 0, ("b", 1): 0, ("c", 1): 1, ("c", 2): 0, ("d", 1): 0}
    assert timeline.lanes == 2


@st.composite
def intervals(draw: st.DrawFn, *, min_length: int = 0) -> list[Attempt]:
    """Up to 25 attempts with integer start and length; shrinks toward fewer, shorter ones."""
    count = draw(st.integers(0, 25))
    out = []
    for i in range(count):
        start = draw(st.integers(0, 50))
        length = draw(st.integers(min_length, 20))
        out.append(Attempt(f"t{i}", 1, float(start), float(start + length), "completed"))
    return out


@settings(max_examples=150, deadline=None)
@given(intervals())
def test_concurrent_attempts_never_share_a_lane(attempts: list[Attempt]) -> None:
    """No two attempts in one lane overlap, zero-length ones included."""
    placed = _assign_lanes(attempts)
    assert sorted((a.task_id, a.start, a.end) for a in placed) == sorted(
        (a.task_id, a.start, a.end) for a in attempts
    )
    for x in placed:
        for y in placed:
            if x is not y and x.lane == y.lane:
                assert x.end <= y.start or y.end <= x.start


@settings(max_examples=150, deadline=None)
@given(intervals(min_length=1))
def test_lane_count_is_the_peak_concurrency(attempts: list[Attempt]) -> None:
    """Greedy lanes are as few as the most attempts running at one moment."""
    placed = _assign_lanes(attempts)
    peak = max((sum(b.start <= a.start < b.end for b in attempts) for a in attempts), default=0)
    assert 1 + max((a.lane for a in placed), default=-1) == peak


# -- the page ---------------------------------------------------------------------------------


def test_report_is_well_formed_and_has_both_drawings() -> None:
    """The page parses as XML and as HTML and holds a Gantt and a DAG SVG."""
    html = render_report(stored(DIAMOND, finished=5), diamond_events())
    root = parse(html)
    classes = [svg.get("class") for svg in root.iter(f"{SVG}svg")]
    assert classes == ["gantt", "dag"]
    parser = HTMLParser()
    parser.feed(html)
    parser.close()
    assert html.startswith("<!DOCTYPE html>")


def test_one_bar_per_attempt_coloured_by_outcome() -> None:
    """Every attempt is one bar with its outcome's class, retries included."""
    events = [
        *attempt("a", 0, 1, "failed"),
        *attempt("a", 1.5, 2, "timed_out"),
        *attempt("a", 3, 4),
        *attempt("b", 4, 5, "cancelled"),
    ]
    run = stored({"a": [], "b": ["a"]}, {"b": "cancelled"}, status="cancelled", finished=5)
    root = parse(render_report(run, events))
    got = [
        (r.get("data-task"), r.get("data-attempt"), r.get("class", "").split()[1])
        for r in bars(root)
    ]
    assert got == [
        ("a", "1", "failed"),
        ("a", "2", "timed_out"),
        ("a", "3", "completed"),
        ("b", "1", "cancelled"),
    ]


def test_bars_have_hover_titles() -> None:
    """Each bar's title names the task, attempt, start, duration and error."""
    root = parse(render_report(stored(DIAMOND, finished=5), diamond_events()))
    titles = {
        (r.get("data-task"), r.get("data-attempt")): r.findtext(f"{SVG}title") for r in bars(root)
    }
    assert titles[("c", "1")] == (
        "c \u2013 attempt 1: failed\n"
        "start: +1.00s (2023-11-14T22:13:21+00:00)\n"
        "duration: 1.00s\n"
        "error: OSError: flaky"
    )


def test_critical_path_is_marked() -> None:
    """Bars, DAG nodes and DAG edges on the critical path carry the critical class."""
    root = parse(render_report(stored(DIAMOND, finished=5), diamond_events()))
    critical_bars = {r.get("data-task") for r in bars(root) if "critical" in r.get("class", "")}
    assert critical_bars == {"a", "c", "d"}
    nodes = {
        g.get("data-task"): "critical" in g.get("class", "").split()
        for g in root.iter(f"{SVG}g")
        if "node" in g.get("class", "").split()
    }
    assert nodes == {"a": True, "b": False, "c": True, "d": True}
    edges = {
        (p.get("data-from"), p.get("data-to")): p.get("class") for p in root.iter(f"{SVG}path")
    }
    assert edges == {
        ("a", "b"): "edge",
        ("a", "c"): "edge critical",
        ("b", "d"): "edge",
        ("c", "d"): "edge critical",
    }
    (chain,) = [p for p in root.iter("p") if p.get("class") == "critical-path"]
    assert [c.text for c in chain.iter("code")] == ["a", "c", "d"]


def test_header_shows_wall_time_against_task_time() -> None:
    """The summary names the workflow, run, status, wall time, task time and speed-up."""
    root = parse(render_report(stored(DIAMOND, finished=5, workflow="ci"), diamond_events()))
    assert root.findtext(".//h1") == "ci"
    summary = root.find(".//dl")
    assert summary is not None
    pairs = dict(
        zip(
            [d.text for d in summary.iter("dt")], [d.text for d in summary.iter("dd")], strict=True
        )
    )
    assert pairs["run"] == "r1"
    assert pairs["status"] == "completed"
    assert pairs["wall time"] == "5.00s"
    assert pairs["sum of task times"] == "5.50s"
    assert pairs["speed-up"] == "\u00d71.10"


def test_every_task_is_in_the_table_and_the_dag() -> None:
    """Tasks that never ran still appear as DAG nodes and table rows with their state."""
    run = stored(DIAMOND, {"b": "failed", "d": "skipped"}, errors={"b": "OSError: no"})
    events = [*attempt("a", 0, 1), *attempt("b", 1, 2, "failed"), *attempt("c", 1, 2)]
    root = parse(render_report(run, events))
    rows = [[td.itertext() for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    table = [["".join(cell) for cell in row] for row in rows]
    assert [(r[0], r[1]) for r in table] == [
        ("a", "completed"),
        ("b", "failed"),
        ("c", "completed"),
        ("d", "skipped"),
    ]
    assert table[1][4] == "OSError: no"
    node_states = {
        g.get("data-task"): g.get("class", "").split()[1]
        for g in root.iter(f"{SVG}g")
        if "node" in g.get("class", "")
    }
    assert node_states == {"a": "completed", "b": "failed", "c": "completed", "d": "skipped"}


def test_user_text_is_escaped() -> None:
    """Task ids, errors and the workflow name cannot inject markup or break the XML."""
    evil = "<script>alert('x')</script>"
    tasks = {evil: [], 'b"&': [evil]}
    run = stored(tasks, workflow=f"wf {evil}", errors={'b"&': "\x1b[31mred\x1b[0m <b>\x00"})
    events = [*attempt(evil, 0, 1), *attempt('b"&', 1, 2, "failed")]
    events[-1] = ev(EventType.TASK_FAILED, 'b"&', 2, error="</title><script>x</script>\x07")
    html = render_report(run, events)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    root = parse(html)
    assert {r.get("data-task") for r in bars(root)} == {evil, 'b"&'}
    assert root.findtext(".//h1") == f"wf {evil}"
    titles = [r.findtext(f"{SVG}title") or "" for r in bars(root)]
    assert "error: </title><script>x</script>\ufffd" in titles[1]
    assert "red <b>\ufffd" in html.replace("&lt;", "<").replace("&gt;", ">")


def test_report_is_self_contained() -> None:
    """No URL but the SVG namespace, no scripts, no external resources."""
    html = render_report(stored(DIAMOND, finished=5), diamond_events())
    rest = html.replace(f'xmlns="{SVG_NS}"', "")
    assert "http://" not in rest
    assert "https://" not in rest
    assert "<script" not in html
    assert "<link" not in html
    assert " src=" not in html


def test_empty_run_renders() -> None:
    """A run with no events yet still renders a valid page."""
    run = stored(DIAMOND, dict.fromkeys(DIAMOND, "pending"), status="running")
    root = parse(render_report(run, []))
    assert bars(root) == []
    assert len([g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")]) == 4


async def test_report_from_the_store(tmp_path: Path) -> None:
    """A run committed to the SQLite store and loaded back renders with every attempt."""
    definition: dict[str, Any] = {
        "name": "stored",
        "tasks": [{"id": t, "depends_on": deps} for t, deps in DIAMOND.items()],
    }
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        await store.create_run(RunRecord.start("r1", definition, started_at=T0))
        await store.commit("r1", diamond_events(), {t: t for t in DIAMOND})
        run = await store.load("r1")
        events = await store.load_events("r1")
    root = parse(render_report(run, events))
    assert len(bars(root)) == 5
    assert root.findtext(".//h1") == "stored"
