"""The nox engine's pure parts: reports, limits, argv, the graph values and the pools (no nox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
import trio

import trioforge as tf
from trioforge._nox import (
    SESSIONS_POOL,
    NoxError,
    NoxGraph,
    NoxSession,
    NoxSessionError,
    NoxSessionTask,
    build_workflow,
    parse_retries,
    parse_timeouts,
    session_pools,
)
from trioforge._nox._graph import session_argv
from trioforge._nox._graph_data import envdir_name
from trioforge._nox._probe import check_nox_args, check_version, graph_from_lists
from trioforge._nox._session import NoxSessionResult, judge


def session(signature: str, *requires: str, envdir: str | None = None, **kw: object) -> NoxSession:
    return NoxSession(
        signature=signature,
        signatures=[signature],
        name=signature.split("(", maxsplit=1)[0],
        requires=list(requires),
        envdir=envdir if envdir is not None else f"/p/.nox/{signature}",
        allow_parallel=kw.get("allow_parallel", False),  # type: ignore[arg-type]
        tags=[],
    )


def graph(*sessions: NoxSession) -> NoxGraph:
    return NoxGraph(
        sessions=sessions,
        noxfile=Path("/p/noxfile.py"),
        noxfile_sha256="ab",
        nox_version="2026.10.20",
        python="/venv/bin/python",
    )


def report(result: str, reason: str | None = None) -> bytes:
    entry: dict[str, object] = {
        "name": "s",
        "result": result,
        "reason": reason,
        "duration": 1.5,
        "signatures": [],
    }
    return json.dumps({"result": 1, "sessions": [entry]}).encode()


def judged(data: bytes | None, returncode: int | None) -> NoxSessionResult:
    return judge("s", data, returncode, log_path=Path("s.log"), report_path=Path("r"), attempt=1)


def test_report_success_is_a_result() -> None:
    """A report saying success with exit status 0 is a success result with nox's duration."""
    result = judged(report("success"), 0)
    assert (result.status, result.nox_duration, result.reason) == ("success", 1.5, None)


def test_report_skipped_is_a_result_with_its_reason() -> None:
    """A skipped session (exit status 0 too) is a result, not a failure, and keeps the reason."""
    result = judged(report("skipped", "no python"), 0)
    assert (result.status, result.reason) == ("skipped", "no python")


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (report("failed", "boom"), 1, "failed"),
        (report("aborted"), 1, "aborted"),
        (report("success"), 1, "failed"),
        (None, 0, "error"),
        (b"not json", 1, "error"),
        (json.dumps({"sessions": []}).encode(), 0, "error"),
    ],
)
def test_report_failures(data: bytes | None, code: int, status: str) -> None:
    """Failed, aborted, success with a non-zero exit, or no usable report: a session error."""
    with pytest.raises(NoxSessionError) as info:
        judged(data, code)
    assert (status, code) == (info.value.status, info.value.returncode)


def test_result_json_round_trip() -> None:
    """A session result survives to_json/from_json unchanged."""
    result = judged(report("skipped", "why"), 0)
    assert result == NoxSessionResult.from_json(json.loads(json.dumps(result.to_json())))


def test_timeouts_default_and_patterns_last_match_wins() -> None:
    """A bare value is the default; the last matching PATTERN=SECONDS wins; '=' may be in it."""
    limits = parse_timeouts(["30", "test*=60", "test(x=1)=5"])
    assert [limits.for_session(session(sig)) for sig in ("lint", "test(x=2)", "test(x=1)")] == [
        30.0,
        60.0,
        5.0,
    ]


def test_retries_patterns() -> None:
    """Retries patterns apply like timeouts; no value means None (the executor's default)."""
    retries = parse_retries(["flaky*=3"])
    assert (retries.for_session(session("flaky")), retries.for_session(session("x"))) == (3, None)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "x=", "=5", "nan", "inf"])
def test_bad_timeouts_are_option_errors(value: str) -> None:
    """A timeout that is not a positive finite number of seconds is a clear option error."""
    with pytest.raises(NoxError, match="--timeout") as info:
        parse_timeouts([value])
    assert info.value.kind == "options"


@pytest.mark.parametrize("value", ["-1", "1.5", "x=y"])
def test_bad_retries_are_option_errors(value: str) -> None:
    """Retries must be ints >= 0."""
    with pytest.raises(NoxError, match="--retries"):
        parse_retries([value])


@pytest.mark.parametrize(
    "args",
    [["-s", "x"], ["-sx"], ["--session=x"], ["-t", "a"], ["--report", "f"], ["-j", "2"], ["-l"]],
)
def test_nox_args_that_trioforge_sets_are_refused(args: list[str]) -> None:
    """Selection, listing, parallel and report options in NOX_ARGS are refused, clearly."""
    with pytest.raises(NoxError, match="not allowed") as info:
        check_nox_args(args)
    assert info.value.kind == "options"


def test_nox_args_allowed() -> None:
    """Other nox options, nox's two-letter ones, and anything after -- pass."""
    check_nox_args(["-db", "venv", "-fb", "none", "-ts", "-r", "--envdir", "e", "--", "-s", "x"])


def test_session_argv_puts_posargs_after_the_report() -> None:
    """The session command selects one signature without dependencies; posargs stay last."""
    g = graph(session("a"))
    before, after = session_argv(g, g["a"], ["-r", "--", "-k", "x"])
    expected = (
        ("/venv/bin/python", "-m", "nox", "-r", "-f", "/p/noxfile.py", "-s", "a"),
        ("--no-dependencies",),
        ("--", "-k", "x"),
    )
    assert expected == (before[:-1], before[-1:], after)


def test_build_workflow_dependencies_and_limits(tmp_path: Path) -> None:
    """Each session is a task depending on what it requires, with its own timeout and retries."""
    g = graph(session("a"), session("b", "a"), session("c", "a", "b"))
    wf = build_workflow(
        g,
        report_dir=tmp_path,
        log_dir=tmp_path,
        timeouts=parse_timeouts(["c=9"]),
        retries=parse_retries(["2"]),
    )
    tasks = {tid: task for tid, task in wf.tasks.items() if isinstance(task, NoxSessionTask)}
    assert wf.execution_layers() == [["a"], ["b"], ["c"]]
    assert (
        tasks["a"].session_timeout,
        tasks["c"].session_timeout,
        tasks["c"].retries,
    ) == (None, 9.0, 2)
    assert [task.timeout for task in tasks.values()] == [None, None, None]


def test_build_workflow_refuses_templates_in_args(tmp_path: Path) -> None:
    """A ${{ }} template in a nox argument is refused (the shell task would expand it)."""
    with pytest.raises(NoxError, match="holds"):
        build_workflow(
            graph(session("a")),
            nox_args=["--", "${{ tasks.a.outputs.x }}"],
            report_dir=tmp_path,
            log_dir=tmp_path,
        )


def test_graph_checks_its_own_consistency() -> None:
    """A graph whose session requires an unselected session, or selects twice, is a probe error."""
    with pytest.raises(NoxError, match="requires 'zzz'"):
        graph(session("a", "zzz"))
    with pytest.raises(NoxError, match="two sessions"):
        graph(session("a"), session("a"))


def test_graph_json_round_trip_and_schema() -> None:
    """to_json/from_json keep the graph; another schema is refused."""
    g = graph(session("a"), session("b", "a", allow_parallel=True))
    assert g == NoxGraph.from_json(json.loads(json.dumps(g.to_json())))
    with pytest.raises(NoxError, match="schema"):
        NoxGraph.from_json({**g.to_json(), "schema": 99})
    with pytest.raises(NoxError, match="malformed"):
        NoxGraph.from_json({**g.to_json(), "sessions": [{"signature": 3}]})


def test_fallback_graph_keeps_only_direct_prerequisites() -> None:
    """From closures, a prerequisite that another prerequisite needs is not a direct one."""
    listed: list[dict[str, object]] = [
        {"session": name, "name": name, "tags": []} for name in ("a", "b", "c")
    ]
    closures = {"a": ["a"], "b": ["a", "b"], "c": ["a", "b", "c"]}
    g = graph_from_lists(
        listed, closures, noxfile=Path("/p/noxfile.py"), noxfile_sha256="", version="v", python="p"
    )
    assert [s.requires for s in g.sessions] == [(), ("a",), ("b",)]
    assert (g.source, g.sessions[0].envdir) == ("list-json", None)


def test_envdir_name_like_nox() -> None:
    """Names nox puts in one folder get one key; others stay apart."""
    assert envdir_name("Shared") == envdir_name("shared")
    assert envdir_name("test(x=1)") != envdir_name("test(x=2)")
    assert envdir_name("test(x=1)") == "test-x-1"


@pytest.mark.parametrize("version", ["2026.8.9", "2025.10.1", "nightly"])
def test_old_nox_is_a_version_error(version: str) -> None:
    """A nox older than 2026.8.10 (or one whose version cannot be read) is a version error."""
    with pytest.raises(NoxError, match="too old") as info:
        check_version(version, "noxfile.py")
    assert info.value.kind == "version"


def test_new_enough_nox() -> None:
    """2026.8.10 and later pass."""
    check_version("2026.8.10", None)
    check_version("2026.10.20", None)


async def _simulate(
    g: NoxGraph, *, respect: bool, max_concurrency: int | None = None
) -> dict[str, float]:
    """Run stand-ins (1 s each) with the sessions' pools and dependencies; their start times."""
    workflow = build_workflow(g, report_dir="r", log_dir="l", respect_allow_parallel=respect)
    starts: dict[str, float] = {}
    t0 = trio.current_time()

    async def fn(ctx: tf.TaskContext) -> None:
        starts[ctx.task_id] = trio.current_time() - t0
        await trio.sleep(1)

    stand_in = tf.Workflow("sim")
    for task in workflow.tasks.values():
        assert isinstance(task, NoxSessionTask)
        stand_in.add_task(
            tf.Task(task.id, fn, depends_on=task.depends_on, resources=task.resources)
        )
    executor = tf.WorkflowExecutor(
        stand_in, resources=session_pools(g), max_concurrency=max_concurrency
    )
    await executor.execute_dataflow()
    return starts


async def test_pools_keep_a_shared_envdir_apart(autojump_clock: trio.testing.MockClock) -> None:
    """Two sessions with one envdir run one after the other; a third runs beside them."""
    g = graph(session("a", envdir="/p/.nox/e1"), session("b", envdir="/p/.nox/e1"), session("c"))
    starts = await _simulate(g, respect=False)
    assert (sorted(starts.values()), starts["c"]) == ([0.0, 0.0, 1.0], 0.0)


async def test_pools_run_an_exclusive_session_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under respect_allow_parallel, a session without allow_parallel runs with nothing beside."""
    g = graph(
        session("a", allow_parallel=True),
        session("alone", allow_parallel=False),
        session("b", allow_parallel=True),
    )
    starts = await _simulate(g, respect=True)
    assert sorted(starts.values()) == [0.0, 0.0, 1.0]
    assert starts["alone"] in (0.0, 1.0)
    others = [time for name, time in starts.items() if name != "alone"]
    assert starts["alone"] not in others
    assert await _simulate(g, respect=False) == dict.fromkeys(("a", "alone", "b"), 0.0)


def test_session_pools_and_demands(tmp_path: Path) -> None:
    """Each session holds its envdir's pool; an exclusive one holds the whole sessions pool."""
    g = graph(session("a", envdir="/p/.nox/e"), session("b", envdir="/p/.nox/e"), session("c"))
    pools = session_pools(g)
    assert pools == {"envdir:/p/.nox/e": 1, "envdir:/p/.nox/c": 1, SESSIONS_POOL: 3}
    wf = build_workflow(g, report_dir=tmp_path, log_dir=tmp_path, respect_allow_parallel=True)
    assert wf.tasks["a"].resources == {"envdir:/p/.nox/e": 1, SESSIONS_POOL: 3}  # type: ignore[attr-defined]


def test_errors_are_workflow_errors() -> None:
    """Session failures and nox errors are trioforge WorkflowErrors (the CLI's exit codes)."""
    assert (
        issubclass(NoxSessionError, tf.WorkflowError),
        issubclass(NoxError, tf.WorkflowError),
    ) == (True, True)


def test_report_without_duration() -> None:
    """A report entry without a finite duration still gives a result, with no duration."""
    missing = json.dumps({"sessions": [{"result": "success"}]}).encode()
    infinite = b'{"sessions": [{"result": "success", "duration": Infinity}]}'
    assert [judged(missing, 0).nox_duration, judged(infinite, 0).nox_duration] == [None, None]


def test_result_survives_the_store_codec() -> None:
    """A session result is stored tagged and comes back equal (resume restores it, not reruns)."""
    from trioforge._store._codec import dump_result, load_result

    result = judged(report("success"), 0)
    dumped = dump_result(result)
    assert (dumped["$trioforge"], load_result(json.loads(json.dumps(dumped)))) == (
        "NoxSessionResult",
        result,
    )


def test_project_defaults_read_tool_trioforge_nox(tmp_path: Path) -> None:
    """[tool.trioforge.nox]: a value or a list per key; a bad value names pyproject.toml."""
    from trioforge._cli._nox_command import project_defaults
    from trioforge._cli._store_commands import UsageError

    assert project_defaults(tmp_path) == ([], [], None)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.trioforge.nox]\ntimeout = 60\nretries = ["t*=2", 1]\nmax-parallel = 3\n'
    )
    assert project_defaults(tmp_path) == (["60"], ["t*=2", "1"], 3)
    for bad in ("timeout = true", "max-parallel = 0", "colour = 1", "retries = [{a = 1}]"):
        (tmp_path / "pyproject.toml").write_text(f"[tool.trioforge.nox]\n{bad}\n")
        with pytest.raises(UsageError, match=r"pyproject\.toml"):
            project_defaults(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"), [("docker=2", ("docker", 2)), ("a=b=1", ("a=b", 1))]
)
def test_resource_option(text: str, expected: tuple[str, int]) -> None:
    """--resource NAME=N: the last '=' splits; N must be a whole number >= 1."""
    import argparse

    from trioforge._cli._nox_command import resource_option

    assert resource_option(text) == expected
    for bad in ("docker", "=1", "docker=0", "docker=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            resource_option(bad)


def test_last_attempt_is_the_section_after_the_last_header(tmp_path: Path) -> None:
    """A session's block is its log after the last attempt header, at most MAX_LINES lines."""
    from trioforge._cli._nox_output import MAX_LINES, last_attempt

    log = tmp_path / "s.log"
    log.write_text("[trioforge] run attempt 1: x\nfirst\n[trioforge] run attempt 2: x\nsecond\n")
    assert last_attempt(log) == ["second"]
    log.write_text("".join(f"{n}\n" for n in range(MAX_LINES + 5)))
    assert last_attempt(log) == [str(n) for n in range(5, MAX_LINES + 5)]
    assert last_attempt(tmp_path / "missing.log") == []


def test_resume_keep_going_lifts_x_but_keeps_the_recorded_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resume --keep-going of a -x nox run runs on after failures; its stored options stay."""
    from trioforge._cli import _nox_command
    from trioforge._cli._parser import build_parser

    saved = {"sessions": ["bad"], "stop_on_first_error": True, "noxfile": "noxfile.py"}

    class Record:
        status = "failed"
        definition: ClassVar[dict[str, object]] = {"nox": {"options": saved}}

    class Stored:
        id = "nox-1"
        record = Record()

    seen: list[_nox_command.NoxOptions] = []
    monkeypatch.setattr(_nox_command, "existing_store", lambda file, store: tmp_path / "r.db")
    monkeypatch.setattr(_nox_command, "load_run", lambda path, run_id: Stored())

    def run_nox(options: _nox_command.NoxOptions, stored: object) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(_nox_command, "run_nox", run_nox)
    args = build_parser().parse_args(["resume", "nox-1", "--keep-going", "--rerun", "bad"])
    assert _nox_command.resume_nox_run(args) == 0
    (options,) = seen
    assert (options.keep_going, options.rerun, options.selection()["stop_on_first_error"]) == (
        True,
        ("bad",),
        True,
    )
