"""The public route to the session graph, for when the probe breaks: ``nox --list --json``.

``nox ARGS --list --json`` lists the selected sessions plus everything they
require; ``nox -s S --list --json`` lists S and everything S needs. One call
for the selection, one per selected session (run a few at a time), one for
``--version``: about 0.15 s each, against one probe call. See ``_probe``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from ._graph_data import NoxError, NoxGraph
from ._probe import NoxInterpreter, _run, check_version, graph_from_lists, selection_args

__all__ = ["list_graph"]

_PARALLEL_CALLS = 4


def _listing(out: str) -> list[dict[str, Any]] | None:
    """The JSON list in ``nox --list --json`` output (a noxfile may print lines before it)."""
    for line in reversed(out.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, list) and all(
            isinstance(entry, dict) and isinstance(entry.get("session"), str) for entry in data
        ):
            return data
    return None


def _failure(code: int, err: str, noxfile: str | os.PathLike[str] | None) -> NoxError:
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
    why = lines[-1] if lines else f"nox exited with status {code}"
    why = why.removeprefix("nox > ")
    kind = {2: "noxfile", 3: "selection"}.get(code, "noxfile" if code == 1 else "probe")
    return NoxError(kind, why, noxfile=noxfile)


async def list_graph(
    interpreter: NoxInterpreter,
    options: Sequence[str],
    posargs: Sequence[str],
    sessions: Sequence[str],
    tags: Sequence[str],
    noxfile: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str] | None,
    time_limit: float,
) -> NoxGraph:
    """The graph from public ``--list --json`` output (see the module notes).

    Raises:
        NoxError: nox failed (its exit status picks the kind: 2 a missing
            noxfile, 3 a selection error, 1 a noxfile that raised) or is too old.
    """
    nox = [interpreter.python, "-m", "nox"]
    code, _out, err = await _run([*nox, "--version"], cwd, time_limit)
    if code != 0:
        raise NoxError("nox-missing", f"{interpreter.python} -m nox --version failed: {err}")
    version = err.strip().splitlines()[-1] if err.strip() else "unknown"
    check_version(version, noxfile)
    code, out, err = await _run(
        [*nox, *options, *selection_args(sessions, tags, noxfile), "--list", "--json"],
        cwd,
        time_limit,
    )
    listed = _listing(out)
    if code != 0 or listed is None:
        raise _failure(code, err, noxfile)
    if not listed:
        raise NoxError("selection", "no sessions selected", noxfile=noxfile)
    closures: dict[str, list[str]] = {}
    errors: list[NoxError] = []  # kept, not raised: a nursery would wrap them in a group
    limiter = trio.CapacityLimiter(_PARALLEL_CALLS)

    async def closure(name: str) -> None:
        argv = [*nox, *options, *selection_args([name], (), noxfile), "--list", "--json"]
        async with limiter:
            try:
                code, out, err = await _run(argv, cwd, time_limit)
            except NoxError as exc:
                errors.append(exc)
                return
        entries = _listing(out)
        if code != 0 or entries is None:
            errors.append(_failure(code, err, noxfile))
            return
        closures[name] = [entry["session"] for entry in entries]

    async with trio.open_nursery() as nursery:
        for entry in listed:
            nursery.start_soon(closure, entry["session"])
    if errors:
        raise errors[0]
    base = Path(cwd) if cwd is not None else Path.cwd()
    path = await trio.Path(base / (noxfile if noxfile is not None else "noxfile.py")).resolve()
    try:
        digest = hashlib.sha256(await path.read_bytes()).hexdigest()
    except OSError as exc:
        raise NoxError("noxfile", f"cannot read {path}: {exc.strerror}", noxfile=path) from exc
    return graph_from_lists(
        listed,
        closures,
        noxfile=Path(path),
        noxfile_sha256=digest,
        version=version,
        python=interpreter.python,
    )
