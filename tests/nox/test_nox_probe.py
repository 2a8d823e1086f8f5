"""The probe and its public fallback, against a real nox and fixture noxfiles."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from trioforge._nox import NoxError, NoxGraph, NoxInterpreter, probe_graph
from trioforge._nox import _probe as probe_module
from trioforge._nox._fallback import list_graph

Project = Callable[[str], Path]

FIXTURES = Path(__file__).parent / "fixtures"


def requires(graph: NoxGraph) -> dict[str, set[str]]:
    return {session.signature: set(session.requires) for session in graph.sessions}


async def test_probe_resolves_requires_and_parametrizations(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """-s adds what the sessions require; a bare name requires every parametrization."""
    folder = project("graph")
    graph = await probe_graph(sessions=["publish", "test"], cwd=folder, interpreter=interpreter)
    assert requires(graph) == {
        "lint": set(),
        "build(x=1)": set(),
        "build(x=2)": set(),
        "docs": {"build(x=2)", "lint"},
        "publish": {"docs"},
        "test": {"build(x=1)", "build(x=2)"},
    }
    assert graph.source == "probe"


async def test_probe_bare_name_selects_all_parametrizations(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """-s build selects build(x=1) and build(x=2)."""
    graph = await probe_graph(sessions=["build"], cwd=project("graph"), interpreter=interpreter)
    assert graph.signatures == ["build(x=1)", "build(x=2)"]


async def test_probe_default_sessions(project: Project, interpreter: NoxInterpreter) -> None:
    """No selection: nox's default sessions (nox.options.sessions) and what they require."""
    graph = await probe_graph(cwd=project("graph"), interpreter=interpreter)
    assert set(graph.signatures) == {"lint", "build(x=1)", "build(x=2)", "test"}


async def test_probe_selects_by_tag(project: Project, interpreter: NoxInterpreter) -> None:
    """-t slow selects the tagged sessions and what they require."""
    graph = await probe_graph(tags=["slow"], cwd=project("graph"), interpreter=interpreter)
    assert set(graph.signatures) == {"test", "publish", "docs", "lint", "build(x=1)", "build(x=2)"}
    assert graph["test"].tags == ("slow",)


async def test_probe_envdirs_allow_parallel_version_and_hash(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """The probe gives nox's envdirs (shared ones equal), allow_parallel, version and hash."""
    folder = project("graph")
    graph = await probe_graph(
        sessions=["shared", "Shared", "docs"], cwd=folder, interpreter=interpreter
    )
    noxfile = folder / "noxfile.py"
    assert (graph.noxfile, graph.noxfile_sha256, graph.nox_version) == (
        noxfile,
        hashlib.sha256(noxfile.read_bytes()).hexdigest(),
        importlib.metadata.version("nox"),
    )
    assert graph["shared"].envdir == graph["Shared"].envdir == str(folder / ".nox" / "shared")
    assert graph["docs"].envdir == str(folder / ".nox" / "docs")
    assert (graph["docs"].allow_parallel, graph["lint"].allow_parallel) == (True, False)


async def test_probe_with_noxfile_option(
    tmp_path: Path, project: Project, interpreter: NoxInterpreter
) -> None:
    """-f picks a noxfile in another folder; its envdirs are beside it."""
    folder = project("graph")
    graph = await probe_graph(
        sessions=["lint"],
        noxfile=folder / "noxfile.py",
        cwd=tmp_path,
        interpreter=interpreter,
    )
    assert (graph.signatures, graph["lint"].envdir) == (["lint"], str(folder / ".nox" / "lint"))


async def test_unknown_session_is_a_selection_error(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """An unknown session is a one-line selection error naming it and the noxfile."""
    folder = project("graph")
    with pytest.raises(NoxError) as info:
        await probe_graph(sessions=["nope"], cwd=folder, interpreter=interpreter)
    assert (info.value.kind, str(info.value), info.value.noxfile) == (
        "selection",
        "Sessions not found: nope",
        folder / "noxfile.py",
    )


async def test_broken_noxfile_names_file_and_line(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """A noxfile that raises on import is a noxfile error naming FILE:LINE and the exception."""
    folder = project("broken")
    with pytest.raises(NoxError) as info:
        await probe_graph(cwd=folder, interpreter=interpreter)
    assert (info.value.kind, str(info.value)) == (
        "noxfile",
        f"{folder / 'noxfile.py'}:11: RuntimeError: this noxfile is broken",
    )


async def test_cycle_is_a_selection_error(project: Project, interpreter: NoxInterpreter) -> None:
    """Sessions that require each other give nox's cycle message, on one line."""
    with pytest.raises(NoxError, match="dependency cycle") as info:
        await probe_graph(sessions=["chicken"], cwd=project("cycle"), interpreter=interpreter)
    assert (info.value.kind, len(str(info.value).splitlines())) == ("selection", 1)


async def test_bad_nox_option_is_an_options_error(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """An option nox does not know is reported as nox's own one-line message."""
    with pytest.raises(NoxError, match="unrecognized arguments: --bogus") as info:
        await probe_graph(nox_args=["--bogus"], cwd=project("graph"), interpreter=interpreter)
    assert info.value.kind == "options"


async def test_fallback_gives_the_same_graph(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """The public --list --json route finds the same sessions and direct prerequisites."""
    folder = project("graph")
    probed = await probe_graph(sessions=["publish", "test"], cwd=folder, interpreter=interpreter)
    listed = await list_graph(interpreter, [], [], ["publish", "test"], [], None, folder, 60)
    assert (requires(listed), listed.source, listed.noxfile_sha256) == (
        requires(probed),
        "list-json",
        probed.noxfile_sha256,
    )
    assert (listed["lint"].envdir, listed["docs"].allow_parallel) == (None, None)


async def test_broken_probe_falls_back(
    project: Project, interpreter: NoxInterpreter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that prints no JSON makes probe_graph take the public route."""
    broken = tmp_path / "probe.py"
    broken.write_text("print('not json')\n")
    monkeypatch.setattr(probe_module, "_PROBE_SOURCE", broken)
    graph = await probe_graph(sessions=["docs"], cwd=project("graph"), interpreter=interpreter)
    assert (graph.source, requires(graph)) == (
        "list-json",
        {"lint": set(), "build(x=2)": set(), "docs": {"build(x=2)", "lint"}},
    )


async def test_fallback_reports_selection_errors(
    project: Project, interpreter: NoxInterpreter
) -> None:
    """The public route turns nox's exit status 3 into a selection error."""
    with pytest.raises(NoxError, match="Sessions not found: nope") as info:
        await list_graph(interpreter, [], [], ["nope"], [], None, project("graph"), 60)
    assert info.value.kind == "selection"


GRAPH_WITHOUT_FEATURE = {
    "schema": 1,
    "nox_version": "2025.5.1",
    "python": "p",
    "noxfile": "/n/noxfile.py",
    "noxfile_sha256": "x",
    "features": {"no_dependencies": False, "report": True},
    "sessions": [],
}


@pytest.mark.parametrize(
    "fake",
    [GRAPH_WITHOUT_FEATURE, {"schema": 1, "error": "version", "message": "2025.5.1"}],
)
async def test_nox_without_no_dependencies_is_too_old(
    project: Project,
    interpreter: NoxInterpreter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: dict[str, object],
) -> None:
    """A nox whose options lack --no-dependencies (found by the probe) is a version error."""
    script = tmp_path / "probe.py"
    script.write_text(f"print({json.dumps(json.dumps(fake))})\n")
    monkeypatch.setattr(probe_module, "_PROBE_SOURCE", script)
    with pytest.raises(NoxError, match=r"nox 2025\.5\.1 is too old") as info:
        await probe_graph(cwd=project("graph"), interpreter=interpreter)
    assert info.value.kind == "version"


async def test_missing_interpreter_is_nox_missing(tmp_path: Path) -> None:
    """An interpreter that cannot be started is a clear nox-missing error."""
    missing = NoxInterpreter(str(tmp_path / "no-python"), "test")
    with pytest.raises(NoxError, match="cannot run") as info:
        await probe_graph(cwd=tmp_path, interpreter=missing)
    assert info.value.kind == "nox-missing"
