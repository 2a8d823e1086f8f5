"""Retry backoff: exponential, capped, with jitter from a seedable generator.

The formula is stamina's: ``min(maximum, initial * multiplier ** (n - 1) +
uniform(0, jitter))`` for the wait after failed attempt ``n``. We do not use
stamina or tenacity themselves: both draw jitter from the global ``random``
module (so runs are not reproducible under hypothesis), and both own the retry
loop, while ours must emit an audit event per attempt, count a timeout as a
failed attempt and never retry a cancellation. What remains is three lines.
"""

from __future__ import annotations

import math
import random

import attrs

__all__ = ["Backoff"]


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"Backoff.{attribute.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class Backoff:
    """How long to wait between attempts of a failing task.

    Args:
        initial: the wait after the first failed attempt, in seconds.
        multiplier: each further wait is this many times the previous one.
        maximum: no wait is longer than this.
        jitter: up to this many seconds, drawn uniformly, are added to each
            wait so that many retrying tasks do not wake at once.
    """

    initial: float = attrs.field(default=0.1, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_non_negative)
    maximum: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.1, validator=_non_negative)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait in seconds after failed attempt number ``attempt`` (1-based)."""
        try:
            base = self.initial * self.multiplier ** (attempt - 1)
        except OverflowError:
            base = math.inf
        extra = rng.uniform(0, self.jitter) if self.jitter else 0.0
        return min(self.maximum, base + extra)
