"""Argument types and the options several ``trioforge`` commands share (selection, inputs)."""

from __future__ import annotations

import argparse

from .._core import DurationError, parse_duration
from ._store_commands import UsageError

__all__ = [
    "add_inputs",
    "add_selection",
    "duration",
    "given_inputs",
    "input_pair",
    "positive_int",
    "selected",
    "whole",
]


def positive_int(text: str) -> int:
    """A whole number >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def whole(text: str) -> int:
    """A whole number >= 0 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def duration(text: str) -> float:
    """A duration such as ``30m`` in seconds (an argparse type)."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (an argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """``--input KEY=VALUE``, repeatable."""
    parser.add_argument(
        "--input",
        dest="inputs",
        type=input_pair,
        action="append",
        metavar="KEY=VALUE",
        help="a value for the file's input KEY, used as ${{ inputs.KEY }} (repeatable)",
    )


def given_inputs(args: argparse.Namespace) -> dict[str, str] | None:
    """The ``--input`` values (None when there is none: check without them)."""
    return None if not args.inputs else dict(args.inputs)


def add_selection(parser: argparse.ArgumentParser) -> None:
    """``[TASK...]`` and ``--only TASK...``: the part of the workflow to run (or show)."""
    parser.add_argument(
        "tasks",
        metavar="TASK",
        nargs="*",
        help="only these tasks and everything they need (default: every task)",
    )
    parser.add_argument(
        "--only",
        metavar="TASK",
        nargs="+",
        default=[],
        help="just these tasks: what they need is not run again but restored from the "
        "newest completed run in the store",
    )


def selected(args: argparse.Namespace) -> tuple[tuple[str, ...], bool]:
    """The tasks named on the command line and whether ``--only`` named them."""
    if args.tasks and args.only:
        raise UsageError("name the tasks either after FILE or after --only, not both")
    if args.only:
        return tuple(args.only), True
    return tuple(args.tasks), False
