"""The ``trioforge nox`` command line, and the probe it starts as soon as that is read.

The probe (the user's nox loading the noxfile, about 0.15 s) is the first
thing a ``trioforge nox`` run waits for, and it needs nothing of trioforge
but the command line. So :func:`early_probe` reads a ``trioforge nox ...``
command line with the command's own option definitions (:func:`add_nox_parser`,
silently: help or an error means "not now") and starts the probe before
the command line imports trio, rich, the executor and the store; the run
then collects it (``probe_graph(started=...)``). Anything unusual (another
command, a bad option, a missing noxfile, a refused nox argument) starts
nothing early, and the run does what it always did.

This module imports only the standard library and the nox engine's light door
(``trioforge._nox``, whose names load on use); keep it so.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from .. import _nox

if TYPE_CHECKING:
    from .._nox import StartedProbe

__all__ = ["add_nox_parser", "early_probe", "positive"]

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)

_EXAMPLES = """\
examples:
  trioforge nox                            nox's default sessions, in parallel
  trioforge nox -s lint typecheck tests    these sessions and what they require
  trioforge nox -t style -j 2              sessions tagged style, 2 at a time
  trioforge nox --timeout 600 --timeout 'tests*=1800' --retries 'tests*=1'
  trioforge nox -s tests -- --python 3.12 -- -k slow   nox options, then posargs
  trioforge resume RUN_ID                  rerun only what failed or never ran

Each session runs as `nox -s SESSION --no-dependencies` in its own process
group, as soon as every session it requires has succeeded; sessions that share
a virtualenv never overlap. A failed session aborts only the sessions that
require it (-x: stop everything). Logs: .trioforge/logs/RUN_ID/SESSION.log
beside the noxfile. Defaults: [tool.trioforge.nox] in pyproject.toml
(timeout, retries, max-parallel).

exit status: 0 success, 1 a session failed, 2 broken noxfile, unknown
session or bad option, 124 timeout, 130 interrupted (Ctrl-C).
"""


def positive(text: str) -> int:
    """A whole number >= 1 (for ``-j``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_nox_parser(
    commands: argparse._SubParsersAction[_Parser],
    formatter: type[argparse.HelpFormatter],
) -> None:
    """Register ``trioforge nox`` on the command line's sub-commands."""
    nox = commands.add_parser(
        "nox",
        help="run nox sessions in parallel as a DAG, with timeouts, retries and resume",
        description="Run a project's nox sessions as a trioforge run: each session starts as "
        "soon as the sessions it requires succeeded. Options after `--` go to nox.",
        epilog=_EXAMPLES,
        formatter_class=formatter,
    )
    add = nox.add_argument
    add(
        "-s",
        "--session",
        "--sessions",
        dest="sessions",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="sessions to run (a bare name: all its "
        "parametrizations), and everything they require; default: nox's default sessions",
    )
    add(
        "-t",
        "--tag",
        "--tags",
        dest="tags",
        nargs="+",
        action="extend",
        default=[],
        metavar="TAG",
        help="sessions with these tags",
    )
    add("-f", "--noxfile", metavar="FILE", help="the noxfile (default: noxfile.py)")
    add(
        "-j",
        "--max-parallel",
        type=positive,
        metavar="N",
        help="run at most N sessions at once (default: [tool.trioforge.nox] max-parallel, "
        "else the CPUs)",
    )
    add(
        "--respect-allow-parallel",
        action="store_true",
        help="run sessions without allow_parallel=True alone, as `nox -j` does",
    )
    add(
        "--timeout",
        action="append",
        default=[],
        metavar="[PATTERN=]SECONDS",
        help="kill a session attempt after SECONDS (fnmatch PATTERN on its name; repeatable)",
    )
    add(
        "--retries",
        action="append",
        default=[],
        metavar="[PATTERN=]N",
        help="retry a failed session N times (PATTERN as for --timeout; repeatable)",
    )
    add(
        "-x",
        "--stop-on-first-error",
        action="store_true",
        help="on the first failure, stop the running sessions and start nothing new",
    )
    add(
        "--log-dir",
        metavar="DIR",
        help="session logs under DIR (default: .trioforge/logs beside the noxfile)",
    )
    add("--json", action="store_true", help="audit events as JSON Lines instead of the live view")
    add("--quiet", "-q", action="store_true", help="print nothing unless something fails")
    add(
        "--hide-output",
        action="store_true",
        help="show status lines only, not each session's output as it ends",
    )
    recording = nox.add_mutually_exclusive_group()
    recording.add_argument(
        "--store",
        metavar="PATH",
        help="the run store (default: $TRIOFORGE_STORE, else .trioforge/runs.db beside "
        "the noxfile)",
    )
    recording.add_argument(
        "--no-store",
        action="store_true",
        help="record nothing: the run cannot be resumed, shown or reported",
    )
    add("nox_args", nargs="*", metavar="-- NOX_ARGS", help="nox options, then `--` and posargs")


class _NotNow(Exception):
    """The command line is not one to start the probe early for."""


class _SilentParser(argparse.ArgumentParser):
    """An argument parser that prints nothing and never exits: it raises :class:`_NotNow`."""

    def print_help(self, file: object = None) -> None:
        """Print nothing (``-h``: the real parser prints the help)."""

    def print_usage(self, file: object = None) -> None:
        """Print nothing."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Raise :class:`_NotNow` instead of exiting."""
        raise _NotNow

    def error(self, message: str) -> NoReturn:
        """Raise :class:`_NotNow` instead of printing the usage and exiting 2."""
        raise _NotNow


def _start(arguments: Sequence[str]) -> StartedProbe | None:
    if not arguments or arguments[0] != "nox":
        return None
    parser = _SilentParser(prog="trioforge", add_help=False)
    add_nox_parser(parser.add_subparsers(dest="command"), argparse.HelpFormatter)
    try:
        args = parser.parse_args(list(arguments))
    except _NotNow:
        return None
    noxfile = Path(args.noxfile or "noxfile.py").absolute()
    if not noxfile.is_file() or _nox.refused_nox_arg(args.nox_args) is not None:
        return None
    argv = _nox.probe_argv(args.sessions, args.tags, noxfile, args.nox_args)
    try:
        return _nox.start_probe(argv, cwd=noxfile.parent, warm=True)
    except OSError:
        return None  # the run starts it again, and reports what went wrong


@contextlib.contextmanager
def early_probe(arguments: Sequence[str]) -> Iterator[StartedProbe | None]:
    """The probe of a ``trioforge nox`` command line, started now; None for any other.

    A probe the run did not collect, and the warm spares it did not use
    (``_nox._spares``), are killed and reaped on leaving the block.
    """
    started = _start(arguments)
    try:
        yield started
    finally:
        if started is not None:
            started.close()
            if started.spares is not None:
                started.spares.close()
