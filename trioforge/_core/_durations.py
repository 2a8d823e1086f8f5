"""Durations as people write them: ``90s``, ``10m``, ``1h30m``, ``250ms``, ``45``.

A duration is a sequence of ``<number><unit>`` parts, each unit at most once
and from largest to smallest (``1h30m`` yes, ``30m1h`` no), or a bare number
of seconds. Units: ``d``, ``h``, ``m``, ``s``, ``ms``. The parser is a single
anchored regular expression, so anything odd (``10 minutes``, ``1.5.3s``,
``-5s``, ``inf``) is rejected with one message that shows the accepted forms.
Text longer than :data:`MAX_LENGTH` is refused before any number is read, and
numbers too large for a float (``1`` followed by 400 zeros) are "longer than a
year", not "zero".
"""

from __future__ import annotations

import re

__all__ = ["MAX_LENGTH", "DurationError", "format_duration", "parse_duration"]

MAX_LENGTH = 64
"""Longest text :func:`parse_duration` reads (``1d23h59m59.999s`` is 15 characters)."""

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PATTERN = re.compile(
    rf"(?:(?P<d>{_NUMBER})d)?(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m(?!s))?"
    rf"(?:(?P<s>{_NUMBER})s)?(?:(?P<ms>{_NUMBER})ms)?"
)
_BARE = re.compile(_NUMBER)
_MAX_SECONDS = 366 * 86400.0


class DurationError(ValueError):
    """Raised by :func:`parse_duration` for text that is not a duration."""


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` stands for.

    Accepts ``"90s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"``, ``"250ms"``,
    ``"2d"``, or a bare number of seconds (``"45"``, ``"0.5"``). Surrounding
    spaces are ignored.

    Raises:
        DurationError: ``text`` is none of those, is zero, or is longer than a year.
    """
    value = text.strip()
    seconds: float
    if len(value) > MAX_LENGTH:
        raise DurationError(
            f"{_quoted(text)} is not a duration: it is longer than {MAX_LENGTH} characters"
        )
    if _BARE.fullmatch(value):
        seconds = float(value)
    else:
        match = _PATTERN.fullmatch(value) if value else None
        if match is None or not any(match.groupdict().values()):
            raise DurationError(
                f"{_quoted(text)} is not a duration (use e.g. 90s, 10m, 1h30m, 250ms, "
                "or a number of seconds)"
            )
        seconds = sum(
            float(amount) * _UNITS[unit]
            for unit, amount in match.groupdict().items()
            if amount is not None
        )
    if seconds > _MAX_SECONDS:  # inf too: float() of a huge number
        raise DurationError(f"a duration must be at most a year, got {_quoted(text)}")
    if not seconds > 0:
        raise DurationError(f"a duration must be more than zero, got {_quoted(text)}")
    return seconds


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:35]!r}... ({len(text)} characters)"


def format_duration(seconds: float) -> str:
    """Short text for a number of seconds: ``0.31s``, ``12.4s``, ``3m05s``, ``10m``, ``1h02m``."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours}h{rest:02d}m" if rest else f"{hours}h"
