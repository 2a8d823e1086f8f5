"""Which interpreter runs the user's nox: shebangs, pip's trampoline, pyenv shims, fallbacks."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from trioforge._nox import find_nox_python

# What pyenv writes into ~/.pyenv/shims/nox (pyenv 2.x), with its paths in tmp.
_PYENV_SHIM = """#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${{0##*/}}"

export PYENV_ROOT="{root}"
exec "{root}/libexec/pyenv" exec "$program" "$@"
"""


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _fake_pyenv(root: Path) -> Path:
    """A pyenv under ``root`` whose ``which nox`` names a nox run by this interpreter.

    It records its PYENV_ROOT and working folder in ``root/asked``, and answers
    only in a folder holding ``.python-version`` (as pyenv picks per folder).
    """
    nox = _executable(root / "versions" / "3.x" / "bin" / "nox", f"#!{sys.executable}\n")
    script = (
        "#!/bin/sh\n"
        f'echo "$PYENV_ROOT $PWD $*" > "{root}/asked"\n'
        '[ -f .python-version ] || { echo "pyenv: nox: command not found" >&2; exit 127; }\n'
        f'echo "{nox}"\n'
    )
    _executable(root / "libexec" / "pyenv", script)
    return _executable(root / "shims" / "nox", _PYENV_SHIM.format(root=root))


def test_find_nox_python_reads_the_shebang(tmp_path: Path) -> None:
    """The interpreter of the nox script on PATH is the one named by its shebang."""
    _executable(tmp_path / "nox", f"#!{sys.executable}\nimport nox\n")
    assert sys.executable == find_nox_python(path=str(tmp_path)).python


def test_find_nox_python_reads_pips_trampoline(tmp_path: Path) -> None:
    """The /bin/sh trampoline for long interpreter paths is understood."""
    trampoline = f"#!/bin/sh\n'''exec' \"{sys.executable}\" \"$0\" \"$@\"\n' '''\n"
    _executable(tmp_path / "nox", trampoline)
    assert sys.executable == find_nox_python(path=str(tmp_path)).python


def test_find_nox_python_falls_back_to_sys_executable(tmp_path: Path) -> None:
    """Without a nox script on PATH, the interpreter running trioforge is used."""
    found = find_nox_python(path=str(tmp_path))
    assert (sys.executable, True) == (found.python, "sys.executable" in found.how)


def test_pyenv_shim_first_on_path_is_followed_to_its_nox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pyenv shim first on PATH: the Python of the nox `pyenv which nox` names in cwd."""
    root = tmp_path / "pyenv"
    shim = _fake_pyenv(root)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".python-version").write_text("3.x\n")
    monkeypatch.setenv("PATH", os.pathsep.join([str(shim.parent), os.environ["PATH"]]))
    monkeypatch.delenv("PYENV_ROOT", raising=False)
    found = find_nox_python(cwd=project)
    assert (sys.executable, True) == (found.python, "pyenv" in found.how)
    assert f"{root} {project} which nox" == (root / "asked").read_text().strip()


def test_pyenv_shim_that_finds_no_nox_falls_back_to_sys_executable(tmp_path: Path) -> None:
    """A pyenv shim whose `pyenv which nox` fails here: sys.executable, never bash."""
    shim = _fake_pyenv(tmp_path / "pyenv")
    found = find_nox_python(path=str(shim.parent), cwd=tmp_path)
    assert (sys.executable, True) == (found.python, "sys.executable" in found.how)


def test_other_shell_script_is_not_taken_for_a_python(tmp_path: Path) -> None:
    """A nox script run by a shell that is not pyenv's shim: sys.executable, never the shell."""
    _executable(tmp_path / "nox", '#!/usr/bin/env bash\nexec asdf exec nox "$@"\n')
    found = find_nox_python(path=str(tmp_path))
    assert (sys.executable, True) == (found.python, "sys.executable" in found.how)


def test_env_shebang_with_options_names_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`#!/usr/bin/env -S python3 -I`: the interpreter is python3 on PATH, not the last word."""
    bin_dir = tmp_path / "bin"
    python = bin_dir / "python3"
    bin_dir.mkdir()
    python.symlink_to(sys.executable)
    _executable(tmp_path / "nox", "#!/usr/bin/env -S python3 -I\n")
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    assert str(python) == find_nox_python(path=str(tmp_path)).python
