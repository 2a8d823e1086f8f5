"""Asking the user's own nox for the session graph: the probe, and the public fallback.

Which nox: the one the user would run. nox may be installed with pip, pipx or
uv, each in its own interpreter, and the noxfile is written against that nox,
so trioforge never imports nox itself. :func:`find_nox_python` reads the
shebang of the ``nox`` script on ``PATH`` (pip's ``/bin/sh`` trampoline for
long paths included); with no such script it takes ``sys.executable``, which
works when nox is installed beside trioforge. Sessions then run as ``PYTHON -m
nox ...``, the way ``nox -j`` starts its own children.

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
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from ._graph_data import MIN_NOX_VERSION, NoxError, NoxGraph, NoxSession, parse_version

__all__ = [
    "NoxInterpreter",
    "check_nox_args",
    "find_nox_python",
    "selection_args",
    "split_posargs",
]

_PROBE_SOURCE = Path(__file__).with_name("_probe_main.py")
_MAX_OUTPUT = 64 * 1024 * 1024
_MIN_TEXT = ".".join(map(str, MIN_NOX_VERSION))

# Options trioforge sets for each session's nox, or that would change what a
# session's nox does (run several sessions, list instead of run): refused in NOX_ARGS.
_SHORT = ("-s", "-e", "-t", "-k", "-l", "-j", "-f", "-h")
_SHORT_ALLOWED = ("-db", "-fb", "-ts")  # nox's two-letter options that start like those
_LONG = (
    "--session",
    "--sessions",
    "--tags",
    "--keywords",
    "--list",
    "--list-sessions",
    "--json",
    "--usage",
    "--parallel",
    "--report",
    "--no-dependencies",
    "--noxfile",
    "--version",
    "--help",
)


@attrs.frozen
class NoxInterpreter:
    """The Python that runs the user's nox, and how it was found.

    Attributes:
        python: the interpreter's path.
        how: where it came from, for messages (``"the shebang of /usr/bin/nox"``).
    """

    python: str
    how: str


def _shebang_python(script: str) -> str | None:
    """The interpreter a console script names in its first lines, or None."""
    try:
        with open(script, "rb") as file:
            head = file.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        return shutil.which(words[-1])
    if os.path.basename(words[0]) in ("sh", "bash") and len(head) > 1:
        # pip's trampoline for paths too long for a shebang: '''exec' "PY" "$0" "$@"
        try:
            parts = shlex.split(head[1])
        except ValueError:
            return None
        if len(parts) > 1 and parts[0] == "exec":
            return parts[1]
        return None
    return words[0]


def find_nox_python(*, path: str | None = None) -> NoxInterpreter:
    """The interpreter that runs ``nox`` on ``PATH`` (or ``path``); else ``sys.executable``.

    The fallback works when nox is installed beside trioforge; when it is not,
    the probe says so (:class:`NoxError` of kind ``"nox-missing"``).
    """
    script = shutil.which("nox", path=path)
    if script is not None:
        python = _shebang_python(script)
        if python is not None and os.access(python, os.X_OK):
            return NoxInterpreter(python, f"the shebang of {script}")
    return NoxInterpreter(sys.executable, "sys.executable (no usable nox script on PATH)")


def split_posargs(nox_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``nox_args`` split at the first ``--``: (options, ``--`` and the session posargs)."""
    args = list(nox_args)
    if "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut:]
    return args, []


def check_nox_args(nox_args: Sequence[str]) -> None:
    """Refuse nox options that trioforge sets itself or that change what a session's nox does.

    Raises:
        NoxError: (kind ``"options"``) such an option is in ``nox_args``
            before ``--``; it names the option and what to use instead.
    """
    options, _posargs = split_posargs(nox_args)
    for arg in options:
        if not isinstance(arg, str) or "\0" in arg:
            raise NoxError("options", f"bad nox argument {arg!r}")
        name = arg.split("=", 1)[0]
        short = arg[:2] if arg.startswith("-") and not arg.startswith("--") else None
        if short is not None and name[:3] in _SHORT_ALLOWED and len(name) == 3:
            continue
        if name in _LONG or short in _SHORT:
            raise NoxError(
                "options",
                f"nox argument {arg!r} is not allowed after --: trioforge selects sessions "
                "(use -s/-t/-f of trioforge nox) and runs each one with its own nox",
            )


def selection_args(
    sessions: Sequence[str], tags: Sequence[str], noxfile: str | os.PathLike[str] | None
) -> list[str]:
    """The nox options that select like ``-s``/``-t``/``-f`` (none: nox's default sessions)."""
    args: list[str] = []
    if noxfile is not None:
        args += ["-f", os.fspath(noxfile)]
    if sessions:
        args += ["-s", *sessions]
    if tags:
        args += ["-t", *tags]
    return args


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
