"""What ``trioforge run`` checks before a run, and the errors that end one early.

Before: the audit log and the log folder can be written (a FIFO nobody reads
is refused at once rather than waited on), ``.trioforge`` ignores itself,
the file's warnings are printed. After: a failure of the run store or of
the ``--audit-log`` file (a full disk) becomes the run's outcome, so the
summary and the resume command are still printed.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .._shell import display_path
from .._store import RunStoreError
from ._prune import ignore_folder
from ._store_commands import UsageError

if TYPE_CHECKING:
    from .._workflow_file import WorkflowFile

__all__ = [
    "AuditLogError",
    "audit_failure",
    "check_paths",
    "store_failure",
    "text_path",
    "warn",
]


def _check_audit_log(path: str) -> None:
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        # O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of waiting
        # forever; a device or a FIFO with a reader (`--audit-log >(jq .)`) is fine.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o644))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise UsageError(
                f"cannot write the audit log {path!r}: it is a FIFO (named pipe) that nobody reads"
            ) from None
        raise UsageError(f"cannot write the audit log {path!r}: {exc.strerror or exc}") from None


def _check_log_dir(path: Path) -> None:
    """Create the tasks' log folder and make sure a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write task logs in {display_path(path)}: {exc.strerror or exc}"
        ) from None


def check_paths(audit_log: str | None, log_dir: Path, store_path: Path | None) -> None:
    """The audit log and the log folder can be written; ``.trioforge`` ignores itself.

    Raises:
        UsageError: either cannot be written.
    """
    if audit_log is not None:
        _check_audit_log(audit_log)
    _check_log_dir(log_dir)
    ignore_folder(log_dir)
    if store_path is not None:
        ignore_folder(store_path)


def warn(loaded: WorkflowFile, *, quiet: bool) -> None:
    """Print the file's warnings (what ``validate`` prints), unless ``quiet``."""
    if not quiet:
        for warning in loaded.warnings:
            sys.stderr.write(f"{warning} (a warning)\n")


class AuditLogError(OSError):
    """The ``--audit-log`` file could not be written (a full disk, say): the run stops."""


def store_failure(exc: BaseException) -> Exception | None:
    """The run store's or the audit log's error that ``exc`` is or holds, if any."""
    if isinstance(exc, (RunStoreError, sqlite3.Error, AuditLogError)):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = store_failure(inner)
            if found is not None:
                return found
    return None


def audit_failure(exc: BaseException, audit_log: str | None) -> BaseException:
    """``exc``, or an :class:`AuditLogError` naming the file if writing the audit log failed.

    The executor writes the audit log itself; an ``OSError`` of a full disk
    (or a quota, or an I/O error) escaping it while ``--audit-log`` is on
    comes from there.
    """
    if audit_log is None:
        return exc
    found = exc
    while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
        found = found.exceptions[0]
    if isinstance(found, OSError) and found.errno in _WRITE_ERRORS:
        return AuditLogError(
            found.errno, f"cannot write the audit log {audit_log}: {found.strerror}"
        )
    return exc


_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})


def text_path(file: str) -> str:
    """The file's absolute path as UTF-8 text (U+FFFD for bytes that are not UTF-8).

    A stored definition is JSON: a path with bytes that are not UTF-8 is kept
    readable, and ``resume`` then needs ``--file`` to find the file.
    """
    path = str(Path(file).resolve())
    return os.fsencode(path).decode("utf-8", errors="replace")
