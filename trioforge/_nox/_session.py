"""NoxSessionTask: one nox session as a workflow task, judged by nox's report, not its exit code.

Each attempt runs ``PYTHON -m nox NOX_ARGS -f NOXFILE -s SIGNATURE
--no-dependencies --report FILE [-- POSARGS]`` through a
:class:`trioforge.ShellTask`: its own process group (SIGTERM, then SIGKILL of
the whole group on cancellation or timeout, and SIGKILL of any straggler
afterwards), stdin closed, stdout and stderr appended to the session's own
log (``LOG_DIR/RUN_ID/SIGNATURE.log``, one header per attempt).

The outcome comes from the report, because nox's exit status is ambiguous (0
also for a skipped session, 1 also for a noxfile that fails to import):
``success`` and ``skipped`` are results (nox runs the dependents of a skipped
session too); ``failed``, ``aborted``, a report that disagrees with a
non-zero exit status, or no readable report, raise
:class:`NoxSessionError`.

Sessions that share a virtualenv never overlap, through the executor's named
resource pools: each session holds one unit of the pool ``envdir:KEY`` of its
envdir (capacity 1), and, under ``--respect-allow-parallel``, a session with
``allow_parallel=False`` holds every unit of the ``nox:sessions`` pool (one
unit per session; every other session holds one), so it runs alone. The
scheduler starts a session only once its pools have room, so the wait is
neither counted in the session's time nor holds one of the ``-j`` slots.

The session's timeout is applied here, inside the task, per attempt. A
timeout raises :class:`trioforge.TaskTimeoutError` for the session, which the
executor records as a timed-out (failed) attempt.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import attrs
import trio

import trioforge

from .._store import register_result_type

__all__ = ["NoxSessionError", "NoxSessionResult", "NoxSessionTask", "safe_name"]

_MAX_REPORT = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """``text`` usable as a file name; an unsafe one gets a short hash so names stay distinct."""
    if not _UNSAFE.search(text) and text not in (".", ".."):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', text)}-{digest}"


class NoxSessionError(trioforge.WorkflowError):
    """Raised when a nox session failed (or nox could not say that it did not).

    Attributes:
        signature: the session.
        status: nox's ``failed`` or ``aborted``, or ``"error"`` when nox
            wrote no usable report.
        reason: nox's reason, when it gave one.
        returncode: the nox process's exit status (``-N``: killed by signal N).
        log_path: the session's log.
    """

    def __init__(
        self,
        signature: str,
        message: str,
        *,
        status: str,
        reason: str | None,
        returncode: int | None,
        log_path: Path,
    ) -> None:
        super().__init__(f"nox session {signature!r} {message} (log: {log_path})")
        self.signature = signature
        self.status = status
        self.reason = reason
        self.returncode = returncode
        self.log_path = log_path


@attrs.frozen
class NoxSessionResult:
    """A session that nox ran successfully or skipped; the task's result.

    Attributes:
        signature: the session.
        status: ``"success"`` or ``"skipped"``.
        reason: why nox skipped it (a missing interpreter, say), if it did.
        nox_duration: seconds the session took by nox's own report (None if
            it gave none; never NaN, which a run store cannot keep as JSON).
        log_path: the session's log.
        report_path: the ``--report`` file of the attempt.
        attempt: which attempt this was.
    """

    signature: str
    status: str
    reason: str | None
    nox_duration: float | None
    log_path: Path
    report_path: Path
    attempt: int

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-able data; :meth:`from_json` makes an equal result of it."""
        return {
            "signature": self.signature,
            "status": self.status,
            "reason": self.reason,
            "nox_duration": self.nox_duration,
            "log_path": os.fspath(self.log_path),
            "report_path": os.fspath(self.report_path),
            "attempt": self.attempt,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NoxSessionResult:
        """The result :meth:`to_json` described (e.g. restored from a run store)."""
        return cls(
            signature=data["signature"],
            status=data["status"],
            reason=data["reason"],
            nox_duration=data["nox_duration"],
            log_path=Path(data["log_path"]),
            report_path=Path(data["report_path"]),
            attempt=data["attempt"],
        )


def _entry(data: object) -> dict[str, Any] | None:
    """The one session entry of a ``--report`` file's JSON, if it is well formed."""
    if not isinstance(data, dict):
        return None
    sessions = data.get("sessions")
    if not isinstance(sessions, list) or not sessions or not isinstance(sessions[0], dict):
        return None
    entry: dict[str, Any] = sessions[0]
    return entry if isinstance(entry.get("result"), str) else None


def judge(
    signature: str,
    report: bytes | None,
    returncode: int | None,
    *,
    log_path: Path,
    report_path: Path,
    attempt: int,
) -> NoxSessionResult:
    """The session's outcome from its report and exit status (see the module notes).

    Raises:
        NoxSessionError: the session failed, was aborted, or left no usable report.
    """
    try:
        entry = _entry(json.loads(report)) if report is not None else None
    except ValueError:
        entry = None
    if entry is None:
        shown = "was killed" if returncode is not None and returncode < 0 else "exited"
        raise NoxSessionError(
            signature,
            f"wrote no usable report (nox {shown} with status {returncode})",
            status="error",
            reason=None,
            returncode=returncode,
            log_path=log_path,
        )
    status = entry["result"]
    reason = entry.get("reason") if isinstance(entry.get("reason"), str) else None
    raw = entry.get("duration")
    duration: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        duration = float(raw)
    if status in ("success", "skipped") and returncode == 0:
        return NoxSessionResult(
            signature=signature,
            status=status,
            reason=reason,
            nox_duration=duration,
            log_path=log_path,
            report_path=report_path,
            attempt=attempt,
        )
    if status in ("success", "skipped"):
        message = f"was reported {status} but nox exited with status {returncode}"
        status = "failed"
    else:
        message = f"{status}" + (f": {reason}" if reason else "")
    raise NoxSessionError(
        signature, message, status=status, reason=reason, returncode=returncode, log_path=log_path
    )


@attrs.frozen
class NoxSessionTask:
    """A workflow task that runs one nox session (see the module notes).

    Args:
        id: the session's signature (its ``-s`` value).
        depends_on: the signatures of the sessions it requires.
        command: the command without the per-attempt ``--report FILE``:
            ``(argv before the report option, argv after it)``.
        session_timeout: seconds an attempt may run once admitted; None for no limit.
        retries: retries after a failed attempt; None for the executor's default.
        envdir_key: what sessions that share its virtualenv share.
        alone: run with no other session (``allow_parallel=False`` respected).
        report_dir: reports go to ``report_dir/RUN_ID/NAME.ATTEMPT.json``.
        shell: the :class:`trioforge.ShellTask` whose ``run`` starts nox; its
            command is replaced per attempt.
        pools: ``(pool, units)`` the session holds while it runs (see the
            module notes); :attr:`resources` as a dict.
    """

    id: str
    depends_on: tuple[str, ...]
    command: tuple[tuple[str, ...], tuple[str, ...]]
    session_timeout: float | None
    retries: int | None
    envdir_key: str
    alone: bool
    report_dir: Path
    shell: trioforge.ShellTask
    pools: tuple[tuple[str, int], ...] = ()
    estimate: float | None = None

    @property
    def resources(self) -> dict[str, int]:
        """Units of the run's resource pools the session holds while it runs."""
        return dict(self.pools)

    @property
    def timeout(self) -> float | None:
        """None: the session's own limit (:attr:`session_timeout`) starts once it is admitted."""
        return None

    @property
    def has_compensation(self) -> bool:
        """False: a nox session has nothing to undo."""
        return False

    def report_path(self, run_id: str, attempt: int) -> Path:
        """Where attempt ``attempt`` of this session in run ``run_id`` writes its report."""
        return self.report_dir / safe_name(run_id) / f"{safe_name(self.id)}.{attempt}.json"

    async def run(self, ctx: trioforge.TaskContext) -> NoxSessionResult:
        """Run the session once; return its result or raise :class:`NoxSessionError`."""
        report_path = self.report_path(ctx.workflow_id, ctx.attempt)
        before, after = self.command
        shell = attrs.evolve(self.shell, run=[*before, "--report", str(report_path), *after])
        await trio.Path(report_path.parent).mkdir(parents=True, exist_ok=True)
        await trio.Path(report_path).unlink(missing_ok=True)
        limit = math.inf if self.session_timeout is None else self.session_timeout
        returncode: int | None = None
        with trio.move_on_after(limit) as scope:
            await trio.lowlevel.checkpoint()  # a cancel point the linter can see
            try:
                done = await shell.run(ctx)
            except trioforge.ShellCommandError as exc:
                returncode, log_path = exc.returncode, exc.log_path
            else:
                returncode, log_path = done.returncode, done.log_path
        if scope.cancelled_caught:
            assert self.session_timeout is not None
            raise trioforge.TaskTimeoutError(self.id, self.session_timeout)
        report = await _read(report_path)
        return judge(
            self.id,
            report,
            returncode,
            log_path=log_path,
            report_path=report_path,
            attempt=ctx.attempt,
        )

    async def compensate(self, ctx: trioforge.TaskContext) -> None:
        """Nothing to undo."""
        await trio.lowlevel.checkpoint()


async def _read(path: Path) -> bytes | None:
    """The report's bytes (at most 1 MiB), or None when there is none."""
    try:
        async with await trio.open_file(path, "rb") as file:
            data: bytes = await file.read(_MAX_REPORT + 1)
    except OSError:
        await trio.lowlevel.checkpoint()
        return None
    return None if len(data) > _MAX_REPORT else data


# Stored as itself, so a resumed run restores completed sessions' results
# instead of running them again.
register_result_type("NoxSessionResult", NoxSessionResult)
