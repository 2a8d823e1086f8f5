"""What loading a workflow file gives: a WorkflowFile or a WorkflowFileError."""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .._core import FailurePolicy, Workflow, WorkflowError
from .._shell import (
    ProcessGroups,
)
from ._cluster import DaskSettings
from ._schema import Problem

__all__ = ["MAX_PROBLEMS", "WorkflowFile", "WorkflowFileError"]

MAX_PROBLEMS = 500
"""Most problems a :class:`WorkflowFileError` keeps; the rest are only counted."""


class WorkflowFileError(WorkflowError, ValueError):
    """Raised when a workflow file cannot be read or is not a valid workflow.

    ``str()`` lists the problems kept, one per line, as ``FILE:LINE:COL:
    message``, then ``... and N more problems`` when some were left out.

    Attributes:
        problems: the problems found, in file order: the first 500 when
            there are more.
        omitted: how many more problems were found and left out.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = heapq.nsmallest(MAX_PROBLEMS, problems, key=lambda p: (p.line, p.column))
        self.omitted = len(problems) - len(self.problems)
        lines = [str(p) for p in self.problems]
        if self.omitted:
            more = "problem" if self.omitted == 1 else "problems"
            lines.append(f"... and {self.omitted} more {more}")
        super().__init__("\n".join(lines))


@attrs.frozen(eq=False)
class WorkflowFile:
    """A loaded workflow file: the :class:`Workflow` and the settings around it.

    Attributes:
        path: the file.
        name: the workflow's name (``name:``, else the file name without suffix).
        description: the ``description:``, if any.
        workflow: the tasks, ready to run.
        max_parallel: ``max_parallel:``, or None (the command line then uses
            the number of CPUs).
        timeout: the whole run's limit in seconds (``timeout:``), or None.
        keep_going: ``keep_going:``; when true a failure skips only what
            depends on it.
        compensation_timeout: the limit for the whole rollback, in seconds.
        log_dir: where task logs go (``.trioforge/logs`` beside the file).
        process_groups: the registry of the tasks' running process groups.
        resources: the named resource pools (``resources:``) and their capacities.
        inputs: each input's value (given, else its default), or None when
            the file has no ``inputs:``; part of a run's stored definition.
        retention: ``retention:`` as ``(keep, older_than)``: keep the newest
            ``keep`` runs and none older than ``older_than`` seconds (either
            may be None); None when the file does not say.
        warnings: what is valid but probably not meant (a ``$NAME`` as a
            ``cmd`` program), as problems that fail nothing.
        dask: the ``dask:`` mapping (the Dask scheduler the shell commands
            run on), or None when the file has none.
    """

    path: Path
    name: str
    description: str | None
    workflow: Workflow
    max_parallel: int | None
    timeout: float | None
    keep_going: bool
    compensation_timeout: float
    log_dir: Path
    process_groups: ProcessGroups
    resources: dict[str, int] = attrs.Factory(dict)
    inputs: dict[str, str] | None = None
    retention: tuple[int | None, float | None] | None = None
    warnings: tuple[Problem, ...] = ()
    dask: DaskSettings | None = None

    @property
    def executor_options(self) -> dict[str, Any]:
        """The file's run settings as :class:`~trioforge.WorkflowExecutor` keyword arguments.

        ``WorkflowExecutor(loaded.workflow, **loaded.executor_options)`` runs
        the file as it says: ``max_parallel`` (the number of CPUs if unset),
        ``timeout``, ``compensation_timeout``, ``keep_going`` and
        ``resources``. Plain data,
        so a caller can change any of them first.
        """
        return {
            "max_concurrency": self.max_parallel or os.cpu_count() or 1,
            "workflow_timeout": self.timeout,
            "compensation_timeout": self.compensation_timeout,
            "failure_policy": (
                FailurePolicy.CONTINUE_INDEPENDENT if self.keep_going else FailurePolicy.FAIL_FAST
            ),
            "resources": dict(self.resources),
        }
