"""A workflow file's bytes, read without ever blocking, and YAML's syntax errors in plain words."""

from __future__ import annotations

import re
from pathlib import Path

from .._shell._files import NotRegularFileError, read_regular
from ._nodes import MAX_BYTES, SourceError, read_bytes

__all__ = ["read_source", "tab_message"]


def tab_message(source: str, exc: SourceError) -> str:
    """YAML's "cannot start any token" about a tab, said as what it is, and where."""
    if "cannot start any token" not in exc.message or not source:
        return exc.message
    lines = re.split("\r\n?|\n", source)
    line = lines[exc.line - 1] if 0 < exc.line <= len(lines) else ""
    if exc.column - 1 < len(line) and line[exc.column - 1] == "\t":
        where = "the indentation" if not line[: exc.column - 1].strip() else "this line"
        return (
            f"a tab in {where} (line {exc.line}, column {exc.column}): YAML indents with "
            "spaces only; replace the tab with spaces"
        )
    return exc.message


def read_source(file: Path) -> bytes:
    """The file's bytes (as ``read_bytes``), refusing a FIFO, device or socket at once.

    ``open()`` on a FIFO waits for a writer forever: the file is opened
    without blocking and read only if it is a regular file.
    """
    try:
        data = read_regular(file, MAX_BYTES + 1)
    except NotRegularFileError as exc:
        reason = f"it is {exc.kind}, not a regular file"
        raise SourceError(1, 1, f"cannot read the file: {reason}") from None
    except OSError as exc:
        raise SourceError(1, 1, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        return read_bytes(file)  # the same "too large" problem, worded in one place
    return data
