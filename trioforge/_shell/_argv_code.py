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
import string
from collections.abc import Sequence
from typing import Literal

import attrs

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


@attrs.frozen
class _Long:
    """A program's long options (each with its ``--``); see :data:`_LONG_OPTIONS`.

    Attributes:
        code: options whose argument is code (``--eval CODE``, ``--eval=CODE``).
        takes: other options with an argument, after ``=`` or in the next item.
        flags: options without one (or with one only after ``=``).
        shell: options that hand the remaining items to a shell (``sudo --shell``).
    """

    code: frozenset[str] = frozenset()
    takes: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset(("--help", "--version"))
    shell: frozenset[str] = frozenset()


@attrs.frozen
class _Options:
    """How a program reads its options; letters are short options.

    Attributes:
        code: options whose argument is code (``-c CODE``, ``-cCODE``).
        names: options whose argument names code to load (``python -m``).
        takes: other options with an argument, in the same item or the next.
        attached: options whose optional argument is the rest of the item.
        digits: options followed by optional digits, then maybe more options
            (``perl -l0e``).
        flags: options without an argument; any other letter is unknown.
        long: the long options; None takes any long option for a flag
            (shells), :class:`_Long` knows only its own.
        shell_flag: a flag that makes the first operand the script (``sh -c``).
        no_script: a flag after which operands are arguments (``sh -s``).
        code_ends: whether the options end at the code (``python -c CODE -x``:
            ``-x`` is an argument of the code).
        inline: whether code can be in the option's own item (``-cCODE``);
            when not, a code option with more letters is a flag (``node -pe``).
    """

    code: str = ""
    names: str = ""
    takes: str = ""
    attached: str = ""
    digits: str = ""
    flags: str = ""
    long: _Long | None = _Long()
    shell_flag: str = ""
    no_script: str = ""
    code_ends: bool = False
    inline: bool = True


# The long options of each program, from its manual: "program kind names...".
# GNU getopt_long takes unique abbreviations, so the lists are complete.
_LONG_OPTIONS = """python  takes check-hash-based-pycs jit
python  flags help version help-env help-xoptions help-all info
node    code  eval print require import loader experimental-loader
node    takes conditions title env-file input-type inspect-port debug-port redirect-warnings
node    takes unhandled-rejections dns-result-order icu-data-dir openssl-config report-dir
node    takes report-directory report-filename report-signal stack-trace-limit watch-path
node    takes test-reporter test-reporter-destination test-name-pattern diagnostic-dir
node    takes max-http-header-size experimental-default-type max-old-space-size stack-size
node    takes max-semi-space-size
node    flags help version check interactive inspect inspect-brk inspect-wait no-warnings
node    flags enable-source-maps trace-warnings trace-deprecation trace-uncaught no-deprecation
node    flags throw-deprecation pending-deprecation preserve-symlinks preserve-symlinks-main
node    flags abort-on-uncaught-exception expose-gc watch test experimental-vm-modules
node    flags experimental-strip-types experimental-transform-types no-experimental-strip-types
node    flags frozen-intrinsics zero-fill-buffers jitless no-addons trace-exit trace-sync-io
node    flags cpu-prof heap-prof prof insecure-http-parser v8-options harmony
ruby    takes encoding external-encoding internal-encoding enable disable dump
ruby    flags help version verbose copyright yydebug jit yjit backtrace-limit
php     code  process-begin process-code process-end
php     takes php-ini define docroot zend-extension rf rc re rz ri
php     flags help version interactive no-php-ini info hide-args no-header php-modules
php     flags syntax-check no-chdir strip ini
eval    flags help version verbose vanilla no-environ no-site-file no-init-file no-restore
eval    flags no-save save restore default-packages
fish    code  command init-command
fish    takes debug debug-output features profile profile-startup
fish    flags help version interactive login no-execute private no-config print-rusage-self
fish    flags print-debug-categories
env     code  split-string
env     takes unset chdir argv0
env     flags help version ignore-environment null debug default-signal ignore-signal
env     flags block-signal list-signal-handling
nice    takes adjustment
setsid  flags help version ctty fork wait
timeout takes signal kill-after
timeout flags help version foreground preserve-status verbose
stdbuf  takes input output error
xargs   takes arg-file delimiter max-args max-procs max-chars process-slot-var
xargs   flags help version null open-tty interactive no-run-if-empty show-limits verbose exit
xargs   flags eof replace max-lines
sudo    takes close-from chdir group host prompt chroot role type command-timeout other-user
sudo    takes user
sudo    flags help version askpass background bell preserve-env set-home remove-timestamp
sudo    flags reset-timestamp list non-interactive preserve-groups stdin validate no-update
sudo    shell shell login
time    takes format output
time    flags help version append portability verbose quiet
"""


def _long_options(table: str) -> dict[str, _Long]:
    """:data:`_LONG_OPTIONS` read into one :class:`_Long` per program."""
    kinds: dict[str, dict[str, set[str]]] = {}
    for line in table.splitlines():
        program, kind, *names = line.split()
        kinds.setdefault(program, {}).setdefault(kind, set()).update(f"--{n}" for n in names)
    return {
        program: _Long(**{kind: frozenset(names) for kind, names in by_kind.items()})
        for program, by_kind in kinds.items()
    }


_LONG = _long_options(_LONG_OPTIONS)
# Shells: any letter but -o/-O is a flag, except -R and -T, which take an
# argument in some shells (ksh93, mksh) and not in others (bash -T).
_SHELL_FLAGS = "".join(sorted(set(string.ascii_letters) - set("oORT")))
# Their long options are flags (bash's are exact, zsh's set options) but two.
_SHELL_TAKES = frozenset(("--rcfile", "--init-file"))
_SHELL = _Options(
    takes="oO", flags=_SHELL_FLAGS, long=None, shell_flag="c", no_script="s", code_ends=True
)
_PYTHON = _Options(
    "c", "m", "WX", flags="bBdEhiIOPqRsSuvVx?", long=_LONG["python"], code_ends=True
)
_NODE = _Options("ep", "r", "C", flags="chiv", long=_LONG["node"], inline=False)
_PERL = _Options("eE", "Mm", "I", "CdDFix", "0l", flags="acfgnpsStTuUvVwWXh")
_RUBY = _Options("e", "r", "CEI", "FKxi", "0TW", flags="acdhlnpsSUvwy", long=_LONG["ruby"])
_PHP = _Options("rBRE", "Ff", "cdtzS", flags="ahHilmnqsvwe", long=_LONG["php"])
_LUA = _Options("e", "l", flags="ivEW")
_EVAL = _Options("e", takes="ls", flags="i", long=_LONG["eval"])
_FISH = _Options("cC", takes="dofp", flags="hilnNPv", long=_LONG["fish"], code_ends=True)

_SHELLS = frozenset(
    ("sh", "bash", "rbash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "oksh", "ash", "yash")
) | frozenset(("posh", "csh", "tcsh"))
_INTERPRETERS: dict[str, _Options] = {
    "node": _NODE,
    "nodejs": _NODE,
    "bun": _NODE,
    "jruby": _RUBY,
    "luajit": _LUA,
    "rscript": _EVAL,
    "osascript": _EVAL,
    "fish": _FISH,
}
_VERSIONED: tuple[tuple[re.Pattern[str], _Options], ...] = (
    (re.compile(r"(?:python|pypy)(?:\d+(?:\.\d+)*t?)?"), _PYTHON),
    (re.compile(r"perl(?:\d+(?:\.\d+)*)?"), _PERL),
    (re.compile(r"ruby(?:\d+(?:\.\d+)*)?"), _RUBY),
    (re.compile(r"php(?:\d+(?:\.\d+)*)?"), _PHP),
    (re.compile(r"lua(?:\d+(?:\.\d+)*)?"), _LUA),
)
_POWERSHELLS = frozenset({"pwsh", "pwsh-preview", "powershell"})


@attrs.frozen
class _Wrapper:
    """A program that runs another: its options, then ``operands`` items, then the program.

    ``shell_flags``: flags after which the remaining items go to a shell as
    one command line (``sudo -s``). ``assignments``: whether ``NAME=VALUE``
    items may come before the program (``env``, ``sudo``).
    """

    options: _Options = _Options()
    operands: int = 0
    shell_flags: str = ""
    assignments: bool = False


_WRAPPERS: dict[str, _Wrapper] = {
    "env": _Wrapper(
        _Options("S", takes="uCPLUa", flags="i0v", long=_LONG["env"]), assignments=True
    ),
    "nice": _Wrapper(_Options(takes="n", digits="0123456789", long=_LONG["nice"])),
    "nohup": _Wrapper(),
    "setsid": _Wrapper(_Options(flags="cfwhV", long=_LONG["setsid"])),
    "timeout": _Wrapper(_Options(takes="sk", flags="fpv", long=_LONG["timeout"]), operands=1),
    "stdbuf": _Wrapper(_Options(takes="ioe", long=_LONG["stdbuf"])),
    "xargs": _Wrapper(
        _Options(
            takes="aEdILnPsJRS", attached="ei", digits="l", flags="0oprtx", long=_LONG["xargs"]
        )
    ),
    "sudo": _Wrapper(
        _Options(takes="CDghprRtTUu", flags="AbBEHiKklnNPsSvV", long=_LONG["sudo"]),
        shell_flags="is",
        assignments=True,
    ),
    "doas": _Wrapper(_Options(takes="Cua", flags="nLs"), shell_flags="s"),
    "time": _Wrapper(_Options(takes="fo", flags="apvqVhl", long=_LONG["time"])),
}


class _Unverifiable(Exception):
    """An option we do not know: from ``at`` on, we cannot tell what the program reads."""

    def __init__(self, at: int, name: str, option: str) -> None:
        super().__init__(option)
        self.at = at
        self.name = name
        self.option = option


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
            wrapper = _WRAPPERS.get(name)
            if wrapper is None:
                found.extend(_program(argv, index, name))
                break
            next_index = _wrapped(argv, index, name, wrapper, found)
            if next_index is None:
                break
            index, runner = next_index, name
    except _Unverifiable as unknown:
        reads = (
            f"past an option trioforge does not know ({unknown.option!r} of {unknown.name}), "
            f"so it cannot tell which item {unknown.name} runs or reads as code"
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
    if name in _SHELLS:
        return _read(argv, index, name, _SHELL)
    if name in _POWERSHELLS:
        return _powershell(argv, index, name)
    if name == "ssh":
        return _ssh(argv, index)
    options = _INTERPRETERS.get(name)
    if options is None:
        options = next((opts for pattern, opts in _VERSIONED if pattern.fullmatch(name)), None)
    return [] if options is None else _read(argv, index, name, options)


def _read(argv: Sequence[str], index: int, name: str, options: _Options) -> list[CodeItem]:
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
    options: _Options,
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
        return at + 2 if written in _SHELL_TAKES and not equals else at + 1
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
    options: _Options,
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


def _is_flag(letter: str, options: _Options) -> bool:
    """Whether ``letter`` is a short option without an argument."""
    flags = (options.flags, options.shell_flag, options.no_script, options.code, options.names)
    return any(letter in known for known in flags)


def _wrapped(
    argv: Sequence[str], index: int, name: str, wrapper: _Wrapper, found: list[CodeItem]
) -> int | None:
    """Skip a wrapper's options and operands; the index of the program it runs, if any."""
    options = wrapper.options
    flags: set[str] = set()
    at = index + 1
    while at < len(argv):
        item = argv[at]
        if item == "--":
            at += 1
            break
        if wrapper.assignments and _assignment(item):
            at += 1
            continue
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
