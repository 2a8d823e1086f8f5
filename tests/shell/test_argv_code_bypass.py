"""The argv-as-code check reads wrappers' options the way they do, and fails closed on others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import trioforge
from trioforge import WorkflowFileError, load_workflow
from trioforge._shell._argv_code import code_items

T = "${{ tasks.produce.outputs.evil }}"
WORKFLOW = """\
tasks:
  produce:
    run: echo 'evil=touch PWNED' >> "$TRIOFORGE_OUTPUT"
  consume:
    needs: [produce]
    cmd: {cmd}
"""


def flow(argv: list[str]) -> str:
    """The workflow whose task ``consume`` runs ``argv`` (a JSON list is a YAML flow list)."""
    return WORKFLOW.format(cmd=json.dumps(argv))


def problems(argv: list[str]) -> list[str]:
    """The messages of the problems the loader finds when ``consume`` runs ``argv``."""
    with pytest.raises(WorkflowFileError) as info:
        load_workflow("w.yaml", text=flow(argv))
    return [problem.message for problem in info.value.problems]


def refusal(argv: list[str]) -> str:
    """The one problem reported for the template, the last item of ``argv``."""
    found = problems(argv)
    assert len(found) == 1, found
    expected = f"item {len(argv)} of 'cmd' of task 'consume' is "
    assert found[0].startswith(expected), found[0]
    return found[0]


SH = ["sh", "-c", T]
# Each wrapper with an option that takes an argument, in every spelling the
# wrapper accepts: the program after it is sh, and the template is its script.
KNOWN_SPELLINGS = {
    "stdbuf": [["--output", "L"], ["--output=L"], ["-oL"], ["-o", "L"], ["--out", "L"]],
    "stdbuf --error": [["--error", "L"], ["--error=L"], ["-eL"], ["-e", "L"], ["-i0", "-eL"]],
    "time --format": [["--format", "%e"], ["--format=%e"], ["-f%e"], ["-f", "%e"], ["-pqf", "%e"]],
    "time --output": [["--output", "F"], ["--output=F"], ["-oF"], ["-o", "F"], ["-apo", "F"]],
    "xargs --max-args": [["--max-args", "1"], ["--max-args=1"], ["-n1"], ["-n", "1"]],
    "xargs bundled": [["-0rn1"], ["-0rn", "1"], ["-0", "-r", "-n", "1"], ["-txP", "2"]],
    "xargs --arg-file": [["--arg-file", "F"], ["--arg-file=F"], ["-aF"], ["-a", "F"]],
    "xargs --delimiter": [["--delimiter", "x"], ["--delimiter=x"], ["-dx"], ["-d", "x"]],
    "sudo": [["--user", "root"], ["--user=root"], ["-uroot"], ["-u", "root"], ["-nu", "root"]],
    "sudo --chdir": [["--chdir", "/"], ["--chdir=/"], ["-D/"], ["-D", "/"], ["-nED", "/"]],
    "env": [["--unset", "X"], ["--unset=X"], ["-uX"], ["-u", "X"], ["-iu", "X"], ["--un", "X"]],
    "env --chdir": [["--chdir", "/"], ["--chdir=/"], ["-C/"], ["-C", "/"], ["-0vC", "/"]],
    "nice": [["--adjustment", "5"], ["--adjustment=5"], ["-n5"], ["-n", "5"], ["-10"]],
    "timeout": [["--signal", "KILL", "5"], ["--signal=KILL", "5"], ["-sKILL", "5"]],
    "timeout -k": [["-k", "1", "5"], ["-vk", "1", "5"], ["--kill-after", "1", "5"]],
    "doas": [["-u", "root"], ["-uroot"], ["-nu", "root"], ["-C", "conf"]],
}
KNOWN = [
    pytest.param([name.split()[0], *option, *SH], id=f"{name}:{' '.join(option)}")
    for name, spellings in KNOWN_SPELLINGS.items()
    for option in spellings
]


@pytest.mark.parametrize("argv", KNOWN)
def test_a_wrapper_option_with_an_argument_does_not_hide_the_script(argv: list[str]) -> None:
    """`[stdbuf, --output, L, sh, -c, T]` (in any spelling): the template is sh's script."""
    message = refusal(argv)
    assert "is the script sh runs (after -c)" in message


@pytest.mark.parametrize(
    ("argv", "reads"),
    [
        (["python3", "--check-hash-based-pycs", "always", "-c", T], "the code python3 runs"),
        (["python3", "--check-hash-based-pycs=always", "-c", T], "the code python3 runs"),
        (["python3", "-X", "dev", "-c", T], "the code python3 runs"),
        (["python3", "-Xdev", "-c", T], "the code python3 runs"),
        (["python3", "-bBW", "ignore", "-c", T], "the code python3 runs"),
        (["python3", "-uc", T], "the code python3 runs"),
        (["node", "--inspect-port", "0", "-e", T], "the code node runs"),
        (["node", "--inspect-port=0", "-e", T], "the code node runs"),
        (["node", "--max-old-space-size", "64", "-e", T], "the code node runs"),
        (["node", "-C", "dev", "-e", T], "the code node runs"),
        (["sudo", "--user", "root", "python3", "-c", T], "the code python3 runs"),
        (["sudo", "--shell", "echo", T], "part of the command line sudo hands to a shell"),
        (["sudo", "--login", "echo", T], "part of the command line sudo hands to a shell"),
        (["sudo", "--sh", "echo", T], "part of the command line sudo hands to a shell"),
        (["env", "--split-string", T], "the code env runs"),
        (["env", "--split", T], "the code env runs"),
        (["env", f"--split={T}"], "the code env runs"),
    ],
)
def test_interpreter_options_with_an_argument_do_not_hide_the_code(
    argv: list[str], reads: str
) -> None:
    """A long or bundled option with an argument is skipped with its argument, not as the code."""
    assert reads in refusal(argv)


UNKNOWN = [
    (["stdbuf", "--frobnicate", "L", *SH], "--frobnicate", "stdbuf"),
    (["stdbuf", "--frobnicate=L", *SH], "--frobnicate", "stdbuf"),
    (["stdbuf", "-zL", *SH], "-z", "stdbuf"),
    (["stdbuf", "-z", "L", *SH], "-z", "stdbuf"),
    (["time", "--frobnicate", "%e", *SH], "--frobnicate", "time"),
    (["time", "-pZ", "%e", *SH], "-Z", "time"),
    (["xargs", "--max", "1", *SH], "--max", "xargs"),  # ambiguous: --max-args, --max-procs...
    (["xargs", "-0Z1", *SH], "-Z", "xargs"),
    (["sudo", "--frobnicate", "root", *SH], "--frobnicate", "sudo"),
    (["sudo", "-nZ", "root", *SH], "-Z", "sudo"),
    (["env", "--frobnicate=1", *SH], "--frobnicate", "env"),
    (["nice", "-Z", "5", *SH], "-Z", "nice"),
    (["nohup", "--frobnicate", *SH], "--frobnicate", "nohup"),
    (["setsid", "--frobnicate", "x", *SH], "--frobnicate", "setsid"),
    (["timeout", "--frobnicate", "1", "5", *SH], "--frobnicate", "timeout"),
    (["doas", "-Z", "root", *SH], "-Z", "doas"),
    (["python3", "--frobnicate", "always", "-c", T], "--frobnicate", "python3"),
    (["python3", "-Z", "x", "-c", T], "-Z", "python3"),
    (["node", "--frobnicate", "0", "-e", T], "--frobnicate", "node"),
    (["node", "--frobnicate=0", T], "--frobnicate", "node"),
    (["perl", "-Z", "x", "-e", T], "-Z", "perl"),
    (["ruby", "--frobnicate", "x", "-e", T], "--frobnicate", "ruby"),
    (["stdbuf", "--frobnicate", T], "--frobnicate", "stdbuf"),
    (["stdbuf", f"--frobnicate={T}"], "--frobnicate", "stdbuf"),
]


@pytest.mark.parametrize(
    ("argv", "option", "program"), [pytest.param(*case, id=" ".join(case[0])) for case in UNKNOWN]
)
def test_an_unknown_option_makes_the_rest_unverifiable(
    argv: list[str], option: str, program: str
) -> None:
    """An option the table lacks: a template anywhere after it is refused, naming the option."""
    message = refusal(argv)
    assert f"past an option trioforge does not know ({option!r} of {program})" in message
    assert f'through env: {{VALUE: "{T}"}} and read $VALUE' in message


@pytest.mark.parametrize(
    "argv",
    [
        ["stdbuf", "-oL", "grep", "-e", "x", T],
        ["stdbuf", "--output", "L", "echo", T],
        ["xargs", "--max-args", "1", "echo", T],
        ["time", "--format", "%e", "echo", T],
        ["sudo", "--user", "root", "echo", T],
        ["nice", "-n", "5", "echo", T],
        ["timeout", "--signal=KILL", "5", "echo", T],
        ["python3", "-u", "tool.py", T],
        ["python3", "-X", "dev", "-c", "import sys; print(sys.argv[1])", T],
        ["node", "--no-warnings", "app.js", T],
        ["bash", "--norc", "-euo", "pipefail", "-c", 'echo "$1"', "bash", T],
        ["env", "--chdir=/", "A=1", "sh", "-c", 'echo "$1"', "sh", T],
    ],
)
def test_known_options_keep_data_arguments_allowed(argv: list[str]) -> None:
    """Where every option is known, a template that is only data for the program loads."""
    workflow = load_workflow("w.yaml", text=flow(argv))
    assert list(workflow) == ["produce", "consume"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m trioforge ARGS`` in ``cwd``, importing this trioforge."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    package_root = str(Path(trioforge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "trioforge", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_stdbuf_bypass_no_longer_runs_an_output(tmp_path: Path) -> None:
    """`[stdbuf, --output, L, sh, -c, T]` fails validation, so `touch PWNED` never runs."""
    (tmp_path / "w.yaml").write_text(flow(["stdbuf", "--output", "L", *SH]))
    validated = _cli("validate", "w.yaml", cwd=tmp_path)
    ran = _cli("run", "w.yaml", cwd=tmp_path)
    assert (validated.returncode, ran.returncode) == (2, 2), validated.stdout + ran.stdout
    assert "item 6 of 'cmd' of task 'consume' is the script sh runs" in validated.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["timeout", T, "L", "sh", "-c", "echo hi"],
        ["env", T, "sh", "-c", "echo hi"],
        ["nice", T, "sh", "-c", "echo hi"],
        ["stdbuf", T, "sh", "-c", "echo hi"],
    ],
)
def test_a_template_where_a_wrapper_reads_options_is_refused(argv: list[str]) -> None:
    """A template where a wrapper reads options could be "-k": it and all after are refused."""
    found = problems(argv)
    assert len(found) == 1, found  # the only template, at item 2
    assert "item 2 of 'cmd' of task 'consume' is where" in found[0], found[0]
    assert "reads its options and operands" in found[0]
    assert code_items(argv)[-1].index == len(argv) - 1  # every later item is unverifiable
