"""'Did you mean' hints for unknown keys, task ids and ``needs``, at a bounded cost.

A synonym from another tool wins (``depends_on`` -> ``needs``); else the
closest choice within one or two edits, swapped letters counting as one
(``tset`` -> ``test``); else the closest by :mod:`difflib`'s ratio.

The naive hint fills a whole edit-distance table for every choice and then
runs :func:`difflib.get_close_matches` over all of them: 100 unknown 64-letter
ids among 100 others took 21 s (4,096 table cells and a quadratic ratio per
pair). Here a comparison costs what its answer needs:

* a choice whose length differs by more than the allowed edits is skipped;
  so is one that holds none of ``2 * limit + 1`` pieces of the word: each
  edit changes at most one piece (a swap two), so a choice within the limit
  still holds one piece unchanged. Substring searches run in C and rule out
  nearly every unrelated id;
* the distance itself skips the common prefix and tries the four edits at
  the first difference, each with one edit less: at most 16 steps for a
  limit of two, each a comparison of strings, however long they are;
* :mod:`difflib`'s ratio is computed only for the :data:`_RATIOS` choices
  with the highest upper bound (``quick_ratio``, from shared letters).

Every step is charged to a :class:`HintBudget`, in units of about half a
microsecond; once it is spent, hints stop (synonyms still work). A file
shares one budget among its hints when the caller passes it; without one,
each hint gets :data:`CALL_WORK` units, so any file's hints cost at most that
per unknown word: time linear in the file's size.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
from collections.abc import Iterable

import attrs

__all__ = ["CALL_WORK", "FILE_WORK", "SYNONYMS", "HintBudget", "suggestion"]

CALL_WORK = 6_000
"""Work units (about half a microsecond each) a hint may spend without a :class:`HintBudget`."""

FILE_WORK = 2_000_000
"""Work units all the hints of one file may spend: about a second."""

_RATIOS = 8
"""How many choices at most get :mod:`difflib`'s full ratio in one hint."""

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


@attrs.define
class HintBudget:
    """The work the hints of one file may still do, in units of about one character compared.

    Attributes:
        left: units left; a hint that finds it spent compares nothing.
    """

    left: int = FILE_WORK

    def spend(self, units: int) -> bool:
        """Take ``units`` from the budget; whether there were any left to take them from."""
        if self.left <= 0:
            return False
        self.left -= units
        return True


def suggestion(word: str, choices: Iterable[str], budget: HintBudget | None = None) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string.

    Args:
        word: what was written.
        choices: what could have been meant.
        budget: the work this hint may do, shared by the hints of a file;
            :data:`CALL_WORK` units of its own when None.
    """
    options = list(choices)
    synonym = SYNONYMS.get(word.lower())
    if synonym is not None and synonym in options:
        return f" (did you mean {synonym!r}?)"
    if len(word) > 64 or len(options) > 5000:
        return ""  # a hint is not worth seconds of searching a huge file
    budget = HintBudget(CALL_WORK) if budget is None else budget
    # Typos are mostly one or two edits, swapped letters included ("tset").
    limit = 0 if len(word) <= 2 else 1 if len(word) <= 3 else 2
    pieces = _pieces(word, 2 * limit + 1)
    best, best_edits = "", limit + 1
    for option in options:
        if not budget.spend(1):
            return ""
        if abs(len(word) - len(option)) > limit or option == word:
            continue
        # Each edit changes one piece (a swap two), so one of 2 * limit + 1
        # pieces is still in the option, unchanged: a search that runs in C.
        if not any(piece in option for piece in pieces):
            continue
        edits = _edits(word, option, min(limit, best_edits), budget)
        if (edits, option) < (best_edits, best):
            best, best_edits = option, edits
    if best:
        return f" (did you mean {best!r}?)"
    close = _close(word, options, budget)
    return f" (did you mean {close!r}?)" if close else ""


def _pieces(word: str, count: int) -> list[str]:
    """``word`` cut into ``count`` pieces of (nearly) equal length."""
    size, extra = divmod(len(word), count)
    cuts = [index * size + min(index, extra) for index in range(count + 1)]
    return [word[start:end] for start, end in itertools.pairwise(cuts)]


def _close(word: str, options: list[str], budget: HintBudget) -> str:
    """The choice with the best :mod:`difflib` ratio, if at least 0.6, as difflib finds it.

    The ratio is at most what the lengths allow (``real_quick_ratio``) and
    what the shared letters allow (``quick_ratio``). The full ratio, which is
    quadratic, is computed in order of the highest bound, until the bound is
    below the best ratio found, and for at most :data:`_RATIOS` choices.
    """
    matcher = difflib.SequenceMatcher(b=word)
    bounds: list[tuple[float, str]] = []
    for option in options:
        total = len(word) + len(option)
        if not total or 2 * min(len(word), len(option)) < 0.6 * total or option == word:
            continue
        if not budget.spend(4 + 2 * total // 3):
            break
        matcher.set_seq1(option)
        bound = matcher.quick_ratio()
        if bound >= 0.6:
            bounds.append((bound, option))
    found, best = "", 0.6
    for bound, option in heapq.nlargest(_RATIOS, bounds):
        if bound < best or not budget.spend(1 + len(word) * len(option) // 4):
            break
        matcher.set_seq1(option)
        ratio = matcher.ratio()
        if (ratio, option) > (best, found):  # as difflib: the best ratio, then the last name
            found, best = option, ratio
    return found


def _edits(a: str, b: str, limit: int, budget: HintBudget) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), if at most ``limit``.

    Returns ``limit + 1`` for anything farther, or once the budget is spent.
    The common prefix is skipped (matching it is always optimal), then the
    first differing letter is a substitution, a deletion, an insertion or a
    swap, each tried with one edit less: at most ``4 ** limit`` (16) small
    steps, each a comparison of strings that runs in C.
    """
    far = limit + 1
    if abs(len(a) - len(b)) > limit or not budget.spend(14):
        return far
    if a == b:
        return 0
    if not a or not b:
        return max(len(a), len(b))
    if limit == 0:
        return far
    same = _common_prefix(a, b)
    a, b = a[same:], b[same:]
    if not a or not b:
        return max(len(a), len(b))
    best = far
    steps = [(a[1:], b[1:]), (a[1:], b), (a, b[1:])]
    if len(a) > 1 and len(b) > 1 and a[0] == b[1] and a[1] == b[0]:
        steps.append((a[2:], b[2:]))
    for rest_a, rest_b in steps:
        best = min(best, 1 + _edits(rest_a, rest_b, min(limit, best - 1) - 1, budget))
        if best == 1:
            break  # a and b differ: nothing is closer
    return best


def _common_prefix(a: str, b: str) -> int:
    """How many leading letters ``a`` and ``b`` share (a binary search of C comparisons)."""
    if a[:1] != b[:1]:
        return 0
    low, high = 1, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
