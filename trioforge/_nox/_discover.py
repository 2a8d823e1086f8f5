"""The session graph: ask nox through the probe, or through its public output if that breaks.

The probe (``_probe``) loads the noxfile with nox's own machinery and is
fast; the fallback (``_fallback``) asks ``nox --list --json`` once per
session. This module picks between them, so neither imports the other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import partial

import trio

from . import _probe
from ._fallback import list_graph
from ._graph_data import NoxError, NoxGraph
from ._interpreter import StartedProbe, probe_argv
from ._probe import (
    NoxInterpreter,
    _last_line,
    _run,
    _too_old,
    check_nox_args,
    find_nox_python,
    finish_probe,
    split_posargs,
)

__all__ = ["probe_graph"]


async def probe_graph(
    *,
    sessions: Sequence[str] = (),
    tags: Sequence[str] = (),
    noxfile: str | os.PathLike[str] | None = None,
    nox_args: Sequence[str] = (),
    interpreter: NoxInterpreter | None = None,
    cwd: str | os.PathLike[str] | None = None,
    time_limit: float = 120.0,
    fallback: bool = True,
    started: StartedProbe | None = None,
) -> NoxGraph:
    """Ask nox for the selected sessions and what they require.

    Args:
        sessions: ``-s`` names or signatures (a bare name selects all its
            parametrizations); with neither ``sessions`` nor ``tags``, nox's
            default sessions.
        tags: ``-t`` tags.
        noxfile: ``-f``; nox's default (``noxfile.py`` in ``cwd``) when None.
        nox_args: more nox options (``--python``, ``--envdir``, ``--`` posargs...).
        interpreter: the Python that runs nox; :func:`find_nox_python` when None.
        cwd: the folder nox runs in; the current one when None.
        time_limit: seconds the probe (and each fallback call) may take.
        fallback: whether to use the public route when the probe breaks.
        started: the probe, already started (:func:`start_probe`) with these
            arguments in ``cwd``; this collects it, and closes it. Started with
            other arguments, it is closed and a new probe runs.

    Raises:
        NoxError: a broken noxfile, an unknown session or tag, a cycle, bad
            arguments, nox missing or older than 2026.8.10, or nox not answering.
    """
    try:
        check_nox_args(nox_args)
    except NoxError:
        if started is not None:
            started.close()
        raise
    options, posargs = split_posargs(nox_args)
    argv = probe_argv(sessions, tags, noxfile, nox_args)
    folder = os.fspath(cwd if cwd is not None else os.getcwd())
    if started is not None and (started.argv, started.cwd) != (argv, folder):
        started.close()
        started = None
    if started is not None:
        interpreter = started.interpreter
        code, out, err = await finish_probe(started, time_limit)
    else:
        if interpreter is None:
            interpreter = await trio.to_thread.run_sync(partial(find_nox_python, cwd=cwd))
        probe = trio.Path(_probe._PROBE_SOURCE)  # looked up at each call: tests swap it
        source = await probe.read_text(encoding="utf-8")
        code, out, err = await _run([interpreter.python, "-c", source, *argv], cwd, time_limit)
    try:
        data = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error") == "version":
        raise _too_old(str(data.get("message")), noxfile)
    if isinstance(data, dict) and data.get("error") not in (None, "internal"):
        raise NoxError(
            str(data["error"]), str(data.get("message")), noxfile=data.get("noxfile") or noxfile
        )
    if isinstance(data, dict) and "error" not in data:
        graph = NoxGraph.from_json(data, source="probe")
        features = data.get("features") or {}
        if not (features.get("no_dependencies") and features.get("report")):
            raise _too_old(graph.nox_version, graph.noxfile)
        return graph
    if not fallback:
        why = data.get("message") if isinstance(data, dict) else _last_line(err, code)
        raise NoxError("probe", f"the nox probe failed: {why}", noxfile=noxfile)
    return await list_graph(
        interpreter, options, posargs, sessions, tags, noxfile, cwd, time_limit
    )
