"""A shell task's files: the run folder, the per-task log, and the ``$TRIOFORGE_OUTPUT`` file.

File names come from task ids made safe (:func:`task_file_stem`); outputs are
``key=value`` lines, read with a size limit.

Every file here is opened on the trio thread, and a task can put anything at
its paths: ``mkfifo "$TRIOFORGE_OUTPUT"`` would make a plain ``open()`` wait
for a writer forever, with every timeout and signal handler stuck behind it.
So files are opened with ``O_NONBLOCK`` (opening a FIFO then returns at once,
or fails with ``ENXIO`` for writing) and refused by :func:`open_regular`
unless ``fstat`` says they are regular files; FIFOs, devices, sockets and
folders get a clear error naming the path and what it is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "NotRegularFileError",
    "check_regular",
    "display_path",
    "open_regular",
    "read_outputs",
    "read_regular",
    "run_folder",
    "task_file_stem",
    "task_log_path",
]

MAX_OUTPUTS_BYTES = 1024 * 1024
#: Longest value one output may have: the kernel's limit for one argv item or
#: environment string (Linux's MAX_ARG_STRLEN, 128 KiB with the closing NUL).
MAX_VALUE_BYTES = 128 * 1024 - 1
_OUTPUT_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class NotRegularFileError(OSError):
    """Raised when a path trioforge reads or writes is a FIFO, device, socket or folder.

    Its ``kind`` says which (``"a FIFO (named pipe)"``, ``"a socket"``, ...).
    """

    kind: str


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for a person (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _refuse(path: str | os.PathLike[str], kind: str) -> NotRegularFileError:
    error = NotRegularFileError(
        errno.EINVAL, f"{os.fspath(path)} is {kind}, not a regular file", os.fspath(path)
    )
    error.kind = kind
    return error


def check_regular(path: str | os.PathLike[str]) -> None:
    """Raise :class:`NotRegularFileError` if ``path`` exists and is not a regular file.

    ``stat`` never blocks, whatever the path is; a missing path passes.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    kind = _kind(mode)
    if kind is not None:
        raise _refuse(path, kind)


def open_regular(path: str | os.PathLike[str], flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never blocks and returns a descriptor only for a regular file.

    The file is opened with ``O_NONBLOCK`` (cleared again afterwards) and
    ``O_CLOEXEC``; a FIFO, device, socket or folder is closed again and refused.

    Raises:
        NotRegularFileError: ``path`` is not a regular file.
        OSError: it cannot be opened.
    """
    check_regular(path)  # a socket cannot be opened at all: say what it is first
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing, with no reader
            raise _refuse(path, "a FIFO (named pipe)") from None
        raise
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise _refuse(path, kind)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit`` bytes from the start of a regular file (see :func:`open_regular`)."""
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as file:
        return file.read(limit)


def run_folder(log_dir: Path, run_id: str) -> Path:
    """The folder holding one run's logs (the run id made safe for a file name)."""
    return log_dir / _UNSAFE.sub("_", run_id)


def task_file_stem(task_id: str) -> str:
    """The start of the names of a task's files: its id, made safe for a file name.

    An id that is not already safe (``a/b``, ``/abs``, ``..``) gets its unsafe
    characters replaced and a short hash of the id, so two ids never share files.
    """
    if not _UNSAFE.search(task_id) and task_id not in (".", ".."):
        return task_id
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', task_id)}-{digest}"


def task_log_path(log_dir: Path, run_id: str, task_id: str) -> Path:
    """Where the log of ``task_id`` in run ``run_id`` is written."""
    return run_folder(log_dir, run_id) / f"{task_file_stem(task_id)}.log"


def read_outputs(
    path: Path, *, consumers: Mapping[str, Sequence[str]] | None = None
) -> dict[str, str]:
    """Parse a ``TRIOFORGE_OUTPUT`` file: ``key=value`` lines; blank lines are skipped.

    ``consumers`` (output key -> the tasks whose templates use it) only makes
    the message about a value too large to pass on name those tasks.

    Raises:
        ValueError: a line is not ``key=value`` with a valid key, the file is
            not UTF-8, holds a NUL character, is larger than 1 MiB, or is not
            a regular file (a FIFO, a device, a socket).
    """
    try:
        data = read_regular(path, MAX_OUTPUTS_BYTES + 1)
    except FileNotFoundError:
        return {}
    except NotRegularFileError as exc:
        raise ValueError(f"$TRIOFORGE_OUTPUT ({exc.strerror})") from None
    if len(data) > MAX_OUTPUTS_BYTES:
        raise ValueError("$TRIOFORGE_OUTPUT is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("$TRIOFORGE_OUTPUT is not UTF-8 text") from None
    outputs: dict[str, str] = {}
    # Only "\n" ends a line: splitlines() would also split a value at \x0c,
    # \x1c-\x1e, \x85, U+2028 or U+2029.
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not _OUTPUT_KEY.fullmatch(key):
            raise ValueError(
                f"$TRIOFORGE_OUTPUT line {number} is not key=value with a key of letters, "
                f"digits, '_', '-' or '.': {line[:80]!r}"
            )
        if "\0" in value:
            raise ValueError(f"$TRIOFORGE_OUTPUT line {number} holds a NUL character")
        size = len(value.encode("utf-8", errors="surrogatepass"))
        if size > MAX_VALUE_BYTES:
            users = (consumers or {}).get(key, ())
            named = ", ".join(map(repr, users))
            who = {
                0: "no task could be started with it",
                1: f"task {named}, which uses it, could not be started",
            }.get(len(users), f"tasks {named}, which use it, could not be started")
            raise ValueError(
                f"$TRIOFORGE_OUTPUT line {number}: output {key!r} is {size:,} bytes, more than "
                f"the {MAX_VALUE_BYTES + 1:,} bytes (128 KiB) the kernel allows in one argument "
                f"or environment variable, so {who}; write the value to a file and pass the "
                "file's path"
            )
        outputs[key] = value
    return outputs


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when that is shorter to read."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return relative if len(relative) < len(str(path)) else str(path)


def _prepare(folder: Path, outputs_path: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if outputs_path is not None:
        # Whatever an earlier attempt left there (a FIFO, say) goes: a new empty file.
        with contextlib.suppress(FileNotFoundError):
            outputs_path.unlink()
        os.close(open_regular(outputs_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))


def _open_log(path: Path) -> int:
    return open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)


def _write(fd: int, text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, text.encode("utf-8", errors="replace"))


def _append(path: Path, text: str) -> None:
    try:
        fd = _open_log(path)
    except OSError:
        return  # a note in the log is not worth failing (or freezing) for
    try:
        _write(fd, text)
    finally:
        os.close(fd)
