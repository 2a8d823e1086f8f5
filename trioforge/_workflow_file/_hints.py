"""'Did you mean' hints for unknown keys, task ids and ``needs``.

A synonym from another tool wins (``depends_on`` -> ``needs``); else the
closest choice within one or two edits, swapped letters counting as one
(``tset`` -> ``test``); else :mod:`difflib`'s closest match. Each hint
compares the word with every choice, so callers with many words and many
choices must bound the total work (``Checker.hint`` does).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["SYNONYMS", "suggestion"]

# Keys people bring from other tools, and what we call them.
SYNONYMS = {
    "after": "needs",
    "dependencies": "needs",
    "depends_on": "needs",
    "depends-on": "needs",
    "deps": "needs",
    "requires": "needs",
    "command": "run",
    "script": "run",
    "shell": "run",
    "args": "cmd",
    "argv": "cmd",
    "dir": "cwd",
    "directory": "cwd",
    "workdir": "cwd",
    "working_dir": "cwd",
    "working_directory": "cwd",
    "working-directory": "cwd",
    "environment": "env",
    "retry": "retries",
    "rollback": "compensate",
    "undo": "compensate",
    "on_failure": "fallback",
    "concurrency": "max_parallel",
    "jobs": "tasks",
    "max_concurrency": "max_parallel",
    "parallel": "max_parallel",
    "steps": "tasks",
}


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    options = list(choices)
    synonym = SYNONYMS.get(word.lower())
    if synonym is not None and synonym in options:
        return f" (did you mean {synonym!r}?)"
    if len(word) > 64 or len(options) > 5000:
        return ""  # a hint is not worth seconds of searching a huge file
    # Typos are mostly one or two edits, swapped letters included ("tset").
    limit = 0 if len(word) <= 2 else 1 if len(word) <= 3 else 2
    scored = [(_edits(word, option, limit), option) for option in options]
    best = min(scored, default=(limit + 1, ""))
    if 0 < best[0] <= limit:
        return f" (did you mean {best[1]!r}?)"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _edits(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (edits, counting a swap of neighbours as one).

    Returns ``limit + 1`` early when the lengths alone rule out a close match.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            cost = 0 if char == other else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]
