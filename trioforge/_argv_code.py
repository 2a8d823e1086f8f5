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
after it a code item, refused with the option named. Shells are the
exception where it is safe: their letters are flags but for ``-o``/``-O``
(and ``-R``/``-T``, which take an argument in some shells), and their long
options take no argument but ``--rcfile``/``--init-file``.

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
class _Options:
    """How a program reads its options; letters are short options.

    Attributes:
        code: options whose argument is code (``-c CODE``, ``-cCODE``).
        names: options whose argument names code to load (``python -m``).
        takes: other options with an argument, in the same item or the next.
        attached: options whose optional argument is the rest of the item.
        digits: options followed by optional digits, then maybe more options
            (``perl -l0e``).
        long_code: long options whose argument is code.
        long_takes: long options with an argument (``--rcfile FILE``).
        shell_flag: a flag that makes the first operand the script (``sh -c``).
        no_script: a flag after which operands are arguments (``sh -s``).
        code_ends: whether the options end at the code (``python -c CODE -x``:
            ``-x`` is an argument of the code).
        inline: whether code can be in the option's own item (``-cCODE``);
            when not, a code option with more letters is a flag (``node -pe``).
        flags: short options without an argument; None takes any other
            letter for one (shells: their letters are flags, but for ``-o``).
        long_flags: long options without an argument (or with one only after
            ``=``); None takes any other long option for one.
        shell_long: long options that hand the rest to a shell (``sudo --shell``).
    """

    code: str = ""
    names: str = ""
    takes: str = ""
    attached: str = ""
    digits: str = ""
    long_code: frozenset[str] = frozenset()
    long_takes: frozenset[str] = frozenset()
    shell_flag: str = ""
    no_script: str = ""
    code_ends: bool = False
    inline: bool = True
    flags: str | None = ""
    long_flags: frozenset[str] | None = frozenset({"--help", "--version"})
    shell_long: frozenset[str] = frozenset()


def _words(text: str, prefix: str = "--") -> frozenset[str]:
    """The words of ``text`` (long options written without their ``--``), each after ``prefix``."""
    return frozenset(f"{prefix}{word}" for word in text.split())


_SHELL = _Options(
    shell_flag="c",
    no_script="s",
    takes="oO",
    long_takes=_words("rcfile init-file"),
    code_ends=True,
    # Any other letter is a flag, except two that take an argument in some
    # shells and are flags in others (ksh93 -R FILE, mksh -T TTY, bash -T).
    flags="".join(sorted(set(string.ascii_letters) - set("oORT"))),
    long_flags=None,  # bash's are exact and take no argument; zsh's set options
)
_PYTHON = _Options(
    code="c",
    names="m",
    takes="WX",
    code_ends=True,
    flags="bBdEhiIOPqRsSuvVx?",
    long_takes=_words("check-hash-based-pycs jit"),
    long_flags=_words("help version help-env help-xoptions help-all info"),
)
_NODE = _Options(
    code="ep",
    names="r",
    takes="C",
    long_code=_words("eval print require import loader experimental-loader"),
    long_takes=_words(
        "conditions title env-file input-type inspect-port debug-port redirect-warnings "
        "unhandled-rejections dns-result-order icu-data-dir openssl-config report-dir "
        "report-directory report-filename report-signal stack-trace-limit watch-path "
        "test-reporter test-reporter-destination test-name-pattern diagnostic-dir "
        "max-http-header-size experimental-default-type max-old-space-size "
        "max-semi-space-size stack-size"
    ),
    long_flags=_words(
        "help version check interactive inspect inspect-brk inspect-wait no-warnings "
        "enable-source-maps trace-warnings trace-deprecation trace-uncaught no-deprecation "
        "throw-deprecation pending-deprecation preserve-symlinks preserve-symlinks-main "
        "abort-on-uncaught-exception expose-gc watch test experimental-vm-modules "
        "experimental-strip-types experimental-transform-types no-experimental-strip-types "
        "frozen-intrinsics zero-fill-buffers jitless no-addons trace-exit trace-sync-io "
        "cpu-prof heap-prof prof insecure-http-parser v8-options harmony"
    ),
    flags="chiv",
    inline=False,
)
_PERL = _Options(
    code="eE",
    names="Mm",
    attached="CdDFix",
    digits="0l",
    takes="I",
    flags="acfgnpsStTuUvVwWXh",
)
_RUBY = _Options(
    code="e",
    names="r",
    takes="CEI",
    attached="FKxi",
    digits="0TW",
    flags="acdhlnpsSUvwy",
    long_takes=_words("encoding external-encoding internal-encoding enable disable dump"),
    long_flags=_words("help version verbose copyright yydebug jit yjit backtrace-limit"),
)
_PHP = _Options(
    code="rBRE",
    names="Ff",
    takes="cdtzS",
    flags="ahHilmnqsvwe",
    long_code=_words("process-begin process-code process-end"),
    long_takes=_words("php-ini define docroot zend-extension rf rc re rz ri"),
    long_flags=_words(
        "help version interactive no-php-ini info hide-args no-header php-modules "
        "syntax-check no-chdir strip ini"
    ),
)
_LUA = _Options(code="e", names="l", flags="ivEW")
_EVAL = _Options(
    code="e",
    takes="ls",
    flags="i",
    long_flags=_words(
        "help version verbose vanilla no-environ no-site-file no-init-file no-restore "
        "no-save save restore default-packages"
    ),
)
_FISH = _Options(
    code="cC",
    takes="dofp",
    long_code=_words("command init-command"),
    long_takes=_words("debug debug-output features profile profile-startup"),
    long_flags=_words(
        "help version interactive login no-execute private no-config print-rusage-self "
        "print-debug-categories"
    ),
    flags="hilnNPv",
    code_ends=True,
)

_SHELLS = _words("sh bash rbash dash zsh ksh ksh93 mksh pdksh oksh ash yash posh csh tcsh", "")
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
        _Options(
            code="S",
            takes="uCPLUa",
            flags="i0v",
            long_code=_words("split-string"),
            long_takes=_words("unset chdir argv0"),
            long_flags=_words(
                "help version ignore-environment null debug default-signal ignore-signal "
                "block-signal list-signal-handling"
            ),
        ),
        assignments=True,
    ),
    "nice": _Wrapper(_Options(takes="n", digits="0123456789", long_takes=_words("adjustment"))),
    "nohup": _Wrapper(),
    "setsid": _Wrapper(_Options(flags="cfwhV", long_flags=_words("help version ctty fork wait"))),
    "timeout": _Wrapper(
        _Options(
            takes="sk",
            flags="fpv",
            long_takes=_words("signal kill-after"),
            long_flags=_words("help version foreground preserve-status verbose"),
        ),
        operands=1,
    ),
    "stdbuf": _Wrapper(_Options(takes="ioe", long_takes=_words("input output error"))),
    "xargs": _Wrapper(
        _Options(
            takes="aEdILnPsJRS",
            attached="ei",
            digits="l",
            flags="0oprtx",
            long_takes=_words("arg-file delimiter max-args max-procs max-chars process-slot-var"),
            long_flags=_words(
                "help version null open-tty interactive no-run-if-empty show-limits verbose "
                "exit eof replace max-lines"
            ),
        )
    ),
    "sudo": _Wrapper(
        _Options(
            takes="CDghprRtTUu",
            flags="AbBEHiKklnNPsSvV",
            long_takes=_words(
                "close-from chdir group host prompt chroot role type command-timeout "
                "other-user user"
            ),
            long_flags=_words(
                "help version askpass background bell preserve-env set-home remove-timestamp "
                "reset-timestamp list non-interactive preserve-groups stdin validate no-update"
            ),
            shell_long=_words("shell login"),
        ),
        shell_flags="is",
        assignments=True,
    ),
    "doas": _Wrapper(_Options(takes="Cua", flags="nLs"), shell_flags="s"),
    "time": _Wrapper(
        _Options(
            takes="fo",
            flags="apvqVhl",
            long_takes=_words("format output"),
            long_flags=_words("help version append portability verbose quiet"),
        )
    ),
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
    flagged = options.long_flags or frozenset()
    known = options.long_code | options.long_takes | flagged | options.shell_long
    option = _long_name(written, known)
    if option is None:
        if options.long_flags is None:
            return at + 1
        raise _Unverifiable(at, name, written)
    if option in options.long_code:
        target = at if equals else at + 1
        found.append(CodeItem(target, f"the code {name} runs (after {written})"))
        return target + 1
    if option in options.shell_long:
        flags.add("s")
    if option in options.long_takes and not equals:
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
    known = options.flags
    if known is None:
        return True
    if letter in options.shell_flag or letter in options.no_script:
        return True
    return letter in known or (letter in options.code or letter in options.names)


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
