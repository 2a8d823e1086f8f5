"""The run store's result codec: a registered type's cheap check never changes an answer.

:func:`~trioforge._store._codec.encode_result` skips its round trip (decode
the JSON, compare) for a :class:`~trioforge.ShellResult` whose fields have
the types ``from_json`` gives back. Over ShellResults whose fields are of
any of the types a user or a combinator could put there, the answer must be
the round trip's: when the check says True, decoding the stored text gives
back an equal ShellResult, and ``encode_result`` says restorable exactly
when the round trip does.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trioforge import ShellResult
from trioforge._store._codec import _RESTORES, _same, decode_result, encode_result

strings = st.text(max_size=8)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
)
scalars = st.none() | strings | numbers
# A tuple comes back a list, an int key a string: JSON takes them, the round trip does not.
anything = (
    scalars
    | st.tuples(scalars)
    | st.lists(scalars, max_size=2)
    | st.dictionaries(st.integers() | strings, scalars, max_size=2)
)
paths = st.builds(Path, strings) | st.builds(PurePosixPath, strings) | strings
outputs = st.dictionaries(strings | st.integers(), strings | numbers | st.none(), max_size=3)

# The fields of a real result (of the types from_json gives back)...
real_fields = st.fixed_dictionaries(
    {
        "task_id": strings,
        "returncode": st.integers(min_value=-255, max_value=255),
        "outputs": st.dictionaries(strings, strings, max_size=3),
        "log_path": st.builds(Path, strings),
        "duration": st.floats(min_value=0, max_value=1e9),
        "attempt": st.integers(min_value=1, max_value=10),
        "fallback": st.booleans(),
    }
)
# ... and values of other types, a user's or a combinator's, for any of them.
other_values = {
    "task_id": anything,
    "returncode": anything,
    "outputs": outputs,
    "log_path": paths | anything,
    "duration": anything,
    "attempt": anything,
    "fallback": anything,
}


@st.composite
def shell_results(draw: st.DrawFn) -> ShellResult:
    """A real result with none, one or two of its fields replaced by another type's value."""
    fields: dict[str, Any] = draw(real_fields)
    for name in draw(st.lists(st.sampled_from(sorted(other_values)), max_size=2)):
        fields[name] = draw(other_values[name])
    return ShellResult(**fields)


def _round_trip(value: Any, text: str | None) -> bool:
    if text is None:
        return False
    try:
        return _same(decode_result(text), value)
    except Exception:
        return False


@settings(max_examples=400, deadline=None)
@given(shell_results())
def test_the_shell_result_check_promises_only_what_the_round_trip_confirms(
    result: ShellResult,
) -> None:
    restores = _RESTORES[ShellResult]
    text, restorable = encode_result(result)
    # (A result JSON cannot hold, NaN or infinity in it, has no text: never restorable.)
    if text is not None and restores(result):
        assert _round_trip(result, text), result
    assert restorable == _round_trip(result, text)


def _result(fields: dict[str, Any]) -> ShellResult:
    return ShellResult(**fields)


@given(real_fields.map(_result))
def test_a_real_shell_result_takes_the_cheap_check(result: ShellResult) -> None:
    # What a shell task returns: the check says True (so the round trip is skipped) and right.
    assert math.isfinite(result.duration)
    assert _RESTORES[ShellResult](result)
    text, restorable = encode_result(result)
    assert restorable
    assert _round_trip(result, text)
