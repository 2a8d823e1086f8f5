"""The option tables the argv-as-code check reads argv with (see ``_argv_code``).

For each wrapper (``env``, ``stdbuf``, ``sudo``...) and interpreter
(``python``, ``node``, ``perl``...): which options take an argument, which
take code, which are flags, and the long options from each program's manual.
An option missing here makes the check refuse a template after it (it fails
closed), so adding a program's option is a one-line change here.
"""

from __future__ import annotations

import re
import string

import attrs

__all__ = [
    "INTERPRETERS",
    "POWERSHELLS",
    "SHELL",
    "SHELLS",
    "SHELL_TAKES",
    "VERSIONED",
    "WRAPPERS",
    "Options",
    "Wrapper",
]


@attrs.frozen
class Long:
    """A program's long options (each with its ``--``); see :data:`LONG_OPTIONS`.

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
class Options:
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
            (shells), :class:`Long` knows only its own.
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
    long: Long | None = Long()
    shell_flag: str = ""
    no_script: str = ""
    code_ends: bool = False
    inline: bool = True


# The long options of each program, from its manual: "program kind names...".
# GNU getopt_long takes unique abbreviations, so the lists are complete.
LONG_OPTIONS = """python  takes check-hash-based-pycs jit
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


def _long_options(table: str) -> dict[str, Long]:
    """:data:`LONG_OPTIONS` read into one :class:`Long` per program."""
    kinds: dict[str, dict[str, set[str]]] = {}
    for line in table.splitlines():
        program, kind, *names = line.split()
        kinds.setdefault(program, {}).setdefault(kind, set()).update(f"--{n}" for n in names)
    return {
        program: Long(**{kind: frozenset(names) for kind, names in by_kind.items()})
        for program, by_kind in kinds.items()
    }


LONG = _long_options(LONG_OPTIONS)
# Shells: any letter but -o/-O is a flag, except -R and -T, which take an
# argument in some shells (ksh93, mksh) and not in others (bash -T).
SHELL_FLAGS = "".join(sorted(set(string.ascii_letters) - set("oORT")))
# Their long options are flags (bash's are exact, zsh's set options) but two.
SHELL_TAKES = frozenset(("--rcfile", "--init-file"))
SHELL = Options(
    takes="oO", flags=SHELL_FLAGS, long=None, shell_flag="c", no_script="s", code_ends=True
)
PYTHON = Options("c", "m", "WX", flags="bBdEhiIOPqRsSuvVx?", long=LONG["python"], code_ends=True)
NODE = Options("ep", "r", "C", flags="chiv", long=LONG["node"], inline=False)
PERL = Options("eE", "Mm", "I", "CdDFix", "0l", flags="acfgnpsStTuUvVwWXh")
RUBY = Options("e", "r", "CEI", "FKxi", "0TW", flags="acdhlnpsSUvwy", long=LONG["ruby"])
PHP = Options("rBRE", "Ff", "cdtzS", flags="ahHilmnqsvwe", long=LONG["php"])
LUA = Options("e", "l", flags="ivEW")
EVAL = Options("e", takes="ls", flags="i", long=LONG["eval"])
FISH = Options("cC", takes="dofp", flags="hilnNPv", long=LONG["fish"], code_ends=True)

SHELLS = frozenset(
    ("sh", "bash", "rbash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "oksh", "ash", "yash")
) | frozenset(("posh", "csh", "tcsh"))
INTERPRETERS: dict[str, Options] = {
    "node": NODE,
    "nodejs": NODE,
    "bun": NODE,
    "jruby": RUBY,
    "luajit": LUA,
    "rscript": EVAL,
    "osascript": EVAL,
    "fish": FISH,
}
VERSIONED: tuple[tuple[re.Pattern[str], Options], ...] = (
    (re.compile(r"(?:python|pypy)(?:\d+(?:\.\d+)*t?)?"), PYTHON),
    (re.compile(r"perl(?:\d+(?:\.\d+)*)?"), PERL),
    (re.compile(r"ruby(?:\d+(?:\.\d+)*)?"), RUBY),
    (re.compile(r"php(?:\d+(?:\.\d+)*)?"), PHP),
    (re.compile(r"lua(?:\d+(?:\.\d+)*)?"), LUA),
)
POWERSHELLS = frozenset({"pwsh", "pwsh-preview", "powershell"})


@attrs.frozen
class Wrapper:
    """A program that runs another: its options, then ``operands`` items, then the program.

    ``shell_flags``: flags after which the remaining items go to a shell as
    one command line (``sudo -s``). ``assignments``: whether ``NAME=VALUE``
    items may come before the program (``env``, ``sudo``).
    """

    options: Options = Options()
    operands: int = 0
    shell_flags: str = ""
    assignments: bool = False


WRAPPERS: dict[str, Wrapper] = {
    "env": Wrapper(Options("S", takes="uCPLUa", flags="i0v", long=LONG["env"]), assignments=True),
    "nice": Wrapper(Options(takes="n", digits="0123456789", long=LONG["nice"])),
    "nohup": Wrapper(),
    "setsid": Wrapper(Options(flags="cfwhV", long=LONG["setsid"])),
    "timeout": Wrapper(Options(takes="sk", flags="fpv", long=LONG["timeout"]), operands=1),
    "stdbuf": Wrapper(Options(takes="ioe", long=LONG["stdbuf"])),
    "xargs": Wrapper(
        Options(takes="aEdILnPsJRS", attached="ei", digits="l", flags="0oprtx", long=LONG["xargs"])
    ),
    "sudo": Wrapper(
        Options(takes="CDghprRtTUu", flags="AbBEHiKklnNPsSvV", long=LONG["sudo"]),
        shell_flags="is",
        assignments=True,
    ),
    "doas": Wrapper(Options(takes="Cua", flags="nLs"), shell_flags="s"),
    "time": Wrapper(Options(takes="fo", flags="apvqVhl", long=LONG["time"])),
}
