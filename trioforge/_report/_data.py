"""What a run report shows, computed from the stored run and its events (no HTML, no trio).

The events are the source of truth for the timeline: each ``TaskStarted`` opens
an attempt and the task's next ending event (completed, failed, timed out,
cancelled) closes it, so retries are separate attempts. An attempt still open
when the events stop was running when its process died (``interrupted``),
unless the run is live (``running``); when a run was resumed, the attempts the
dead process left open end at the last event it recorded. Times are the
events' wall clock (epoch seconds): a resumed run spans processes, whose trio
clocks have nothing in common.

Lanes are assigned greedily: attempts sorted by start, each one goes into the
lowest lane whose last attempt has ended, so attempts that overlap in time
never share a lane, and the lane count is the run's peak concurrency.

The critical path is the chain of dependent tasks with the largest total
*actual* time, a task's time being the sum of its attempts' durations (waits
between retries are not work). It reuses :meth:`Dag.critical_path`; tasks
that took no time are trimmed from its ends (e.g. tasks skipped after a
failure). The DAG is laid out in layers by longest distance from a root, from
the same compiled graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .._core import AuditEvent, Dag, EventType, WorkflowError, compile_dag
from .._store import StoredRun

__all__ = ["Attempt", "TaskDetail", "Timeline", "build_timeline"]

_ENDS = {
    EventType.TASK_COMPLETED: "completed",
    EventType.TASK_FAILED: "failed",
    EventType.TASK_TIMED_OUT: "timed_out",
    EventType.TASK_CANCELLED: "cancelled",
}


@attrs.frozen
class Attempt:
    """One attempt of one task, as a bar on the timeline.

    Attributes:
        task_id: the task.
        number: 1 for the task's first attempt in this run, 2 for the next, ...
            (counted across resumes).
        start: when it started, epoch seconds.
        end: when it ended, or the end of the evidence for an open attempt.
        outcome: ``completed``, ``failed``, ``timed_out``, ``cancelled``,
            ``running`` (live run) or ``interrupted`` (its process died).
        error: the error text of a failed attempt.
        lane: the timeline row it is drawn in (0 at the top).
    """

    task_id: str
    number: int
    start: float
    end: float
    outcome: str
    error: str | None = None
    lane: int = 0

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.end - self.start


@attrs.frozen
class Timeline:
    """Everything the report draws, in plain numbers.

    Attributes:
        ids: every task id: the definition's, then any seen only in events.
        edges: ``(dependency, dependent)`` pairs among ``ids``.
        layers: task ids by layer (longest distance from a root); empty if
            the definition's graph could not be compiled.
        attempts: every attempt, by start time, with its lane.
        lanes: how many lanes (peak concurrency).
        start: when the run started, epoch seconds.
        end: when it ended (or the last event, or ``now`` for a live run).
        busy: the sum of every attempt's duration, in seconds.
        critical_path: task ids of the costliest dependency chain.
        critical_time: its total time in seconds.
        resumes: when the run was resumed (each ``WorkflowStarted`` but the first).
    """

    ids: list[str]
    edges: list[tuple[str, str]]
    layers: list[list[str]]
    attempts: list[Attempt]
    lanes: int
    start: float
    end: float
    busy: float
    critical_path: list[str]
    critical_time: float
    resumes: list[float]

    @property
    def wall(self) -> float:
        """Seconds from the run's start to its end."""
        return self.end - self.start

    @property
    def speedup(self) -> float:
        """``busy / wall``: how many tasks ran at once on average (0 for an empty run)."""
        return self.busy / self.wall if self.wall > 0 else 0.0


def build_timeline(
    run: StoredRun, events: Sequence[AuditEvent], *, now: float | None = None
) -> Timeline:
    """Compute the timeline, critical path and layout inputs of a stored run.

    Args:
        run: the run as loaded from the store.
        events: its events as loaded from the store, oldest first.
        now: the current time (epoch seconds) to end a live run's open
            attempts at; defaults to the last event's time.
    """
    record = run.record
    ids = list(dict.fromkeys([*record.task_ids, *run.tasks]))
    attempts, resumes, last_wall = _attempts(events, live=record.status == "running", now=now)
    for attempt in attempts:
        if attempt.task_id not in ids:
            ids.append(attempt.task_id)
    known = set(ids)
    deps = record.dependencies
    edges = [(dep, tid) for tid in ids for dep in deps.get(tid, ()) if dep in known]
    start = min([record.started_at, *(a.start for a in attempts)])
    ends = [a.end for a in attempts]
    if record.finished_at is not None:
        ends.append(record.finished_at)
    elif record.status == "running" and now is not None:
        ends.append(now)
    if last_wall is not None:
        ends.append(last_wall)
    end = max([start, *ends])
    placed = _assign_lanes(attempts)
    costs = dict.fromkeys(ids, 0.0)
    for attempt in placed:
        costs[attempt.task_id] += attempt.duration
    dag = _compile(record.workflow, ids, deps, known)
    layers: list[list[str]] = []
    path: list[str] = []
    total = 0.0
    if dag is not None:
        layers = dag.layer_ids()
        nodes, _ = dag.critical_path([costs[tid] for tid in dag.ids])
        path = [dag.ids[n] for n in nodes]
        while path and costs[path[-1]] <= 0:
            path.pop()
        while path and costs[path[0]] <= 0:
            path.pop(0)
        total = sum(costs[tid] for tid in path)
    return Timeline(
        ids=ids,
        edges=edges,
        layers=layers,
        attempts=placed,
        lanes=1 + max((a.lane for a in placed), default=-1),
        start=start,
        end=end,
        busy=sum(costs.values()),
        critical_path=path,
        critical_time=total,
        resumes=resumes,
    )


def _attempts(
    events: Sequence[AuditEvent], *, live: bool, now: float | None
) -> tuple[list[Attempt], list[float], float | None]:
    """Pair starts with ends; return the attempts, the resume times and the last event's time."""
    done: list[Attempt] = []
    open_: dict[str, tuple[float, int]] = {}
    numbers: dict[str, int] = {}
    resumes: list[float] = []
    starts = 0
    last_wall: float | None = None
    for event in events:
        kind = event.type
        if kind == EventType.WORKFLOW_STARTED:
            starts += 1
            if starts > 1:
                resumes.append(event.wall)
                # The process that started these attempts died before ending them.
                end = last_wall if last_wall is not None else event.wall
                done.extend(
                    Attempt(tid, number, begun, max(end, begun), "interrupted")
                    for tid, (begun, number) in open_.items()
                )
                open_.clear()
        task_id = event.task_id
        if task_id is not None:
            if kind == EventType.TASK_STARTED:
                number = numbers[task_id] = numbers.get(task_id, 0) + 1
                open_[task_id] = (event.wall, number)
            elif kind in _ENDS and task_id in open_:
                begun, number = open_.pop(task_id)
                outcome = _ENDS[kind]
                done.append(
                    Attempt(task_id, number, begun, max(event.wall, begun), outcome, event.error)
                )
        last_wall = event.wall
    final = now if live and now is not None else last_wall
    for tid, (begun, number) in open_.items():
        end = max(final if final is not None else begun, begun)
        done.append(Attempt(tid, number, begun, end, "running" if live else "interrupted"))
    return done, resumes, last_wall


def _assign_lanes(attempts: list[Attempt]) -> list[Attempt]:
    """Each attempt in the lowest lane that is free when it starts, sorted by start."""
    lane_ends: list[float] = []
    placed: list[Attempt] = []
    for attempt in sorted(attempts, key=lambda a: (a.start, a.end, a.task_id, a.number)):
        free = (i for i, busy_until in enumerate(lane_ends) if busy_until <= attempt.start)
        lane = next(free, len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(attempt.end)
        else:
            lane_ends[lane] = attempt.end
        placed.append(attrs.evolve(attempt, lane=lane))
    return placed


def _compile(name: str, ids: list[str], deps: dict[str, list[str]], known: set[str]) -> Dag | None:
    try:
        return compile_dag(
            name, ids, [[d for d in deps.get(tid, ()) if d in known] for tid in ids]
        )
    except WorkflowError:
        return None


@attrs.frozen
class TaskDetail:
    """What the report shows of one failed or retried task, beyond the timeline.

    Gathered by the caller (the command line reads the files); the report
    only draws it.

    Attributes:
        task_id: the task.
        error: its last error, ``"Type: message"``, or None.
        log_link: the log's path relative to the report file (a link), or None.
        tail: the last lines of its log, control characters removed.
        log: the whole log (``report --logs``), or None.
        outputs: what it wrote to ``$TRIOFORGE_OUTPUT`` (key, value) pairs.
    """

    task_id: str
    error: str | None = None
    log_link: str | None = None
    tail: tuple[str, ...] = ()
    log: str | None = None
    outputs: tuple[tuple[str, str], ...] = ()
