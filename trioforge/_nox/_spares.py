"""Warm nox interpreters, started ahead of the sessions that will use them.

Starting a session costs ``nox -j`` and ``trioforge nox`` alike an
interpreter start and ``import nox`` (about 70-90 ms) before the session's
own code runs, and a run pays it once per wave of sessions on its critical
path. A :class:`Spares` keeps a few interpreters that have done that part
already (``_warm_main.py``: started in the interpreter of the user's nox,
in their own process group, waiting on a pipe). When a session starts, its
command ``PYTHON -m nox ARGS`` is handed to an idle spare instead of being
started anew (``_warm.WarmShellTask``), and a replacement is started in the
background. The first spare is started with the probe, before trio is
imported, so the first session does not wait for an interpreter either.

A spare runs a session exactly as the command would: the same interpreter,
folder, environment (replaced before nox runs), arguments, log and process
group. It is used only when all of that can hold: the command is ``PYTHON
-m nox ...`` with the spare's ``PYTHON``, the task runs in the spare's
folder, and the session's environment equals the spare's except for the
``TRIOFORGE_*`` variables (anything else might change how the interpreter
started, e.g. ``PYTHONPATH``). Otherwise the session starts as a fresh
process, as it always could.

An idle spare holds nothing but an imported nox. It ends by itself when its
pipe closes (also when trioforge is killed); :meth:`Spares.close` kills and
reaps the idle ones at the end of the run.

Standard library and attrs only: the command line starts the first spare
before it imports trio.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

__all__ = ["MAX_IDLE", "WARM_SOURCE", "Spares"]

#: The spare's script, run as ``PYTHON -c TEXT`` (see ``_warm_main``).
WARM_SOURCE = Path(__file__).with_name("_warm_main.py")

#: At most this many idle spares at once, whatever ``-j`` says.
MAX_IDLE = 8

_OWN = "TRIOFORGE_"


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _plain(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without trioforge's per-task variables (they do not change how Python starts)."""
    return {key: value for key, value in env.items() if not key.startswith(_OWN)}


@attrs.define(eq=False)
class Spares:
    """Idle warm nox interpreters for a run's sessions (see the module notes).

    Attributes:
        python: the interpreter of the user's nox.
        cwd: the folder the sessions run in.
        env: the environment the spares start with.
        limit: at most this many idle spares (the run's ``-j``, at most
            :data:`MAX_IDLE`).
        unlaunched: sessions not started yet; no more spares than that are
            kept (a spare no session takes is wasted work).
        handed: how many sessions started in a spare so far.
    """

    python: str
    cwd: str = attrs.field(converter=_real)
    env: dict[str, str] = attrs.field(factory=lambda: dict(os.environ))
    limit: int = 1
    unlaunched: int = 1
    handed: int = attrs.field(default=0, init=False)
    _idle: list[subprocess.Popen[bytes]] = attrs.field(factory=list, init=False)
    _source: str | None = attrs.field(default=None, init=False)
    _closed: bool = attrs.field(default=False, init=False)

    def __len__(self) -> int:
        return len(self._idle)

    @property
    def idle(self) -> tuple[subprocess.Popen[bytes], ...]:
        """The idle spares, oldest first."""
        return tuple(self._idle)

    def plan(self, *, limit: int, sessions: int) -> None:
        """Size the pool for the run: at most ``limit`` idle, ``sessions`` still to start."""
        self.limit = max(0, min(limit, MAX_IDLE))
        self.unlaunched = max(0, sessions)

    def wanted(self) -> int:
        """How many more spares are worth starting now."""
        if self._closed:
            return 0
        return max(0, min(self.limit, self.unlaunched) - len(self._idle))

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start one spare and keep it idle (blocking: it forks).

        Raises:
            OSError: the interpreter could not be started.
        """
        if self._source is None:
            self._source = WARM_SOURCE.read_text(encoding="utf-8")
        process = subprocess.Popen(
            [self.python, "-c", self._source],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.keep(process)
        return process

    def keep(self, process: subprocess.Popen[bytes]) -> None:
        """Add a started spare to the idle ones (killed at once if the pool is closed)."""
        if self._closed:
            _end(process)
        else:
            self._idle.append(process)

    def fill(self) -> int:
        """Start spares up to :meth:`wanted`; return how many started (none if one fails)."""
        started = 0
        for _ in range(self.wanted()):
            try:
                self.spawn()
            except OSError:
                break  # the session that needs one starts on its own, and says why
            started += 1
        return started

    def fits(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str]
    ) -> bool:
        """Whether a spare can run ``argv`` in ``cwd`` with ``env`` (see the module notes)."""
        return (
            list(argv[:3]) == [self.python, "-m", "nox"]
            and _real(cwd) == self.cwd
            and _plain(env) == _plain(self.env)
        )

    def take(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None
    ) -> subprocess.Popen[bytes] | None:
        """An idle spare that can run ``argv`` (no longer idle), or None: start it anew.

        Every call counts as a session started, with a spare or not. A
        command no spare fits closes the pool: a run's sessions share their
        interpreter, folder and environment, so none would fit.
        """
        self.unlaunched = max(0, self.unlaunched - 1)
        if self._closed:
            return None
        if cwd is None or not self.fits(argv, env, cwd):
            self.close()  # the run's sessions share these: no spare will fit
            return None
        while self._idle:
            process = self._idle.pop(0)
            if process.poll() is None:
                self.handed += 1
                return process
            _end(process)
        return None

    @staticmethod
    def order(
        argv: Sequence[str], env: Mapping[str, str], log_path: str | os.PathLike[str]
    ) -> bytes:
        """The line telling a spare to run nox with ``argv[3:]`` (see ``_warm_main``)."""
        text = json.dumps({"args": list(argv[3:]), "env": dict(env), "log": os.fspath(log_path)})
        return text.encode("utf-8") + b"\n"

    def close(self) -> None:
        """Kill and reap the idle spares; start no more (idempotent)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for process in idle:
            _end(process)


def _end(process: subprocess.Popen[bytes]) -> None:
    """Kill a spare's process group (it leads one) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(OSError):  # gone already
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if process.stdin is not None:
        process.stdin.close()
