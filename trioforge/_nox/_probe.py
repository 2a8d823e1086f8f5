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
import re
import shlex
import shutil
import subprocess
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


_PYTHON_NAME = re.compile(r"(python|pypy|graalpy)[0-9.]*[a-z]?(\.exe)?", re.IGNORECASE)
_SHIM_SECONDS = 10.0


def _is_python(path: str) -> bool:
    """Whether ``path`` names a Python interpreter (by its file name; fails closed)."""
    return _PYTHON_NAME.fullmatch(os.path.basename(path)) is not None


def _head(script: str) -> list[str]:
    try:
        with open(script, "rb") as file:
            return file.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _shebang_python(script: str) -> str | None:
    """The interpreter a console script names in its first lines, or None."""
    head = _head(script)
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        # `#!/usr/bin/env python3`, `#!/usr/bin/env -S python3 -I`: the first word
        # after env's own options.
        names = [word for word in words[1:] if not word.startswith("-")]
        return shutil.which(names[0]) if names else None
    if os.path.basename(words[0]) in ("sh", "bash") and len(head) > 1:
        # pip's trampoline for paths too long for a shebang: '''exec' "PY" "$0" "$@"
        try:
            parts = shlex.split(head[1])
        except ValueError:
            parts = []
        if len(parts) > 1 and parts[0] == "exec":
            return parts[1]
    return words[0]


def _pyenv_target(script: str, cwd: str | os.PathLike[str] | None) -> str | None:
    """The ``nox`` that the pyenv shim ``script`` runs in ``cwd`` (``pyenv which nox``), or None.

    A pyenv shim is a shell script that sets ``PYENV_ROOT`` and ends in
    ``exec "PYENV" exec "$program" "$@"``; which interpreter it picks depends
    on the folder (``.python-version``), so it is asked there.
    """
    pyenv: str | None = None
    env = dict(os.environ)
    for line in _head(script)[1:]:
        try:
            parts = shlex.split(line)
        except ValueError:
            continue
        if len(parts) > 2 and parts[0] == "exec" and parts[2] == "exec":
            if os.path.basename(parts[1]) == "pyenv":
                pyenv = parts[1]
        elif len(parts) == 2 and parts[0] == "export" and parts[1].startswith("PYENV_ROOT="):
            env["PYENV_ROOT"] = parts[1].split("=", 1)[1]
    if pyenv is None:
        return None
    try:
        done = subprocess.run(
            [pyenv, "which", "nox"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SHIM_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or len(lines) != 1 or not os.path.isabs(lines[0]):
        return None
    return lines[0]


def find_nox_python(
    *, path: str | None = None, cwd: str | os.PathLike[str] | None = None
) -> NoxInterpreter:
    """The interpreter that runs ``nox`` on ``PATH`` (or ``path``); else ``sys.executable``.

    The ``nox`` script's shebang names it (pip's ``/bin/sh`` trampoline for
    long paths included). A pyenv shim is followed to the ``nox`` it runs in
    ``cwd`` (``pyenv which nox``). A script whose interpreter is not a Python
    (another kind of shim) is not guessed at: ``sys.executable`` is used, which
    works when nox is installed beside trioforge; when it is not, the probe
    says so (:class:`NoxError` of kind ``"nox-missing"``).
    """
    script = shutil.which("nox", path=path)
    if script is None:
        return NoxInterpreter(sys.executable, "sys.executable (no nox script on PATH)")
    how = f"the shebang of {script}"
    python = _shebang_python(script)
    if python is not None and not _is_python(python):
        target = _pyenv_target(script, cwd)
        python = _shebang_python(target) if target is not None else None
        how = f"the shebang of {target}, the nox that pyenv's {script} runs"
    if python is not None and _is_python(python) and os.access(python, os.X_OK):
        return NoxInterpreter(python, how)
    return NoxInterpreter(sys.executable, f"sys.executable ({script} names no usable Python)")


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
