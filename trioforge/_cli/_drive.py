"""Driving a run to its outcome: shared by ``trioforge run`` and ``trioforge nox``.

:func:`drive_run` runs the executor's ``execute_*`` or ``resume`` under the
signal handling of :class:`~._signals.Interrupts`, inside the run store, and
turns how it ended into an :class:`Outcome` (the exit status and the error);
:func:`headline` says it in one line. Nothing here knows workflow files or
nox, so neither command imports the other's machinery.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from .._core import TaskFailedError, WorkflowCancelledError, WorkflowTimeoutError
from .._executor import WorkflowResult
from .._shell import display_path
from .._store import (
    DefinitionChangedError,
    RewindError,
    RunLockedError,
    RunNotFoundError,
    RunStoreError,
    SQLiteRunStore,
)
from ._preflight import AuditLogError, audit_failure, store_failure
from ._signals import Interrupts

if TYPE_CHECKING:
    from .._dask._shell_task import DaskLink

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "REFUSALS",
    "Outcome",
    "drive_run",
    "headline",
    "silence_stdout",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124
#: Errors that refuse a resume before anything runs (exit status 2).
REFUSALS = (RunLockedError, DefinitionChangedError, RunNotFoundError, RewindError)


@attrs.frozen
class Outcome:
    """How a run ended: the exit status, the error, the result; ``refused``: before it began."""

    code: int
    error: Exception | None = None
    result: WorkflowResult | None = None
    refused: bool = False


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def headline(name: str, outcome: Outcome) -> str:
    """One line saying how the run ``name`` ended badly."""
    error = outcome.error
    if isinstance(error, WorkflowTimeoutError):
        return f"{name} timed out: {error}"
    if isinstance(error, WorkflowCancelledError):
        extra = ""
        if error.compensation_failures:
            extra = "; compensation failed for " + ", ".join(
                map(repr, error.compensation_failures)
            )
        return f"{name} interrupted: {error.reason}; rolled back{extra}"
    if isinstance(error, (RunStoreError, sqlite3.Error)):
        return f"{name} stopped: the run store failed: {error}"
    if isinstance(error, AuditLogError):
        return f"{name} stopped: {error.strerror}"
    return f"{name} failed: {error}"


async def drive_run(
    start: Callable[[], Awaitable[WorkflowResult]],
    interrupts: Interrupts,
    store: SQLiteRunStore | None,
    audit_log: str | None = None,
    link: DaskLink | None = None,
) -> Outcome:
    if link is not None:
        async with link.connected():  # before the store: a refused connection records no run
            return await drive_run(start, interrupts, store, audit_log)
    if store is None:
        return await _drive(start, interrupts, audit_log)
    opening = True
    try:
        async with store:  # opens the file, creating it and its tables if need be
            opening = False
            return await _drive(start, interrupts, audit_log)
    except (sqlite3.Error, OSError) as exc:
        if not opening:
            raise
        raise RunStoreError(
            f"cannot open the run store {display_path(store.path)}: {exc} "
            "(use --store PATH, or --no-store to record nothing)"
        ) from exc


async def _drive(
    start: Callable[[], Awaitable[WorkflowResult]],
    interrupts: Interrupts,
    audit_log: str | None = None,
) -> Outcome:
    outcome: Outcome
    async with trio.open_nursery() as nursery:
        await nursery.start(interrupts.watch)
        try:
            result = await start()
        except TaskFailedError as exc:
            outcome = Outcome(EXIT_FAILED, exc)
        except WorkflowTimeoutError as exc:
            outcome = Outcome(EXIT_TIMEOUT, exc)
        except WorkflowCancelledError as exc:
            outcome = Outcome(128 + (interrupts.signum or signal.SIGINT), exc)
        except REFUSALS as exc:
            if isinstance(exc, RunLockedError) and exc.lost_by is not None:
                outcome = Outcome(EXIT_FAILED, exc)  # lost while running: not a refusal
            else:
                outcome = Outcome(EXIT_USAGE, exc, refused=True)
        except Exception as exc:
            failure = store_failure(audit_failure(exc, audit_log))
            if failure is None:
                raise
            outcome = Outcome(EXIT_FAILED, failure)
        else:
            outcome = Outcome(EXIT_OK, result=result)
        nursery.cancel_scope.cancel(reason="the run is over")
    return outcome
