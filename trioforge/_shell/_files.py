"""A shell task's files: the run folder, the per-task log, and the ``$TRIOFORGE_OUTPUT`` file.

File names come from task ids made safe (:func:`task_file_stem`); outputs are
``key=value`` lines, read with a size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

__all__ = ["display_path", "read_outputs", "run_folder", "task_file_stem", "task_log_path"]

MAX_OUTPUTS_BYTES = 1024 * 1024
_OUTPUT_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


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


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``TRIOFORGE_OUTPUT`` file: ``key=value`` lines; blank lines are skipped.

    Raises:
        ValueError: a line is not ``key=value`` with a valid key, the file is
            not UTF-8, holds a NUL character, or is larger than 1 MiB.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_OUTPUTS_BYTES + 1)
    except FileNotFoundError:
        return {}
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
        outputs_path.write_bytes(b"")


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def _write(fd: int, text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, text.encode("utf-8", errors="replace"))


def _append(path: Path, text: str) -> None:
    fd = _open_log(path)
    try:
        _write(fd, text)
    finally:
        os.close(fd)
