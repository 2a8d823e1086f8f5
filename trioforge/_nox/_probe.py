"""Asking the user's own nox for the session graph: the probe, and the public fallback.

Which nox: :func:`find_nox_python` (``_interpreter``, the light part that can
start the probe before trio is imported).

The probe (``_probe_main.py``, run as ``PYTHON -c TEXT NOX_ARGS``) loads the
noxfile with nox's own machinery and prints the selected sessions, each with
its signature, direct prerequisites, envdir and ``allow_parallel``; see that
file. A noxfile, selection or argument error it reports is final
(:class:`NoxError`). If the probe itself breaks (a nox whose internals moved,
output that is not its JSON), :func:`probe_graph` falls back to public output:
``nox ARGS --list --json`` for the selected sessions (nox adds what they
require), then ``nox -s S --list --json`` per session, which lists S and
everything S needs; a session's direct prerequisites are the minimal members
of that set (a transitive reduction, which orders the run the same way). The
fallback knows no envdir (sessions are kept apart by nox's virtualenv folder
name instead) and no ``allow_parallel``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import trio

from ._graph_data import MIN_NOX_VERSION, NoxError, NoxGraph, NoxSession, parse_version
from ._interpreter import (
    PROBE_SOURCE,
    NoxInterpreter,
    StartedProbe,
    find_nox_python,
    refused_nox_arg,
    selection_args,
    split_posargs,
)

__all__ = [
    "NoxInterpreter",
    "check_nox_args",
    "find_nox_python",
    "finish_probe",
    "selection_args",
    "split_posargs",
]

_PROBE_SOURCE = PROBE_SOURCE  # looked up at each call (tests swap it)
_MAX_OUTPUT = 64 * 1024 * 1024
_MIN_TEXT = ".".join(map(str, MIN_NOX_VERSION))


def check_nox_args(nox_args: Sequence[str]) -> None:
    """Refuse nox options that trioforge sets itself or that change what a session's nox does.

    Raises:
        NoxError: (kind ``"options"``) such an option is in ``nox_args``
            before ``--``; it names the option and what to use instead.
    """
    refused = refused_nox_arg(nox_args)
    if refused is not None:
        raise NoxError("options", refused)


def _too_old(version: str, noxfile: str | os.PathLike[str] | None) -> NoxError:
    return NoxError(
        "version",
        f"nox {version} is too old: trioforge nox needs nox >= {_MIN_TEXT} "
        "(it runs each session with --no-dependencies --report)",
        noxfile=noxfile,
    )


def check_version(version: str, noxfile: str | os.PathLike[str] | None) -> None:
    """Raise :class:`NoxError` (kind ``"version"``) for a nox older than 2026.8.10."""
    parsed = parse_version(version)
    if parsed is None or parsed < MIN_NOX_VERSION:
        raise _too_old(version, noxfile)


def _last_line(text: str, code: int) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {code}"


async def _run(
    argv: list[str], cwd: str | os.PathLike[str] | None, time_limit: float
) -> tuple[int, str, str]:
    """Run ``argv`` to the end; its exit status, stdout and stderr as text."""
    with trio.move_on_after(time_limit) as scope:
        try:
            done = await trio.run_process(
                argv,
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                cwd=cwd,
            )
        except OSError as exc:
            raise NoxError("nox-missing", f"cannot run {argv[0]!r}: {exc.strerror}") from exc
    if scope.cancelled_caught:
        raise NoxError("probe", f"{argv[0]} did not answer within {time_limit:g}s")
    stdout: bytes = done.stdout[:_MAX_OUTPUT]
    stderr: bytes = done.stderr[:_MAX_OUTPUT]
    return done.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


async def _drain(pipe: IO[bytes] | None, kept: bytearray) -> None:
    """Read ``pipe`` to its end, keeping its first ``_MAX_OUTPUT`` bytes."""
    if pipe is None:
        await trio.lowlevel.checkpoint()
        return
    stream = trio.lowlevel.FdStream(os.dup(pipe.fileno()))
    pipe.close()
    async with stream:
        while chunk := await stream.receive_some(65536):
            kept += chunk[: _MAX_OUTPUT - len(kept)]


async def finish_probe(started: StartedProbe, time_limit: float) -> tuple[int, str, str]:
    """Collect a probe that :func:`start_probe` started: its exit status, stdout and stderr.

    The probe is killed (and reaped) if ``time_limit`` seconds pass first, or
    on any exception, cancellation included.

    Raises:
        NoxError: (kind ``"probe"``) the probe did not end within ``time_limit``.
    """
    out, err = bytearray(), bytearray()
    code: int | None = None
    try:
        with trio.move_on_after(time_limit):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, started.process.stdout, out)
                nursery.start_soon(_drain, started.process.stderr, err)
            # Both pipes are closed: the probe has ended (or is about to).
            code = await trio.to_thread.run_sync(started.process.wait, abandon_on_cancel=True)
    finally:
        started.close()  # kills it if it still runs; the wait above then returns at once
    if code is None:
        python = started.interpreter.python
        raise NoxError("probe", f"{python} did not answer within {time_limit:g}s")
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def graph_from_lists(
    listed: Sequence[dict[str, Any]],
    closures: dict[str, list[str]],
    *,
    noxfile: Path,
    noxfile_sha256: str,
    version: str,
    python: str,
) -> NoxGraph:
    """The graph of the public fallback: sessions from ``--list --json``, closures per session.

    ``closures[S]`` is what ``nox -s S --list --json`` selected: S and
    everything S needs. A prerequisite of S is direct when no other
    prerequisite of S needs it.
    """
    names = [str(entry["session"]) for entry in listed]
    selected = set(names)
    needs = {name: [d for d in closures[name] if d != name and d in selected] for name in names}
    sessions = []
    for name, entry in zip(names, listed, strict=True):
        indirect = {d for other in needs[name] for d in needs[other]}
        tags = entry.get("tags") or []
        sessions.append(
            NoxSession(
                signature=name,
                signatures=[name],
                name=str(entry.get("name") or name),
                requires=[d for d in needs[name] if d not in indirect],
                envdir=None,
                allow_parallel=None,
                tags=[str(tag) for tag in tags],
            )
        )
    return NoxGraph(
        sessions=sessions,
        noxfile=noxfile,
        noxfile_sha256=noxfile_sha256,
        nox_version=version,
        python=python,
        source="list-json",
    )
