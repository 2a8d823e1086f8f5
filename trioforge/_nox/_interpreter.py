"""Which Python runs the user's nox, and starting the probe in it: no trio, no trioforge.

This module is the light part of the probe (``_probe``): the standard library
and attrs only, so that ``trioforge nox`` can start the probe right after
reading its command line, before it imports trio, the executor and the
store. The probe then runs beside those imports instead of after them (about
0.15 s of a command that runs seconds of sessions: see docs/nox.rst).

Which nox: the one the user would run. nox may be installed with pip, pipx or
uv, each in its own interpreter, and the noxfile is written against that nox,
so trioforge never imports nox itself. :func:`find_nox_python` reads the
shebang of the ``nox`` script on ``PATH`` (pip's ``/bin/sh`` trampoline for
long paths included) and follows a pyenv shim to the nox it runs; with no such
script it takes ``sys.executable``, which works when nox is installed beside
trioforge. Sessions then run as ``PYTHON -m nox ...``, the way ``nox -j``
starts its own children.
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

import attrs

from ._spares import Spares

__all__ = [
    "PROBE_SOURCE",
    "NoxInterpreter",
    "StartedProbe",
    "find_nox_python",
    "probe_argv",
    "refused_nox_arg",
    "selection_args",
    "split_posargs",
    "start_probe",
]

#: The probe script, run as ``PYTHON -c TEXT NOX_ARGS`` (see ``_probe_main``).
PROBE_SOURCE = Path(__file__).with_name("_probe_main.py")

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


def refused_nox_arg(nox_args: Sequence[str]) -> str | None:
    """Why ``nox_args`` cannot be given to each session's nox, or None when they can.

    Refused: options trioforge sets itself or that change what a session's nox
    does (run several sessions, list instead of run), before ``--``.
    """
    options, _posargs = split_posargs(nox_args)
    for arg in options:
        if not isinstance(arg, str) or "\0" in arg:
            return f"bad nox argument {arg!r}"
        name = arg.split("=", 1)[0]
        short = arg[:2] if arg.startswith("-") and not arg.startswith("--") else None
        if short is not None and name[:3] in _SHORT_ALLOWED and len(name) == 3:
            continue
        if name in _LONG or short in _SHORT:
            return (
                f"nox argument {arg!r} is not allowed after --: trioforge selects sessions "
                "(use -s/-t/-f of trioforge nox) and runs each one with its own nox"
            )
    return None


def probe_argv(
    sessions: Sequence[str],
    tags: Sequence[str],
    noxfile: str | os.PathLike[str] | None,
    nox_args: Sequence[str],
) -> list[str]:
    """The probe's arguments: nox's options, the selection, then ``--`` and the posargs."""
    options, posargs = split_posargs(nox_args)
    return [*options, *selection_args(sessions, tags, noxfile), *posargs]


@attrs.define(eq=False)
class StartedProbe:
    """A probe process started before trio runs; :func:`_probe.finish_probe` collects it.

    Attributes:
        interpreter: the Python running it.
        argv: its arguments (:func:`probe_argv`).
        cwd: the folder it runs in.
        process: the process; its stdout and stderr are pipes.
        spares: warm nox interpreters started with it (see ``_spares``), for
            the run's first sessions; whoever runs the sessions closes them.
    """

    interpreter: NoxInterpreter
    argv: list[str]
    cwd: str
    process: subprocess.Popen[bytes]
    spares: Spares | None = None

    def close(self) -> None:
        """Kill the probe if it still runs, and reap it (idempotent; :attr:`spares` stay)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def start_probe(
    argv: list[str],
    *,
    cwd: str | os.PathLike[str],
    interpreter: NoxInterpreter | None = None,
    warm: bool = False,
) -> StartedProbe:
    """Start the probe with ``argv`` in ``cwd`` (in :func:`find_nox_python`'s Python by default).

    With ``warm``, also start one warm nox interpreter for the first session
    (:attr:`StartedProbe.spares`; the caller closes them).

    Raises:
        OSError: the probe file cannot be read or the interpreter cannot be started.
    """
    if interpreter is None:
        interpreter = find_nox_python(cwd=cwd)
    source = PROBE_SOURCE.read_text(encoding="utf-8")
    process = subprocess.Popen(
        [interpreter.python, "-c", source, *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    spares: Spares | None = None
    if warm:
        spares = Spares(interpreter.python, cwd)
        try:
            spares.spawn()  # the first session's interpreter, ready when the graph is
        except OSError:
            spares.close()  # the session starts on its own, and says what went wrong
    return StartedProbe(interpreter, list(argv), os.fspath(cwd), process, spares)
