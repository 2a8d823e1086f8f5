"""The probe started before trioforge's imports (``early_probe``), and collecting it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trioforge._cli._nox_args import early_probe
from trioforge._nox import (
    NoxError,
    NoxInterpreter,
    StartedProbe,
    probe_argv,
    probe_graph,
    start_probe,
)

Project = Callable[[str], Path]


@pytest.fixture(autouse=True)
def tests_nox_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' nox first on PATH, so the probe runs where the tests' nox is."""
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))


def test_a_nox_command_line_starts_the_probe_and_the_block_reaps_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nox -s build` starts the probe and a warm nox; leaving the block kills and reaps both."""
    folder = project("graph")
    monkeypatch.chdir(folder)
    with early_probe(["nox", "-s", "build", "-j", "2", "--timeout", "9"]) as started:
        assert started is not None
        expected = probe_argv(["build"], [], folder / "noxfile.py", [])
        assert (expected, str(folder)) == (started.argv, started.cwd)
        process = started.process
        assert started.spares is not None
        spares = started.spares.idle  # the first session's warm interpreter
    assert process.returncode is not None
    assert [spare.returncode is not None for spare in spares] == [True]


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["run", "ci.yaml"],
        ["nox", "-h"],
        ["nox", "--help"],
        ["nox", "--bogus"],
        ["nox", "-j", "0"],
        ["nox", "-f", "missing.py"],
        ["nox", "--", "-s", "lint"],
    ],
)
def test_anything_else_starts_nothing_and_prints_nothing(
    arguments: list[str],
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Other commands, help, bad options, a missing noxfile, refused nox args: no early probe."""
    monkeypatch.chdir(project("graph"))
    with early_probe(arguments) as started:
        assert started is None
    assert capsys.readouterr() == ("", "")


async def test_collected_probe_gives_the_same_graph(project: Project) -> None:
    """A started probe, collected, gives the graph a probe run afterwards gives."""
    folder = project("graph")
    noxfile = folder / "noxfile.py"
    started = start_probe(probe_argv(["publish"], [], noxfile, []), cwd=folder)
    early = await probe_graph(sessions=["publish"], noxfile=noxfile, cwd=folder, started=started)
    late = await probe_graph(sessions=["publish"], noxfile=noxfile, cwd=folder)
    assert (late.to_json(), 0) == (early.to_json(), started.process.returncode)


async def test_a_probe_started_for_other_arguments_is_closed_not_used(project: Project) -> None:
    """A started probe whose arguments differ is killed and reaped; a fresh probe answers."""
    folder = project("graph")
    noxfile = folder / "noxfile.py"
    started = start_probe(probe_argv(["lint"], [], noxfile, []), cwd=folder)
    graph = await probe_graph(sessions=["publish"], noxfile=noxfile, cwd=folder, started=started)
    assert "publish" in {s.signature for s in graph.sessions}
    assert started.process.returncode is not None


async def test_a_started_probe_that_hangs_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    """A noxfile that hangs as it loads: NoxError at the limit; the probe is killed and reaped."""
    (tmp_path / "noxfile.py").write_text("import time\ntime.sleep(300)\n")
    started = start_probe(probe_argv([], [], tmp_path / "noxfile.py", []), cwd=tmp_path)
    began = time.monotonic()
    with pytest.raises(NoxError, match="did not answer within 1s"):
        await probe_graph(
            noxfile=tmp_path / "noxfile.py", cwd=tmp_path, started=started, time_limit=1.0
        )
    assert time.monotonic() - began < 30
    assert started.process.returncode is not None


def test_close_is_idempotent_and_reaps(tmp_path: Path) -> None:
    """close() kills a running probe, reaps it, and may be called again."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = StartedProbe(NoxInterpreter(sys.executable, "test"), [], str(tmp_path), process)
    started.close()
    started.close()
    assert process.returncode is not None
