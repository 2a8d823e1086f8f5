"""Shell tasks whose commands run on a Dask cluster: ``trioforge run FILE --dask ADDRESS``.

A workflow file's tasks are :class:`~trioforge.ShellTask` values (alone, with
resource pools, or as the command and fallback of a ``FallbackTask``).
:func:`on_dask` returns the same workflow with each of them turned into its
``Dask`` twin: the same fields, the same ``repr`` (so a run's stored
definition does not change, and a run started with ``--dask`` can be
resumed without it and the other way round), and one difference: the
command, the fallback and the compensation run on a worker, through
:func:`~trioforge.dask.run_shell`, instead of in a local process group.

What stays the shell room's: the log file and its header lines, the
outputs file (``$TRIOFORGE_OUTPUT``, read back here once the command
succeeded), the ``${{ tasks.ID.outputs.KEY }}`` expansion, the error for a
non-zero exit (:class:`~trioforge.ShellCommandError`) and the result
(:class:`~trioforge.ShellResult`, which the run store records as for a
local run), and the command's argv and environment (the orchestrator's
environment, the task's ``env``, the ``TRIOFORGE_*`` variables). Everything
but ``ShellTask._launch``, the step that starts the process and waits for
it, is inherited; the workers must share the orchestrator's file system,
since the working directory, the log file and the outputs file are paths
there.

Cancellation: when a task times out or the run is cancelled, ``run_shell``
flags the call and cancels its future, and the task ends at once; the
wrapper on the worker sees the flag within 0.2 s and kills the command's
process group (SIGTERM, then SIGKILL after the task's ``grace_period``), so
a well-behaved command is gone a moment after the task ended, where a local
task waits for it. The flag is sent from the client's event loop before the
client is closed at the end of the run (its close is queued behind it).

:class:`DaskLink` is the run's connection: the tasks hold it from the start,
and the command line fills in the client inside ``trio.run`` with
:meth:`DaskLink.connected`, which opens the ``Client`` in a worker thread and
closes it at the end, also after an error or a cancellation.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, cast

import attrs
import trio
from distributed import Client
from distributed.comm.addressing import get_address_host_port

from .._core import Workflow, WorkflowError, WorkflowTask
from .._fallback import FallbackTask
from .._shell import ProcessStartError, ShellTask, may_start, start_failure, with_driver
from .._workflow_file._pooled import PooledShellTask
from ._shell import run_shell

__all__ = [
    "DaskConnectError",
    "DaskLink",
    "DaskPooledShellTask",
    "DaskShellTask",
    "on_dask",
]


class DaskConnectError(WorkflowError, ValueError):
    """Raised when the Dask scheduler cannot be reached (or its address is not one)."""


@attrs.define(eq=False)
class DaskLink:
    """A run's connection to a Dask scheduler, shared by its shell tasks.

    Attributes:
        address: the scheduler's address, e.g. ``tcp://10.0.0.5:8786``.
        connect_timeout: seconds to wait for the scheduler.
        close_timeout: seconds closing the client may take at the end.
    """

    address: str
    connect_timeout: float = 10.0
    close_timeout: float = 10.0
    _client: Client | None = attrs.field(default=None, init=False)

    @property
    def client(self) -> Client:
        """The connected client.

        Raises:
            RuntimeError: outside :meth:`connected`.
        """
        if self._client is None:
            raise RuntimeError(f"not connected to the Dask scheduler at {self.address}")
        return self._client

    def _connect(self) -> Client:
        # A malformed address fails here, before a half-made Client would try
        # (and fail, with a traceback) to close itself when the process exits.
        get_address_host_port(self.address)
        return Client(  # type: ignore[no-untyped-call]
            self.address, timeout=self.connect_timeout, set_as_default=False
        )

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[Client]:
        """Connect (in a worker thread) for the block; close the client when it is left.

        Raises:
            DaskConnectError: the scheduler did not answer within
                ``connect_timeout``, or the address is not one.
        """
        try:
            client = await trio.to_thread.run_sync(self._connect)
        except Exception as exc:
            raise DaskConnectError(
                f"cannot connect to the Dask scheduler at {self.address!r}: "
                f"{str(exc) or type(exc).__name__}"
            ) from None
        self._client = client
        try:
            yield client
        finally:
            self._client = None
            close = functools.partial(client.close, timeout=self.close_timeout)
            with trio.move_on_after(self.close_timeout + 1.0, shield=True):
                await trio.to_thread.run_sync(close, abandon_on_cancel=True)


def _failure(task: ShellTask, argv: list[str], log_path: Path, exc: Exception) -> str:
    """Why the cluster did not run the command, for the log and the error."""
    if not isinstance(exc, OSError):  # the cluster lost the call (a worker died, say)
        return f"the Dask cluster did not run it: {type(exc).__name__}: {exc}"
    # Raised on the worker, by Popen or by opening the log.
    if exc.filename is not None and os.fspath(exc.filename) == os.fspath(log_path):
        return (
            f"the worker cannot write the log file: {exc.strerror or exc} "
            "(the workers must share this file system)"
        )
    return start_failure(argv, task.cwd, exc) + " (on a Dask worker)"


class _OnCluster:
    """The launch step of a shell task whose commands run on the cluster (a mixin).

    ``ShellTask._execute`` builds the argv and environment and writes the
    log lines; this runs the command with :func:`run_shell` instead of in a
    local process group.
    """

    __slots__ = ()
    _where: ClassVar[str] = " on dask"

    async def _launch(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        log_fd: int,
        note: Callable[[str], object],
    ) -> int:
        """Run ``argv`` on a worker, in the task's cwd, with ``env``; return its exit status."""
        task = cast("DaskShellTask | DaskPooledShellTask", self)
        await may_start(task.process_groups)
        # A relative cwd (or none) means this process's current folder, not the worker's.
        cwd = Path.cwd() if task.cwd is None else task.cwd.absolute()
        try:
            return await run_shell(
                task.link.client,
                argv,
                log_path=log_path,
                cwd=cwd,
                env=with_driver(env),
                grace=task.grace_period,
                key=f"trioforge-shell-{task.task_name}-{uuid.uuid4().hex}",
            )
        except Exception as exc:
            raise ProcessStartError(_failure(task, argv, log_path, exc)) from exc
        except BaseException:
            note(
                "cancelled: the worker stops the command (SIGTERM, then SIGKILL "
                f"{task.grace_period:g}s later)"
            )
            raise


@attrs.frozen(repr=False)
class DaskShellTask(_OnCluster, ShellTask):
    """A :class:`~trioforge.ShellTask` whose commands run on a Dask worker (see the module notes).

    Attributes:
        link: the run's connection to the scheduler.
    """

    link: DaskLink = attrs.field(kw_only=True, eq=False, hash=False, repr=False)


@attrs.frozen(repr=False)
class DaskPooledShellTask(_OnCluster, PooledShellTask):
    """A shell task with resource pools whose commands run on a Dask worker.

    Attributes:
        link: the run's connection to the scheduler.
    """

    link: DaskLink = attrs.field(kw_only=True, eq=False, hash=False, repr=False)


def _init_args(task: Any) -> dict[str, Any]:
    """The keyword arguments that make a copy of the attrs instance ``task``."""
    return {
        field.alias: getattr(task, field.name) for field in attrs.fields(type(task)) if field.init
    }


def _remote(task: WorkflowTask, link: DaskLink) -> WorkflowTask:
    """``task`` with its shell commands run on the cluster; any other task as it is."""
    if isinstance(task, (DaskShellTask, DaskPooledShellTask)):
        return attrs.evolve(task, link=link)
    if isinstance(task, PooledShellTask):
        return DaskPooledShellTask(**_init_args(task), link=link)
    if isinstance(task, ShellTask):
        return DaskShellTask(**_init_args(task), link=link)
    if isinstance(task, FallbackTask):
        return attrs.evolve(
            task, task=_remote(task.task, link), fallback=_remote(task.fallback, link)
        )
    return task


def on_dask(workflow: Workflow, link: DaskLink) -> Workflow:
    """The same workflow, with every shell command (run, fallback, compensate) run on the cluster.

    Other tasks (Python tasks, the stand-ins of ``--only``) stay as they are
    and run in this process.
    """
    remote = Workflow(workflow.name)
    tasks = workflow.tasks
    for task in tasks.values():
        remote.add_task(_remote(task, link))
    for task_id, task in tasks.items():
        for before in workflow.dependencies_of(task_id):
            if before not in task.depends_on:
                remote.add_dependency(before, task_id)
    return remote
