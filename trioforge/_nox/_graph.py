"""From a :class:`NoxGraph` to a :class:`trioforge.Workflow`: one task per session.

Each session becomes a :class:`NoxSessionTask` whose dependencies are the
sessions it requires; the executor's dataflow mode then starts a session the
moment everything it requires succeeded, as many at once as ``max_concurrency``
allows. A failed session under ``FailurePolicy.CONTINUE_INDEPENDENT`` aborts
only the sessions that require it, as in nox.

Per-session limits come from :class:`PerSession` values, parsed from the
command line's ``--timeout`` and ``--retries`` by :func:`parse_timeouts` and
:func:`parse_retries`: ``SECONDS`` (every session) and ``PATTERN=SECONDS``
(an ``fnmatch`` pattern, case-sensitive, matched against each of the
session's signatures); the last matching pattern wins, then the bare value.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import attrs

import trioforge

from ._graph_data import NoxError, NoxGraph, NoxSession
from ._probe import check_nox_args, split_posargs
from ._session import NoxSessionTask
from ._spares import Spares
from ._warm import WarmShellTask

__all__ = [
    "SESSIONS_POOL",
    "PerSession",
    "build_workflow",
    "parse_retries",
    "parse_timeouts",
    "session_argv",
    "session_pools",
]

#: The pool every session takes one unit of under ``respect_allow_parallel``
#: (an exclusive session takes them all); one unit per session.
SESSIONS_POOL = "nox:sessions"


def envdir_pool(session: NoxSession) -> str:
    """The name of the resource pool (capacity 1) of ``session``'s virtualenv."""
    return f"envdir:{session.envdir_key}"


def session_pools(graph: NoxGraph) -> dict[str, int]:
    """The resource pools a workflow of ``graph`` needs: pass them as the executor's ``resources``.

    One pool of 1 per envdir (sessions sharing a virtualenv never overlap), and
    :data:`SESSIONS_POOL` with one unit per session.
    """
    pools = {envdir_pool(session): 1 for session in graph.sessions}
    pools[SESSIONS_POOL] = max(1, len(graph.sessions))
    return pools


T = TypeVar("T", int, float)


@attrs.frozen
class PerSession(Generic[T]):
    """A value per session: a default, and ``fnmatch`` patterns on signatures that override it.

    Attributes:
        default: the value for a session no pattern matches (None: none).
        patterns: ``(pattern, value)`` pairs; the last one that matches wins.
    """

    default: T | None = None
    patterns: tuple[tuple[str, T], ...] = ()

    def for_session(self, session: NoxSession) -> T | None:
        """The value for ``session``: the last pattern matching a signature of it, else default."""
        names = session.signatures or (session.signature,)
        for pattern, value in reversed(self.patterns):
            if any(fnmatch.fnmatchcase(name, pattern) for name in names):
                return value
        return self.default


def _parse(values: Iterable[str], option: str, convert: type[T], check: str) -> PerSession[T]:
    default: T | None = None
    patterns: list[tuple[str, T]] = []
    for text in values:
        pattern, sep, number = text.rpartition("=")
        try:
            value = convert(number.strip())
        except ValueError:
            value = None
        ok = value is not None and (value > 0 if convert is float else value >= 0)
        if value is None or not ok or (convert is float and not value < float("inf")):
            unit = check.split(maxsplit=1)[0]
            raise NoxError("options", f"{option} {text!r}: expected {check} or PATTERN={unit}")
        if sep:
            if not pattern:
                raise NoxError("options", f"{option} {text!r}: the pattern before '=' is empty")
            patterns.append((pattern, value))
        else:
            default = value
    return PerSession(default, tuple(patterns))


def parse_timeouts(values: Iterable[str]) -> PerSession[float]:
    """``--timeout`` values (``SECONDS`` or ``PATTERN=SECONDS``) as a :class:`PerSession`.

    Raises:
        NoxError: (kind ``"options"``) a value that is not a number of seconds > 0.
    """
    return _parse(values, "--timeout", float, "SECONDS > 0")


def parse_retries(values: Iterable[str]) -> PerSession[int]:
    """``--retries`` values (``N`` or ``PATTERN=N``) as a :class:`PerSession`.

    Raises:
        NoxError: (kind ``"options"``) a value that is not an int >= 0.
    """
    return _parse(values, "--retries", int, "N >= 0")


def session_argv(
    graph: NoxGraph, session: NoxSession, nox_args: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The nox command of ``session``, split where ``--report FILE`` goes.

    ``PYTHON -m nox NOX_OPTIONS -f NOXFILE -s SIGNATURE --no-dependencies``,
    then (after the report option) ``-- POSARGS`` if ``nox_args`` had them.
    """
    options, posargs = split_posargs(nox_args)
    before = (
        graph.python,
        "-m",
        "nox",
        *options,
        "-f",
        str(graph.noxfile),
        "-s",
        session.signature,
        "--no-dependencies",
    )
    return before, tuple(posargs)


def build_workflow(
    graph: NoxGraph,
    *,
    nox_args: Sequence[str] = (),
    report_dir: str | os.PathLike[str],
    log_dir: str | os.PathLike[str],
    timeouts: PerSession[float] | None = None,
    retries: PerSession[int] | None = None,
    respect_allow_parallel: bool = False,
    grace_period: float = 5.0,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    process_groups: trioforge.ProcessGroups | None = None,
    name: str = "nox",
    spares: Spares | None = None,
) -> trioforge.Workflow:
    """A workflow with one task per session of ``graph``, each depending on what it requires.

    Run it with ``WorkflowExecutor(workflow, resources=session_pools(graph),
    failure_policy=FailurePolicy.CONTINUE_INDEPENDENT,
    max_concurrency=N).execute_dataflow()`` for nox's failure semantics (the
    pools keep sessions that share a virtualenv apart). Pass per-session
    timeouts here, not as the executor's ``task_timeout``.

    Args:
        graph: the sessions (from :func:`probe_graph`).
        nox_args: more nox options for every session (``--`` and posargs last).
        report_dir: where each attempt's ``--report`` file goes.
        log_dir: where each session's log goes (``LOG_DIR/RUN_ID/SIGNATURE.log``).
        timeouts: seconds per attempt, per session; a timeout kills the
            session's whole process group (SIGTERM, then SIGKILL after
            ``grace_period``) and fails the attempt.
        retries: retries per session (every attempt is recorded).
        respect_allow_parallel: a session with ``allow_parallel=False`` (or
            unknown, from the fallback) runs with no other session, as under
            ``nox -j``; otherwise any two sessions with different envdirs may
            run together.
        grace_period: seconds between SIGTERM and SIGKILL.
        cwd: where nox runs; the noxfile's folder when None.
        env: extra environment variables for nox.
        process_groups: the registry of running process groups (for a
            second Ctrl-C's SIGKILL of everything, and the watchdog).
        name: the workflow's name.
        spares: warm nox interpreters a session may start in (see
            ``_spares``); None starts every session as a fresh process.

    Raises:
        NoxError: (kind ``"options"``) a nox option trioforge sets itself is
            in ``nox_args``, or an argument holds a NUL or a ``${{`` template.
    """
    check_nox_args(nox_args)
    timeouts = PerSession() if timeouts is None else timeouts
    retries = PerSession() if retries is None else retries
    report_dir = Path(report_dir).absolute()
    workdir = Path(cwd) if cwd is not None else graph.noxfile.parent
    for text in [*nox_args, str(report_dir), str(log_dir)]:
        if "${{" in text:  # a ShellTask would expand it as a template: refuse, fail closed
            raise NoxError("options", f"nox argument or folder {text!r} holds '${{{{'")
    workflow = trioforge.Workflow(name)
    everything = max(1, len(graph.sessions))
    for session in graph.sessions:
        alone = respect_allow_parallel and not session.allow_parallel
        pools = {envdir_pool(session): 1}
        if respect_allow_parallel:
            pools[SESSIONS_POOL] = everything if alone else 1
        before, after = session_argv(graph, session, nox_args)
        try:
            shell = WarmShellTask(
                session.signature,
                [*before, "--report", str(report_dir / "REPORT.json"), *after],
                cwd=workdir,
                env=env,
                grace_period=grace_period,
                log_dir=log_dir,
                process_groups=process_groups,
                spares=spares,
            )
        except (ValueError, TypeError) as exc:
            raise NoxError("options", f"session {session.signature!r}: {exc}") from exc
        workflow.add_task(
            NoxSessionTask(
                id=session.signature,
                depends_on=session.requires,
                command=(before, after),
                session_timeout=timeouts.for_session(session),
                retries=retries.for_session(session),
                envdir_key=session.envdir_key,
                alone=alone,
                report_dir=report_dir,
                shell=shell,
                pools=tuple(sorted(pools.items())),
            )
        )
    return workflow
