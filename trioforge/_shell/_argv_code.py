"""Which items of an argv list the started program reads as code, or as the code to run.

A template in ``cmd`` becomes exactly one argv item, and trioforge never hands
that item to a shell. But the program it starts may: ``[sh, -c, SCRIPT]``
gives SCRIPT to a shell, ``[python, -c, CODE]`` to Python, ``[ssh, HOST,
COMMAND]`` to the remote host's shell. A task's output expanded into SCRIPT is
shell code again, and one expanded into ``argv[0]`` chooses the program. The
loader refuses templates in the items :func:`code_items` returns, and says how
to pass the value instead: as an argument of the script (``[sh, -c, 'echo
"$1"', sh, VALUE]``), or through ``env``.

The naive check, "no template in the item after a ``-c``", refuses
``[grep, -c, VALUE]`` and misses ``[bash, -lc, SCRIPT]`` and ``[env, sh, -c,
SCRIPT]``. So argv is read the way the programs will read it:

* ``argv[0]`` is the program. When it is a known wrapper (``env``, ``nice``,
  ``nohup``, ``timeout``, ``stdbuf``, ``setsid``, ``xargs``, ``sudo``,
  ``doas``, ``time``), its options and operands are skipped and the item
  after them (and, for ``env`` and ``sudo``, after every ``NAME=VALUE``
  item: any item holding a ``=``) is the program, read the same way;
  ``env -S STRING`` and ``sudo -s``/``-i`` hand their arguments to a shell;
* shells (``sh``, ``bash``, ``zsh``...): ``-c`` anywhere in the option
  clusters (``-c``, ``-ec``, ``-lc``) makes the first operand the script;
  without it the first operand is the script file (``-s``: no script);
* interpreters (``python``, ``node``, ``perl``, ``ruby``, ``php``, ``lua``,
  ``Rscript``, ``osascript``, ``fish``): the argument of a code option
  (``-c``, ``-e``, ``--eval``... in the same item, ``-cCODE``, or the next
  one) or of an option naming code to load (``python -m``, ``perl -M``), else
  the first operand, the script file;
* ``pwsh``/``powershell``: ``-Command`` makes every remaining item code, as
  PowerShell joins them; ``-File`` names the script;
* ``ssh``: the host, then every item after it: ssh joins them into one
  command line for the remote shell.

Reading stops at the first operand, so ``[python, tool.py, -c, VALUE]``
(an option of ``tool.py``) is not refused, and only program positions are
read, so ``[apt-get, install, python3, VALUE]`` is not either.

Whether an option takes an argument decides which item is the program:
``[stdbuf, --output, L, sh, -c, SCRIPT]`` runs sh, and a reader that took
``--output`` for a flag would take ``L`` for the program and miss SCRIPT. So
the reading fails closed: each wrapper and interpreter has a table of its
options (long ones abbreviated as GNU ``getopt_long`` allows: ``env --split``
is ``--split-string``), and an option not in it makes its item and every item
after it a code item, refused with the option named. Shells differ:
their letters are flags but ``-o``/``-O`` (``-R`` and ``-T``, which take an
argument in some shells only, are unknown), and their long options take no
argument but ``--rcfile``/``--init-file``.

This is a lint for the forms people write, not a sandbox: a program can read
an argument as code in ways no table knows (``find -exec``, ``awk``,
``docker run IMAGE sh -c``), and any program may read a value starting with
``-`` as an option. The documentation promises only what trioforge itself
does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import attrs

from ._argv_options import (
    INTERPRETERS,
    POWERSHELLS,
    SHELL,
    SHELL_TAKES,
    SHELLS,
    VERSIONED,
    WRAPPERS,
    Options,
    Wrapper,
)
from ._templates import OPEN

__all__ = ["CodeItem", "code_items"]

Kind = Literal["code", "program", "joined"]


@attrs.frozen
class CodeItem:
    """An argv item that the started program reads as code, or as the name of the code to run.

    Attributes:
        index: the item's index in argv.
        reads: what it is, for messages: ``"the script sh runs (after -c)"``.
        kind: ``"code"`` (parsed as code), ``"program"`` (names the program,
            script or module to run) or ``"joined"`` (joined with the items
            around it into a command line for a shell: ``ssh``, ``sudo -s``,
            ``pwsh -Command``).
    """

    index: int
    reads: str
    kind: Kind = "code"


class _Unverifiable(Exception):
    """An option we do not know: from ``at`` on, we cannot tell what the program reads.

    ``templated`` when the item is a template where the wrapper reads its
    options or operands: its value is known only at run time, and one that
    starts with ``-`` would be read as an option and move the program.
    """

    def __init__(self, at: int, name: str, option: str, *, templated: bool = False) -> None:
        super().__init__(option)
        self.at = at
        self.name = name
        self.option = option
        self.templated = templated


def code_items(argv: Sequence[str]) -> list[CodeItem]:
    """The items of ``argv`` that decide what code runs, in argv order.

    Every program position is one (``argv[0]``, and the program after a
    wrapper such as ``env``), with the code arguments of a shell or an
    interpreter there (see the module notes). An option of a known program
    that is not in its table makes its item and every item after it a code
    item: whether it takes an argument decides which item is the program, and
    a check against code injection fails closed.
    """
    found: list[CodeItem] = []
    index = 0
    runner = ""
    try:
        while index < len(argv):
            reads = "the program to run" if not runner else f"the program {runner} runs"
            found.append(CodeItem(index, reads, "program"))
            name = program_name(argv[index])
            wrapper = WRAPPERS.get(name)
            if wrapper is None:
                found.extend(_program(argv, index, name))
                break
            next_index = _wrapped(argv, index, name, wrapper, found)
            if next_index is None:
                break
            index, runner = next_index, name
    except _Unverifiable as unknown:
        if unknown.templated:
            reads = (
                f"where {unknown.name} reads its options and operands: a value there that "
                f"starts with '-' would be read as an option, so trioforge cannot tell which "
                f"item {unknown.name} runs or reads as code"
            )
        else:
            reads = (
                f"past an option trioforge does not know ({unknown.option!r} of "
                f"{unknown.name}), so it cannot tell which item {unknown.name} runs or reads "
                "as code"
            )
        found.extend(CodeItem(at, reads) for at in range(unknown.at, len(argv)))
    # An option whose argument is missing (``[python, -c]``) names no item.
    by_index = {item.index: item for item in reversed(found) if item.index < len(argv)}
    return sorted(by_index.values(), key=lambda item: item.index)


def program_name(item: str) -> str:
    """The basename of a program, lowercased, without a Windows ``.exe``."""
    base = re.split(r"[\\/]", item)[-1].lower()
    return base.removesuffix(".exe")


def _program(argv: Sequence[str], index: int, name: str) -> list[CodeItem]:
    """The code items of the program at ``index``, if it is one we know."""
    if name in SHELLS:
        return _read(argv, index, name, SHELL)
    if name in POWERSHELLS:
        return _powershell(argv, index, name)
    if name == "ssh":
        return _ssh(argv, index)
    options = INTERPRETERS.get(name)
    if options is None:
        options = next((opts for pattern, opts in VERSIONED if pattern.fullmatch(name)), None)
    return [] if options is None else _read(argv, index, name, options)


def _read(argv: Sequence[str], index: int, name: str, options: Options) -> list[CodeItem]:
    """Read the options of ``argv[index]`` as ``options`` says; the code and script items."""
    found: list[CodeItem] = []
    flags: set[str] = set()
    at = index + 1
    while at < len(argv):
        item = argv[at]
        if item == "--":
            at += 1
            break
        if (
            item == "-"
            or item[:1] not in ("-", "+")
            or (item[0] == "+" and not options.shell_flag)
        ):
            break
        if item.startswith("--"):
            at = _long(argv, at, name, options, flags, found)
        else:
            at = _cluster(argv, at, name, options, flags, found)
        if found and options.code_ends:
            return found
    if at < len(argv) and not found and not (flags & set(options.no_script)):
        if flags & set(options.shell_flag):
            found.append(CodeItem(at, f"the script {name} runs (after -{options.shell_flag})"))
        else:
            found.append(CodeItem(at, f"the script file {name} runs", "program"))
    return found


def _long_name(option: str, known: frozenset[str]) -> str | None:
    """The long option ``option`` stands for: itself, or the one it abbreviates.

    GNU ``getopt_long`` (coreutils, sudo, xargs, time) takes any unambiguous
    prefix: ``env --split`` is ``--split-string``. A prefix of several is
    not known (the program refuses it, but we cannot tell what it reads).
    """
    if option in known:
        return option
    if len(option) < 3:
        return None
    matches = [name for name in known if name.startswith(option)]
    return matches[0] if len(matches) == 1 else None


def _long(
    argv: Sequence[str],
    at: int,
    name: str,
    options: Options,
    flags: set[str],
    found: list[CodeItem],
) -> int:
    """Read one long option (``--eval CODE``, ``--eval=CODE``); return the next item's index.

    Raises:
        _Unverifiable: the program has a table of long options and this one
            is not in it.
    """
    written, equals, _value = argv[at].partition("=")
    known = options.long
    if known is None:
        return at + 2 if written in SHELL_TAKES and not equals else at + 1
    option = _long_name(written, known.code | known.takes | known.flags | known.shell)
    if option is None:
        raise _Unverifiable(at, name, written)
    if option in known.code:
        target = at if equals else at + 1
        found.append(CodeItem(target, f"the code {name} runs (after {written})"))
        return target + 1
    if option in known.shell:
        flags.add("s")
    if option in known.takes and not equals:
        return at + 2
    return at + 1


def _cluster(
    argv: Sequence[str],
    at: int,
    name: str,
    options: Options,
    flags: set[str],
    found: list[CodeItem],
) -> int:
    """Read one cluster of short options (``-ec``); return the next item's index.

    Raises:
        _Unverifiable: a letter that is in none of the program's tables.
    """
    item = argv[at]
    position = 1
    while position < len(item):
        letter = item[position]
        rest = item[position + 1 :]
        if (letter in options.code or letter in options.names) and (options.inline or not rest):
            target = at if rest else at + 1
            if letter in options.code:
                found.append(CodeItem(target, f"the code {name} runs (after -{letter})"))
            else:
                found.append(
                    CodeItem(target, f"the code {name} loads (after -{letter})", "program")
                )
            return target + 1
        if letter in options.takes:
            return at + 1 if rest else at + 2
        if letter in options.attached:
            return at + 1
        position += 1
        if letter in options.digits:
            while position < len(item) and item[position].isdigit():
                position += 1
            continue
        if not _is_flag(letter, options):
            raise _Unverifiable(at, name, f"{item[0]}{letter}")
        if item[0] == "-":
            flags.add(letter)
    return at + 1


def _is_flag(letter: str, options: Options) -> bool:
    """Whether ``letter`` is a short option without an argument."""
    flags = (options.flags, options.shell_flag, options.no_script, options.code, options.names)
    return any(letter in known for known in flags)


def _wrapped(
    argv: Sequence[str], index: int, name: str, wrapper: Wrapper, found: list[CodeItem]
) -> int | None:
    """Skip a wrapper's options and operands; the index of the program it runs, if any."""
    options = wrapper.options
    flags: set[str] = set()
    at = index + 1
    options_end = False
    while at < len(argv):
        item = argv[at]
        if item == "--":
            at += 1
            options_end = True
            break
        if wrapper.assignments and _assignment(item):
            at += 1
            continue
        if item.startswith(OPEN):
            # Fails closed: the value could start with "-" (see _Unverifiable).
            raise _Unverifiable(at, name, item, templated=True)
        if not item.startswith("-") or (item == "-" and name != "env"):
            break
        if item.startswith("--"):
            at = _long(argv, at, name, options, flags, found)
        else:
            at = _cluster(argv, at, name, options, flags, found)
    if flags & set(wrapper.shell_flags):
        found.extend(
            CodeItem(rest, f"part of the command line {name} hands to a shell", "joined")
            for rest in range(at, len(argv))
        )
        return None
    while wrapper.assignments and at < len(argv) and _assignment(argv[at]):
        at += 1
    for operand in range(at, min(at + wrapper.operands, len(argv))):
        if argv[operand].startswith(OPEN) and not options_end:
            raise _Unverifiable(operand, name, argv[operand], templated=True)
    at += wrapper.operands
    return at if at < len(argv) else None


def _assignment(item: str) -> bool:
    """Whether ``env`` or ``sudo`` reads ``item`` as ``NAME=VALUE``.

    Both take any item holding a ``=`` (``[env, A-B=1, sh, -c, SCRIPT]``
    runs sh), whatever the name. An item with a template in the name is read
    as the program instead, and so refused: the output decides what it is.
    """
    name, equals, _value = item.partition("=")
    return bool(equals) and not name.startswith("-") and OPEN not in name


def _powershell(argv: Sequence[str], index: int, name: str) -> list[CodeItem]:
    """PowerShell: ``-Command`` (every remaining item), ``-EncodedCommand``, ``-File``."""
    at = index + 1
    while at < len(argv):
        item = argv[at]
        if not item.startswith("-") or item == "-":
            break
        option = item[1:].lower()
        if option in ("c", "command", "cwa", "commandwithargs") or (
            len(option) >= 3 and "command".startswith(option)
        ):
            everything = option in ("c", "command") or "command".startswith(option)
            last = len(argv) if everything else at + 2
            return [
                CodeItem(rest, f"the command {name} runs (after {item})", "joined")
                for rest in range(at + 1, min(last, len(argv)))
            ]
        if option in ("e", "ec", "encodedcommand"):
            return [CodeItem(at + 1, f"the command {name} runs (after {item})")]
        if option in ("f", "file"):
            return [CodeItem(at + 1, f"the script file {name} runs", "program")]
        if option in ("ex", "ep", "executionpolicy", "wd", "workingdirectory", "settingsfile"):
            at += 1
        at += 1
    if at >= len(argv):
        return []
    if name == "powershell":  # Windows PowerShell: operands are the command
        return [
            CodeItem(rest, f"the command {name} runs", "joined") for rest in range(at, len(argv))
        ]
    return [CodeItem(at, f"the script file {name} runs", "program")]


_SSH_TAKES = "BbcDEeFIiJLlmOoPpQRSWw"


def _ssh(argv: Sequence[str], index: int) -> list[CodeItem]:
    """ssh: the host (``-oProxyCommand=...`` there is an option) and the remote command."""
    at = index + 1
    while at < len(argv) and argv[at].startswith("-") and argv[at] != "--":
        letters = argv[at][1:]
        at += 1
        for position, letter in enumerate(letters):
            if letter in _SSH_TAKES:
                if not letters[position + 1 :]:
                    at += 1
                break
    if at < len(argv) and argv[at] == "--":
        at += 1
    if at >= len(argv):
        return []
    found = [CodeItem(at, "the host ssh connects to", "program")]
    found.extend(
        CodeItem(rest, "part of the command ssh runs on the remote host", "joined")
        for rest in range(at + 1, len(argv))
    )
    return found
