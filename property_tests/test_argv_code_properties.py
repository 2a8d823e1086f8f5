"""Whatever options come before it, a template the started program reads as code is refused.

Each example is an argv built from a model of how the wrappers read their
options (from their manuals, independent of trioforge's tables): a chain of
wrappers, each with options in any spelling (``--opt V``, ``--opt=V``, a
unique abbreviation, ``-oV``, ``-o V``, bundled flags), sometimes an option
the wrapper does not have, then a program with its code. A template is then
put in one item. Where the model says that item is a program or code, or
comes at or after an unknown option, the loader must refuse it.
"""

from __future__ import annotations

import json

import attrs
from hypothesis import given
from hypothesis import strategies as st

from trioforge import WorkflowFileError, load_workflow

T = "${{ tasks.produce.outputs.evil }}"
WORKFLOW = """\
tasks:
  produce:
    run: echo 'evil=touch PWNED' >> "$TRIOFORGE_OUTPUT"
  consume:
    needs: [produce]
    cmd: {cmd}
"""


@attrs.frozen
class Wrapper:
    """A wrapper's options as its manual gives them, and the operands before its program."""

    flags: str = ""
    takes: str = ""
    long_flags: tuple[str, ...] = ("help", "version")
    long_takes: tuple[str, ...] = ()
    operands: int = 0


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Every long option each manual lists: an abbreviation must be unique among all of them.
WRAPPERS = {
    "stdbuf": Wrapper(takes="ioe", long_takes=_words("input output error")),
    "time": Wrapper(
        flags="apqv",
        takes="fo",
        long_flags=_words("help version append portability quiet verbose"),
        long_takes=_words("format output"),
    ),
    "xargs": Wrapper(
        flags="0prtx",
        takes="adEILnPs",
        long_flags=_words(
            "help version null open-tty interactive no-run-if-empty show-limits verbose exit "
            "eof replace max-lines"
        ),
        long_takes=_words("arg-file delimiter max-args max-procs max-chars process-slot-var"),
    ),
    "sudo": Wrapper(
        flags="AbEHknNPS",
        takes="CDgpRTUu",
        long_flags=_words(
            "help version askpass background bell preserve-env set-home remove-timestamp "
            "reset-timestamp list non-interactive preserve-groups stdin validate no-update"
        ),
        long_takes=_words(
            "close-from chdir group host prompt chroot role type command-timeout other-user user"
        ),
    ),
    "env": Wrapper(
        flags="i0v",
        takes="uC",
        long_flags=_words(
            "help version ignore-environment null debug default-signal ignore-signal "
            "block-signal list-signal-handling"
        ),
        long_takes=_words("unset chdir argv0"),
    ),
    "nice": Wrapper(takes="n", long_takes=("adjustment",)),
    "timeout": Wrapper(
        flags="v",
        takes="ks",
        long_flags=_words("help version foreground preserve-status verbose"),
        long_takes=_words("kill-after signal"),
        operands=1,
    ),
    "doas": Wrapper(flags="n", takes="Cu"),
    "nohup": Wrapper(),
    "setsid": Wrapper(flags="cfw", long_flags=_words("help version ctty fork wait")),
}
VALUES = st.sampled_from(["L", "0", "1", "root", "/", "%e", "x", "KILL", "sh", "-c"])


@st.composite
def abbreviation(draw: st.DrawFn, name: str, others: tuple[str, ...]) -> str:
    """``name`` or a prefix of it that no other long option starts with; shrinks to ``name``."""
    sizes = [
        size
        for size in range(len(name), 2, -1)
        if size == len(name) or not any(other.startswith(name[:size]) for other in others)
    ]
    return name[: draw(st.sampled_from(sizes))]


@st.composite
def option(draw: st.DrawFn, wrapper: Wrapper) -> list[str]:
    """One option of ``wrapper`` with its argument, in a spelling it accepts; shrinks to flags."""
    kinds = ["long_flag"]
    kinds += ["flags"] if wrapper.flags else []
    kinds += ["takes"] if wrapper.takes else []
    kinds += ["long_take"] if wrapper.long_takes else []
    kind = draw(st.sampled_from(kinds))
    if kind == "flags":
        return ["-" + "".join(draw(st.lists(st.sampled_from(wrapper.flags), min_size=1)))]
    if kind == "takes":
        most = 2 if wrapper.flags else 0
        bundled = "".join(draw(st.lists(st.sampled_from(wrapper.flags or "-"), max_size=most)))
        letter, value = draw(st.sampled_from(wrapper.takes)), draw(VALUES)
        if draw(st.booleans()):
            return [f"-{bundled}{letter}{value}"]
        return [f"-{bundled}{letter}", value]
    longs = wrapper.long_flags + wrapper.long_takes
    name = draw(st.sampled_from(wrapper.long_flags if kind == "long_flag" else wrapper.long_takes))
    written = "--" + draw(abbreviation(name, tuple(other for other in longs if other != name)))
    if kind == "long_flag":
        return [written]
    value = draw(VALUES)
    return [f"{written}={value}"] if draw(st.booleans()) else [written, value]


@attrs.frozen
class Example:
    """An argv, the items the program reads as code, and where an unknown option starts."""

    argv: list[str]
    code: frozenset[int]
    unknown_from: int | None


PROGRAMS: list[tuple[list[str], set[int]]] = [
    (["sh", "-c", "echo hi", "sh", "data"], {0, 2}),
    (["bash", "-euc", "echo hi", "bash", "data"], {0, 2}),
    (["python3", "-c", "print(1)", "data"], {0, 2}),
    (["node", "-e", "1", "data"], {0, 2}),
    (["echo", "data", "more"], {0}),
    (["grep", "-c", "data", "file"], {0}),
]


@st.composite
def examples(draw: st.DrawFn) -> Example:
    """Wrappers (each maybe with an unknown option) then a program; shrinks to fewer wrappers."""
    argv: list[str] = []
    code: set[int] = set()
    unknown_from: int | None = None
    for name in draw(st.lists(st.sampled_from(sorted(WRAPPERS)), max_size=3)):
        wrapper = WRAPPERS[name]
        code.add(len(argv))
        argv.append(name)
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            argv.extend(draw(option(wrapper)))
        if unknown_from is None and draw(st.integers(min_value=0, max_value=4)) == 0:
            unknown_from = len(argv)
            unknown = ["--frobnicate", "--frob=1", "-Z", "-j1", "-y", f"-{wrapper.flags}Z"]
            argv.append(draw(st.sampled_from(unknown)))
            argv.extend(draw(st.lists(VALUES, max_size=1)))
        argv.extend(draw(VALUES).replace("-c", "5") for _ in range(wrapper.operands))
    program, program_code = draw(st.sampled_from(PROGRAMS))
    code.update(len(argv) + index for index in program_code)
    argv.extend(program)
    return Example(argv, frozenset(code), unknown_from)


def refused_items(argv: list[str]) -> set[int]:
    """The 1-based argv items the loader refuses a template in."""
    text = WORKFLOW.format(cmd=json.dumps(argv))
    try:
        load_workflow("w.yaml", text=text)
    except WorkflowFileError as error:
        prefix = "item "
        found = set()
        for problem in error.problems:
            assert problem.message.startswith(prefix), problem.message
            found.add(int(problem.message[len(prefix) :].split()[0]))
        return found
    return set()


@given(examples(), st.data())
def test_a_template_read_as_code_is_refused(example: Example, data: st.DataObject) -> None:
    """A template in a program or code item, or after an unknown option, is refused."""
    at = data.draw(st.integers(min_value=0, max_value=len(example.argv) - 1), label="at")
    argv = list(example.argv)
    argv[at] = T if data.draw(st.booleans(), label="whole") else f"{argv[at]} {T}"
    refused = refused_items(argv)
    must = at in example.code or (example.unknown_from is not None and at >= example.unknown_from)
    if must:
        assert refused == {at + 1}
    elif example.unknown_from is None and argv[-2:] == ["data", "more"] and at >= len(argv) - 2:
        assert refused == set()  # echo's arguments are data
