"""Shell commands on a Dask worker that the orchestrator can always stop.

Dask cannot interrupt a call running on a worker, so a remote shell command
must stop itself: :func:`run_shell_on_worker` starts the command in its own
process group, waits for it in steps of ``poll`` seconds, and between steps
checks the call's cancel flag (the Dask Event that the orchestrator sets on
timeout or cancellation, see ``_remote``). Once the flag is set it kills the
whole group: SIGTERM, then SIGKILL for whatever is left after ``grace``
seconds. So a cancelled command is gone within ``poll + grace`` seconds plus
a scheduler round trip, and its worker thread is free again.

:func:`run_shell` is the orchestrator side: it submits the wrapper and
awaits it like any remote call. The workers must see the same file system
as the orchestrator (``cwd`` and the log file are paths there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from distributed import Client, get_worker

from ._remote import await_future, flag, submit_call

__all__ = ["run_shell", "run_shell_on_worker"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(proc: subprocess.Popen[bytes], grace: float, poll: float) -> None:
    """SIGTERM the command's process group, SIGKILL it after ``grace``; reap the leader."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, or it keeps the group alive as a zombie
        if not _group_alive(pgid):
            break
        time.sleep(min(poll, 0.05))
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def run_shell_on_worker(
    argv: Sequence[str],
    cwd: str | None,
    env: Mapping[str, str] | None,
    log_path: str,
    call_key: str | None = None,
    *,
    poll: float = 0.2,
    grace: float = 1.0,
) -> int:
    """Run a command on this worker; kill its process group if its call is cancelled.

    Runs on a Dask worker (submit it, or use :func:`run_shell`). The command
    runs in a new session (its own process group) with stdin from
    ``/dev/null``; its stdout and stderr are appended to ``log_path``. Every
    ``poll`` seconds the wrapper checks the call's cancel flag; once it is
    set, the group gets SIGTERM and, ``grace`` seconds later, SIGKILL.

    Args:
        argv: the command and its arguments (no shell unless you run one).
        cwd: the working directory, or None for the worker's.
        env: the complete environment, or None for the worker's.
        log_path: the file the output is appended to (on the shared file system).
        call_key: the key the cancel flag is named after (see
            ``cancel_event_name``); None: the key of the Dask task running
            this function, which is what :func:`run_shell` and the
            orchestrator's cancellation use.
        poll: seconds between checks of the cancel flag.
        grace: seconds between SIGTERM and SIGKILL.

    Returns:
        The exit status; ``-N`` when a signal N ended the command (as after
        a cancellation).
    """
    key = call_key if call_key is not None else str(get_worker().get_current_task())
    cancel_flag = flag(key)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                return proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
            if cancel_flag.is_set():
                _stop_group(proc, grace, poll)
                cancel_flag.clear()  # a cleared event with no waiters is deleted on the scheduler
                return proc.returncode
    except BaseException:
        if proc.returncode is None:
            _stop_group(proc, grace, poll)
        raise


async def run_shell(
    client: Client,
    argv: Sequence[str],
    *,
    log_path: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    resources: Mapping[str, float] | None = None,
    grace: float = 1.0,
    key: str | None = None,
) -> int:
    """Run a command on a worker and return its exit status; cancelling it kills it there.

    The command runs through :func:`run_shell_on_worker`. When the awaiting
    scope is cancelled (a task's timeout, say), ``trio.Cancelled``
    propagates at once and the worker kills the command's process group
    within about ``poll + grace`` (1.2 s by default) plus a scheduler round trip. The
    workers must share the orchestrator's file system (``cwd`` and
    ``log_path`` are paths there) and have trioforge installed.

    Args:
        client: a connected ``distributed.Client``.
        argv: the command and its arguments.
        log_path: the file the command's output is appended to.
        cwd: the working directory, or None for the worker's.
        env: the complete environment, or None for the worker's.
        resources: Dask worker resources the command needs.
        grace: seconds between SIGTERM and SIGKILL when the call is cancelled.
        key: the call's Dask key (unique; it names the call's cancel flag,
            see ``cancel_event_name``, and shows in Dask's dashboard); None
            for a fresh one.

    Returns:
        The exit status (``-N``: ended by signal N).
    """
    args: list[Any] = [
        [str(arg) for arg in argv],
        None if cwd is None else os.fspath(cwd),
        None if env is None else dict(env),
        os.fspath(log_path),
        None,
    ]
    future = await submit_call(
        client,
        run_shell_on_worker,
        tuple(args),
        {"grace": grace},
        resources=resources,
        key=f"trioforge-shell-{uuid.uuid4().hex}" if key is None else key,
    )
    return int(await await_future(client, future, fetch=True))
